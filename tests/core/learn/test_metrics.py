"""Metrics checked against numbers worked out by hand (scikit-learn's conventions, ECE of Guo et al.)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chaoyang_desktop.core.learn.evaluate import build_report
from chaoyang_desktop.core.learn.metrics import (
    calibration,
    classification_metrics,
    confusion_matrix,
    log_loss,
    mcnemar_exact_p,
)

NAMES = ("A", "B", "C")
# Ten patches of three classes. By hand:
#   confusion (rows true, columns predicted): A [2 1 1], B [1 2 0], C [0 1 2]
#   true positives 2, 2, 2; predicted 3, 4, 3; support 4, 3, 3
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
# Rows whose arg-max is Y_PRED, with top probabilities chosen away from the 1/15 bin edges.
PROBS = [
    [0.90, 0.05, 0.05],  # A->A 0.90 right   bin (0.867, 0.933]
    [0.70, 0.20, 0.10],  # A->A 0.70 right   bin (0.667, 0.733]
    [0.30, 0.50, 0.20],  # A->B 0.50 wrong   bin (0.467, 0.533]
    [0.03, 0.02, 0.95],  # A->C 0.95 wrong   bin (0.933, 1]
    [0.05, 0.90, 0.05],  # B->B 0.90 right   bin (0.867, 0.933]
    [0.25, 0.55, 0.20],  # B->B 0.55 right   bin (0.533, 0.6]
    [0.70, 0.20, 0.10],  # B->A 0.70 wrong   bin (0.667, 0.733]
    [0.10, 0.05, 0.85],  # C->C 0.85 right   bin (0.8, 0.867]
    [0.25, 0.25, 0.50],  # C->C 0.50 right   bin (0.467, 0.533]
    [0.33, 0.42, 0.25],  # C->B 0.42 wrong   bin (0.4, 0.467]
]


def test_confusion_matrix_by_hand() -> None:
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert cm.dtype == np.int64


def test_precision_recall_f1_accuracy_by_hand() -> None:
    m = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    precision = [2 / 3, 2 / 4, 2 / 3]
    recall = [2 / 4, 2 / 3, 2 / 3]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert f1 == pytest.approx([4 / 7, 4 / 7, 2 / 3], rel=1e-15)
    for s, p, r, f, n in zip(m.per_class, precision, recall, f1, [4, 3, 3]):
        assert (s.precision, s.recall, s.f1, s.support) == (pytest.approx(p, rel=1e-15), pytest.approx(r, rel=1e-15),
                                                           pytest.approx(f, rel=1e-15), n)
    assert m.accuracy == 6 / 10
    assert m.macro.precision == pytest.approx(11 / 18, rel=1e-15)
    assert m.macro.recall == pytest.approx(11 / 18, rel=1e-15)
    assert m.macro.f1 == pytest.approx(38 / 63, rel=1e-15)
    assert m.macro.support == 10
    assert m.weighted.precision == pytest.approx(37 / 60, rel=1e-15)
    assert m.weighted.recall == pytest.approx(6 / 10, rel=1e-15)  # weighted recall is accuracy
    assert m.weighted.f1 == pytest.approx(6 / 10, rel=1e-15)
    assert m.averaged == (0, 1, 2)


def test_zero_division_is_zero_and_absent_classes_are_not_averaged() -> None:
    # Class 1 is predicted but never true (recall 0/0 -> 0); class 2 occurs nowhere.
    m = classification_metrics([0, 0], [0, 1], ("x", "y", "z"))
    assert [(s.precision, s.recall, s.f1, s.support) for s in m.per_class] == [
        (1.0, 0.5, pytest.approx(2 / 3, rel=1e-15), 2), (0.0, 0.0, 0.0, 0), (0.0, 0.0, 0.0, 0)]
    assert m.averaged == (0, 1)  # as sklearn's unique_labels(y_true, y_pred)
    assert (m.macro.precision, m.macro.recall) == (0.5, 0.25)
    assert m.macro.f1 == pytest.approx(1 / 3, rel=1e-15)
    assert m.accuracy == 0.5


def test_expected_calibration_error_by_hand() -> None:
    cal = calibration(PROBS, Y_TRUE)
    # bin: (count, accuracy, mean confidence) -> |gap| weighted by count / 10
    #  6 (0.4, 0.467]:   1, 0,   0.42 -> 0.42
    #  7 (0.467, 0.533]: 2, 1/2, 0.50 -> 0
    #  8 (0.533, 0.6]:   1, 1,   0.55 -> 0.45
    # 10 (0.667, 0.733]: 2, 1/2, 0.70 -> 0.20
    # 12 (0.8, 0.867]:   1, 1,   0.85 -> 0.15
    # 13 (0.867, 0.933]: 2, 1,   0.90 -> 0.10
    # 14 (0.933, 1]:     1, 0,   0.95 -> 0.95
    expected = (1 * 0.42 + 2 * 0 + 1 * 0.45 + 2 * 0.20 + 1 * 0.15 + 2 * 0.10 + 1 * 0.95) / 10
    assert expected == pytest.approx(0.257, rel=1e-12)
    assert cal.ece == pytest.approx(expected, rel=1e-12)
    assert cal.max_gap == pytest.approx(0.95, rel=1e-12)
    assert len(cal.bins) == 15
    counts = {i: b.count for i, b in enumerate(cal.bins) if b.count}
    assert counts == {6: 1, 7: 2, 8: 1, 10: 2, 12: 1, 13: 2, 14: 1}
    assert cal.bins[10].accuracy == 0.5 and cal.bins[10].confidence == pytest.approx(0.7, rel=1e-12)
    assert cal.bins[0].lower == 0.0 and cal.bins[-1].upper == 1.0


def test_ece_bins_are_closed_on_the_right() -> None:
    # A confidence exactly on an edge (0.6 = 9/15) belongs to the bin below it.
    cal = calibration([[0.6, 0.4], [1.0, 0.0]], [0, 0])
    assert [i for i, b in enumerate(cal.bins) if b.count] == [8, 14]
    assert cal.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.0, rel=1e-12)


def test_log_loss_and_mcnemar_by_hand() -> None:
    p_true = [0.90, 0.70, 0.30, 0.03, 0.90, 0.55, 0.20, 0.85, 0.50, 0.25]
    assert log_loss(PROBS, Y_TRUE) == pytest.approx(-sum(math.log(p) for p in p_true) / 10, rel=1e-12)
    # 1 discordant pair one way, 4 the other: p = 2 * (C(5,0) + C(5,1)) / 2^5 = 0.375
    assert mcnemar_exact_p(1, 4) == 0.375
    assert mcnemar_exact_p(4, 1) == 0.375
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024, rel=1e-12)


def test_report_from_fixed_example() -> None:
    paths = [f"p{i}.png" for i in range(10)]
    report = build_report(NAMES, paths, Y_TRUE, PROBS, model={"model_id": "m"}, data={"source": "d", "kind": "folders"})
    assert report.y_pred.tolist() == Y_PRED
    assert report.accuracy == 0.6
    assert report.calibration.ece == pytest.approx(0.257, rel=1e-6)  # probabilities are stored as float32
    wrong = report.misclassified()
    assert [w.path for w in wrong] == ["p3.png", "p6.png", "p2.png", "p9.png"]  # most confident first
    assert [NAMES[w.predicted_index] for w in wrong] == ["C", "A", "B", "B"]
    rows = report.table_rows()
    assert rows[0] == ("A", "0.667", "0.500", "0.571", "4")
    assert rows[3] == ("accuracy", "", "", "0.600", "10")
    assert rows[4] == ("macro avg", "0.611", "0.611", "0.603", "10")
    d = report.to_dict()
    assert d["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert d["per_class"]["B"]["precision"] == 0.5 and d["n_misclassified"] == 4
    assert d["macro_avg"]["f1"] == pytest.approx(38 / 63, rel=1e-15)
    md = report.to_markdown()
    assert "| **macro avg** | 0.611 | 0.611 | 0.603 | 10 |" in md
    assert "| A | 2 | 1 | 1 |" in md


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError):
        calibration([[0.5, 0.5]], [0, 1])
