"""``analyze --report``, ``report RESULT_DIR`` and ``cohort.csv`` end to end on a real slide."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from chaoyang_desktop.cli import main
from chaoyang_desktop.export.report_data import format_area_mm2
from tests.model_factory import TINY_CONFIG, write_checkpoint

SLIDE = "CMU-1-Small-Region.svs"


def pdf_text(path: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in PdfReader(path).pages))


def n_images(path: Path) -> int:
    return sum(len(p.images) for p in PdfReader(path).pages)


@pytest.fixture(scope="module")
def analysed(test_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One analysis with --report, from a copy of the slide and a model folder the tests may delete."""
    root = tmp_path_factory.mktemp("analysed")
    model, _ = write_checkpoint(root / "model", TINY_CONFIG, seed=3)
    slides = root / "slides"
    slides.mkdir()
    shutil.copy(test_data / "slides" / SLIDE, slides / SLIDE)
    out = root / "out"
    code = main(["analyze", str(slides / SLIDE), "-m", str(model), "--out", str(out), "--report", "-q", "--no-cache"])
    assert code == 0
    return {"root": root, "model": model, "slide": slides / SLIDE, "out": out, "result": out / "CMU-1-Small-Region"}


def test_analyze_report_writes_a_report_with_the_summary_numbers(analysed: dict[str, Path]) -> None:
    folder = analysed["result"]
    pdf = folder / "report.pdf"
    assert pdf.is_file()
    summary = json.loads((folder / "summary.json").read_text())
    text = pdf_text(pdf)
    assert SLIDE in text
    for c in summary["classes"]:
        assert c["name"] in text and format_area_mm2(c["area_mm2"]) in text
    assert format_area_mm2(summary["analysed_area_mm2"]) in text
    assert n_images(pdf) >= 2  # the overview and gallery tiles read from the slide
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_cohort_csv_for_a_single_slide(analysed: dict[str, Path]) -> None:
    rows = list(csv.DictReader((analysed["out"] / "cohort.csv").open(encoding="utf-8")))
    summary = json.loads((analysed["result"] / "summary.json").read_text())
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["slide"] == str(analysed["slide"])
    assert float(rows[0]["analysed_area_mm2"]) == summary["analysed_area_mm2"]
    for c in summary["classes"]:
        assert float(rows[0][f"{c['name']}_percent"]) == c["percent"]


