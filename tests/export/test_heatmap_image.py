"""heatmap.png: the class map over the thumbnail, crisp cells, legend outside the slide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.export.heatmap_image import cell_overlay, render_heatmap, thumb_cell_index, write_heatmap_png
from tests.export.helpers import CLASS_COLORS, build_result

THUMB_W, THUMB_H = 200, 150  # the 2000 x 1500 slide at a downsample of 10: a cell is 51.2 px


def _thumb(w: int = THUMB_W, h: int = THUMB_H) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def test_size_without_and_with_legend(result: AnalysisResult) -> None:
    plain = render_heatmap(_thumb(), result, legend=False)
    assert plain.mode == "RGB" and plain.size == (THUMB_W, THUMB_H)
    below = render_heatmap(_thumb(), result)
    assert below.width >= THUMB_W and below.height > THUMB_H
    right = render_heatmap(_thumb(), result, legend_position="right")
    assert right.width > THUMB_W and right.height >= THUMB_H
    # The slide part is the same picture whatever the legend does.
    assert np.array_equal(np.asarray(below)[:THUMB_H, :THUMB_W], np.asarray(plain))
    assert np.array_equal(np.asarray(right)[:THUMB_H, :THUMB_W], np.asarray(plain))


def test_auto_legend_goes_right_of_a_portrait_thumbnail(result: AnalysisResult) -> None:
    img = render_heatmap(_thumb(150, 200), result)
    assert img.width > 150 and img.height >= 200


def test_sure_normal_cell_has_the_blended_normal_colour(result: AnalysisResult) -> None:
    thumb = _thumb()
    out = np.asarray(render_heatmap(thumb, result, alpha=0.5, legend=False)).astype(np.float64)
    # Cell (row 1, col 1) spans thumbnail pixels 51..101; stay clear of the edges.
    inner = np.s_[55:98, 55:98]
    expected = 0.5 * thumb[inner].astype(np.float64) + 0.5 * _rgb(CLASS_COLORS[0])
    assert np.max(np.abs(out[inner] - expected)) <= 1.0


def test_cells_without_predictions_are_untouched(result: AnalysisResult) -> None:
    thumb = _thumb()
    out = np.asarray(render_heatmap(thumb, result, legend=False))
    # (row 0, col 3) is background, (row 2, col 2) failed: thumbnail pixels exactly as given.
    assert np.array_equal(out[0:51, 154:200], thumb[0:51, 154:200])
    assert np.array_equal(out[103:150, 103:153], thumb[103:150, 103:153])
    # Predicted cells elsewhere did change.
    assert not np.array_equal(out[0:51, 0:51], thumb[0:51, 0:51])


def test_cell_edges_are_crisp_and_follow_the_slide(result: AnalysisResult) -> None:
    hm_row, hm_col = thumb_cell_index(THUMB_W, THUMB_H, result.grid)
    assert hm_col[50] == 0 and hm_col[51] == 1 and hm_col[153] == 2 and hm_col[154] == 3
    assert hm_col[-1] == result.grid.hm_cols - 1 and hm_row[-1] == result.grid.hm_rows - 1
    thumb = np.full((THUMB_H, THUMB_W, 3), 128, dtype=np.uint8)
    out = np.asarray(render_heatmap(thumb, result, alpha=1.0, alpha_by_confidence=False, legend=False))
    # Within a cell every pixel is the same colour: nearest neighbour, no interpolation.
    for r0, r1, c0, c1 in [(0, 51, 0, 51), (51, 102, 51, 102), (102, 150, 0, 51)]:
        block = out[r0:r1, c0:c1].reshape(-1, 3)
        assert (block == block[0]).all()


def test_alpha_modes(result: AnalysisResult) -> None:
    hm, cnt = result.heatmap()
    by_conf = cell_overlay(result, alpha=0.6)
    flat = cell_overlay(result, alpha=0.6, alpha_by_confidence=False)
    covered = cnt > 0
    np.testing.assert_array_equal(by_conf[..., 3][covered], np.rint(0.6 * np.max(hm[covered], axis=1) * 255))
    assert (flat[..., 3][covered] == round(0.6 * 255)).all()
    assert (by_conf[..., 3][~covered] == 0).all() and (flat[..., 3][~covered] == 0).all()
    with pytest.raises(SettingsError):
        cell_overlay(result, alpha=1.5)


def test_overlapping_tiles_and_odd_thumbnail_sizes() -> None:
    result = build_result(stride_um=128.0)
    assert result.grid.k == 2
    img = render_heatmap(_thumb(333, 250), result, legend=False)
    assert img.size == (333, 250)


def test_roi_outline_is_drawn(result: AnalysisResult) -> None:
    thumb = np.full((THUMB_H, THUMB_W, 3), 255, dtype=np.uint8)
    roi = [np.array([[600, 600], [1400, 600], [1400, 1200], [600, 1200]], dtype=float)]
    out = np.asarray(render_heatmap(thumb, result, alpha=0.0, legend=False, roi_polygons=roi))
    assert (out[60, 100] == 0).all() and (out[100, 140] == 0).all()
    assert (out[90, 100] == 255).all()


def test_legend_shows_every_class_colour(result: AnalysisResult) -> None:
    img = np.asarray(render_heatmap(_thumb(), result))
    panel = img[THUMB_H:].reshape(-1, 3)
    for color in CLASS_COLORS:
        assert (panel == _rgb(color).astype(np.uint8)).all(axis=1).sum() > 20


def test_png_file(result: AnalysisResult, tmp_path: Path) -> None:
    path = tmp_path / "heatmap.png"
    write_heatmap_png(_thumb(), result, path, alpha=0.4)
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert np.array_equal(np.asarray(img), np.asarray(render_heatmap(_thumb(), result, alpha=0.4)))
    assert list(tmp_path.iterdir()) == [path]


def test_tiles_left_out_by_quality_control_are_dark_grey_and_counted() -> None:
    from chaoyang_desktop.export.heatmap_image import QC_RGB, cell_overlay
    from tests.export.helpers import QC_TILE, build_result

    result = build_result(with_qc=True)
    overlay = cell_overlay(result, alpha=0.5)
    col, row = QC_TILE  # one tile, one cell (no overlap)
    assert tuple(overlay[row, col, :3]) == QC_RGB and overlay[row, col, 3] == 128
    done = result.status == 1
    assert all(tuple(overlay[r, c, :3]) != QC_RGB for c, r in zip(result.t_col[done], result.t_row[done]))
