"""``chaoyang-desktop train`` and ``evaluate`` end to end on the real patches, with tiny models made at test time.

The shared patches are of 9 (CRC-9) and 8 (Kather 2016) tissue classes, not the model's 4: a model
is trained on the CRC-9 folder names (a new head), reloaded, used to classify and evaluated; the
Chaoyang-class base is evaluated through a class map.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chaoyang_desktop.cli import main
from tests.model_factory import TINY_CONFIG, write_checkpoint

CRC9 = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")
KATHER_MAP = {"01_TUMOR": "Adenocarcinoma", "06_MUCOSA": "Normal", "03_COMPLEX": "Adenoma", "02_STROMA": None,
              "04_LYMPHO": None, "05_DEBRIS": None, "07_ADIPOSE": None, "08_EMPTY": None}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("base"), TINY_CONFIG, seed=5)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, base_dir: Path, test_data: Path) -> Path:
    """Two epochs on the CRC-9 patches with a new 9-class head (CLI, in-process)."""
    out = tmp_path_factory.mktemp("run") / "run"
    code = main(["train", str(test_data / "patches" / "crc9"), "--base", str(base_dir), "--new-classes", "--out", str(out),
                 "--epochs", "2", "--device", "cpu", "--workers", "2"])
    assert code == 0
    return out


def test_train_writes_a_loadable_hf_model_and_its_records(trained: Path) -> None:
    model = trained / "model"
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["id2label"] == {str(i): n for i, n in enumerate(CRC9)}
    assert cfg["label2id"] == {n: i for i, n in enumerate(CRC9)} and cfg["layer_norm_eps"] == 1e-12
    assert (model / "preprocessor_config.json").is_file()
    from safetensors.torch import load_file

    state = load_file(str(model / "model.safetensors"))
    assert "vit.encoder.layer.0.attention.attention.query.weight" in state  # transformers 4.x names
    assert state["classifier.weight"].shape == (9, TINY_CONFIG["hidden_size"])
    log = list(csv.DictReader((trained / "training_log.csv").open()))
    assert [r["epoch"] for r in log] == ["1", "2"] and all(r["val_loss"] for r in log)
    assert (trained / "training_curves.png").stat().st_size > 1000
    info = json.loads((trained / "training.json").read_text())
    assert info["status"] == "finished" and info["head_replaced"] is True and info["best_epoch"] in (1, 2)
    assert info["base_model"]["weights_sha256"] and info["recipe"]["lr"] == 1e-4 and info["recipe"]["batch_size"] == 16
    assert info["recipe"]["preprocessing"]["channel_order"] == "bgr"
    assert info["data"]["n_images"] == 25 and sum(info["split"]["val_counts"].values()) == 2  # round(0.1 * 25)
    split = json.loads((trained / "split.json").read_text())
    assert len(split["train"]) == 23 and not set(split["train"]) & set(split["val"])
    val = json.loads((trained / "validation" / "metrics.json").read_text())
    assert val["n"] == 2 and sorted(val["data"]["class_counts"].values())[-1] >= 1
    torch.load(trained / "checkpoint-last.pt", weights_only=True)


def test_trained_model_classifies_and_evaluates_with_the_same_numbers(trained: Path, test_data: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    crc9 = test_data / "patches" / "crc9"
    # Evaluation judges every labelled patch (the labels are the truth), so classify without
    # quality control, which would leave the background patch out.
    code, out, err = _run(capsys, "classify", str(crc9), "--model", str(trained / "model"), "--format", "json",
                          "--device", "cpu", "--qc", "off")
    assert code == 0, err
    records = json.loads(out)
    assert len(records) == 25 and list(records[0]["probabilities"]) == list(CRC9)
    code, out, err = _run(capsys, "evaluate", str(crc9), "--model", str(trained / "model"), "--out", str(tmp_path / "ev"),
                          "--device", "cpu")
    assert code == 0, err
    assert "| **macro avg** |" in out and "## Confusion matrix" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 25 and metrics["class_names"] == list(CRC9)
    # Labels are the folder names; accuracy must be what classify's labels give.
    by_path = {r["path"]: r for r in records}
    right = sum(by_path[p]["label"] == Path(p).parent.name for p in by_path)
    assert metrics["accuracy"] == right / 25
    assert np.array(metrics["confusion_matrix"]).sum() == 25
    preds = list(csv.DictReader((tmp_path / "ev" / "predictions.csv").open()))
    for row in preds:
        assert abs(float(row[f"prob_{row['predicted']}"]) - by_path[row["path"]]["probabilities"][row["predicted"]]) < 1e-5
    assert len(list(csv.DictReader((tmp_path / "ev" / "misclassified.csv").open()))) == 25 - right
    for name in ("metrics.md", "confusion_matrix.csv", "confusion_matrix.png", "reliability.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 0


def test_saved_model_matches_transformers(trained: Path) -> None:
    import transformers

    from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
    from tests.reference import training_input

    hf = transformers.ViTForImageClassification.from_pretrained(str(trained / "model")).eval()
    assert hf.config.id2label[8] == "TUM"
    clf = Classifier.load(str(trained / "model"), EngineSettings(device="cpu"))
    img = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = torch.softmax(hf(pixel_values=training_input([img])).logits, 1).numpy()
    assert np.abs(clf.predict([img]) - ref).max() < 1e-5


def test_evaluate_with_class_map_and_channel_order_comparison(base_dir: Path, test_data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cmap = tmp_path / "map.json"
    cmap.write_text(json.dumps(KATHER_MAP))
    code, out, err = _run(capsys, "evaluate", str(test_data / "patches" / "kather2016"), "--model", str(base_dir),
                          "--class-map", str(cmap), "--compare-channel-orders", "--out", str(tmp_path / "cmp"), "--device", "cpu")
    assert code == 0, err
    cmp = json.loads((tmp_path / "cmp" / "channel_orders.json").read_text())
    assert cmp["best"] in ("bgr", "rgb") and set(cmp["orders"]) == {"bgr", "rgb"} and 0 <= cmp["mcnemar_p"] <= 1
    assert cmp["verdict"] in err and "# Channel order comparison" in out
    bgr = json.loads((tmp_path / "cmp" / "bgr" / "metrics.json").read_text())
    rgb = json.loads((tmp_path / "cmp" / "rgb" / "metrics.json").read_text())
    assert bgr["model"]["channel_order"] == "bgr" and rgb["model"]["channel_order"] == "rgb"
    assert bgr["n"] == rgb["n"] == 6 and bgr["data"]["left_out"] == {k: 2 for k, v in KATHER_MAP.items() if v is None}
    assert bgr["per_class"]["Normal"]["support"] == 2 and bgr["per_class"]["Serrated"]["support"] == 0
    assert bgr["accuracy"] == cmp["orders"]["bgr"]["accuracy"]


def test_evaluate_a_chaoyang_json_list(base_dir: Path, test_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patches = test_data / "patches"
    records = [{"label": 0, "name": p.relative_to(patches).as_posix()} for p in sorted((patches / "crc9" / "NORM").iterdir())]
    records += [{"label": 2, "name": p.relative_to(patches).as_posix()} for p in sorted((patches / "crc9" / "TUM").iterdir())]
    (tmp_path / "test.json").write_text(json.dumps(records))
    code, out, err = _run(capsys, "evaluate", str(tmp_path / "test.json"), "--image-root", str(patches), "--model", str(base_dir),
                          "--device", "cpu", "-q")
    assert code == 0, err
    assert "| **accuracy** |  |  |" in out and "6 |" in out
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "test.json"), "--model", str(base_dir), "--device", "cpu")
    assert code == 1 and "--image-root" in err and "Traceback" not in err


def test_evaluate_errors_a_person_can_fix(base_dir: Path, test_data: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "evaluate", str(test_data / "patches" / "crc9"), "--model", str(base_dir))
    assert code == 1 and "--class-map" in err and "'TUM'" in err and "Traceback" not in err
    (tmp_path / "data" / "Normal").mkdir(parents=True)
    (tmp_path / "data" / "Normal" / "broken.png").write_text("not an image")
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "data"), "--model", str(base_dir))
    assert code == 1 and "None of the 1 images could be read" in err
    good = next((test_data / "patches" / "crc9" / "NORM").glob("*.png"))
    (tmp_path / "data" / "Normal" / "good.png").write_bytes(good.read_bytes())
    code, out, err = _run(capsys, "evaluate", str(tmp_path / "data"), "--model", str(base_dir), "--out", str(tmp_path / "ev"))
    assert code == 1 and "broken.png" in err and "1 could not be read" in out  # reported, left out, the rest evaluated
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 1 and metrics["failed"][0]["path"].endswith("broken.png")
    (tmp_path / "data" / "Adenoma").mkdir()
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "data"), "--model", str(base_dir))
    assert code == 1 and "'Adenoma'" in err and "hold no images" in err


def test_train_onto_the_base_classes_resume_and_refusals(base_dir: Path, test_data: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cmap = tmp_path / "map.json"
    cmap.write_text(json.dumps(KATHER_MAP))
    out = tmp_path / "run"
    args = ["train", str(test_data / "patches" / "kather2016"), "--class-map", str(cmap), "--base", str(base_dir),
            "--out", str(out), "--device", "cpu", "--batch-size", "4", "--val-fraction", "0.2"]
    code, _, err = _run(capsys, *args, "--epochs", "1")
    assert code == 0, err
    assert "no training images for Serrated" in err and "epoch 1/1" in err
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert list(cfg["id2label"].values()) == ["Normal", "Serrated", "Adenocarcinoma", "Adenoma"]
    assert json.loads((out / "training.json").read_text())["head_replaced"] is False
    code, _, err = _run(capsys, *args, "--epochs", "2")
    assert code == 1 and "--resume" in err
    code, _, err = _run(capsys, *args, "--epochs", "2", "--resume", "--lr", "0.001")
    assert code == 1 and "--lr" in err
    code, _, err = _run(capsys, *args[:-2], "--epochs", "2", "--resume")  # recipe options come from the run
    assert code == 0, err
    assert "Resuming" in err and "epoch 2/2" in err and "epoch 1/2" not in err
    assert [r["epoch"] for r in csv.DictReader((out / "training_log.csv").open())] == ["1", "2"]
    code, _, err = _run(capsys, "train", str(test_data / "patches" / "kather2016"), "--base", str(base_dir),
                        "--out", str(tmp_path / "other"))
    assert code == 1 and "--class-map" in err and "Traceback" not in err


def _evaluate_parser_options() -> set[str]:
    from chaoyang_desktop.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")  # noqa: SLF001
    return {o for a in sub.choices["evaluate"]._actions for o in a.option_strings}  # noqa: SLF001


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, base_dir: Path, test_data: Path) -> Path:
    """A CRC-9 model that has learnt something (better than chance, far from perfect): a temperature can be fitted.

    ``trained`` (two epochs at the recipe's rate) is still at chance, where the best temperature
    is above the allowed range and a fit is rightly refused.
    """
    out = tmp_path_factory.mktemp("learned") / "run"
    code = main(["train", str(test_data / "patches" / "crc9"), "--base", str(base_dir), "--new-classes", "--out", str(out),
                 "--epochs", "12", "--lr", "1e-3", "--no-augment", "--device", "cpu", "--workers", "2", "-q"])
    assert code == 0
    return out / "model"


def test_evaluate_fits_a_temperature_for_these_weights(learned: Path, test_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib
    import shutil

    from PIL import Image

    from chaoyang_desktop.core.model.temperature import TemperatureFile

    crc9 = test_data / "patches" / "crc9"
    model = tmp_path / "model"
    shutil.copytree(learned, model)  # a copy: the default file lands beside it
    sha = hashlib.sha256((model / "model.safetensors").read_bytes()).hexdigest()
    ev = tmp_path / "ev"
    code, out, err = _run(capsys, "evaluate", str(crc9), "--model", str(model), "--out", str(ev), "--device", "cpu",
                          "--fit-temperature")
    assert code == 0, err
    cal = TemperatureFile.load(ev / "calibration.json")
    assert cal.weights_sha256 == sha and cal.n == 25 and cal.fitted_on == str(crc9)
    assert cal.nll_after is not None and cal.nll_before is not None and cal.nll_after <= cal.nll_before
    metrics = json.loads((ev / "metrics.json").read_text())
    ts = metrics["temperature_scaling"]
    assert ts["temperature"] == cal.temperature and ts["ece_before"] == metrics["calibration"]["ece"] == cal.ece_before
    assert ts["ece_after"] == cal.ece_after and metrics["model"]["temperature"] == 1.0
    assert "## Temperature scaling" in out and f"| {cal.ece_before:.4f} | {cal.ece_after:.4f} |" in out
    assert "## Temperature scaling" in (ev / "metrics.md").read_text()
    with Image.open(ev / "reliability.png") as im:
        assert im.width > 2 * im.height * 0.6  # two diagrams side by side
    assert f"--calibration {ev / 'calibration.json'}" in err and "ECE" in err and "NLL" in err
    assert "Traceback" not in err

    # Without --out: --save-calibration FILE, else beside the local model.
    target = tmp_path / "cal" / "t.json"
    code, _, err = _run(capsys, "evaluate", str(crc9), "--model", str(model), "--device", "cpu", "-q",
                        "--fit-temperature", "--save-calibration", str(target))
    assert code == 0, err
    assert TemperatureFile.load(target).temperature == pytest.approx(cal.temperature, rel=1e-9)
    assert f"--calibration {target}" in err
    code, _, err = _run(capsys, "evaluate", str(crc9), "--model", str(model), "--device", "cpu", "-q", "--fit-temperature")
    assert code == 0, err
    beside = model / "chaoyang-calibration.json"
    assert TemperatureFile.load(beside).weights_sha256 == sha and f"--calibration {beside}" in err

    # The saved file calibrates classify/evaluate once the engine options take it.
    if "--calibration" in _evaluate_parser_options():
        code, out, err = _run(capsys, "evaluate", str(crc9), "--model", str(model), "--device", "cpu", "-q",
                              "--calibration", str(ev / "calibration.json"), "--out", str(tmp_path / "ev2"))
        assert code == 0, err
        again = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
        assert again["accuracy"] == metrics["accuracy"]  # temperature scaling keeps every prediction
        assert again["model"]["temperature"] == pytest.approx(cal.temperature)
        # The calibrated run's probabilities are softmax(log p / T) of the uncalibrated run's.
        cols = [f"prob_{n}" for n in CRC9]
        before = {r["path"]: np.array([float(r[c]) for c in cols]) for r in csv.DictReader((ev / "predictions.csv").open())}
        for r in csv.DictReader((tmp_path / "ev2" / "predictions.csv").open()):
            z = np.log(np.maximum(before[r["path"]], 1e-30)) / cal.temperature
            expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            np.testing.assert_allclose([float(r[c]) for c in cols], expected, atol=2e-5)
        code, out, err = _run(capsys, "classify", str(crc9), "--model", str(model), "--device", "cpu",
                              "--calibration", str(ev / "calibration.json"), "--format", "json")
        assert code == 0, err


def test_fit_temperature_refusals(base_dir: Path, trained: Path, test_data: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    cmap = tmp_path / "map.json"
    cmap.write_text(json.dumps(KATHER_MAP))
    data = str(test_data / "patches" / "kather2016")
    code, out, err = _run(capsys, "evaluate", data, "--model", str(base_dir), "--class-map", str(cmap), "--device", "cpu",
                          "--fit-temperature")
    assert code == 1 and "at least 20 labelled patches (got 6)" in err and "Traceback" not in err
    assert out == ""  # refused before any image was classified
    code, _, err = _run(capsys, "evaluate", data, "--model", str(base_dir), "--class-map", str(cmap), "--device", "cpu",
                        "--fit-temperature", "--compare-channel-orders")
    assert code == 1 and "--compare-channel-orders" in err and "Traceback" not in err
    code, _, err = _run(capsys, "evaluate", data, "--model", str(base_dir), "--class-map", str(cmap), "--device", "cpu",
                        "--save-calibration", str(tmp_path / "c.json"))
    assert code == 1 and "--fit-temperature" in err and not (tmp_path / "c.json").exists()
    assert len(err.strip().splitlines()) == 1
    # A model at chance: the evaluation is printed and written, the fit is refused in one line, nothing saved.
    code, out, err = _run(capsys, "evaluate", str(test_data / "patches" / "crc9"), "--model", str(trained / "model"),
                          "--device", "cpu", "-q", "--fit-temperature", "--out", str(tmp_path / "ev"))
    assert code == 1 and "error: no temperature fitted: The best temperature is" in err and "Traceback" not in err
    assert "| **macro avg** |" in out and (tmp_path / "ev" / "metrics.json").is_file()
    assert not (tmp_path / "ev" / "calibration.json").exists() and not (trained / "model" / "chaoyang-calibration.json").exists()
