"""The patch results table (``classify`` and the gallery's exports): uncertainty and QC columns.

Hand-made records, read back with the standard csv and json modules: the old columns keep
their names and places, the new ones follow, and a patch left out by quality control has no
numbers a reader could mistake for a prediction.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from chaoyang_desktop.core.analysis.patches import PatchResult
from chaoyang_desktop.core.slide.tile_qc import QC_GLASS, QC_PEN, describe
from chaoyang_desktop.export.patch_results import format_patch_results
from tests.conftest import REPO_ROOT

NAMES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
OLD_COLUMNS = ["path", "label", "confidence", "prob_Normal", "prob_Serrated", "prob_Adenocarcinoma",
               "prob_Adenoma", "error"]


def _records(spread: bool) -> list[PatchResult]:
    return [
        PatchResult("a/sure.png", (0.85, 0.05, 0.05, 0.05), NAMES, entropy=0.4, margin=0.8,
                    tta_spread=0.01 if spread else None),
        PatchResult("a/unsure.png", (0.40, 0.35, 0.15, 0.10), NAMES, entropy=0.9, margin=0.05,
                    tta_spread=0.123456789 if spread else None),
        PatchResult("a/back.png", class_names=NAMES, qc=QC_GLASS | QC_PEN),
        PatchResult("a/bad.png", error="cannot decode"),
    ]


def test_csv_keeps_the_old_columns_first_and_adds_uncertainty_and_qc() -> None:
    text = format_patch_results(_records(spread=True), NAMES, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [*OLD_COLUMNS, "entropy", "margin", "tta_spread", "qc"]
    table = [dict(zip(rows[0], r)) for r in rows[1:]]
    sure, unsure, back, bad = table
    assert sure["label"] == "Normal" and sure["confidence"] == "0.850000" and sure["prob_Adenoma"] == "0.050000"
    assert (sure["entropy"], sure["margin"], sure["tta_spread"], sure["qc"]) == ("0.400000", "0.800000", "0.010000", "")
    assert unsure["tta_spread"] == "0.123457"
    # Left out by QC: no label, no probabilities, not an error, and the reasons by their short names.
    assert back["qc"] == "glass;pen"
    assert all(back[c] == "" for c in rows[0] if c not in ("path", "qc"))
    assert bad["error"] == "cannot decode" and bad["qc"] == "" and bad["label"] == ""


def test_csv_without_tta_leaves_the_spread_empty() -> None:
    rows = list(csv.DictReader(io.StringIO(format_patch_results(_records(spread=False), NAMES, "csv"))))
    assert [r["tta_spread"] for r in rows] == ["", "", "", ""]
    assert rows[0]["entropy"] == "0.400000"


def test_json_has_nulls_where_qc_left_a_patch_out() -> None:
    records = json.loads(format_patch_results(_records(spread=False), NAMES, "json"))
    sure, unsure, back, bad = records
    assert list(sure) == ["path", "label", "confidence", "probabilities", "entropy", "margin", "tta_spread", "qc"]
    assert sure["probabilities"] == {"Normal": 0.85, "Serrated": 0.05, "Adenocarcinoma": 0.05, "Adenoma": 0.05}
    assert sure["entropy"] == 0.4 and sure["margin"] == 0.8 and sure["tta_spread"] is None and sure["qc"] == ""
    assert back == {"path": "a/back.png", "label": None, "confidence": None, "probabilities": None,
                    "entropy": None, "margin": None, "tta_spread": None, "qc": "glass;pen"}
    assert bad == {"path": "a/bad.png", "error": "cannot decode"}


def test_table_says_why_a_patch_was_not_classified() -> None:
    lines = format_patch_results(_records(spread=False), NAMES, "table").splitlines()
    header = lines[0].split()
    assert header[:3] == ["path", "label", "conf"] and header[-2:] == ["entropy", "margin"]
    assert "spread" not in header
    assert lines[1].split()[-2:] == ["0.400", "0.800"]
    words = describe(QC_GLASS | QC_PEN)
    assert words.startswith("glass or background, pen")
    assert lines[3].split(None, 1)[1] == f"not classified: {words}"
    assert lines[4].split(None, 1)[1] == "ERROR: cannot decode"
    with_tta = format_patch_results(_records(spread=True), NAMES, "table").splitlines()
    assert with_tta[0].split()[-3:] == ["entropy", "margin", "spread"]
    assert with_tta[2].split()[-3:] == ["0.900", "0.050", "0.123"]


def test_formatting_needs_neither_qt_nor_torch() -> None:
    code = ("import sys\nimport chaoyang_desktop.export.patch_results\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'shiboken6'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
