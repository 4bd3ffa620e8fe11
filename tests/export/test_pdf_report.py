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
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from chaoyang_desktop.core.slide.annotations import Annotation, PathClass
from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.analysis.result_files import summary_document
from chaoyang_desktop.core.slide.tiling import make_grid
from chaoyang_desktop.export.pdf_report import _Picture, _styles, _tile_cell, pdf_date, render_report, write_report
from chaoyang_desktop.export.report_data import (
    RESEARCH_USE_STATEMENT,
    ReportOptions,
    build_report_data,
    format_area_mm2,
    format_percent,
    format_um,
    resize_steps,
    set_um,
    slide_tile_reader,
)
from tests.export.helpers import (
    CLASS_NAMES,
    FAILED,
    L0_H,
    L0_W,
    SURE_NORMAL,
    build_result,
    make_provenance,
    tile_index,
)

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
    # Page 1 shows the overview in colour (the class map over pink tissue), not just black text.
    rgb = np.asarray(pages[0].convert("RGB"), dtype=np.int32)
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


# ----- the method states the analysis's own tiles ---------------------------------------------------
#: CMU-1-Small-Region's geometry: 2220 x 2967 px at 0.499 µm/px. 64 µm tiles are 128 px there
#: (recorded as 63.872 µm), and the bottom row is clipped to 2967 - 23 * 128 = 23 px.
EDGE_W, EDGE_H, EDGE_MPP = 2220, 2967, 0.499
EDGE_TILE = (5, 23)


def small_tiles_result() -> AnalysisResult:
    """64 µm tiles on the small-region slide, read from level 0 for a 384 px input; the clipped
    tile ``EDGE_TILE`` (128 x 23 px) is the surest Serrated tile."""
    grid = make_grid(EDGE_W, EDGE_H, EDGE_MPP, 64.0, None, 512, (1.0, 4.0))
    provenance = dataclasses.replace(
        make_provenance(grid.l0_stride * EDGE_MPP), l0_width=EDGE_W, l0_height=EDGE_H, mpp=EDGE_MPP,
        tile_um=grid.l0_tile * EDGE_MPP, tile_px=512, input_size=384, resize="linear", channel_order="bgr",
        domain_check={"passed": True, "overridden": False, "findings": [],
                      "measurements": {"l0_mpp": EDGE_MPP, "model_mpp": 0.5}})
    t_col, t_row = grid.all_tiles()
    result = AnalysisResult.empty(provenance, grid, t_col, t_row, np.ones(len(t_col), np.float32))
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(len(CLASS_NAMES)), len(t_col)) * 0.5 + np.array([0.5, 0, 0, 0])
    edge = int(np.flatnonzero((t_col == EDGE_TILE[0]) & (t_row == EDGE_TILE[1]))[0])
    probs[edge] = [0.02, 0.95, 0.02, 0.01]
    result.set_batch(np.arange(len(t_col)), probs.astype(np.float32))
    return result


def full_reader(l0_x: int, l0_y: int, l0_w: int, l0_h: int) -> np.ndarray:
    """Tile pixels at level 0: exactly ``l0_w`` x ``l0_h``, as a slide reads a clipped edge tile."""
    return np.random.default_rng([l0_x, l0_y]).integers(100, 256, (l0_h, l0_w, 3), dtype=np.uint8)


def test_micrometres_are_stated_as_set() -> None:
    # Every setting within half a pixel step gives the same tiles: the roundest one is stated.
    assert set_um(128 * 0.499, 0.499) == 64.0  # 63.872 µm measured
    assert set_um(512 * 0.49997, 0.49997) == 256.0  # 255.985 µm measured
    assert set_um(2048 * 0.5, 0.5) == 1024.0
    assert set_um(149 * 0.2527, 0.2527) == 37.7  # 37.652: no rounder value within 0.126 µm
    assert set_um(64 * 0.499, 2 * 0.499) == 32.0  # k = 2 strides: the tile moves 2 px per step
    assert set_um(7 * 0.05, 0.05) == 0.35  # finer than 0.1 µm: 3 significant digits
    assert [format_um(v) for v in (63.872, 64.0, 255.987, 1024.0, 0.16633, 0.499, 37.9)] == [
        "63.9", "64", "256", "1024", "0.166", "0.499", "37.9"]


def test_resize_steps_follow_the_preprocessing() -> None:
    assert resize_steps(128, 512, 384, "linear") == (128, 384)
    assert resize_steps(1024, 512, 384, "linear") == (1024, 512, 384)  # reduced to the training patch first
    assert resize_steps(1024, 512, 384, "antialias") == (1024, 384)
    assert resize_steps(384, 512, 384, "linear") == (384,)


