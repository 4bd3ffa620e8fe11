"""``cohort.csv``: one row per slide of a batch, with its status and class composition.

Columns::

    slide,output,status,error,input_check,input_findings,tiles_total,tiles_done,tiles_failed,
    tiles_qc,qc_glass,qc_pen,qc_blur,qc_dark,analysed_area_mm2,unsure_percent,
    <class>_percent,<class>_area_mm2,...

``tiles_qc`` counts the tiles quality control left out, and ``qc_<reason>`` those per reason (a
tile with two reasons counts under both). ``unsure_percent`` is the share of the analysed area
whose top two classes are within ``uncertainty.margin_threshold`` (``summary.json``).

``status`` is ``ok`` (analysed in this run), ``skipped`` (finished in an earlier run; its numbers
are read back from its ``summary.json``), ``out of domain`` (the input check refused it: not
brightfield H&E, or too coarse a pixel size), ``no tiles`` (nothing to classify: smaller than a
tile, a region outside the slide, no tissue) or ``failed``; ``error`` says why, and these have no
numbers. The app's cohort window also lists slides not run yet, as ``not analysed``.
``input_check`` is the domain check's status (``passed``, ``analysed anyway`` when
``--allow-out-of-domain`` overrode findings, ``out of domain``; empty when the check did not run)
and ``input_findings`` its findings, each a sentence. The
numbers are those of :meth:`AnalysisResult.summary`, the ones ``summary.json`` holds, with the
same rounding (areas 6 decimals, percentages 4), so a spreadsheet of the cohort and the per-slide
files agree.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE, SlideReport
from chaoyang_desktop.core.slide.tile_qc import QC_NAMES
from chaoyang_desktop.core.atomic import write_with

COHORT_CSV = "cohort.csv"
STATUSES = ("ok", "skipped", "out of domain", "no tiles", "failed", "not analysed")
BASE_COLUMNS = ("slide", "output", "status", "error", "input_check", "input_findings", "tiles_total", "tiles_done",
                "tiles_failed", "tiles_qc", "qc_glass", "qc_pen", "qc_blur", "qc_dark", "analysed_area_mm2",
                "unsure_percent")
_TEXT_COLUMNS = 6  # the columns before the numbers


@dataclass(frozen=True)
class CohortEntry:
    """One slide of a batch.

    Attributes:
        slide: The input path as given.
        output: The slide's results folder (empty when nothing was written).
        status: One of :data:`STATUSES`.
        error: Why it failed; empty otherwise.
        summary: :meth:`AnalysisResult.summary` (or :func:`summary_from_document` of a saved
            ``summary.json``); None for a failed slide.
        domain: :meth:`DomainCheck.to_dict` of the slide, when the check ran.
    """

    slide: str
    output: str
    status: str
    error: str = ""
    summary: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES} (got {self.status!r}).")


def report_entry(report: SlideReport | None, slide: str, output: str = "", error: str | None = None) -> CohortEntry:
    """The row of a slide of a cohort run: ``ok`` with its numbers, its final status with the
    reason (``error`` in place of the report's own, when given), or ``not analysed`` without a report."""
    if report is None:
        return CohortEntry(slide, output, "not analysed")
    if report.status == SLIDE_DONE:
        return CohortEntry(slide, output, "ok", summary=report.summary, domain=report.domain)
    return CohortEntry(slide, output, report.status, report.error if error is None else error, domain=report.domain)


def summary_from_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The :meth:`AnalysisResult.summary` dict held in a ``summary.json`` document."""
    tiles = doc["analysis"]["tiles"]
    return {
        "tiles_total": int(tiles["total"]),
        "tiles_done": int(tiles["done"]),
        "tiles_failed": int(tiles["failed"]),
        "tiles_pending": int(tiles.get("pending", 0)),
        "tiles_qc": int(tiles.get("qc", 0)),
        "qc_by_reason": dict(doc.get("quality_control", {}).get("by_reason", {})),
        "analysed_area_mm2": float(doc["analysed_area_mm2"]),
        "uncertainty": dict(doc.get("uncertainty") or {}),
        "classes": list(doc["classes"]),
    }


def cohort_class_names(entries: Sequence[CohortEntry]) -> list[str]:
    """Class names over all entries, in the order they first appear (one model gives one order)."""
    names: list[str] = []
    for e in entries:
        for c in (e.summary or {}).get("classes", []):
            if c["name"] not in names:
                names.append(c["name"])
    return names


def cohort_header(class_names: Sequence[str]) -> list[str]:
    cols = list(BASE_COLUMNS)
    for n in class_names:
        cols += [f"{n}_percent", f"{n}_area_mm2"]
    return cols


def cohort_row(entry: CohortEntry, class_names: Sequence[str]) -> list[str]:
    """One CSV row; numbers empty for a failed slide, and for classes its model lacks."""
    s = entry.summary
    d = entry.domain or {}
    findings = " ".join(str(f.get("message", "")) for f in d.get("findings", []))
    row = [entry.slide, entry.output, entry.status, entry.error, str(d.get("status", "")), findings]
    if s is None:
        return row + [""] * (len(BASE_COLUMNS) - _TEXT_COLUMNS + 2 * len(class_names))
    by_reason = s.get("qc_by_reason", {})
    unsure = (s.get("uncertainty") or {}).get("unsure_percent")
    row += [str(s["tiles_total"]), str(s["tiles_done"]), str(s["tiles_failed"]), str(s.get("tiles_qc", 0)),
            *(str(by_reason.get(name, 0)) for name in QC_NAMES), f"{s['analysed_area_mm2']:.6f}",
            "" if unsure is None else f"{unsure:.4f}"]
    by_name = {c["name"]: c for c in s["classes"]}
    for n in class_names:
        c = by_name.get(n)
        row += ["", ""] if c is None else [f"{c['percent']:.4f}", f"{c['area_mm2']:.6f}"]
    return row


def write_cohort_csv(entries: Sequence[CohortEntry], path: str | os.PathLike[str]) -> None:
    """Write one row per entry to ``path`` atomically.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    names = cohort_class_names(entries)

    def fill(fh: IO[str]) -> None:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(cohort_header(names))
        for e in entries:
            writer.writerow(cohort_row(e, names))

    write_with(path, fill)
