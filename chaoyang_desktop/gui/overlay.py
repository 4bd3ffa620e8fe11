"""The heatmap overlay: what it shows (:class:`OverlayStyle`) and its one small image (:class:`HeatmapLayer`).

The layer holds the per-cell class probabilities of the current analysis (``hm_`` space: one cell
per stride step, see :mod:`chaoyang_desktop.core.slide.tiling`) and turns them into ONE RGBA image with
one pixel per cell. The slide view scales that image onto the slide with a single ``drawImage``,
so it stays aligned at every zoom and costs nothing to repaint. Overlay controls only rebuild
this small image; batches of a running analysis replace the probabilities and rebuild it too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor, QImage

from chaoyang_desktop.core.analysis.results import entropy_of, margin_of
from chaoyang_desktop.core.slide.tiling import GridSpec
from chaoyang_desktop.gui.colormap import VIRIDIS, apply_lut

MODE_TOP = "top"
MODE_PROBABILITY = "probability"
MODE_UNCERTAINTY = "uncertainty"

#: Uncertainty measures, with their words: 1 - margin (top-1 minus top-2), normalised entropy,
#: and the TTA spread of the top class (doubled, so the largest possible spread, 0.5, is 1).
UNCERTAINTY_MEASURES: tuple[tuple[str, str], ...] = (
    ("margin", "1 \u2212 margin (top two classes close)"),
    ("entropy", "Entropy"),
    ("spread", "TTA spread (orientations disagree)"),
)

#: Cells still waiting for the model during a run: a faint grey veil, so progress is visible.
PENDING_RGBA = (150, 150, 150, 60)
#: Cells of tiles quality control left out: a dark neutral grey that no class uses, opaque
#: enough to read on pale tissue; the slide view hatches them too.
QC_RGBA = (60, 60, 60, 150)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = QColor(color)
    return c.red(), c.green(), c.blue()


@dataclass(frozen=True)
class OverlayStyle:
    """Every overlay control in one value; the overlay panel edits it, the layer renders it.

    Attributes:
        class_names: The model's classes, in index order.
        class_colors: ``#rrggbb`` per class.
        visible: Per class, whether its cells are drawn (top-class mode).
        opacity: Overall opacity of a cell, 0..1.
        alpha_by_confidence: Multiply the opacity by the cell's confidence (top-class
            probability; in probability mode the shown probability).
        min_confidence: Cells whose confidence (or shown probability) is below this are hidden.
        mode: ``"top"`` (colour of the top class), ``"probability"`` (one class's probability
            on a colour map) or ``"uncertainty"`` (how unsure the model is, on a colour map).
        prob_class: The class shown in probability mode.
        show: Master switch.
        uncertainty: The measure shown in uncertainty mode (:data:`UNCERTAINTY_MEASURES`).
        smooth: Interpolate the probabilities between tile centres (bilinearly, on a finer grid)
            before colouring, instead of one flat block per heatmap cell.
    """

    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    visible: tuple[bool, ...]
    opacity: float = 0.4
    alpha_by_confidence: bool = True
    min_confidence: float = 0.0
    mode: str = MODE_TOP
    prob_class: int = 0
    show: bool = True
    uncertainty: str = "margin"
    smooth: bool = False

    @classmethod
    def for_classes(cls, names: tuple[str, ...], colors: tuple[str, ...]) -> OverlayStyle:
        return cls(tuple(names), tuple(colors), (True,) * len(names))

    def replace(self, **changes: object) -> OverlayStyle:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def uncertainty_values(probs: np.ndarray, measure: str, spread: np.ndarray | None) -> np.ndarray:
    """Per-cell uncertainty in [0, 1] (1: most unsure) for ``(N, C)`` cell probabilities."""
    if measure == "entropy":
        return entropy_of(probs).astype(np.float64)
    if measure == "spread":
        if spread is None:
            return np.full(len(probs), np.nan)
        return np.clip(2.0 * spread.astype(np.float64), 0.0, 1.0)
    return 1.0 - margin_of(probs).astype(np.float64)


def render_cells(hm_probs: np.ndarray, hm_count: np.ndarray, style: OverlayStyle,
                 hm_pending: np.ndarray | None = None, hm_qc: np.ndarray | None = None,
                 hm_spread: np.ndarray | None = None) -> np.ndarray:
    """The overlay as uint8 RGBA ``(hm_rows, hm_cols, 4)``, not premultiplied.

    Args:
        hm_probs: ``(rows, cols, C)`` per-cell probabilities, NaN where no done tile covers it.
        hm_count: ``(rows, cols)`` done tiles covering each cell (0: uncovered).
        style: What to show.
        hm_pending: Optional ``(rows, cols)`` bool, cells that pending tiles will cover.
        hm_qc: Optional ``(rows, cols)`` bool, cells only tiles left out by quality control cover.
        hm_spread: Optional ``(rows, cols)`` TTA spread of the top class, for uncertainty mode.
    """
    rows, cols = hm_count.shape
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    if hm_pending is not None:
        out[hm_pending & (hm_count == 0)] = PENDING_RGBA
    if hm_qc is not None and style.show:
        out[hm_qc & (hm_count == 0)] = QC_RGBA
    covered = hm_count > 0
    if not style.show or not np.any(covered):
        return out
    probs = hm_probs[covered]
    if style.mode == MODE_UNCERTAINTY:
        value = uncertainty_values(probs, style.uncertainty, hm_spread[covered] if hm_spread is not None else None)
        known = np.isfinite(value)
        value = np.where(known, value, 0.0)
        rgb = apply_lut(value, VIRIDIS)
        keep = known
    elif style.mode == MODE_PROBABILITY:
        k = min(max(0, style.prob_class), probs.shape[1] - 1)
        value = probs[:, k].astype(np.float64)
        rgb = apply_lut(value, VIRIDIS)
        keep = value >= style.min_confidence
    else:
        label = np.argmax(probs, axis=1)
        value = np.max(probs, axis=1).astype(np.float64)
        palette = np.array([hex_to_rgb(c) for c in style.class_colors], dtype=np.uint8)
        rgb = palette[label]
        visible = np.asarray(style.visible, dtype=bool)
        keep = (value >= style.min_confidence) & visible[label]
    # Fading by the value only in top-class mode: on a colour map it would hide the low end of
    # the map, which is the information (a low probability, a sure tile).
    fade = style.alpha_by_confidence and style.mode == MODE_TOP
    alpha = style.opacity * (value if fade else np.ones_like(value))
    cell = np.zeros((len(value), 4), dtype=np.uint8)
    cell[:, :3] = rgb
    cell[:, 3] = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    cell[~keep] = 0
    # Hidden covered cells show the slide, not the pending veil.
    out[covered] = cell
    return out


#: Finer cells per heatmap cell in smooth mode, at most; fewer on large grids so the image stays
#: within :data:`SMOOTH_MAX_SIDE` pixels.
SMOOTH_FACTOR = 8
SMOOTH_MAX_SIDE = 4096


def smooth_factor(rows: int, cols: int) -> int:
    return max(1, min(SMOOTH_FACTOR, SMOOTH_MAX_SIDE // max(1, rows, cols)))


def upsample_cells(hm_probs: np.ndarray, hm_count: np.ndarray, factor: int,
                   hm_spread: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Probabilities interpolated bilinearly between cell centres on a grid ``factor`` times finer.

    Uncovered cells do not pull their neighbours towards zero: values and coverage are
    interpolated separately and divided (normalised convolution). A fine cell is covered where
    the interpolated coverage reaches one half, so the outline of the analysed tissue keeps its
    place.

    Returns:
        ``(probs, count, spread)`` on the fine grid (``count`` 1 where covered, else 0).
    """
    import cv2

    rows, cols = hm_count.shape
    size = (cols * factor, rows * factor)
    covered = (hm_count > 0).astype(np.float32)
    weight = cv2.resize(covered, size, interpolation=cv2.INTER_LINEAR)
    ok = weight >= 0.5
    safe = np.maximum(weight, 1e-6)

    def interp(values: np.ndarray) -> np.ndarray:
        v = np.where(covered[..., None] > 0, np.nan_to_num(values), 0.0).astype(np.float32)
        planes = [cv2.resize(np.ascontiguousarray(v[..., k]), size, interpolation=cv2.INTER_LINEAR)
                  for k in range(v.shape[-1])]
        out = np.stack(planes, axis=-1) / safe[..., None]
        out[~ok] = np.nan
        return out

    probs = interp(hm_probs)
    spread = interp(hm_spread[..., None])[..., 0] if hm_spread is not None else None
    return probs, ok.astype(np.int32), spread


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """An owned, premultiplied QImage of a uint8 RGBA array (built on the GUI thread)."""
    rgba = np.ascontiguousarray(rgba)
    h, w = rgba.shape[:2]
    img = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return img.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