def test_method_states_the_tiles_that_were_analysed(tmp_path: Path) -> None:
    result = small_tiles_result()
    data = build_report_data(result, None, None, OPTIONS)
    m = data.method
    assert (m.tile_um_set, m.stride_um_set, m.l0_tile, m.lv_tile, m.level, m.k) == (64.0, 64.0, 128, 128, 0, 1)
    assert m.tile_um == pytest.approx(63.872) and m.resize_px == (128, 384) and m.model_mpp == 0.5
    path = write_report(result, None, None, tmp_path / "r.pdf", OPTIONS)
    text = squash(" ".join(pdf_text(path)))
    assert "Tile size 64 µm square: 128 × 128 px at level 0 (0.499 µm/px)" in text
    assert "Stride 64 µm: tiles side by side, no overlap" in text
    assert "Read 128 × 128 px from pyramid level 0 (full resolution)" in text
    assert ("384 × 384 px, channel order BGR: each tile is enlarged from 128 to 384 px (bilinear, OpenCV "
            "INTER_LINEAR as in training; ×3), so the network sees 0.166 µm/px") in text
    assert "512 px patches at 0.5 µm/px (256 µm) resized to 384 px: 0.667 µm/px" in text
    assert "the network sees tissue at 4× the magnification of training" in text
    assert "Tissue threshold 0.25" in text and "Quality control off" in text and "Calibration none" in text
    assert "Test-time augmentation off" in text
    # No figure more precise than the setting, and not the model's defaults.
    assert "63.8" not in text and "63.9" not in text and "512 px tile" not in text


def test_method_with_overlap_and_a_coarser_read_level(tmp_path: Path) -> None:
    result = build_result(stride_um=128.0)
    # A 0.25 µm/px slide with a 2x level: a 256 µm tile is 1024 px at level 0, read as 512 px.
    grid = make_grid(L0_W, L0_H, 0.25, 256.0, 128.0, 512, (1.0, 2.0))
    result.grid = grid
    result.provenance = dataclasses.replace(result.provenance, mpp=0.25, tile_um=grid.l0_tile * 0.25,
                                            stride_um=grid.l0_stride * 0.25)
    path = write_report(result, None, None, tmp_path / "r.pdf", OPTIONS)
    text = squash(" ".join(pdf_text(path)))
    assert "Tile size 256 µm square: 1,024 × 1,024 px at level 0 (0.25 µm/px)" in text
    assert "Stride 128 µm: neighbouring tiles overlap by 128 µm (50 % of a tile)" in text
    assert "Read 512 × 512 px from pyramid level 1 (downsample 2, 0.5 µm/px)" in text
    assert "each tile is enlarged" not in text and "reduced from 512 to 224 px" in text


def test_no_figure_is_more_precise_than_the_setting(tmp_path: Path) -> None:
    result = build_result()
    mpp = 0.499974  # 256 µm is 512 px, recorded as 255.987 µm
    result.provenance = dataclasses.replace(result.provenance, mpp=mpp, tile_um=512 * mpp, stride_um=512 * mpp)
    path = write_report(result, thumbnail(), fake_reader, tmp_path / "r.pdf", OPTIONS)
    text = squash(" ".join(pdf_text(path)))
    assert "256 µm square" in text and "Each tile is 256 µm square" in text
    assert "255.9" not in text and "256.0" not in text and "0.499974" not in text and "0.5 µm/px" in text


# ----- the PDF's dates are the report's -------------------------------------------------------------
def test_pdf_dates_are_the_time_the_report_was_made(result: AnalysisResult, tmp_path: Path) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    path = write_report(result, thumbnail(), None, tmp_path / "r.pdf", ReportOptions())
    after = datetime.now(timezone.utc)
    meta = PdfReader(path).metadata
    assert meta is not None and meta.creation_date is not None
    created = meta.creation_date
    assert created.tzinfo is not None and before <= created <= after
    assert meta.modification_date == created
    # The same time is printed as "Report made".
    text = squash(" ".join(pdf_text(path)))
    assert f"Report made {created.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" in text


def test_a_given_report_date_is_the_pdf_date(result: AnalysisResult, tmp_path: Path) -> None:
    beijing = timezone(timedelta(hours=8))
    when = datetime(2024, 6, 1, 17, 30, 5, tzinfo=beijing)
    path = write_report(result, None, None, tmp_path / "r.pdf", ReportOptions(report_date=when))
    meta = PdfReader(path).metadata
    assert meta is not None and meta.creation_date == when and meta.modification_date == when
    assert pdf_date(when) == "D:20240601173005+08'00'"
    assert "Report made 2024-06-01 09:30 UTC" in squash(" ".join(pdf_text(path)))


