"""Evaluating a classifier on labelled images: the model card's table, calibration, errors.

:func:`evaluate_dataset` runs a :class:`~chaoyang_desktop.core.model.inference.Classifier` over a
:class:`~chaoyang_desktop.core.learn.datasets.LabelledDataset` and returns an
:class:`EvaluationReport`, the one object the CLI writes to files and the GUI shows: accuracy,
per-class and averaged precision/recall/F1, the confusion matrix, expected calibration error with
its reliability bins, and every prediction (so misclassified patches can be listed).

:func:`compare_channel_orders` answers ``shared/MODEL.md``'s open question on the user's own
data: it decodes each image once, classifies it with BGR and with RGB input, and says which
order fits, with an exact McNemar test so a small sample is not over-read.

This module does not import torch: reports can be built, written and shown without it.

:func:`fit_report_temperature` fits a temperature (temperature scaling,
:mod:`chaoyang_desktop.core.learn.calibration`) on a report's own probabilities and returns the
:class:`~chaoyang_desktop.core.model.temperature.TemperatureFile` to save with a copy of the
report that carries the calibration before and after (:class:`CalibrationFit`), so every front
end shows the same two numbers and two reliability diagrams.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from chaoyang_desktop.core.learn.calibration import apply_temperature, fit_temperature, log_probabilities
from chaoyang_desktop.core.learn.datasets import DatasetError, LabelledDataset
from chaoyang_desktop.core.slide.imageio import decode_or_error
from chaoyang_desktop.core.errors import CancelledError, SettingsError
from chaoyang_desktop.core.learn.metrics import (
    ECE_BINS,
    Calibration,
    ClassificationMetrics,
    calibration,
    classification_metrics,
    log_loss,
    mcnemar_exact_p,
)
from chaoyang_desktop.core.model.temperature import TemperatureFile

if TYPE_CHECKING:
    from chaoyang_desktop.core.model.inference import Classifier

ProgressFn = Callable[[int, int], None]

#: What the published model card reports on the Chaoyang test set, shown beside our numbers.
MODEL_CARD_REFERENCE: dict[str, dict[str, float]] = {
    "Snarci/ViT-base-patch16-384-Chaoyang-finetuned": {
        "accuracy": 0.86, "macro_precision": 0.82, "macro_recall": 0.80, "macro_f1": 0.81,
    },
}

#: p-value under which two channel orders count as different (exact McNemar test).
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Prediction:
    """One evaluated image: its label, the predicted class and the probabilities."""

    path: str
    true_index: int
    predicted_index: int
    probabilities: tuple[float, ...]

    @property
    def correct(self) -> bool:
        return self.true_index == self.predicted_index

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.predicted_index])


@dataclass(frozen=True)
class CalibrationFit:
    """A temperature fitted on an evaluation, with the calibration before and after it.

    "Before" is the evaluation as it ran (at ``base_temperature``); "after" is the same
    probabilities re-tempered to :attr:`temperature` (no second inference: temperature scaling
    keeps every prediction, so only the confidences change).

    Attributes:
        file: What to save (temperature, model and weights it belongs to, NLL and ECE before/after).
        base_temperature: The temperature the evaluation already ran with (1: uncalibrated).
        before: ECE and reliability bins as evaluated.
        after: The same at the fitted temperature.
        note: A caveat a person should read (empty when there is none).
    """

    file: TemperatureFile
    base_temperature: float
    before: Calibration
    after: Calibration
    note: str = ""

    @property
    def temperature(self) -> float:
        """The fitted temperature, to divide the raw logits by."""
        return self.file.temperature

    @property
    def relative(self) -> float:
        """The change relative to the evaluated probabilities (``temperature / base_temperature``)."""
        return self.file.temperature / self.base_temperature

    def summary(self) -> str:
        """One line: the temperature and NLL/ECE before -> after."""
        f = self.file
        base = f" (the evaluation ran at T = {self.base_temperature:.4g})" if self.base_temperature != 1.0 else ""
        return (f"Temperature {f.temperature:.4g}{base}, fitted on {f.n} patches: NLL {f.nll_before:.4f} -> "
                f"{f.nll_after:.4f}, ECE {self.before.ece:.4f} -> {self.after.ece:.4f}.")

    def to_dict(self) -> dict[str, Any]:
        """The ``temperature_scaling`` entry of ``metrics.json``."""
        f = self.file
        return {
            "temperature": f.temperature, "base_temperature": self.base_temperature, "relative": self.relative,
            "n": f.n, "fitted_on": f.fitted_on, "nll_before": f.nll_before, "nll_after": f.nll_after,
            "ece_before": self.before.ece, "ece_after": self.after.ece,
            "mce_before": self.before.max_gap, "mce_after": self.after.max_gap,
            "calibration_after": self.after.to_dict(), "note": self.note,
        }


# eq=False: numpy fields make field-wise equality ambiguous; compare the numbers instead.
@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """The outcome of evaluating a model on labelled images.

    Attributes:
        class_names: The model's classes, in index order.
        paths: The images evaluated (those that could be read), in dataset order.
        y_true: (N,) int64 labels.
        probs: (N, K) float32 probabilities.
        failures: ``(path, reason)`` for images that could not be read; they count nowhere.
        metrics: Accuracy, per-class/macro/weighted scores, confusion matrix.
        calibration: Expected calibration error and reliability bins.
        log_loss: Mean negative log-likelihood of the true class.
        model: Provenance of the model and settings (id, weights hash, channel order, device, ...).
        data: Provenance of the data (source, kind, class counts, class map).
        created: ISO-8601 time the report was made.
        calibration_fit: A temperature fitted on this report (:func:`fit_report_temperature`),
            or ``None``; ``calibration`` and ``log_loss`` stay the numbers as evaluated.
    """

    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    y_true: npt.NDArray[np.int64]
    probs: npt.NDArray[np.float32]
    failures: tuple[tuple[str, str], ...]
    metrics: ClassificationMetrics
    calibration: Calibration
    log_loss: float
    model: dict[str, Any]
    data: dict[str, Any]
    created: str
    calibration_fit: CalibrationFit | None = None

    @property
    def n(self) -> int:
        return len(self.paths)

    @property
    def accuracy(self) -> float:
        return self.metrics.accuracy

    @property
    def confusion(self) -> npt.NDArray[np.int64]:
        """(K, K) counts, rows = true class, columns = predicted class."""
        return self.metrics.confusion

    @property
    def y_pred(self) -> npt.NDArray[np.int64]:
        return self.probs.argmax(axis=1).astype(np.int64) if self.n else np.zeros(0, dtype=np.int64)

    def predictions(self) -> list[Prediction]:
        pred = self.y_pred
        return [Prediction(p, int(t), int(q), tuple(float(x) for x in pr))
                for p, t, q, pr in zip(self.paths, self.y_true, pred, self.probs)]

    def misclassified(self) -> list[Prediction]:
        """Wrong predictions, the most confident first (those are the ones worth a look)."""
        wrong = [p for p in self.predictions() if not p.correct]
        return sorted(wrong, key=lambda p: (-p.confidence, p.path))

    def table_rows(self, digits: int = 3) -> list[tuple[str, str, str, str, str]]:
        """The model card's table as text cells: (name, precision, recall, F1, support).

        One row per class, then ``accuracy``, ``macro avg`` and ``weighted avg``. A class that
        appears neither in the labels nor in the predictions shows dashes: it is not averaged.
        """
        m = self.metrics
        fmt = f"{{:.{digits}f}}"
        rows: list[tuple[str, str, str, str, str]] = []
        for i, (name, s) in enumerate(zip(self.class_names, m.per_class)):
            if i in m.averaged:
                rows.append((name, fmt.format(s.precision), fmt.format(s.recall), fmt.format(s.f1), str(s.support)))
            else:
                rows.append((name, "-", "-", "-", "0"))
        rows.append(("accuracy", "", "", fmt.format(m.accuracy), str(m.n)))
        for label, s in (("macro avg", m.macro), ("weighted avg", m.weighted)):
            rows.append((label, fmt.format(s.precision), fmt.format(s.recall), fmt.format(s.f1), str(s.support)))
        return rows

    def reference(self) -> dict[str, float] | None:
        """The model card's published numbers when this is the published model, else ``None``."""
        return MODEL_CARD_REFERENCE.get(str(self.model.get("model_id", "")))

    def to_dict(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        d: dict[str, Any] = {
            "format": "chaoyang-desktop evaluation",
            "format_version": 1,
            "created": self.created,
            "model": self.model,
            "data": {**self.data, "n_evaluated": self.n, "n_failed": len(self.failures)},
            "class_names": list(self.class_names),
        }
        d.update(self.metrics.to_dict())
        d["log_loss"] = self.log_loss
        d["calibration"] = self.calibration.to_dict()
        if self.calibration_fit is not None:
            d["temperature_scaling"] = self.calibration_fit.to_dict()
        d["n_misclassified"] = int((self.y_pred != self.y_true).sum())
        d["failed"] = [{"path": p, "error": e} for p, e in self.failures]
        ref = self.reference()
        if ref is not None:
            d["model_card_reference"] = {"dataset": "Chaoyang test set", **ref}
        return d

    def to_markdown(self, title: str | None = None) -> str:
        """The table, calibration and confusion matrix as GitHub-flavoured markdown."""
        lines = [f"# {title or 'Evaluation'}", ""]
        lines.append(f"- Model: `{self.model.get('model_id', '?')}` (weights sha256 {str(self.model.get('weights_sha256', '?'))[:12]}...)")
        lines.append(f"- Input: channel order {self.model.get('channel_order', '?')}, resize {self.model.get('resize', '?')}; "
                     f"{self.model.get('device', '?')}, {self.model.get('precision', '?')}")
        failed = f"; {len(self.failures)} could not be read and are left out" if self.failures else ""
        lines.append(f"- Data: `{self.data.get('source', '?')}` ({self.data.get('kind', '?')}), {self.n} images evaluated{failed}")
        lines += ["", "| class | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
        for name, p, r, f, s in self.table_rows():
            bold = name in ("accuracy", "macro avg", "weighted avg")
            lines.append(f"| {'**' + name + '**' if bold else name} | {p} | {r} | {f} | {s} |")
        lines.append("")
        if len(self.metrics.averaged) < len(self.class_names):
            lines += ["Classes shown with dashes occur neither in the labels nor in the predictions and are not averaged.", ""]
        cal = self.calibration
        lines.append(f"Expected calibration error ({len(cal.bins)} bins): {cal.ece:.3f} "
                     f"(largest bin gap {cal.max_gap:.3f}); log loss {self.log_loss:.3f}.")
        fit = self.calibration_fit
        if fit is not None:
            tf = fit.file
            base = f", relative to the T = {fit.base_temperature:.4g} it ran with" if fit.base_temperature != 1.0 else ""
            lines += ["", "## Temperature scaling", "",
                      f"Temperature **{tf.temperature:.4g}** fitted on these {tf.n} patches{base}. It changes no prediction, "
                      "only the confidences.", "",
                      "| | before | after |", "| --- | ---: | ---: |",
                      f"| expected calibration error | {fit.before.ece:.4f} | {fit.after.ece:.4f} |",
                      f"| largest bin gap | {fit.before.max_gap:.4f} | {fit.after.max_gap:.4f} |",
                      f"| log loss (NLL) | {tf.nll_before:.4f} | {tf.nll_after:.4f} |"]
            if fit.note:
                lines += ["", fit.note]
            lines += ["", "Fitted and measured on the same patches, the \"after\" numbers are optimistic; check them on "
                          "other labelled patches (`evaluate OTHER --calibration FILE`)."]
        ref = self.reference()
        if ref is not None:
            lines += ["", f"Model card, Chaoyang test set: accuracy {ref['accuracy']:.2f}, macro precision "
                          f"{ref['macro_precision']:.2f}, recall {ref['macro_recall']:.2f}, F1 {ref['macro_f1']:.2f}."]
        lines += ["", "## Confusion matrix", "", "Rows: true class; columns: predicted class.", ""]
        lines.append("| true \\ predicted | " + " | ".join(self.class_names) + " |")
        lines.append("| --- |" + " ---: |" * len(self.class_names))
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |")
        n_wrong = int((self.y_pred != self.y_true).sum())
        lines += ["", f"{n_wrong} of {self.n} images misclassified."]
        return "\n".join(lines) + "\n"


def build_report(
    class_names: Sequence[str],
    paths: Sequence[str],
    y_true: npt.ArrayLike,
    probs: npt.ArrayLike,
    *,
    failures: Sequence[tuple[str, str]] = (),
    model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    n_bins: int = ECE_BINS,
) -> EvaluationReport:
    """Compute every metric from labels and probabilities (no model needed)."""
    k = len(class_names)
    p = np.asarray(probs, dtype=np.float32).reshape(-1, k)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if p.shape[0] != t.size or t.size != len(paths):
        raise ValueError(f"paths ({len(paths)}), labels ({t.size}) and probabilities ({p.shape[0]}) differ in length.")
    pred = p.argmax(axis=1) if t.size else np.zeros(0, dtype=np.int64)
    return EvaluationReport(
        class_names=tuple(class_names),
        paths=tuple(str(x) for x in paths),
        y_true=t,
        probs=p,
        failures=tuple(failures),
        metrics=classification_metrics(t, pred, class_names),
        calibration=calibration(p, t, n_bins),
        log_loss=log_loss(p, t),
        model=dict(model or {}),
        data=dict(data or {}),
        created=_dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
    )


def model_info(classifier: Classifier) -> dict[str, Any]:
    """Provenance of a classifier for reports."""
    prof = classifier.profile
    return {
        "model_id": prof.model_id,
        "source": prof.source,
        "weights_sha256": prof.weights_sha256,
        "class_names": list(prof.class_names),
        "channel_order": prof.channel_order,
        "resize": prof.resize,
        "input_size": prof.input_size,
        "device": classifier.device_description,
        "precision": classifier.precision,
        "batch_size": classifier.batch_size,
        # What shaped the probabilities beyond the weights: a fit on them must know both.
        "temperature": float(getattr(classifier, "temperature", 1.0)),
        "tta": bool(getattr(classifier, "tta", False)),
    }


def fit_report_temperature(report: EvaluationReport, classifier: Classifier | None = None) -> tuple[TemperatureFile, EvaluationReport]:
    """Fit a temperature on an evaluation's own probabilities and labels.

    Args:
        report: An evaluation (of at least :data:`~chaoyang_desktop.core.learn.calibration.MIN_LABELLED`
            patches of two classes or more).
        classifier: The classifier that made it; its identity and current temperature are used.
            Without it they come from ``report.model`` (written by :func:`model_info`), so the
            GUI can fit on a report alone.

    Returns:
        ``(file, fitted)``: the :class:`TemperatureFile` to save (its temperature composes with
        one the classifier already had: ``T0 * T_rel``), and a copy of ``report`` whose
        ``calibration_fit`` holds the ECE and reliability bins before and after.

    Raises:
        SettingsError: Too few patches, one class, an optimum at the edge of the allowed range,
            or a report that does not say which weights made it.
    """
    if classifier is not None:
        model_id = classifier.profile.model_id
        sha = classifier.profile.weights_sha256
        base = float(classifier.temperature)
        tta = bool(getattr(classifier, "tta", False))
    else:
        model_id = str(report.model.get("model_id", ""))
        sha = str(report.model.get("weights_sha256", ""))
        base = float(report.model.get("temperature", 1.0))
        tta = bool(report.model.get("tta", False))
    if not sha:
        raise SettingsError("This evaluation does not record the model's weights, so a temperature fitted on it could "
                            "not be checked against a model; evaluate again with this version.")
    fit = fit_temperature(log_probabilities(report.probs), report.y_true, base_temperature=base)
    n_bins = len(report.calibration.bins)
    after = calibration(apply_temperature(report.probs, fit.relative), report.y_true, n_bins)
    note = ("The evaluation averaged test-time-augmented views; the temperature applies to each view's logits before "
            "the average, so calibrated results differ slightly from the \"after\" numbers here." if tta else "")
    file = TemperatureFile(
        temperature=fit.temperature, model_id=model_id, weights_sha256=sha,
        fitted_on=str(report.data.get("source", "")), n=fit.n,
        nll_before=fit.nll_before, nll_after=fit.nll_after,
        ece_before=report.calibration.ece, ece_after=after.ece,
        created=_dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
    )
    cfit = CalibrationFit(file, base, report.calibration, after, note)
    return file, dataclasses.replace(report, calibration_fit=cfit)


def _check_classes(classifier: Classifier, dataset: LabelledDataset) -> None:
    if tuple(dataset.class_names) != tuple(classifier.profile.class_names):
        raise DatasetError(
            f"The data was labelled for the classes {', '.join(dataset.class_names)}, but the model has "
            f"{', '.join(classifier.profile.class_names)}; load the data with the model's class names."
        )


def _decoded_batches(paths: Sequence[Path], batch: int, workers: int) -> Iterator[list[tuple[int, np.ndarray | str]]]:
    """``[(index, pixels or error), ...]`` per batch, decoded ahead in threads, in order."""
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        # map() keeps order and decodes ahead of the consumer; chunking bounds the memory.
        for start in range(0, len(paths), batch * 4):
            chunk = list(paths[start : start + batch * 4])
            decoded = list(pool.map(decode_or_error, chunk))
            for b in range(0, len(chunk), batch):
                yield [(start + b + j, d) for j, d in enumerate(decoded[b : b + batch])]


def predict_dataset(
    classifiers: Sequence[Classifier],
    dataset: LabelledDataset,
    *,
    batch_size: int | None = None,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[list[int], list[npt.NDArray[np.float32]], list[tuple[str, str]]]:
    """Classify every image once per classifier, decoding each image only once.

    Returns:
        ``(kept, probs, failures)``: dataset indices that could be read, one (len(kept), K)
        array per classifier, and ``(path, reason)`` for the others.

    Raises:
        CancelledError: when ``cancel`` is set (checked between batches).
    """
    if not classifiers:
        raise SettingsError("predict_dataset needs at least one classifier.")
    batch = batch_size or classifiers[0].batch_size
    if batch < 1:
        raise SettingsError(f"The batch size must be at least 1 (got {batch}).")
    paths = dataset.paths
    kept: list[int] = []
    parts: list[list[np.ndarray]] = [[] for _ in classifiers]
    failures: list[tuple[str, str]] = []
    done = 0
    for part in _decoded_batches(paths, batch, workers):
        if cancel is not None and cancel.is_set():
            raise CancelledError("Evaluation cancelled.")
        good = [(i, d) for i, d in part if isinstance(d, np.ndarray)]
        failures.extend((str(paths[i]), d) for i, d in part if isinstance(d, str))
        if good:
            images = [d for _, d in good]
            for c, clf in enumerate(classifiers):
                parts[c].append(clf.predict(images))
            kept.extend(i for i, _ in good)
        done += len(part)
        if on_progress is not None:
            on_progress(done, len(paths))
    k = len(dataset.class_names)
    probs = [np.concatenate(p).astype(np.float32) if p else np.zeros((0, k), np.float32) for p in parts]
    return kept, probs, failures


def _report_for(classifier: Classifier, dataset: LabelledDataset, kept: list[int], probs: np.ndarray,
                failures: list[tuple[str, str]], n_bins: int) -> EvaluationReport:
    if not kept:
        raise DatasetError(f"None of the {len(dataset)} images could be read (first problem: {failures[0][1] if failures else '?'}).")
    labels = dataset.labels[kept]
    return build_report(dataset.class_names, [str(dataset.items[i].path) for i in kept], labels, probs,
                        failures=failures, model=model_info(classifier), data=dataset.summary(), n_bins=n_bins)


def evaluate_dataset(
    classifier: Classifier,
    dataset: LabelledDataset,
    *,
    batch_size: int | None = None,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_progress: ProgressFn | None = None,
    n_bins: int = ECE_BINS,
) -> EvaluationReport:
    """Classify every labelled image and compute the report.

    Args:
        classifier: A loaded model; its profile's channel order and resize are used.
        dataset: Images labelled with the classifier's classes
            (``load_labelled_dataset(data, classifier.profile.class_names, ...)``).
        batch_size: Images per forward pass (default: the classifier's).
        workers: Decoding threads.
        cancel: Set to stop between batches (raises :class:`CancelledError`).
        on_progress: ``on_progress(done, total)`` after each batch.
        n_bins: Bins of the expected calibration error.

    Raises:
        DatasetError: The dataset's classes are not the model's, or no image could be read.
    """
    _check_classes(classifier, dataset)
    kept, probs, failures = predict_dataset([classifier], dataset, batch_size=batch_size, workers=workers,
                                            cancel=cancel, on_progress=on_progress)
    return _report_for(classifier, dataset, kept, probs[0], failures, n_bins)


# eq=False: numpy fields make field-wise equality ambiguous; compare the numbers instead.
@dataclass(frozen=True, eq=False)
class ChannelOrderComparison:
    """The same images evaluated with each channel order, and which one fits.

    Attributes:
        reports: Channel order -> its report (same images in both).
        best: The order with the higher accuracy (lower log loss on a tie).
        p_value: Exact McNemar p-value for the accuracy difference.
        conclusive: ``p_value`` is below :data:`SIGNIFICANCE`.
        only_right: Channel order -> images only that order classified correctly.
    """

    reports: dict[str, EvaluationReport]
    best: str
    p_value: float
    conclusive: bool
    only_right: dict[str, int]

    @property
    def verdict(self) -> str:
        a = self.best
        b = next(o for o in self.reports if o != a)
        ra, rb = self.reports[a], self.reports[b]
        nums = (f"accuracy {ra.accuracy:.3f} vs {rb.accuracy:.3f}, macro F1 {ra.metrics.macro.f1:.3f} vs "
                f"{rb.metrics.macro.f1:.3f}, log loss {ra.log_loss:.3f} vs {rb.log_loss:.3f}; "
                f"{self.only_right[a]} images right only with {a}, {self.only_right[b]} only with {b}; "
                f"McNemar p = {self.p_value:.2g}, {ra.n} images")
        if self.conclusive:
            return f"{a.upper()} input fits this model on this data better than {b.upper()} ({nums}). Use --channel-order {a}."
        return (f"{a.upper()} and {b.upper()} are not clearly different on these images ({nums}). {a.upper()} is "
                f"ahead; evaluate more labelled images to decide.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "conclusive": self.conclusive,
            "mcnemar_p": self.p_value,
            "only_right": self.only_right,
            "verdict": self.verdict,
            "orders": {
                o: {"accuracy": r.accuracy, "macro_precision": r.metrics.macro.precision, "macro_recall": r.metrics.macro.recall,
                    "macro_f1": r.metrics.macro.f1, "log_loss": r.log_loss, "ece": r.calibration.ece, "n": r.n}
                for o, r in self.reports.items()
            },
        }

    def to_markdown(self) -> str:
        lines = ["# Channel order comparison", "", "| channel order | accuracy | macro precision | macro recall | macro F1 | ECE | log loss |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for o, r in self.reports.items():
            m = r.metrics.macro
            name = f"**{o}**" if o == self.best else o
            lines.append(f"| {name} | {r.accuracy:.3f} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | "
                         f"{r.calibration.ece:.3f} | {r.log_loss:.3f} |")
        lines += ["", self.verdict, ""]
        return "\n".join(lines)


def compare_channel_orders(
    classifier: Classifier,
    dataset: LabelledDataset,
    *,
    orders: Sequence[str] = ("bgr", "rgb"),
    batch_size: int | None = None,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_progress: ProgressFn | None = None,
    n_bins: int = ECE_BINS,
) -> ChannelOrderComparison:
    """Evaluate the same images with BGR and with RGB input, sharing the loaded model."""
    if len(orders) != 2 or orders[0] == orders[1]:
        raise SettingsError("Compare exactly two different channel orders.")
    _check_classes(classifier, dataset)
    variants = []
    for order in orders:
        # A shallow copy shares the placed (possibly converted) model and its lock; only the
        # profile, hence the preprocessing, differs.
        variant = copy.copy(classifier)
        variant.profile = classifier.profile.with_overrides(channel_order=order)
        variants.append(variant)
    kept, probs, failures = predict_dataset(variants, dataset, batch_size=batch_size, workers=workers,
                                            cancel=cancel, on_progress=on_progress)
    reports = {o: _report_for(v, dataset, kept, p, failures, n_bins) for o, v, p in zip(orders, variants, probs)}
    a, b = orders
    right = {o: reports[o].y_pred == reports[o].y_true for o in orders}
    only = {a: int((right[a] & ~right[b]).sum()), b: int((right[b] & ~right[a]).sum())}
    ra, rb = reports[a], reports[b]
    if ra.accuracy != rb.accuracy:
        best = a if ra.accuracy > rb.accuracy else b
    else:
        best = a if ra.log_loss <= rb.log_loss else b
    p = mcnemar_exact_p(only[a], only[b])
    return ChannelOrderComparison(reports, best, p, p < SIGNIFICANCE, only)
