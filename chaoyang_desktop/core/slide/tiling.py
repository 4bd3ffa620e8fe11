"""The tile grid laid over a slide, and the coordinate spaces every module names.

Coordinate spaces (the prefix of a variable says which one it is in):

- ``l0_``: pixels of the slide's level 0 (full resolution). Every stored geometry is in this space:
  CSV, GeoJSON and the ROI file use it, as QuPath does.
- ``lv_``: pixels of the pyramid level a tile is read from (``l0 = lv * level_downsample``).
- ``t_``: the tile grid, ``t_col``/``t_row`` index tiles whose origins are ``stride`` apart.
- ``hm_``: heatmap cells, one per stride step; with overlapping tiles each cell averages the
  tiles that cover it. With stride == tile size, cells and tiles coincide.
- ``um``/``mpp``: physical micrometres, and micrometres per pixel.

The tile side is ``k`` strides (``k = tile_um / stride_um``, an integer), so the tiles' rectangles
and the cells tile the slide exactly in level-0 pixels. Tiles at the right and bottom edges are
clipped to the slide (their reads are padded with white, the colour of glass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chaoyang_desktop.core.errors import SettingsError


@dataclass(frozen=True)
class GridSpec:
    """Where the tiles lie in level-0 pixels and how each one is read.

    Attributes:
        l0_width: Slide width at level 0.
        l0_height: Slide height at level 0.
        l0_stride: Distance between tile origins (and side of a heatmap cell).
        k: Tile side in strides; the tile side is ``k * l0_stride``.
        level: Pyramid level the tiles are read from.
        lv_downsample: Downsample of that level relative to level 0.
        lv_tile: Side of a tile in pixels of the read level.
    """

    l0_width: int
    l0_height: int
    l0_stride: int
    k: int
    level: int
    lv_downsample: float
    lv_tile: int

    @property
    def l0_tile(self) -> int:
        return self.l0_stride * self.k

    @property
    def hm_cols(self) -> int:
        return max(1, math.ceil(self.l0_width / self.l0_stride))

    @property
    def hm_rows(self) -> int:
        return max(1, math.ceil(self.l0_height / self.l0_stride))

    @property
    def t_cols(self) -> int:
        return max(1, self.hm_cols - self.k + 1)

    @property
    def t_rows(self) -> int:
        return max(1, self.hm_rows - self.k + 1)

    def tile_rects(self, t_col: np.ndarray, t_row: np.ndarray) -> np.ndarray:
        """Level-0 rectangles ``(x, y, w, h)`` of tiles, clipped to the slide. Shape (N, 4), int64."""
        t_col = np.asarray(t_col, dtype=np.int64)
        t_row = np.asarray(t_row, dtype=np.int64)
        l0_x = t_col * self.l0_stride
        l0_y = t_row * self.l0_stride
        l0_w = np.minimum(self.l0_tile, self.l0_width - l0_x)
        l0_h = np.minimum(self.l0_tile, self.l0_height - l0_y)
        return np.stack([l0_x, l0_y, l0_w, l0_h], axis=1)

    def all_tiles(self) -> tuple[np.ndarray, np.ndarray]:
        """``(t_col, t_row)`` of every tile of the grid, row by row."""
        t_row, t_col = np.mgrid[0 : self.t_rows, 0 : self.t_cols]
        return t_col.ravel().astype(np.int32), t_row.ravel().astype(np.int32)

    def covered_cells(self, t_col: np.ndarray, t_row: np.ndarray) -> np.ndarray:
        """``(hm_rows, hm_cols)`` bool: the cells the given tiles cover (each spans ``k x k`` cells)."""
        out = np.zeros((self.hm_rows, self.hm_cols), dtype=bool)
        for dy in range(self.k):
            for dx in range(self.k):
                r = np.asarray(t_row) + dy
                c = np.asarray(t_col) + dx
                ok = (r < self.hm_rows) & (c < self.hm_cols)
                out[r[ok], c[ok]] = True
        return out

    def cell_areas_l0(self) -> np.ndarray:
        """Area in level-0 pixels of every heatmap cell, clipped to the slide. Shape (hm_rows, hm_cols)."""
        hm_x = np.arange(self.hm_cols) * self.l0_stride
        hm_y = np.arange(self.hm_rows) * self.l0_stride
        w = np.minimum(self.l0_stride, self.l0_width - hm_x)
        h = np.minimum(self.l0_stride, self.l0_height - hm_y)
        return np.outer(h, w).astype(np.float64)


def stride_factor(tile_um: float, stride_um: float | None) -> int:
    """How many strides make a tile side; refuses strides that do not divide the tile."""
    if tile_um <= 0:
        raise SettingsError(f"The tile size must be positive (got {tile_um} um).")
    if stride_um is None or stride_um == tile_um:
        return 1
    if stride_um <= 0 or stride_um > tile_um:
        raise SettingsError(
            f"The stride ({stride_um} um) must be positive and at most the tile size ({tile_um} um)."
        )
    k = tile_um / stride_um
    if abs(k - round(k)) > 1e-6:
        raise SettingsError(
            f"The tile size ({tile_um} um) must be a whole multiple of the stride ({stride_um} um); "
            f"try a stride of {tile_um / max(1, round(k)):g} um."
        )
    return int(round(k))


def choose_level(level_downsamples: tuple[float, ...], wanted_downsample: float) -> int:
    """The level nearest to, and not coarser than, ``wanted_downsample``.

    A tiny tolerance accepts levels such as 2.0003 when 2.0 is wanted (generic TIFF pyramids
    round their sizes).
    """
    best = 0
    for level, ds in enumerate(level_downsamples):
        if ds <= wanted_downsample * 1.01 and ds >= level_downsamples[best]:
            best = level
    return best


def make_grid(
    l0_width: int,
    l0_height: int,
    mpp: float,
    tile_um: float,
    stride_um: float | None,
    tile_px: int,
    level_downsamples: tuple[float, ...],
) -> GridSpec:
    """Lay the tile grid over a slide.

    Args:
        l0_width: Slide width at level 0.
        l0_height: Slide height at level 0.
        mpp: Level-0 micrometres per pixel.
        tile_um: Tile field of view.
        stride_um: Distance between tile origins (None: no overlap).
        tile_px: Pixels across a tile at the resolution the model was trained on (512 for
            Chaoyang); the read level is the one nearest to, and not coarser than, that.
        level_downsamples: The slide's pyramid.
    """
    if mpp <= 0 or not math.isfinite(mpp):
        raise SettingsError(f"The pixel size must be a positive number of micrometres (got {mpp}).")
    k = stride_factor(tile_um, stride_um)
    l0_stride = max(1, round(tile_um / mpp / k))
    l0_tile = l0_stride * k
    wanted_downsample = l0_tile / tile_px
    level = choose_level(level_downsamples, wanted_downsample)
    lv_downsample = float(level_downsamples[level])
    lv_tile = max(1, round(l0_tile / lv_downsample))
    return GridSpec(
        l0_width=int(l0_width),
        l0_height=int(l0_height),
        l0_stride=int(l0_stride),
        k=k,
        level=level,
        lv_downsample=lv_downsample,
        lv_tile=int(lv_tile),
    )
