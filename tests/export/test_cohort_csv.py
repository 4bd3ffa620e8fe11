"""cohort.csv: one row per slide with status and composition, numbers as in summary.json."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.results import AnalysisResult
from chaoyang_desktop.export.cohort_csv import CohortEntry, summary_from_document, write_cohort_csv
from chaoyang_desktop.export.npz_summary import summary_document
from tests.export.helpers import CLASS_NAMES


def test_rows_for_analysed_skipped_and_failed_slides(result: AnalysisResult, tmp_path: Path) -> None:
    summary = result.summary()
    saved = summary_from_document(summary_document(result))
    entries = [
        CohortEntry("a.svs", "out/a", "ok", summary=summary),
        CohortEntry("b.svs", "out/b", "skipped", summary=saved),
        CohortEntry("c.svs", "", "failed", "not a slide"),
    ]
    write_cohort_csv(entries, tmp_path / "cohort.csv")
    rows = list(csv.DictReader((tmp_path / "cohort.csv").open(encoding="utf-8")))
    assert [r["status"] for r in rows] == ["ok", "skipped", "failed"]
    assert list(rows[0])[:8] == ["slide", "output", "status", "error", "tiles_total", "tiles_done", "tiles_failed",
                                 "analysed_area_mm2"]
    assert [k for k in rows[0] if k.endswith("_percent")] == [f"{n}_percent" for n in CLASS_NAMES]
    for row in rows[:2]:
        assert int(row["tiles_done"]) == summary["tiles_done"] and int(row["tiles_failed"]) == 1
        assert float(row["analysed_area_mm2"]) == summary["analysed_area_mm2"]
        for c in summary["classes"]:
            assert float(row[f"{c['name']}_area_mm2"]) == c["area_mm2"]
            assert float(row[f"{c['name']}_percent"]) == c["percent"]
    assert rows[0] == {**rows[1], "slide": "a.svs", "output": "out/a", "status": "ok"}
    assert rows[2]["error"] == "not a slide" and rows[2]["tiles_done"] == "" and rows[2]["Normal_percent"] == ""


def test_bad_status_and_unwritable_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        CohortEntry("a", "", "done")
    with pytest.raises(OutputError):
        write_cohort_csv([], tmp_path / "missing" / "cohort.csv")
