"""Classification and calibration metrics in plain numpy, with scikit-learn's conventions.

The numbers match ``sklearn.metrics.classification_report`` (the model card's table) without
depending on scikit-learn:

- A ratio whose denominator is zero is 0 (``zero_division=0``): a class never predicted has
  precision 0, a class absent from the labels has recall 0.
- The macro and weighted averages run over the classes that occur in the labels or in the
  predictions (sklearn's ``unique_labels``); a model class that appears in neither does not
  drag the average down, so evaluating on data that lacks a class stays comparable.
- The confusion matrix has true classes in rows and predicted classes in columns.

Calibration uses the expected calibration error of Guo et al. (2017): confidences (the top
probability) fall into equal-width bins ``(lo, hi]`` over [0, 1], and the error is the
sample-weighted mean of ``|accuracy - mean confidence|`` over the bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Bins of the expected calibration error and the reliability diagram (Guo et al. use 15).
ECE_BINS = 15


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1 and support of one class or one average."""

    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}


# eq=False: numpy fields make field-wise equality ambiguous; compare the numbers instead.
@dataclass(frozen=True, eq=False)
class ClassificationMetrics:
    """The model card's table: per-class scores, averages, accuracy and the confusion matrix.

    Attributes:
        class_names: Class names in index order (rows/columns of ``confusion``).
        confusion: (K, K) int64 counts; row = true class, column = predicted class.
        per_class: One :class:`ClassScores` per class, in index order.
        macro: Unweighted mean over ``averaged``; support is the number of samples.
        weighted: Mean over ``averaged`` weighted by support.
        accuracy: Fraction of samples whose prediction equals the label.
        averaged: Indices of the classes the averages run over (present in labels or predictions).
    """

    class_names: tuple[str, ...]
    confusion: npt.NDArray[np.int64]
    per_class: tuple[ClassScores, ...]
    macro: ClassScores
    weighted: ClassScores
    accuracy: float
    averaged: tuple[int, ...]

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "per_class": {name: s.to_dict() for name, s in zip(self.class_names, self.per_class)},
            "macro_avg": self.macro.to_dict(),
            "weighted_avg": self.weighted.to_dict(),
            "averaged_classes": [self.class_names[i] for i in self.averaged],
            "confusion_matrix": self.confusion.tolist(),
            "confusion_matrix_axes": "rows: true class, columns: predicted class (class_names order)",
        }


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin ``(lower, upper]`` of the reliability diagram."""

    lower: float
    upper: float
    count: int
    accuracy: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "count": self.count,
                "accuracy": self.accuracy, "confidence": self.confidence}


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error and the bins it was computed from.

    Attributes:
        ece: Expected calibration error in [0, 1].
        max_gap: Maximum calibration error: the largest ``|accuracy - confidence|`` of a non-empty bin.
        bins: All bins in order, empty ones included (count 0, accuracy and confidence 0).
    """

    ece: float
    max_gap: float
    bins: tuple[ReliabilityBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ece": self.ece, "mce": self.max_gap, "n_bins": len(self.bins), "bins": [b.to_dict() for b in self.bins]}


def _as_labels(values: npt.ArrayLike, num_classes: int, what: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of class indices (got shape {arr.shape}).")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must hold integer class indices (got {arr.dtype}).")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= num_classes):
        raise ValueError(f"{what} holds a class index outside 0..{num_classes - 1}.")
    return out


def confusion_matrix(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, num_classes: int) -> npt.NDArray[np.int64]:
    """(K, K) counts with true classes in rows and predicted classes in columns."""
    t = _as_labels(y_true, num_classes, "y_true")
    p = _as_labels(y_pred, num_classes, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} and {p.size}).")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _safe_div(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def scores_from_confusion(cm: npt.NDArray[np.int64], class_names: Sequence[str]) -> ClassificationMetrics:
    """Per-class and averaged scores from a confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm, dtype=np.int64)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"The confusion matrix must be {k} x {k} for {k} classes (got {cm.shape}).")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted.astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2.0 * precision * recall, precision + recall)
    per_class = tuple(ClassScores(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i])) for i in range(k))
    averaged = tuple(int(i) for i in np.flatnonzero((support > 0) | (predicted > 0)))
    n = int(cm.sum())
    idx = np.array(averaged, dtype=np.int64)
    if idx.size:
        macro = ClassScores(float(precision[idx].mean()), float(recall[idx].mean()), float(f1[idx].mean()), n)
        w = support[idx].astype(np.float64)
        wsum = float(w.sum())
        weighted = ClassScores(
            float((precision[idx] * w).sum() / wsum) if wsum else 0.0,
            float((recall[idx] * w).sum() / wsum) if wsum else 0.0,
            float((f1[idx] * w).sum() / wsum) if wsum else 0.0,
            n,
        )
    else:
        macro = weighted = ClassScores(0.0, 0.0, 0.0, 0)
    accuracy = float(tp.sum() / n) if n else 0.0
    return ClassificationMetrics(tuple(class_names), cm, per_class, macro, weighted, accuracy, averaged)


def classification_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, class_names: Sequence[str]) -> ClassificationMetrics:
    """The model card's table for integer labels and predictions (indices into ``class_names``)."""
    return scores_from_confusion(confusion_matrix(y_true, y_pred, len(class_names)), class_names)


def calibration(probs: npt.ArrayLike, y_true: npt.ArrayLike, n_bins: int = ECE_BINS) -> Calibration:
    """Expected calibration error over ``n_bins`` equal-width confidence bins ``(lo, hi]``.

    Args:
        probs: (N, K) class probabilities.
        y_true: N integer labels.
        n_bins: Number of bins over [0, 1].
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K) (got shape {p.shape}).")
    t = _as_labels(y_true, p.shape[1], "y_true")
    if t.size != p.shape[0]:
        raise ValueError(f"probs has {p.shape[0]} rows but there are {t.size} labels.")
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1.")
    conf = p.max(axis=1) if p.size else np.zeros(0)
    correct = (p.argmax(axis=1) == t).astype(np.float64) if p.size else np.zeros(0)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin b holds lo < c <= hi; a confidence of exactly 0 (impossible for a softmax) joins bin 0.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins: list[ReliabilityBin] = []
    ece = 0.0
    max_gap = 0.0
    n = conf.size
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        if count:
            acc = float(correct[mask].mean())
            mean_conf = float(conf[mask].mean())
            gap = abs(acc - mean_conf)
            ece += count / n * gap
            max_gap = max(max_gap, gap)
        else:
            acc = mean_conf = 0.0
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, acc, mean_conf))
    return Calibration(float(ece), float(max_gap), tuple(bins))


def log_loss(probs: npt.ArrayLike, y_true: npt.ArrayLike, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at ``eps``)."""
    p = np.asarray(probs, dtype=np.float64)
    t = _as_labels(y_true, p.shape[1] if p.ndim == 2 else 0, "y_true")
    if t.size == 0:
        return 0.0
    return float(-np.log(np.clip(p[np.arange(t.size), t], eps, 1.0)).mean())


def mcnemar_exact_p(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value: do two classifiers of the same images differ in accuracy?

    Args:
        only_a_right: Images classifier A gets right and B wrong.
        only_b_right: Images B gets right and A wrong.
    """
    n = only_a_right + only_b_right
    if n == 0:
        return 1.0
    k = min(only_a_right, only_b_right)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return float(min(1.0, 2.0 * tail))
