"""The PDF report and its data: content, numbers shared with summary.json, rendering, atomic writes."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from chaoyang_desktop.core.slide.annotations import Annotation, PathClass
from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.analysis.result_files import summary_document
from chaoyang_desktop.export.pdf_report import render_report, write_report
from chaoyang_desktop.export.report_data import (
    RESEARCH_USE_STATEMENT,
    ReportOptions,
    build_report_data,
    format_area_mm2,
    format_percent,
    slide_tile_reader,
)
from tests.export.helpers import CLASS_NAMES, FAILED, L0_H, L0_W, SURE_NORMAL, build_result, tile_index

FIXED_DATE = datetime(2024, 6, 1, 9, 30, tzinfo=timezone.utc)
OPTIONS = ReportOptions(report_date=FIXED_DATE)


def thumbnail() -> np.ndarray:
    """A 400 x 300 'slide': pink tissue on white glass, the slide's 4:3 shape."""
    img = np.full((300, 400, 3), 245, np.uint8)
    img[40:260, 60:340] = (200, 120, 170)
    return img


def fake_reader(l0_x: int, l0_y: int, l0_w: int, l0_h: int) -> np.ndarray:
    """Tile pixels at a quarter of level 0, different for every tile."""
    h, w = max(1, l0_h // 4), max(1, l0_w // 4)
    return np.random.default_rng([l0_x, l0_y]).integers(100, 256, (h, w, 3), dtype=np.uint8)


def pdf_text(path: Path) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def squash(text: str) -> str:
    """Text with runs of white space made one space (extraction breaks lines where layout does)."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def report(result: AnalysisResult, tmp_path: Path) -> Path:
    return write_report(result, thumbnail(), fake_reader, tmp_path / "report.pdf", OPTIONS)


# ----- content ---------------------------------------------------------------------------------------
def test_text_has_slide_name_classes_and_the_areas_of_summary_json(result: AnalysisResult, report: Path) -> None:
    pages = pdf_text(report)
    text = squash(" ".join(pages))
    doc = summary_document(result)
    assert doc["slide"]["file_name"] in text  # "case 01.svs"
    for c in doc["classes"]:
        assert c["name"] in text
        # The composition row: tiles, area, percent, as summary.json states them.
        assert f"{c['name']} {c['tiles']} {format_area_mm2(c['area_mm2'])} {format_percent(c['percent'])}" in text
    assert f"Analysed tissue {doc['analysis']['tiles']['done']} {format_area_mm2(doc['analysed_area_mm2'])}" in text
    # Units are real Unicode text, not pictures or look-alikes.
    assert "Area (mm²)" in text and "µm" in text
    assert doc["provenance"]["weights_sha256"] in text and "test/chaoyang-vit" in text


def test_every_page_has_the_statement_and_page_numbers(report: Path) -> None:
    pages = pdf_text(report)
    n = len(pages)
    assert n >= 3
    for i, page in enumerate(pages, 1):
        assert RESEARCH_USE_STATEMENT in squash(page)
        assert f"Page {i} of {n}" in page


def test_images_are_embedded_and_text_stays_text(report: Path) -> None:
    reader = PdfReader(report)
    images = [img for page in reader.pages for img in page.images]
    # The overview plus a picture per gallery tile: 4 per class at most and 8 for review.
    assert len(images) >= 1 + 8
    overview = max(images, key=lambda im: im.image.size[0] * im.image.size[1]).image
    assert overview.size[0] > overview.size[1]  # the 4:3 slide
    fonts = {str(f) for page in reader.pages
             for f in (page["/Resources"].get("/Font") or {}).get_object().values()}
    assert fonts  # text is set in fonts, not drawn as outlines or pictures


def test_report_data_numbers_are_the_summary(result: AnalysisResult) -> None:
    data = build_report_data(result, thumbnail(), fake_reader, OPTIONS)
    summary = result.summary()
    assert [dataclasses.asdict(r) for r in data.composition.classes] == summary["classes"]
    assert data.composition.analysed_area_mm2 == summary["analysed_area_mm2"]
    assert data.header.report_date == "2024-06-01 09:30 UTC"
    assert data.header.analysis_date == "2024-05-01 12:00 UTC"
    # The histogram counts every done tile once, under its top class.
    for h, c in zip(data.histograms, summary["classes"], strict=True):
        assert sum(h.counts) == c["tiles"] and len(h.edges) == len(h.counts) + 1


def _annotations() -> list[Annotation]:
    # The first lies in the sure-Normal tile (1, 1) and holds its centre (768, 768) and all 4 x 4
    # sample points of its 512 x 512 px cell: 0.065536 mm² at 0.5 µm/px, all Normal; its own area
    # is 480 x 480 px, 0.0576 mm². The second lies off the slide.
    assert SURE_NORMAL == (1, 1)
    return [Annotation.rectangle(520, 520, 1000, 1000, name="Tumour spot", path_class=PathClass("Tumor", (200, 0, 0))),
            Annotation.ellipse(-500, -500, -100, -100)]


def test_report_data_annotation_rows_are_the_summary_json_numbers(result: AnalysisResult) -> None:
    assert build_report_data(result, None, None, OPTIONS).annotations == ()
    data = build_report_data(result, None, None, OPTIONS, annotations=_annotations())
    spot, off = data.annotations
    assert (spot.name, spot.class_name, spot.tiles) == ("Tumour spot", "Tumor", 1)
    assert spot.area_mm2 == pytest.approx(0.0576) and spot.analysed_area_mm2 == pytest.approx(0.065536)
    assert [(c.name, c.percent) for c in spot.classes] == [(n, 100.0 if n == "Normal" else 0.0) for n in CLASS_NAMES]
    assert (off.name, off.class_name, off.analysed_area_mm2) == ("Ellipse 2", None, 0.0)
    entries = summary_document(result, annotations=_annotations())["annotations"]
    assert [dataclasses.asdict(c) for c in spot.classes] == entries[0]["classes"]


def test_the_annotations_table(result: AnalysisResult, tmp_path: Path) -> None:
    path = write_report(result, thumbnail(), None, tmp_path / "a.pdf", OPTIONS, annotations=_annotations())
    text = squash(" ".join(pdf_text(path)))
    assert "Annotations" in text and "Analysed (mm²)" in text
    assert all(f"% {name}" in text for name in CLASS_NAMES)
    assert f"Tumour spot Tumor {format_area_mm2(0.0576)} {format_area_mm2(0.065536)} 100.0 0.0 0.0 0.0" in text
    # Nothing analysed inside: dashes, not zeros that would read as "none of this class".
    assert f"Ellipse 2 \u2013 {format_area_mm2(math.pi * 200 * 200 * 0.25e-6)}" in text
    assert "0.000 \u2013 \u2013 \u2013 \u2013" in text
    plain = write_report(result, thumbnail(), None, tmp_path / "p.pdf", OPTIONS)
    assert "Analysed (mm²)" not in squash(" ".join(pdf_text(plain)))


def test_galleries_pick_the_most_and_least_confident_done_tiles(result: AnalysisResult) -> None:
    data = build_report_data(result, thumbnail(), fake_reader, OPTIONS)
    labels = result.labels()
    normal = data.most_confident[0]
    assert normal.title.endswith("Normal")
    assert normal.tiles[0].index == tile_index(result, *SURE_NORMAL) and normal.tiles[0].confidence == 1.0
    for k, gallery in enumerate(data.most_confident):
        got = [t.confidence for t in gallery.tiles]
        assert got == sorted(got, reverse=True) and len(got) == min(4, int(np.sum(labels == k)))
        assert all(t.label == CLASS_NAMES[k] for t in gallery.tiles)
    least = [t.index for t in data.least_confident.tiles]
    done = np.flatnonzero(result.status == TILE_DONE)
    # Review order: smallest gap between the top two probabilities first (computed here with numpy).
    top2 = np.sort(result.probs[done].astype(np.float64), axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    assert least == [int(i) for i in done[np.argsort(gap, kind="stable")][:8]]
    assert all(t.margin is not None and 0 <= t.margin <= 1 for t in data.least_confident.tiles)
    failed = tile_index(result, *FAILED)
    every = [t.index for g in (*data.most_confident, data.least_confident) for t in g.tiles]
    assert failed not in every
    tile = data.least_confident.tiles[0]
    assert tile.l0_rect == tuple(int(v) for v in result.rects()[tile.index])
    assert tile.image is not None and max(tile.image.shape[:2]) <= OPTIONS.gallery_px


def test_without_a_tile_source_the_report_lists_tiles_without_pictures(result: AnalysisResult, tmp_path: Path) -> None:
    path = write_report(result, None, None, tmp_path / "r.pdf", OPTIONS)
    reader = PdfReader(path)
    text = squash(" ".join(p.extract_text() for p in reader.pages))
    assert "without its picture" in text
    x, y = (int(v) for v in result.rects()[tile_index(result, *SURE_NORMAL)][:2])
    assert f"x {x:,}, y {y:,}" in text
    assert "overview is omitted" in text
    assert sum(len(p.images) for p in reader.pages) == 0


def test_a_saved_heatmap_can_stand_in_for_the_thumbnail(result: AnalysisResult, tmp_path: Path) -> None:
    picture = np.full((200, 300, 3), 128, np.uint8)
    data = build_report_data(result, None, None, OPTIONS, overview_rgb=picture)
    assert data.overview is not None and data.overview.has_legend
    assert data.overview.image.shape == (200, 300, 3)


def test_unreadable_tiles_become_a_note(result: AnalysisResult) -> None:
    def flaky(l0_x: int, l0_y: int, l0_w: int, l0_h: int) -> np.ndarray:
        if l0_x == 0:
            raise OSError("read error")
        return fake_reader(l0_x, l0_y, l0_w, l0_h)

    data = build_report_data(result, thumbnail(), flaky, OPTIONS)
    tiles = [t for g in (*data.most_confident, data.least_confident) for t in g.tiles]
    assert any(t.image is None for t in tiles) and any(t.image is not None for t in tiles)
    assert any("could not be read" in n for n in data.notes)


def test_partial_and_assumed_pixel_size_are_stated(tmp_path: Path) -> None:
    result = build_result(pending=3)
    result.provenance = dataclasses.replace(result.provenance, mpp_assumed=True)
    path = write_report(result, thumbnail(), fake_reader, tmp_path / "r.pdf", OPTIONS)
    text = squash(" ".join(pdf_text(path)))
    assert "Partial analysis" in text and "(assumed" in text


def test_slide_names_outside_latin_stay_searchable(result: AnalysisResult, tmp_path: Path) -> None:
    result.provenance = dataclasses.replace(result.provenance, slide_path="D:\\切片\\朝阳 01 & <x>.svs")
    path = write_report(result, thumbnail(), fake_reader, tmp_path / "r.pdf", OPTIONS)
    text = " ".join(pdf_text(path))
    assert "朝阳 01 & <x>.svs" in text


def test_roi_outline_from_the_provenance_file(result: AnalysisResult, tmp_path: Path) -> None:
    roi = Roi.from_polygon_points([[100, 100], [1800, 100], [1800, 1400]], source="drawn")
    roi_file = tmp_path / "roi.geojson"
    roi_file.write_text(json.dumps(roi.to_geojson()))
    result.provenance = dataclasses.replace(result.provenance, roi_path=str(roi_file), roi_digest=roi.digest())
    data = build_report_data(result, thumbnail(), None, OPTIONS)
    assert data.overview is not None and data.overview.roi_drawn
    # The outline is black pixels that the overview without a ROI lacks.
    without = dataclasses.replace(result.provenance, roi_path=None, roi_digest=None)
    plain = build_report_data(AnalysisResult(without, result.grid, result.t_col, result.t_row, result.tissue,
                                             result.probs, result.status), thumbnail(), None, OPTIONS)
    assert plain.overview is not None and not plain.overview.roi_drawn
    black = np.all(data.overview.image < 20, axis=2)
    assert black.sum() > 100 and not np.all(plain.overview.image < 20, axis=2).any()
    # An edited ROI file no longer matches the analysis: no outline, and a note.
    other = Roi.from_polygon_points([[0, 0], [500, 0], [500, 500]], source="drawn")
    roi_file.write_text(json.dumps(other.to_geojson()))
    data = build_report_data(result, thumbnail(), None, OPTIONS)
    assert data.overview is not None and not data.overview.roi_drawn
    assert any("has changed" in n for n in data.notes)
    roi_file.unlink()
    data = build_report_data(result, thumbnail(), None, OPTIONS)
    assert any("no longer available" in n for n in data.notes)


def test_slide_tile_reader_reads_from_a_coarser_level() -> None:
    calls: list[tuple[int, int, int, int, int]] = []

    class FakeSlide:
        level_downsamples = (1.0, 4.0, 16.0)

        def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
            calls.append((l0_x, l0_y, level, lv_w, lv_h))
            return np.zeros((lv_h, lv_w, 3), np.uint8)

    read = slide_tile_reader(FakeSlide(), max_px=256)
    assert read(1024, 2048, 1024, 1024).shape == (256, 256, 3)
    assert calls == [(1024, 2048, 1, 256, 256)]


def test_same_input_same_bytes(result: AnalysisResult) -> None:
    data = build_report_data(result, thumbnail(), fake_reader, OPTIONS)
    a, b = io.BytesIO(), io.BytesIO()
    render_report(data, a)
    render_report(data, b)
    assert a.getvalue() == b.getvalue() and a.getvalue().startswith(b"%PDF")


# ----- rendering -------------------------------------------------------------------------------------
def test_pages_render_and_are_not_blank(report: Path) -> None:
    # PDFium (Chrome's PDF engine) renders the pages, independently of the reportlab that wrote them.
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(report))
    pages = [pdf[i].render(scale=30 / 72).to_pil() for i in range(len(pdf))]
    assert len(pages) == len(PdfReader(report).pages)
    for number, page in enumerate(pages, 1):
        grey = np.asarray(page.convert("L"), dtype=np.float64)
        ink = np.mean(grey < 200)
        assert 0.005 < ink < 0.9, f"page {number} looks blank or black ({ink:.3f} inked)"
    # The overview page shows colour (the class map over pink tissue), not just black text.
    rgb = np.asarray(pages[1].convert("RGB"), dtype=np.int32)
    assert np.mean(rgb.max(axis=2) - rgb.min(axis=2) > 40) > 0.02


# ----- writing ---------------------------------------------------------------------------------------
def test_missing_folder_is_a_clear_error_and_writes_nothing(result: AnalysisResult, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "report.pdf"
    with pytest.raises(OutputError, match="does not exist"):
        write_report(result, thumbnail(), fake_reader, target, OPTIONS)
    assert not target.parent.exists()
    # A "folder" that is a regular file cannot hold the report either (root ignores chmod).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_report(result, thumbnail(), fake_reader, blocker / "report.pdf", OPTIONS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_rename_leaves_the_old_report_and_no_temporary_file(result: AnalysisResult, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_report(result, thumbnail(), fake_reader, tmp_path / "report.pdf", OPTIONS)
    before = target.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="not writable"):
        write_report(build_result(seed=5), thumbnail(), fake_reader, target, OPTIONS)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_report_modules_import_neither_qt_nor_torch() -> None:
    code = (
        "import sys\n"
        "import chaoyang_desktop.export.pdf_report, chaoyang_desktop.export.report_data\n"
        "import chaoyang_desktop.export.cohort_csv\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'torch', 'shiboken6', 'openslide'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)


def test_the_default_options_are_valid_and_bad_ones_are_refused() -> None:
    assert ReportOptions().validated() == ReportOptions()
    with pytest.raises(ValueError, match="top_per_class"):
        ReportOptions(top_per_class=-1).validated()
    assert L0_W > L0_H  # the fixture slide is landscape, as the thumbnail above


def test_method_states_quality_control_tta_calibration_and_uncertainty(tmp_path: Path) -> None:
    result = build_result(with_qc=True)
    result.provenance = dataclasses.replace(result.provenance, qc=True, qc_version=1, tta=True, temperature=1.7,
                                            calibration="/data/cal/calibration.json")
    path = write_report(result, thumbnail(), fake_reader, tmp_path / "r.pdf", OPTIONS)
    text = squash(" ".join(p.extract_text() for p in PdfReader(path).pages))
    assert "1 left out by quality control" in text
    assert "pen ink, out of focus or dark artefacts are not classified (1 pen, 1 blur)" in text
    assert "Test-time augmentation on: the mean of the 8 flips" in text
    assert "temperature 1.7 (logits divided by it), from /data/cal/calibration.json" in text
    unsure = result.summary()["uncertainty"]["unsure_percent"]
    assert f"unsure on {unsure:.1f}% of the analysed tissue" in text
    assert "Most uncertain tiles (for review)" in text