def test_report_from_saved_results_needs_neither_model_nor_slide(analysed: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(analysed["model"])
    folder = analysed["result"]
    # With the slide: tiles are read again for the galleries.
    assert main(["report", str(folder), "--out", str(tmp_path / "with_slide.pdf"), "-q"]) == 0
    with_slide = n_images(tmp_path / "with_slide.pdf")
    assert with_slide >= 2
    # Without it: the saved heatmap is the overview, and the galleries have no pictures.
    moved = tmp_path / "moved.svs"
    shutil.move(analysed["slide"], moved)
    try:
        assert main(["report", str(folder)]) == 0
        assert "report.pdf" in capsys.readouterr().err
        pdf = folder / "report.pdf"
        text = pdf_text(pdf)
        assert "was not found" in text and "CMU-1-Small-Region.svs" in text
        assert n_images(pdf) == 1
        # --slide points at the moved file, which is recognised by its content.
        assert main(["report", str(folder), "--slide", str(moved), "--out", str(tmp_path / "moved.pdf"), "-q"]) == 0
        assert n_images(tmp_path / "moved.pdf") == with_slide
    finally:
        shutil.move(moved, analysed["slide"])


def test_report_errors_are_one_clear_line(analysed: dict[str, Path], test_data: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "No saved analysis" in err and "Traceback" not in err
    # The --out root of a batch names the per-slide folders.
    assert main(["report", str(analysed["out"])]) == 1
    assert "CMU-1-Small-Region" in capsys.readouterr().err
    target = tmp_path / "missing" / "r.pdf"
    assert main(["report", str(analysed["result"]), "--out", str(target)]) == 1
    assert "does not exist" in capsys.readouterr().err and not target.parent.exists()
    other = test_data / "images" / "CMU-1-Small-Region_full.jpg"
    assert main(["report", str(analysed["result"]), "--slide", str(other), "--out", str(tmp_path / "x.pdf")]) == 1
    assert "not the slide" in capsys.readouterr().err and not (tmp_path / "x.pdf").exists()


def test_batch_cohort_lists_skipped_and_failed_slides(analysed: dict[str, Path], tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "broken.svs").write_text("not a slide")
    out = tmp_path / "out"
    # A slide finished in an earlier run (copied results, without a report) is skipped ...
    shutil.copytree(analysed["result"], out / "CMU-1-Small-Region")
    (out / "CMU-1-Small-Region" / "report.pdf").unlink()
    model, _ = write_checkpoint(tmp_path / "model", TINY_CONFIG, seed=3)
    code = main(["analyze", str(analysed["slide"]), str(batch), str(tmp_path / "nothing.svs"), "-m", str(model),
                 "--out", str(out), "--report", "-q", "--no-cache"])
    assert code == 1
    rows = list(csv.DictReader((out / "cohort.csv").open(encoding="utf-8")))
    assert [(Path(r["slide"]).name, r["status"]) for r in rows] == [
        ("CMU-1-Small-Region.svs", "skipped"), ("broken.svs", "failed"), ("nothing.svs", "failed")]
    summary = json.loads((out / "CMU-1-Small-Region" / "summary.json").read_text())
    assert int(rows[0]["tiles_done"]) == summary["analysis"]["tiles"]["done"]
    for c in summary["classes"]:
        assert float(rows[0][f"{c['name']}_area_mm2"]) == c["area_mm2"]
    assert "neither" in rows[1]["error"] and rows[2]["error"] == "no such file or folder"
    # ... and --report gives it the report it lacked.
    assert (out / "CMU-1-Small-Region" / "report.pdf").is_file()


def test_a_64_um_report_states_its_tiles_date_result_and_keeps_edge_tiles_square(
        test_data: Path, tmp_path: Path) -> None:
    """``analyze --tile-um 64 --report``: the report's method, dates, page 1 and gallery, from the PDF.

    At 0.499 µm/px, 64 µm tiles are 128 px (63.872 µm recorded); the bottom row of this
    2220 x 2967 px slide would be clipped to 23 px, so it is not planned.
    """
    from datetime import datetime, timezone

    from pypdf.generic import ContentStream

    model, _ = write_checkpoint(tmp_path / "model", TINY_CONFIG, seed=6)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    code = main(["analyze", str(test_data / "slides" / SLIDE), "-m", str(model), "--out", str(tmp_path / "out"),
                 "--tile-um", "64", "--report", "-q", "--no-cache"])
    after = datetime.now(timezone.utc)
    assert code == 0
    folder = tmp_path / "out" / "CMU-1-Small-Region"
    reader = PdfReader(folder / "report.pdf")
    summary = json.loads((folder / "summary.json").read_text())
    text = pdf_text(folder / "report.pdf")
    # 1. The method is the analysis's: 64 µm, 128 px read at level 0, resized to the 384 px input.
    assert "Tile size 64 µm square: 128 × 128 px at level 0 (0.499 µm/px)" in text
    assert "Read 128 × 128 px from pyramid level 0" in text
    assert "each tile is enlarged from 128 to 384 px" in text and "the network sees 0.166 µm/px" in text
    assert "63.9" not in text and "63.8" not in text and "512 px tile" not in text
    # 2. The PDF's creation date is when the report was made.
    meta = reader.metadata
    assert meta is not None and meta.creation_date is not None and before <= meta.creation_date <= after
    # 3. Page 1 has the composition as summary.json states it.
    page1 = re.sub(r"\s+", " ", reader.pages[0].extract_text())
    for c in summary["classes"]:
        assert f"{c['name']} {c['tiles']} {format_area_mm2(c['area_mm2'])} {c['percent']:.1f}" in page1
    assert len(reader.pages[0].images) == 1
    # 4. Every picture is drawn with its own aspect ratio (a 128 x 23 strip stays a strip).
    shapes = set()
    for page in reader.pages:
        xobjects = (page["/Resources"].get("/XObject") or {})
        ops = ContentStream(page.get_contents(), reader).operations
        for j, (operands, op) in enumerate(ops):
            if op == b"Do":
                matrix, _ = ops[j - 1]
                image = xobjects[operands[0]].get_object()
                w, h = int(image["/Width"]), int(image["/Height"])
                shapes.add((w, h))
                assert float(matrix[0]) / float(matrix[3]) == pytest.approx(w / h, rel=1e-3)
    # The 128 x 23 px strips at the bottom edge are not classified at all (less than half inside
    # the slide); clipped tiles that are kept are letterboxed (tests/export/test_pdf_report.py).
    assert (128, 128) in shapes and (128, 23) not in shapes
    assert "px (level 0), clipped by the slide's edge" not in text
