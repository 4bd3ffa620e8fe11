"""Tissue detection on a slide thumbnail, and the fraction of tissue under each tile.

Brightfield (H&E): glass is bright and grey, stained tissue is coloured, so a pixel is tissue
when its HSV saturation is above an Otsu threshold (kept within fixed bounds, so a blank slide
finds nothing and an all-tissue image is not split in two). Near-black pixels (scanner borders,
black pen, dirt) are never tissue.

Fluorescence (dark background, detected by a low median brightness): stained pixels are those
brighter than an Otsu threshold on brightness, and tissue is where they make up at least 5% of
the neighbourhood, which joins the sparse nuclei into regions. That is a rough outline, good
enough to skip empty black areas; the H&E model means little on such slides anyway.

Morphology (closing, opening, small-object removal) is done with box sums in numpy: square
structuring elements, radius proportional to the thumbnail size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chaoyang_desktop.core.errors import RoiError

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.reader import Slide

#: Saturation threshold bounds (0..255 scale): glass stays below the low bound even with a tint
#: or JPEG noise; pale eosin is above the high bound.
SAT_MIN = 18
SAT_MAX = 40
#: Pixels whose brightest channel is below this are black edges or pen, not tissue.
DARK_GUARD = 35
#: A median brightness below this means a dark (fluorescence) background.
DARK_BACKGROUND = 60
#: Lowest brightness threshold for fluorescence, above camera noise on black.
FLUO_MIN = 25
#: Fluorescence: share of bright (stained) pixels around a pixel that makes it tissue.
FLUO_DENSITY = 0.05
#: Small-object removal: a pixel survives when at least this share of a window (radius
#: ``4 * r``) around it is tissue; that drops isolated specks and keeps the edges of real tissue.
MIN_DENSITY = 0.05


def _otsu(values: np.ndarray) -> int:
    """Otsu's threshold of ``uint8`` values: the best split is ``values > t``."""
    hist = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 0
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    w1 = total - w0
    m0 = np.cumsum(hist * levels)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return int(np.argmax(between))


def _box_sum(mask: np.ndarray, r: int, outside: bool) -> np.ndarray:
    """Number of True pixels in the ``(2r+1)^2`` square around each pixel.

    Pixels outside the image count as ``outside``; True keeps tissue that touches the image
    border from being eroded away.
    """
    k = 2 * r + 1
    # One leading zero row/column, then r pixels of ``outside`` on each side.
    c = np.pad(mask.astype(np.int32), ((r + 1, r), (r + 1, r)), constant_values=int(outside))
    c[0, :] = 0
    c[:, 0] = 0
    np.cumsum(c, axis=0, out=c)
    rows = c[k:] - c[:-k]
    np.cumsum(rows, axis=1, out=rows)
    return rows[:, k:] - rows[:, :-k]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    return _box_sum(mask, r, outside=False) > 0


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    full: np.ndarray = _box_sum(mask, r, outside=True) == (2 * r + 1) ** 2
    return full