# ----- page 1 is the result -------------------------------------------------------------------------
def test_page_one_has_the_composition_the_overview_and_every_warning(tmp_path: Path) -> None:
    result = build_result(pending=3, with_qc=True)
    result.provenance = dataclasses.replace(
        result.provenance, mpp_assumed=True, qc=True,
        domain_check={"passed": False, "overridden": True,
                      "findings": [{"message": "The slide looks immunohistochemical (brown stain)."}]})
    path = write_report(result, thumbnail(), fake_reader, tmp_path / "r.pdf", OPTIONS)
    reader = PdfReader(path)
    page1 = squash(reader.pages[0].extract_text())
    for c in result.summary()["classes"]:
        assert f"{c['name']} {c['tiles']} {format_area_mm2(c['area_mm2'])} {format_percent(c['percent'])}" in page1
    assert "outside what the model can judge, and was analysed anyway" in page1
    assert "The slide looks immunohistochemical (brown stain)." in page1
    assert "Partial analysis" in page1
    assert "The pixel size was not in the file and was assumed" in page1
    assert "Quality control left 1 tile(s) unclassified (1 pen, 1 blur)" in page1
    assert "Predicted classes over the slide" in page1 and "Dark grey: tiles quality control left out" in page1
    assert len(reader.pages[0].images) == 1  # the overview with the class map
    # The method details come after.
    assert "Weights SHA-256" not in page1 and "Weights SHA-256" in squash(reader.pages[1].extract_text())


def test_a_tall_overview_still_fits_on_page_one(result: AnalysisResult, tmp_path: Path) -> None:
    tall = np.full((1200, 300, 3), 230, np.uint8)
    path = write_report(result, tall, None, tmp_path / "r.pdf", OPTIONS)
    reader = PdfReader(path)
    assert len(reader.pages[0].images) == 1 and "Class composition" in reader.pages[0].extract_text()


# ----- gallery tiles are letterboxed, never stretched -----------------------------------------------
def _drawn_images(path: Path) -> list[tuple[int, int, float, float]]:
    """Every image drawn in the PDF: its pixel width and height, and the width and height it is
    drawn at (the scale of the ``cm`` that ReportLab puts right before each ``Do``)."""
    reader = PdfReader(path)
    out = []
    for page in reader.pages:
        xobjects = {name: obj.get_object() for name, obj in (page["/Resources"].get("/XObject") or {}).items()}
        ops = ContentStream(page.get_contents(), reader).operations
        for j, (operands, op) in enumerate(ops):
            if op == b"Do":
                matrix, cm = ops[j - 1]
                assert cm == b"cm"
                image = xobjects[operands[0]]
                out.append((int(image["/Width"]), int(image["/Height"]), float(matrix[0]), float(matrix[3])))
    return out


def test_a_clipped_edge_tile_keeps_its_shape(tmp_path: Path) -> None:
    result = small_tiles_result()
    edge = tile_index(result, *EDGE_TILE)
    assert tuple(result.rects()[edge][2:]) == (128, 23)
    data = build_report_data(result, None, full_reader, OPTIONS)
    serrated = data.most_confident[1]
    assert serrated.tiles[0].index == edge
    tile = serrated.tiles[0]
    # Data: the picture is the 128 x 23 strip, not a square.
    assert tile.clipped and tile.image is not None and tile.image.shape[:2] == (23, 128)
    assert not any(t.clipped for t in data.most_confident[0].tiles if min(t.l0_rect[2:]) == 128)
    # Reduced for the gallery, it keeps the shape to the pixel.
    small = build_report_data(result, None, full_reader, ReportOptions(report_date=FIXED_DATE, gallery_px=64))
    image = small.most_confident[1].tiles[0].image
    assert image is not None and image.shape[1] == 64 and abs(image.shape[0] - 64 * 23 / 128) <= 0.5

    # Layout: a square cell, the picture inside it with the picture's own aspect ratio, centred.
    cell = _tile_cell(tile, _styles(), 120.0, True)
    picture = next(f for f in cell if isinstance(f, _Picture))
    assert (picture.width, picture.height) == (120.0, 120.0)
    x, y, w, h = picture.drawn
    assert w / h == pytest.approx(128 / 23) and w == pytest.approx(120.0)
    assert x == pytest.approx(0.0) and y == pytest.approx((120.0 - h) / 2)

    class Recorder:
        def __init__(self) -> None:
            self.images: list[tuple[float, float]] = []
            self.fills: list[tuple[float, float, float, float]] = []

        def drawImage(self, image: object, x: float, y: float, w: float, h: float) -> None:  # noqa: N802
            self.images.append((w, h))

        def rect(self, x: float, y: float, w: float, h: float, fill: int = 0, stroke: int = 1) -> None:
            if fill:
                self.fills.append((x, y, w, h))

        def __getattr__(self, name: str) -> object:
            return lambda *args, **kwargs: None

    canvas = Recorder()
    picture.canv = canvas
    picture.draw()
    (dw, dh), = canvas.images
    assert dw / dh == pytest.approx(128 / 23)
    assert canvas.fills == [(0, 0, 120.0, 120.0)]  # the grey letterbox fills the whole cell behind it

    # The PDF: every picture is drawn with its own aspect ratio, and the strip is among them.
    path = write_report(result, None, full_reader, tmp_path / "r.pdf", OPTIONS)
    drawn = _drawn_images(path)
    assert (128, 23) in {(iw, ih) for iw, ih, _, _ in drawn}
    for iw, ih, dw, dh in drawn:
        assert dw / dh == pytest.approx(iw / ih, rel=1e-3)
    assert "128 × 23 px (level 0), clipped by the slide's edge" in squash(" ".join(pdf_text(path)))
