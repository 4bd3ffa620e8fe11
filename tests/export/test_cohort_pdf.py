"""The one-page cohort summary PDF (chaoyang_desktop.export.cohort_pdf).

Pages are counted and text extracted with pypdf, and page 1 rendered with PDFium (pypdfium2),
independently of the ReportLab that wrote them. Expected numbers are computed here from the
entries' summary dicts, never by the module under test.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pypdf import PdfReader

from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.model.profile import KNOWN_CLASS_COLORS
from chaoyang_desktop.export.cohort_csv import CohortEntry
from chaoyang_desktop.export.cohort_pdf import render_cohort_pdf, write_cohort_pdf
from chaoyang_desktop.export.pdf_report import pdf_date

CLASSES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
# Distinct from each other, from the default palette, and from the page's greys and dark red.
COLORS = {"Normal": "#1b9e77", "Serrated": "#e6ab02", "Adenocarcinoma": "#7570b3", "Adenoma": "#66a61e"}
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = (("Model", "test/chaoyang-vit"), ("Device", "cpu"), ("Precision", "fp32"), ("Tile size", "256 µm"),
            ("Overlap", "none"), ("Tissue threshold", "0.25"), ("Quality control", "on"),
            ("Test-time augmentation", "off"), ("Calibration", "none"))
REASON = "Cannot open the slide: truncated file"
DOMAIN_REASON = "Not H&E: looks like IHC"


def summary(weights: tuple[float, ...], area_mm2: float, tiles: int = 120) -> dict[str, Any]:
    """A summary dict shaped like AnalysisResult.summary(): percents of the analysed area per class."""
    total = sum(weights)
    return {
        "tiles_total": tiles, "tiles_done": tiles, "tiles_failed": 0, "tiles_pending": 0, "tiles_qc": 0,
        "analysed_area_mm2": area_mm2,
        "classes": [{"name": n, "percent": round(100 * w / total, 4), "area_mm2": round(area_mm2 * w / total, 6),
                     "tiles": 0, "mean_confidence": None} for n, w in zip(CLASSES, weights)],
    }


def small_cohort() -> list[CohortEntry]:
    """12 slides: 9 done (one from an earlier run), 1 out of domain, 2 failed."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(12):
        name = f"/data/cohort/case-{i:02d}.svs"
        if i in (3, 8):
            out.append(CohortEntry(name, "", "failed", error=REASON))
        elif i == 5:
            out.append(CohortEntry(name, "", "out of domain", error=DOMAIN_REASON))
        else:
            weights = tuple(float(w) for w in rng.uniform(0.05, 1.0, len(CLASSES)))
            out.append(CohortEntry(name, f"/out/case-{i:02d}", "skipped" if i == 10 else "ok",
                                   summary=summary(weights, float(rng.uniform(2, 40)), tiles=100 + i)))
    return out


def big_cohort(n: int = 500, failed_every: int = 50) -> list[CohortEntry]:
    """``n`` slides, some failed; the analysed ones all 50/25/15/10 % of the classes in order."""
    return [CohortEntry(f"fail-{i:04d}.svs", "", "failed", error=REASON) if i % failed_every == 5 % failed_every
            else CohortEntry(f"ok-{i:04d}.svs", "o", "ok", summary=summary((50, 25, 15, 10), 10.0))
            for i in range(n)]


def write(tmp_path: Path, entries: list[CohortEntry], name: str = "cohort.pdf", **kw: Any) -> Path:
    kw.setdefault("settings", SETTINGS)
    kw.setdefault("class_colors", COLORS)
    return write_cohort_pdf(entries, tmp_path / name, when=WHEN, **kw)


def text_of(path: Path) -> str:
    return PdfReader(path).pages[0].extract_text()


def render(path: Path, scale: float = 2.0) -> np.ndarray:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    return np.asarray(pdf[0].render(scale=scale).to_pil().convert("RGB"), dtype=np.int32)


def pixels_near(rgb: np.ndarray, color: str, tol: int = 10) -> int:
    target = np.array([int(color[k:k + 2], 16) for k in (1, 3, 5)])
    return int(np.count_nonzero(np.abs(rgb - target).max(axis=2) <= tol))


