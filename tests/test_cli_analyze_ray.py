"""``analyze FOLDER --ray local``: the same outputs as in-process, a cohort.csv row per slide, skip and --force."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.cli import main
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=3)
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, test_data: Path) -> Path:
    root = tmp_path_factory.mktemp("slides")
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", root / "real.svs")
    for i in range(2):
        write_pyramid_tiff(root / f"gen{i}.tiff", tissue_image(1024, 1280, [(64, 64, 1100, 900)], seed=10 + i), mpp=0.5)
    (root / "broken.svs").write_text("not a slide")
    return root


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {Path(r["slide"]).name: r for r in csv.DictReader(path.open())}


def test_ray_outputs_equal_the_in_process_run(local_ray: object, model_dir: Path, folder: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    common = [str(folder), "-m", str(model_dir), "--device", "cpu", "--no-cache"]
    assert main(["analyze", *common, "--out", str(tmp_path / "local"), "-q"]) == 1  # broken.svs fails
    capsys.readouterr()
    assert main(["analyze", *common, "--out", str(tmp_path / "ray"), "--ray", "local"]) == 1
    err = capsys.readouterr().err
    assert "ray: 2 workers, 1 CPU each, on 1 node" in err
    assert "cohort: 4 of 4 slides" in err and "slides/h" in err  # the pace line
    local, ray = _rows(tmp_path / "local" / "cohort.csv"), _rows(tmp_path / "ray" / "cohort.csv")
    assert set(ray) == {"real.svs", "gen0.tiff", "gen1.tiff", "broken.svs"}
    assert ray["broken.svs"]["status"] == "failed" and ray["broken.svs"]["error"]
    for name in ("real.svs", "gen0.tiff", "gen1.tiff"):
        assert ray[name]["status"] == "ok"
        same = {k: v for k, v in local[name].items() if k != "output"}
        assert {k: v for k, v in ray[name].items() if k != "output"} == same
        stem = Path(name).stem
        a = np.load(tmp_path / "local" / stem / "predictions.npz")
        b = np.load(tmp_path / "ray" / stem / "predictions.npz")
        for key in ("t_col", "t_row", "status", "qc"):
            np.testing.assert_array_equal(b[key], a[key])
        np.testing.assert_allclose(b["probs"], a["probs"], atol=1e-6, rtol=0)
        assert (tmp_path / "ray" / stem / "tiles.csv").read_text() == (tmp_path / "local" / stem / "tiles.csv").read_text()
        doc = json.loads((tmp_path / "ray" / stem / "summary.json").read_text())
        assert doc["analysis"]["complete"] and Path(doc["slide"]["path"]).name == name
    # A second run skips the finished slides and tries the broken one again; --force redoes all.
    assert main(["analyze", *common, "--out", str(tmp_path / "ray"), "--ray", "local"]) == 1
    err = capsys.readouterr().err
    assert err.count("skip: ") == 3 and "started on" in err and "broken.svs" in err
    assert _rows(tmp_path / "ray" / "cohort.csv")["gen0.tiff"]["status"] == "skipped"
    assert main(["analyze", *common, "--out", str(tmp_path / "ray"), "--ray", "local", "--force", "-q"]) == 1
    assert _rows(tmp_path / "ray" / "cohort.csv")["gen0.tiff"]["status"] == "ok"


def test_without_ray_the_option_says_how_to_install_it(model_dir: Path, folder: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert main(["analyze", str(folder), "-m", str(model_dir), "--out", str(tmp_path / "o"), "--ray", "local"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Ray is not installed" in err[0] and 'pip install "chaoyang-desktop[cluster]"' in err[0]
    assert not (tmp_path / "o").exists()  # refused before anything was read or written


def test_an_unreachable_cluster_is_a_one_line_error_within_seconds(model_dir: Path, folder: Path,
                                                                   tmp_path: Path) -> None:
    # In a process of its own: this one may be connected to the session's local Ray already.
    import subprocess
    import sys

    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "chaoyang_desktop", "analyze", str(folder), "-m", str(model_dir),
                           "--out", str(out), "--ray", "127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Nothing answers at the Ray address 127.0.0.1:9" in lines[0] and "ray start --head" in lines[0]
    assert not (out / "cohort.csv").exists()
