"""The tile grid: rectangles tile the slide exactly, at whatever pyramid level is read."""

from __future__ import annotations

import numpy as np
import pytest

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.slide.tiling import choose_level, make_grid, stride_factor


def _coverage(grid_w: int, grid_h: int, rects: np.ndarray) -> np.ndarray:
    cover = np.zeros((grid_h, grid_w), dtype=np.int32)
    for x, y, w, h in rects:
        cover[y : y + h, x : x + w] += 1
    return cover


@pytest.mark.parametrize(
    ("w", "h", "mpp", "downsamples", "expected_level"),
    [
        (2220, 2967, 0.499, (1.0,), 0),
        (3968, 4864, 0.22818, (1, 2, 4, 8, 16, 32, 64), 1),
        (5000, 3000, 0.125, (1.0, 2.0, 4.0, 8.0), 2),
        (700, 500, 0.5, (1.0, 2.0003, 4.002), 0),
    ],
)
def test_tiles_cover_the_slide_exactly_once(w: int, h: int, mpp: float, downsamples: tuple[float, ...],
                                            expected_level: int) -> None:
    grid = make_grid(w, h, mpp, 256.0, None, 512, downsamples)
    assert grid.level == expected_level
    t_col, t_row = grid.all_tiles()
    rects = grid.tile_rects(t_col, t_row)
    cover = _coverage(w, h, rects)
    assert cover.min() == 1 and cover.max() == 1
    # The read at the chosen level spans the tile's level-0 extent.
    assert abs(grid.lv_tile * grid.lv_downsample - grid.l0_tile) <= grid.lv_downsample
    assert grid.cell_areas_l0().sum() == w * h


def test_overlapping_tiles_cells_tile_the_slide() -> None:
    grid = make_grid(1500, 1100, 0.5, 256.0, 128.0, 512, (1.0,))
    assert grid.k == 2 and grid.l0_stride * 2 == grid.l0_tile
    t_col, t_row = grid.all_tiles()
    cover = _coverage(1500, 1100, grid.tile_rects(t_col, t_row))
    assert cover.min() >= 1  # no gap
    assert cover.max() == 4  # interior points are covered by k*k tiles
    assert grid.cell_areas_l0().sum() == 1500 * 1100


def test_tiny_slide_gets_one_clipped_tile() -> None:
    grid = make_grid(100, 80, 0.5, 256.0, None, 512, (1.0,))
    rects = grid.tile_rects(*grid.all_tiles())
    assert rects.tolist() == [[0, 0, 100, 80]]


def test_stride_must_divide_tile() -> None:
    assert stride_factor(256, 64) == 4
    with pytest.raises(SettingsError, match="whole multiple"):
        stride_factor(256, 100)
    with pytest.raises(SettingsError):
        stride_factor(256, 300)


def test_level_choice_is_nearest_not_coarser() -> None:
    assert choose_level((1, 4, 16), 3.9) == 0
    assert choose_level((1, 4, 16), 4.0) == 1
    assert choose_level((1, 2.0003, 4.002), 2.0) == 1
