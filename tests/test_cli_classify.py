"""``chaoyang-desktop classify`` and ``models`` end to end, with a checkpoint made at test time."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.cli import main
from tests.model_factory import TINY_CONFIG, write_checkpoint


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=5)
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


#: Folders of the real patches published as background (no tissue): quality control leaves them out.
BACKGROUND = {"BACK", "08_EMPTY"}
#: Fat, mostly white: quality control may take it for glass (tile_qc says so).
FAT = {"ADI", "07_ADIPOSE"}
KEYS = ["path", "label", "confidence", "probabilities", "entropy", "margin", "tta_spread", "qc"]


def test_real_patches_classify_end_to_end(test_data: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "classify", str(test_data / "patches"), "--model", str(model_dir), "--format", "json")
    assert code == 0, err  # patches left out by QC are not failures
    records = json.loads(out)
    assert len(records) == 41  # every real patch: png and tif, two datasets, nested folders
    flagged = 0
    for r in records:
        assert list(r) == KEYS
        folder = Path(r["path"]).parent.name
        if folder in BACKGROUND:
            assert r["qc"] == "glass"
            assert r["label"] is None and r["confidence"] is None and r["probabilities"] is None
            assert r["entropy"] is None and r["margin"] is None
        if r["qc"]:
            flagged += 1
            continue
        assert list(r["probabilities"]) == ["Normal", "Serrated", "Adenocarcinoma", "Adenoma"]
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["confidence"] == max(r["probabilities"].values())
        top2 = sorted(r["probabilities"].values())[-2:]
        assert abs(r["margin"] - (top2[1] - top2[0])) < 2e-6
        assert 0 <= r["entropy"] <= 1 and r["tta_spread"] is None
    tissue = [r for r in records if Path(r["path"]).parent.name not in BACKGROUND | FAT]
    # Tissue is classified: tile_qc's own figure on these patches is one pale mucin patch flagged.
    assert len(tissue) == 33 and sum(bool(r["qc"]) for r in tissue) <= 1
    assert flagged >= 3
    assert "not classified by quality control" in err and "--qc off" in err


def test_qc_off_classifies_the_background_too(test_data: Path, model_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folders = [str(test_data / "patches" / "crc9" / "BACK"), str(test_data / "patches" / "kather2016" / "08_EMPTY")]
    code, out, err = _run(capsys, "classify", *folders, "-m", str(model_dir), "--format", "json", "--qc", "off")
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == 3
    assert all(r["qc"] == "" and r["label"] in r["probabilities"] for r in records)
    assert "quality control" not in err
    code, table, _ = _run(capsys, "classify", *folders, "-m", str(model_dir), "-q")
    assert code == 0  # only QC-flagged: nothing failed
    assert [line.split(None, 1)[1] for line in table.splitlines()[1:]] == ["not classified: glass or background"] * 3
    with pytest.raises(SystemExit) as e:
        main(["classify", folders[0], "--qc", "maybe"])
    assert e.value.code == 2


def test_tta_adds_the_spread_of_the_top_class(test_data: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    code, out, _ = _run(capsys, "classify", str(patch), "-m", str(model_dir), "--format", "csv", "--tta", "-q")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert float(row["tta_spread"]) >= 0 and row["qc"] == "" and row["error"] == ""
    code, table, _ = _run(capsys, "classify", str(patch), "-m", str(model_dir), "--tta", "-q")
    assert table.splitlines()[0].split()[-3:] == ["entropy", "margin", "spread"]


def test_same_image_same_probabilities_in_every_format(test_data: Path, model_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    patch = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    _, js, _ = _run(capsys, "classify", str(patch), "-m", str(model_dir), "--format", "json")
    out_csv = tmp_path / "r.csv"
    code, _, _ = _run(capsys, "classify", str(patch), "-m", str(model_dir), "--format", "csv", "--output", str(out_csv))
    assert code == 0
    row = next(csv.DictReader(io.StringIO(out_csv.read_text())))
    rec = json.loads(js)[0]
    assert row["label"] == rec["label"]
    assert abs(float(row["prob_Adenoma"]) - rec["probabilities"]["Adenoma"]) < 1e-6
    code, table, _ = _run(capsys, "classify", str(patch), "-m", str(model_dir))
    assert code == 0 and rec["label"] in table


def test_bad_inputs_are_reported_and_the_rest_classified(test_data: Path, model_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(next((test_data / "patches" / "crc9" / "NORM").glob("*.png")), folder / "sub" / "good.PNG")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "cut.jpg")
    (folder / "cut.jpg").write_bytes((folder / "cut.jpg").read_bytes()[:300])
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    shutil.copy(next((test_data / "patches" / "crc9" / "BACK").iterdir()), folder / "back.tif")
    code, out, err = _run(capsys, "classify", str(folder), "-m", str(model_dir), "--format", "json")
    assert code == 1
    records = {Path(r["path"]).name: r for r in json.loads(out)}
    assert set(records) == {"good.PNG", "empty.png", "text.png", "cut.jpg", "back.tif"}
    assert records["good.PNG"]["label"] in records["good.PNG"]["probabilities"]
    assert records["back.tif"]["qc"] == "glass" and "error" not in records["back.tif"]
    for name in ("empty.png", "text.png", "cut.jpg"):
        assert set(records[name]) == {"path", "error"}
        assert name in err
    assert "Traceback" not in err


def test_folder_without_images_and_missing_path(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nothing").mkdir()
    code, out, err = _run(capsys, "classify", str(tmp_path / "nothing"), str(tmp_path / "absent.png"), "-m",
                          str(model_dir), "--format", "json")
    assert code == 1
    assert [set(r) for r in json.loads(out)] == [{"path", "error"}] * 2
    assert "no images found" in err and "no such file" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["classify"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["classify", "x.png", "--format", "xml"])
    assert e.value.code == 2


def test_uncached_model_offline_says_how_to_get_it(test_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    code, _, err = _run(capsys, "classify", str(patch))
    assert code == 1
    assert "chaoyang-desktop models download" in err and "--model DIR" in err
    assert "Traceback" not in err


def test_wrong_checkpoint_exits_1_with_names(model_dir: Path, tmp_path: Path, test_data: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["hidden_size"] = 64
    cfg["intermediate_size"] = 128
    (bad / "config.json").write_text(json.dumps(cfg))
    patch = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    code, _, err = _run(capsys, "classify", str(patch), "-m", str(bad))
    assert code == 1 and "mis-shaped tensors" in err and "Traceback" not in err


def test_models_info(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    code, out, _ = _run(capsys, "models", "info", str(model_dir), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["weights_sha256"] == hashlib.sha256((model_dir / "pytorch_model.bin").read_bytes()).hexdigest()
    assert info["class_names"] == ["Normal", "Serrated", "Adenocarcinoma", "Adenoma"]
    assert info["channel_order"] == "bgr" and info["resize"] == "linear" and info["tile_um"] == 256.0
    code, out, _ = _run(capsys, "models", "info", str(model_dir))
    assert code == 0 and "sha256" in out and "LayerNorm eps 1e-12" in out


def test_models_download_unreachable_hub(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "models", "download", "Snarci/ViT-base-patch16-384-Chaoyang-finetuned", "-q")
    assert code == 1 and "cannot be reached" in err


def test_hub_id_resolves_through_the_cache(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository laid out as huggingface_hub caches it is found offline."""
    from chaoyang_desktop.core.model.model_source import hf_cache_dir, resolve_model

    repo = hf_cache_dir() / "models--Owner--Some-ViT"
    snap = repo / "snapshots" / ("a" * 40)
    shutil.copytree(model_dir, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    loc = resolve_model("Owner/Some-ViT")
    assert loc.source == "hub" and loc.model_dir == snap


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "chaoyang_desktop", "--version"], capture_output=True, text=True, check=True)
    assert "chaoyang-desktop" in out.stdout
