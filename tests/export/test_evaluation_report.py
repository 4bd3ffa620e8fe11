"""Evaluation and training writers: every file, its content, and charts that render for odd inputs."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.learn.evaluate import build_report
from chaoyang_desktop.export.charts import nice_ticks, render_confusion_matrix, render_reliability
from chaoyang_desktop.export.evaluation_report import (
    EVALUATION_FILES,
    TRAINING_LOG_COLUMNS,
    write_evaluation,
    write_training_outputs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")


def _report(n: int = 40, seed: int = 0, model_id: str = "local/model") -> object:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), y] += 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return build_report(NAMES, [f"img_{i}.png" for i in range(n)], y, probs, failures=[("bad.png", "damaged")],
                        model={"model_id": model_id, "channel_order": "bgr"}, data={"source": "data", "kind": "folders"})


def test_every_evaluation_file(tmp_path: Path) -> None:
    report = _report()
    written = write_evaluation(report, tmp_path / "out")
    assert [p.name for p in written] == list(EVALUATION_FILES) and all(p.is_file() for p in written)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["accuracy"] == report.accuracy and metrics["data"]["n_failed"] == 1
    assert metrics["calibration"]["n_bins"] == 15 and len(metrics["calibration"]["bins"]) == 15
    assert metrics["failed"] == [{"path": "bad.png", "error": "damaged"}]
    rows = list(csv.reader((tmp_path / "out" / "confusion_matrix.csv").open()))
    assert rows[0] == ["true\\predicted", *NAMES]
    assert np.array([[int(v) for v in r[1:]] for r in rows[1:]]).tolist() == report.confusion.tolist()
    wrong = list(csv.DictReader((tmp_path / "out" / "misclassified.csv").open()))
    assert len(wrong) == metrics["n_misclassified"]
    assert [float(r["confidence"]) for r in wrong] == sorted((float(r["confidence"]) for r in wrong), reverse=True)
    assert all(r["true"] != r["predicted"] for r in wrong)
    preds = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert len(preds) == 40 and sum(int(r["correct"]) for r in preds) == round(report.accuracy * 40)
    for name in ("confusion_matrix.png", "reliability.png"):
        with Image.open(tmp_path / "out" / name) as im:
            assert im.mode == "RGB" and im.width >= 400 and im.height >= 400
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_model_card_reference_only_for_the_published_model(tmp_path: Path) -> None:
    assert "Model card" not in _report().to_markdown()
    published = _report(model_id="Snarci/ViT-base-patch16-384-Chaoyang-finetuned")
    assert "Model card, Chaoyang test set: accuracy 0.86, macro precision 0.82, recall 0.80, F1 0.81" in published.to_markdown()
    assert published.to_dict()["model_card_reference"]["macro_f1"] == 0.81


def test_charts_render_edge_cases() -> None:
    empty = build_report(("a",), ["x.png"], [0], [[1.0]])
    assert render_reliability(empty.calibration).size[0] == 640
    many = [f"class number {i}" for i in range(9)]
    img = render_confusion_matrix(np.eye(9, dtype=int) * 3, many)
    assert img.width > 9 * 96 and img.height > 9 * 96
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(1.63, 2.34)[0] <= 1.63 and nice_ticks(1.63, 2.34)[-1] >= 2.34
    with pytest.raises(ValueError):
        render_confusion_matrix(np.zeros((2, 3)), ["a", "b"])


def test_training_log_and_curves(tmp_path: Path) -> None:
    history = [
        {"epoch": 1, "train_loss": 1.2, "train_accuracy": 0.4, "val_loss": 1.0, "val_accuracy": 0.5, "val_macro_f1": 0.4,
         "lr": 1e-4, "seconds": 3.0, "best": True},
        {"epoch": 2, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 1.1, "val_accuracy": 0.5, "val_macro_f1": 0.45,
         "lr": 1e-4, "seconds": 3.1, "best": False},
        {"epoch": 3, "train_loss": 0.7, "train_accuracy": 0.7, "val_loss": None, "val_accuracy": math.nan, "val_macro_f1": None,
         "lr": 1e-4, "seconds": 3.0, "best": False},
    ]
    write_training_outputs(tmp_path, history)
    rows = list(csv.DictReader((tmp_path / "training_log.csv").open()))
    assert list(rows[0]) == list(TRAINING_LOG_COLUMNS)
    assert [r["best"] for r in rows] == ["1", "0", "0"] and rows[2]["val_loss"] == "" and rows[2]["val_accuracy"] == ""
    with Image.open(tmp_path / "training_curves.png") as im:
        assert im.width > im.height > 300
    write_training_outputs(tmp_path, history[:1])  # a single epoch still draws


def test_writers_import_neither_qt_nor_torch() -> None:
    code = (
        "import sys\n"
        "import chaoyang_desktop.export.evaluation_report, chaoyang_desktop.export.charts\n"
        "import chaoyang_desktop.core.learn.evaluate, chaoyang_desktop.core.learn.metrics, chaoyang_desktop.core.learn.datasets\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'shiboken6'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