# ----- one page --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 12, 500])
def test_always_exactly_one_page(tmp_path: Path, n: int) -> None:
    entries = small_cohort()[:n] if n <= 12 else big_cohort(n)
    path = write(tmp_path, entries)
    assert path == tmp_path / "cohort.pdf"
    assert len(PdfReader(path).pages) == 1


def test_one_page_even_for_thousands_of_slides_and_many_long_settings(tmp_path: Path) -> None:
    settings = [(f"Setting {k}", "a fairly long value that takes most of its column " * 2) for k in range(8)]
    path = write(tmp_path, big_cohort(3000), settings=settings)
    assert len(PdfReader(path).pages) == 1
    assert re.search(r"… and [\d,]+ more slides: see cohort\.csv", text_of(path))


# ----- content ---------------------------------------------------------------------------------------
def test_small_cohort_lists_every_slide_status_reason_and_setting(tmp_path: Path) -> None:
    entries = small_cohort()
    text = text_of(write(tmp_path, entries, title="Colon cohort, spring 2024"))
    assert "Colon cohort, spring 2024" in text
    assert "2024-05-01 12:00 UTC" in text
    assert "For research use only; not for diagnosis." in text
    assert "12 slides: 9 done (1 in an earlier run), 1 out of domain, 2 failed" in text
    for e in entries:
        assert Path(e.slide).name in text
    lines = text.splitlines()
    for status in ("done", "done earlier", "out of domain", "failed"):
        assert status in lines
    assert REASON in text and DOMAIN_REASON in text
    for label, value in SETTINGS:
        assert label in text and value in text
    assert "more slides" not in text  # everything is shown


def test_table_percentages_match_the_summaries(tmp_path: Path) -> None:
    entries = small_cohort()
    lines = text_of(write(tmp_path, entries)).splitlines()
    table = lines[lines.index("Slides"):]  # the chart's labels come before; the table's cells one a line
    checked = 0
    for row, e in enumerate(entries, 1):
        j = table.index(Path(e.slide).name)
        assert table[j - 1] == str(row)
        if e.summary is None:  # no numbers: the reason follows the status
            assert table[j + 1] == e.status and table[j + 2] == e.error
            continue
        expected = [f"{c['percent']:.1f}" for c in e.summary["classes"]]
        assert table[j + 2] == str(e.summary["tiles_total"])
        assert table[j + 3:j + 3 + len(CLASSES)] == expected, e.slide
        checked += 1
    assert checked == 9


def test_legend_gives_the_cohort_share_weighted_by_area(tmp_path: Path) -> None:
    entries = small_cohort()
    text = text_of(write(tmp_path, entries))
    done = [e.summary for e in entries if e.summary]
    total = sum(s["analysed_area_mm2"] for s in done)
    for k, name in enumerate(CLASSES):
        share = 100 * sum(s["classes"][k]["area_mm2"] for s in done) / total
        assert f"{name} {share:.1f} %" in text
    assert "All analysed (9)" in text


def test_big_cohort_says_how_many_more_and_keeps_failed_slides_first(tmp_path: Path) -> None:
    entries = big_cohort(500)
    text = text_of(write(tmp_path, entries))
    match = re.search(r"… and ([\d,]+) more slides: see cohort\.csv", text)
    assert match
    more = int(match.group(1).replace(",", ""))
    table = text[text.index("\nSlides\n"):]
    listed = re.findall(r"^(?:ok|fail)-\d{4}\.svs$", table, flags=re.M)
    assert len(listed) + more == 500
    assert 10 < len(listed) < 100
    # Every failed slide is listed, then the first analysed ones that fit, all in the given order.
    failed = [Path(e.slide).name for e in entries if e.status == "failed"]
    done = [Path(e.slide).name for e in entries if e.status == "ok"]
    assert sorted(listed) == sorted(failed + done[:len(listed) - len(failed)])
    assert listed == sorted(listed, key=lambda s: int(s[-8:-4]))
    charted = re.search(r"The chart shows the first (\d+) of (\d+) analysed slides", " ".join(text.split()))
    assert charted and int(charted.group(2)) == 500 - len(failed)