class HeatmapLayer:
    """Per-cell probabilities of one analysis and the small image drawn from them."""

    def __init__(self, grid: GridSpec, style: OverlayStyle) -> None:
        self.grid = grid
        self.style = style
        self.hm_probs = np.full((grid.hm_rows, grid.hm_cols, len(style.class_names)), np.nan, dtype=np.float32)
        self.hm_count = np.zeros((grid.hm_rows, grid.hm_cols), dtype=np.int32)
        self.hm_pending: np.ndarray | None = None
        self.hm_qc: np.ndarray | None = None
        self.hm_spread: np.ndarray | None = None
        self._image: QImage | None = None

    def set_cells(self, hm_probs: np.ndarray, hm_count: np.ndarray, hm_pending: np.ndarray | None,
                  hm_qc: np.ndarray | None = None, hm_spread: np.ndarray | None = None) -> None:
        self.hm_probs, self.hm_count, self.hm_pending = hm_probs, hm_count, hm_pending
        self.hm_qc, self.hm_spread = hm_qc, hm_spread
        self._image = None

    def set_style(self, style: OverlayStyle) -> None:
        if style != self.style:
            self.style = style
            self._image = None

    @property
    def image_scale(self) -> int:
        """Image pixels per heatmap cell: 1, or the upsampling factor in smooth mode."""
        return smooth_factor(*self.hm_count.shape) if self.style.smooth else 1

    def rgba(self) -> np.ndarray:
        f = self.image_scale
        if f == 1:
            return render_cells(self.hm_probs, self.hm_count, self.style, self.hm_pending, self.hm_qc, self.hm_spread)
        probs, count, spread = upsample_cells(self.hm_probs, self.hm_count, f, self.hm_spread)

        def fine(mask: np.ndarray | None) -> np.ndarray | None:
            return None if mask is None else np.repeat(np.repeat(mask, f, axis=0), f, axis=1)

        return render_cells(probs, count, self.style, fine(self.hm_pending), fine(self.hm_qc), spread)

    def image(self) -> QImage:
        if self._image is None:
            self._image = rgba_to_qimage(self.rgba())
        return self._image

    def cell_at(self, l0_x: float, l0_y: float) -> tuple[int, int] | None:
        """``(hm_row, hm_col)`` of the cell holding a level-0 point, None outside the slide."""
        g = self.grid
        if not (0 <= l0_x < g.l0_width and 0 <= l0_y < g.l0_height):
            return None
        return int(l0_y // g.l0_stride), int(l0_x // g.l0_stride)

    def probabilities_at(self, l0_x: float, l0_y: float) -> tuple[np.ndarray, int, int, int] | None:
        """``(probs, n_tiles, hm_row, hm_col)`` of the cell under a point, None where nothing is known."""
        cell = self.cell_at(l0_x, l0_y)
        if cell is None:
            return None
        r, c = cell
        n = int(self.hm_count[r, c])
        if n == 0:
            return None
        return self.hm_probs[r, c].copy(), n, r, c
