"""cohort.csv: one row per slide with status and composition, numbers as in summary.json."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.export.cohort_csv import CohortEntry, summary_from_document, write_cohort_csv
from chaoyang_desktop.core.analysis.result_files import summary_document
from tests.export.helpers import CLASS_NAMES, build_result


def test_rows_for_analysed_skipped_and_failed_slides(tmp_path: Path) -> None:
    result = build_result(with_qc=True)
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
    assert list(rows[0])[:16] == ["slide", "output", "status", "error", "input_check", "input_findings",
                                  "tiles_total", "tiles_done", "tiles_failed", "tiles_qc", "qc_glass", "qc_pen",
                                  "qc_blur", "qc_dark", "analysed_area_mm2", "unsure_percent"]
    assert [k for k in rows[0] if k.endswith("_percent")] == ["unsure_percent"] + [f"{n}_percent" for n in CLASS_NAMES]
    for row in rows[:2]:
        assert int(row["tiles_done"]) == summary["tiles_done"] and int(row["tiles_failed"]) == 1
        assert float(row["analysed_area_mm2"]) == summary["analysed_area_mm2"]
        assert float(row["unsure_percent"]) == summary["uncertainty"]["unsure_percent"]
        assert (row["tiles_qc"], row["qc_pen"], row["qc_blur"], row["qc_glass"]) == ("1", "1", "1", "0")
        for c in summary["classes"]:
            assert float(row[f"{c['name']}_area_mm2"]) == c["area_mm2"]
            assert float(row[f"{c['name']}_percent"]) == c["percent"]
    assert rows[0] == {**rows[1], "slide": "a.svs", "output": "out/a", "status": "ok"}
    assert rows[2]["error"] == "not a slide" and rows[2]["tiles_done"] == "" and rows[2]["Normal_percent"] == ""


def test_input_check_columns_for_refused_overridden_and_empty_slides(result: AnalysisResult, tmp_path: Path) -> None:
    refused = {"status": "out of domain", "findings": [{"kind": "fluorescence", "message": "The background is dark."},
                                                       {"kind": "resolution", "message": "Too coarse."}]}
    overridden = {**refused, "status": "analysed anyway", "overridden": True}
    entries = [
        CohortEntry("dapi.ndpi", "", "out of domain", "The background is dark. Too coarse.", domain=refused),
        CohortEntry("dapi2.ndpi", "out/dapi2", "ok", summary=result.summary(), domain=overridden),
        CohortEntry("tiny.png", "", "no tiles", "The image is 1 x 1 px."),
        CohortEntry("cmu.svs", "out/cmu", "ok", summary=result.summary(), domain={"status": "passed", "findings": []}),
    ]
    write_cohort_csv(entries, tmp_path / "cohort.csv")
    rows = list(csv.DictReader((tmp_path / "cohort.csv").open(encoding="utf-8")))
    assert [(r["status"], r["input_check"]) for r in rows] == [
        ("out of domain", "out of domain"), ("ok", "analysed anyway"), ("no tiles", ""), ("ok", "passed")]
    assert rows[0]["input_findings"] == "The background is dark. Too coarse." == rows[1]["input_findings"]
    assert rows[0]["tiles_done"] == "" and rows[2]["tiles_done"] == "" and rows[1]["tiles_done"] != ""


def test_bad_status_and_unwritable_target(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        CohortEntry("a", "", "done")
    with pytest.raises(OutputError):
        write_cohort_csv([], tmp_path / "missing" / "cohort.csv")


def test_a_cohort_runs_reports_become_rows() -> None:
    from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE, SLIDE_OUT_OF_DOMAIN, SlideReport
    from chaoyang_desktop.export.cohort_csv import report_entry

    summary = {"classes": []}
    done = report_entry(SlideReport("a.svs", SLIDE_DONE, summary=summary), "a.svs", "out/a")
    assert (done.status, done.output, done.summary, done.error) == ("ok", "out/a", summary, "")
    refused = SlideReport("b.svs", SLIDE_OUT_OF_DOMAIN, "Fluorescence.", domain={"status": "out of domain"})
    assert report_entry(refused, "b.svs").error == "Fluorescence."
    row = report_entry(refused, "b.svs", error="Fluorescence. Run again with --allow-out-of-domain.")
    assert (row.status, row.error, row.domain) == ("out of domain", "Fluorescence. Run again with --allow-out-of-domain.",
                                                   {"status": "out of domain"})
    assert report_entry(None, "c.svs").status == "not analysed"