def test_with_more_failures_than_rows_the_table_lists_the_first_failures(tmp_path: Path) -> None:
    entries = big_cohort(500, failed_every=3)
    text = text_of(write(tmp_path, entries))
    listed = re.findall(r"^(?:ok|fail)-\d{4}\.svs$", text[text.index("\nSlides\n"):], flags=re.M)
    failed = [Path(e.slide).name for e in entries if e.status == "failed"]
    assert listed == failed[:len(listed)] and 0 < len(listed) < len(failed)
    assert f"… and {500 - len(listed)} more slides: see cohort.csv" in text


def test_default_colours_are_the_models(tmp_path: Path) -> None:
    path = write(tmp_path, small_cohort(), class_colors=None)
    rgb = render(path)
    for name in CLASSES:
        assert pixels_near(rgb, KNOWN_CLASS_COLORS[name.lower()]) > 2000, name


def test_the_chart_draws_each_class_colour_in_proportion(tmp_path: Path) -> None:
    # Every analysed slide is 50/25/15/10 %, so the bars' colour areas are in that order: far more
    # than the legend's equal swatches, which alone would give each colour a few hundred pixels.
    rgb = render(write(tmp_path, big_cohort(40)))
    counts = [pixels_near(rgb, COLORS[name]) for name in CLASSES]
    assert min(counts) > 2000, counts
    assert counts == sorted(counts, reverse=True), counts
    assert 3.5 < counts[0] / counts[3] < 6.5, counts  # 50 % against 10 %


def test_long_names_are_elided_in_the_middle_and_keep_their_extension(tmp_path: Path) -> None:
    long_name = "a very long slide name straight from the scanner export batch 2024-03 CY-0042-HE-level0.ndpi"
    entries = [CohortEntry(f"/data/{long_name}", "o", "ok", summary=summary((1, 1, 1, 1), 5.0)),
               CohortEntry("C:\\slides\\windows case.svs", "", "failed", error="x " * 400)]
    text = text_of(write(tmp_path, entries))
    assert long_name not in text
    assert re.search(r"^a very long .*….*level0\.ndpi$", text, flags=re.M)
    assert "windows case.svs" in text and "C:" not in text
    assert len(PdfReader(tmp_path / "cohort.pdf").pages) == 1


def test_same_input_same_bytes_and_the_pdf_dated_when_made() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    for buf in (a, b):
        render_cohort_pdf(small_cohort(), buf, settings=SETTINGS, class_colors=COLORS, when=WHEN)
    assert a.getvalue() == b.getvalue() and a.getvalue().startswith(b"%PDF")
    meta = PdfReader(io.BytesIO(a.getvalue())).metadata
    assert meta is not None and str(meta["/CreationDate"]) == pdf_date(WHEN)


def test_no_slides_and_no_results_still_make_a_page(tmp_path: Path) -> None:
    text = text_of(write(tmp_path, [], name="empty.pdf"))
    assert "0 slides" in text and "No slide has results to chart." in text
    failed = [CohortEntry(f"s{i}.svs", "", "failed", error=REASON) for i in range(3)]
    text = text_of(write(tmp_path, failed, settings=()))
    assert "3 slides: 3 failed" in text and "No slide has results to chart." in text and "Settings" not in text


# ----- writing ---------------------------------------------------------------------------------------
def test_missing_folder_or_a_file_as_folder_raise_and_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_cohort_pdf(small_cohort(), tmp_path / "missing" / "cohort.pdf")
    assert not (tmp_path / "missing").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_cohort_pdf(small_cohort(), blocker / "cohort.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_read_only_folder_raises_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):  # root writes anywhere: refuse the temporary file as the OS would
            def refuse(*args: object, **kwargs: object) -> None:
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(tempfile, "mkstemp", refuse)
        with pytest.raises(OutputError, match="not writable") as info:
            write_cohort_pdf(small_cohort(), folder / "cohort.pdf")
        assert "\n" not in str(info.value)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_a_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = write(tmp_path, small_cohort())
    before = target.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="not writable"):
        write(tmp_path, big_cohort(30))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cohort.pdf"]


def test_module_imports_neither_qt_nor_torch() -> None:
    code = ("import sys\nimport chaoyang_desktop.export.cohort_pdf\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'shiboken6'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)