def detect_tissue(rgb: np.ndarray) -> np.ndarray:
    """Tissue mask of a thumbnail.

    Args:
        rgb: ``(H, W, 3)`` ``uint8`` image of the whole slide.

    Returns:
        ``(H, W)`` bool, True on tissue.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"detect_tissue wants an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}.")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        return np.zeros((h, w), dtype=bool)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    brightest = np.maximum(np.maximum(red, green), blue)  # faster than max(axis=2) on uint8
    r = max(1, round(max(h, w) / 512))
    if np.median(brightest) < DARK_BACKGROUND:
        bright = brightest > max(_otsu(brightest), FLUO_MIN)
        # Stained nuclei are specks with dark cytoplasm between them: tissue is where they are
        # dense enough, over a window about 1/16 of the thumbnail wide.
        r_fluo = max(1, round(max(h, w) / 32))
        mask = _box_sum(bright, r_fluo, outside=False) >= FLUO_DENSITY * (2 * r_fluo + 1) ** 2
    else:
        darkest = np.minimum(np.minimum(red, green), blue)
        sat = ((brightest - darkest).astype(np.uint16) * 255 // np.maximum(brightest, 1)).astype(np.uint8)
        threshold = int(np.clip(_otsu(sat), SAT_MIN, SAT_MAX))
        mask = (sat > threshold) & (brightest >= DARK_GUARD)
    mask = _erode(_dilate(mask, r), r)  # closing: fill small holes and gaps
    r_open = max(1, r // 2)
    mask = _dilate(_erode(mask, r_open), r_open)  # opening: drop specks and hairlines
    r_big = 4 * r
    density = _box_sum(mask, r_big, outside=False) / float((2 * r_big + 1) ** 2)
    return mask & (density >= MIN_DENSITY)


@dataclass(frozen=True)
class TissueMask:
    """A tissue mask laid over level 0 of a slide.

    Attributes:
        mask: ``(H, W)`` bool, True on tissue; covers the whole slide.
        l0_per_px_x: Level-0 pixels per mask pixel, horizontally.
        l0_per_px_y: Level-0 pixels per mask pixel, vertically.
    """

    mask: np.ndarray
    l0_per_px_x: float
    l0_per_px_y: float

    @classmethod
    def all_tissue(cls, shape: tuple[int, int], l0_per_px_x: float, l0_per_px_y: float) -> TissueMask:
        """A mask that is tissue everywhere (tissue threshold 0, or analysis of the whole slide)."""
        return cls(np.ones(shape, dtype=bool), float(l0_per_px_x), float(l0_per_px_y))

    @functools.cached_property
    def _integral(self) -> np.ndarray:
        """Summed-area table with a zero first row and column: ``I[y, x] = mask[:y, :x].sum()``."""
        table = np.zeros((self.mask.shape[0] + 1, self.mask.shape[1] + 1), dtype=np.int64)
        np.cumsum(np.cumsum(self.mask, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
        return table

    def fractions(self, rects: np.ndarray) -> np.ndarray:
        """Share of each level-0 rectangle ``(x, y, w, h)`` that is tissue.

        Rectangle edges are rounded to mask pixels. A rectangle narrower or shorter than one
        mask pixel gets the value of the mask pixel under its centre. Parts outside the slide
        count as glass.

        Args:
            rects: ``(N, 4)`` level-0 rectangles.

        Returns:
            ``(N,)`` ``float32`` in 0..1.
        """
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        mh, mw = self.mask.shape
        x0 = rects[:, 0] / self.l0_per_px_x
        y0 = rects[:, 1] / self.l0_per_px_y
        x1 = (rects[:, 0] + rects[:, 2]) / self.l0_per_px_x
        y1 = (rects[:, 1] + rects[:, 3]) / self.l0_per_px_y
        cx0, cx1 = _pixel_span(x0, x1)
        cy0, cy1 = _pixel_span(y0, y1)
        area = (cx1 - cx0) * (cy1 - cy0)
        # Pixels outside the mask are outside the slide: they count as area, not as tissue.
        cx0, cx1 = np.clip(cx0, 0, mw), np.clip(cx1, 0, mw)
        cy0, cy1 = np.clip(cy0, 0, mh), np.clip(cy1, 0, mh)
        table = self._integral
        inside = table[cy1, cx1] - table[cy0, cx1] - table[cy1, cx0] + table[cy0, cx0]
        fractions: np.ndarray = (inside / area).astype(np.float32)
        return fractions

    def apply_roi(self, roi_mask: np.ndarray) -> TissueMask:
        """This mask limited to a region of interest rasterised on the same grid."""
        if roi_mask.shape != self.mask.shape:
            raise RoiError(
                f"The ROI mask is {roi_mask.shape[1]} x {roi_mask.shape[0]} but the tissue mask is "
                f"{self.mask.shape[1]} x {self.mask.shape[0]}; rasterise the ROI on the tissue mask's grid."
            )
        return TissueMask(self.mask & roi_mask.astype(bool), self.l0_per_px_x, self.l0_per_px_y)

    @property
    def tissue_fraction(self) -> float:
        """Share of the whole slide that is tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0


def _pixel_span(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rounded mask-pixel range ``[c0, c1)`` of each interval, at least one pixel wide."""
    c0 = np.rint(lo).astype(np.int64)
    c1 = np.rint(hi).astype(np.int64)
    thin = c1 <= c0
    centre = np.floor((lo + hi) / 2).astype(np.int64)
    return np.where(thin, centre, c0), np.where(thin, centre + 1, c1)


def tissue_mask_for(slide: Slide, max_side: int = 2048, thumb: np.ndarray | None = None) -> TissueMask:
    """Detect tissue on a thumbnail of ``slide``.

    Args:
        slide: The open slide.
        max_side: Longer side of the thumbnail the mask is computed on.
        thumb: A thumbnail of the whole slide the caller already has (saves reading it again).
    """
    if thumb is None:
        thumb = slide.thumbnail(max_side)
    l0_per_px_x, l0_per_px_y = slide.l0_per_px(thumb)
    return TissueMask(detect_tissue(thumb), l0_per_px_x, l0_per_px_y)
