"""Writers for evaluation and training outputs: JSON, markdown, CSV and PNG charts.

An evaluation folder holds::

    metrics.json            every number (full precision), provenance, failures
    metrics.md              the model card's table, calibration, confusion matrix
    confusion_matrix.csv    counts, rows = true class, columns = predicted class
    confusion_matrix.png
    reliability.png         reliability diagram with the expected calibration error (before and
                            after side by side when a temperature was fitted)
    misclassified.csv       wrong predictions with their probabilities, most confident first
    predictions.csv         every evaluated image

When the report carries a temperature fit (``evaluate --fit-temperature``), metrics.json and
metrics.md hold the NLL and ECE before and after, and ``calibration.json`` (the
:class:`~chaoyang_desktop.core.model.temperature.TemperatureFile`) is written beside them.

A training folder gets ``training_log.csv`` and ``training_curves.png`` (one row / point per
epoch). Every file is written atomically.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from chaoyang_desktop.core.atomic import atomic_path, write_text, write_with
from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.learn.evaluate import ChannelOrderComparison, EvaluationReport, Prediction
from chaoyang_desktop.export.charts import (
    SERIES_COLORS,
    Series,
    hconcat,
    render_confusion_matrix,
    render_line_chart,
    render_reliability,
    render_reliability_before_after,
)

EVALUATION_FILES: tuple[str, ...] = ("metrics.json", "metrics.md", "confusion_matrix.csv", "confusion_matrix.png",
                                     "reliability.png", "misclassified.csv", "predictions.csv")
#: The temperature file written into an evaluation folder when a temperature was fitted.
CALIBRATION_FILE = "calibration.json"

#: Columns of ``training_log.csv``, in order.
TRAINING_LOG_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                         "val_macro_f1", "lr", "seconds", "best")


def _ensure_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the output folder {folder}: {exc.strerror}; choose a folder you can write to.") from exc


def _save_png(image: Any, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG", optimize=True)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Indented UTF-8 JSON, written atomically."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def _prediction_rows(preds: Sequence[Prediction], names: Sequence[str], fh: IO[str], with_correct: bool) -> None:
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["path", "true", "predicted", *(["correct"] if with_correct else []), "confidence", *(f"prob_{n}" for n in names)])
    for p in preds:
        w.writerow([p.path, names[p.true_index], names[p.predicted_index], *([int(p.correct)] if with_correct else []),
                    f"{p.confidence:.6f}", *(f"{x:.6f}" for x in p.probabilities)])


def confusion_csv(report: EvaluationReport) -> str:
    lines = [",".join(["true\\predicted", *report.class_names])]
    for name, row in zip(report.class_names, report.confusion):
        lines.append(",".join([name, *(str(int(v)) for v in row)]))
    return "\n".join(lines) + "\n"


def write_evaluation(report: EvaluationReport, out_dir: str | os.PathLike[str], *, title: str | None = None) -> list[Path]:
    """Write every evaluation file into ``out_dir`` (created if needed); returns their paths.

    With ``report.calibration_fit`` set, ``reliability.png`` shows before and after and
    :data:`CALIBRATION_FILE` is written too (last in the returned list).
    """
    folder = Path(out_dir)
    _ensure_dir(folder)
    names = report.class_names
    write_json(folder / "metrics.json", report.to_dict())
    write_text(folder / "metrics.md", report.to_markdown(title))
    write_text(folder / "confusion_matrix.csv", confusion_csv(report))
    _save_png(render_confusion_matrix(report.confusion, names, title=title or "Confusion matrix"), folder / "confusion_matrix.png")
    fit = report.calibration_fit
    if fit is None:
        reliability = render_reliability(report.calibration)
    else:
        reliability = render_reliability_before_after(fit.before, fit.after, fit.temperature,
                                                      base_temperature=fit.base_temperature)
    _save_png(reliability, folder / "reliability.png")
    write_with(folder / "misclassified.csv", lambda fh: _prediction_rows(report.misclassified(), names, fh, False))
    write_with(folder / "predictions.csv", lambda fh: _prediction_rows(report.predictions(), names, fh, True))
    written = [folder / f for f in EVALUATION_FILES]
    if fit is not None:
        fit.file.save(folder / CALIBRATION_FILE)
        written.append(folder / CALIBRATION_FILE)
    return written


def write_channel_comparison(comparison: ChannelOrderComparison, out_dir: str | os.PathLike[str]) -> list[Path]:
    """One full evaluation per channel order in ``OUT/<order>/``, and ``channel_orders.{json,md}``."""
    folder = Path(out_dir)
    _ensure_dir(folder)
    written: list[Path] = []
    for order, report in comparison.reports.items():
        written += write_evaluation(report, folder / order, title=f"Evaluation with {order.upper()} input")
    write_json(folder / "channel_orders.json", comparison.to_dict())
    write_text(folder / "channel_orders.md", comparison.to_markdown())
    return [*written, folder / "channel_orders.json", folder / "channel_orders.md"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def write_training_log(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> None:
    """One CSV row per epoch with :data:`TRAINING_LOG_COLUMNS` (empty cells where there is no value)."""
    def fill(fh: IO[str]) -> None:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRAINING_LOG_COLUMNS)
        for r in rows:
            w.writerow([_cell(r.get(c)) for c in TRAINING_LOG_COLUMNS])

    write_with(path, fill)


def _values(rows: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan)
    return out


def render_training_curves(rows: Sequence[Mapping[str, Any]], best_epoch: int | None = None) -> Any:
    """Loss and accuracy per epoch side by side, the kept (best) epoch marked."""
    epochs = [float(r["epoch"]) for r in rows]
    marker = float(best_epoch) if best_epoch is not None else None
    label = f"best: epoch {best_epoch}" if best_epoch is not None else ""
    loss = render_line_chart(
        [Series("training loss", epochs, _values(rows, "train_loss"), SERIES_COLORS[0]),
         Series("validation loss", epochs, _values(rows, "val_loss"), SERIES_COLORS[1])],
        title="Cross-entropy loss", xlabel="epoch", ylabel="loss", marker_x=marker, marker_label=label)
    acc = render_line_chart(
        [Series("training accuracy", epochs, _values(rows, "train_accuracy"), SERIES_COLORS[0]),
         Series("validation accuracy", epochs, _values(rows, "val_accuracy"), SERIES_COLORS[1]),
         Series("validation macro F1", epochs, _values(rows, "val_macro_f1"), SERIES_COLORS[2])],
        title="Accuracy and macro F1", xlabel="epoch", ylabel="score", ylim=(0.0, 1.0), marker_x=marker, marker_label=label)
    return hconcat([loss, acc])


def write_training_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], best_epoch: int | None = None) -> None:
    """``training_curves.png``: loss and accuracy per epoch."""
    _save_png(render_training_curves(rows, best_epoch), Path(path))


def write_training_outputs(out_dir: str | os.PathLike[str], history: Sequence[Any]) -> None:
    """``training_log.csv`` and ``training_curves.png`` of a run from its epoch records.

    Args:
        out_dir: The run folder.
        history: :class:`~chaoyang_desktop.core.learn.train.EpochRecord` objects (or their
            ``to_dict()`` mappings), one per epoch so far.
    """
    rows = [r if isinstance(r, Mapping) else r.to_dict() for r in history]
    best = [int(r["epoch"]) for r in rows if r.get("best")]
    folder = Path(out_dir)
    write_training_log(rows, folder / "training_log.csv")
    write_training_curves(rows, folder / "training_curves.png", best[-1] if best else None)
