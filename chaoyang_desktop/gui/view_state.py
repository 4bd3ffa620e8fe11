"""Where the slide view looks: one small object that the view, minimap, scale bar and hover share.

The state is the centre of the viewport in level-0 pixels (``l0_cx``, ``l0_cy``) and the zoom
``scale`` in screen pixels per level-0 pixel (1.0 is "1:1", full resolution). Every other widget
derives what it needs from it (the visible rectangle, the pyramid level, the scale bar length),
so they cannot disagree. ``changed`` is emitted once per user action.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, QPointF, QRectF, Signal

#: Closest zoom: screen pixels per level-0 pixel (8 = 800 %, individual pixels are large squares).
MAX_SCALE = 8.0
#: How far out one may zoom, as a fraction of the "fit" zoom.
MIN_FIT_FRACTION = 0.25
#: Zoom factor of one wheel notch or one +/- key press.
ZOOM_STEP = 1.25

#: The microscope magnifications View > Magnification offers, as on a microscope's nosepiece.
MAGNIFICATION_PRESETS: tuple[float, ...] = (1.25, 2.5, 5.0, 10.0, 20.0, 40.0)
#: How far a preset may enlarge beyond the scan's own resolution (digital zoom), as viewers allow.
MAX_DIGITAL_ZOOM = 2.0
#: Leeway on that limit: a "20x" scanner at 0.51 um/px still offers 40x.
_DIGITAL_ZOOM_LEEWAY = 1.05
#: Micrometres per pixel that make 1x when a slide gives no objective: 0.5 um/px is 20x, 0.25 is 40x
#: (the scale bar's estimate uses the same rule).
UM_PER_PX_AT_1X = 10.0


def native_magnification(objective_power: float | None, mpp: float | None) -> tuple[float | None, bool]:
    """``(magnification of level 0 at 1:1, estimated)``: the scan's objective, else from the pixel size.

    ``(None, True)`` when the slide gives neither.
    """
    if objective_power:
        return float(objective_power), False
    if mpp:
        return UM_PER_PX_AT_1X / mpp, True
    return None, True


def magnification_scale(magnification: float, native: float) -> float:
    """Screen pixels per level-0 pixel that show the slide at ``magnification``."""
    return magnification / native


def magnification_reachable(magnification: float, native: float | None) -> bool:
    """Whether a preset is within :data:`MAX_DIGITAL_ZOOM` of the scan's native magnification."""
    return native is not None and magnification_scale(magnification, native) <= MAX_DIGITAL_ZOOM * _DIGITAL_ZOOM_LEEWAY


class ViewState(QObject):
    """Centre (level-0 pixels) and zoom of the slide view, plus the sizes it depends on."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.l0_width = 1
        self.l0_height = 1
        self.view_width = 1
        self.view_height = 1
        self.l0_cx = 0.5
        self.l0_cy = 0.5
        self.scale = 1.0
        self._fitted = True

    # ----- sizes --------------------------------------------------------------------------------
    def set_slide_size(self, l0_width: int, l0_height: int) -> None:
        """A new slide: remember its size and fit it in the view."""
        self.l0_width, self.l0_height = max(1, int(l0_width)), max(1, int(l0_height))
        self.fit()

    def set_view_size(self, width: int, height: int) -> None:
        """The widget was resized; a fitted view stays fitted, otherwise the centre is kept."""
        width, height = max(1, int(width)), max(1, int(height))
        if (width, height) == (self.view_width, self.view_height):
            return
        self.view_width, self.view_height = width, height
        if self._fitted:
            self.fit()
        else:
            self._clamp()
            self.changed.emit()

    # ----- derived quantities ------------------------------------------------------------------
    @property
    def fit_scale(self) -> float:
        """The zoom at which the whole slide fits in the view, with a small margin."""
        margin = 0.96
        return max(1e-6, margin * min(self.view_width / self.l0_width, self.view_height / self.l0_height))

    @property
    def min_scale(self) -> float:
        return min(self.fit_scale * MIN_FIT_FRACTION, MAX_SCALE)

    @property
    def l0_per_screen_px(self) -> float:
        return 1.0 / self.scale

    def screen_to_l0(self, x: float, y: float) -> tuple[float, float]:
        """Level-0 position of a point of the widget."""
        return (self.l0_cx + (x - self.view_width / 2.0) / self.scale,
                self.l0_cy + (y - self.view_height / 2.0) / self.scale)

    def l0_to_screen(self, l0_x: float, l0_y: float) -> tuple[float, float]:
        """Widget position of a level-0 point."""
        return ((l0_x - self.l0_cx) * self.scale + self.view_width / 2.0,
                (l0_y - self.l0_cy) * self.scale + self.view_height / 2.0)

    def l0_rect_to_screen(self, l0_x: float, l0_y: float, l0_w: float, l0_h: float) -> QRectF:
        x, y = self.l0_to_screen(l0_x, l0_y)
        return QRectF(x, y, l0_w * self.scale, l0_h * self.scale)

    def screen_point_to_l0(self, p: QPointF) -> QPointF:
        x, y = self.screen_to_l0(p.x(), p.y())
        return QPointF(x, y)

    def visible_l0_rect(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the viewport in level-0 pixels (may extend past the slide)."""
        x0, y0 = self.screen_to_l0(0, 0)
        x1, y1 = self.screen_to_l0(self.view_width, self.view_height)
        return x0, y0, x1, y1

    def zoom_percent(self) -> float:
        return 100.0 * self.scale

    # ----- changes -----------------------------------------------------------------------------
    def fit(self) -> None:
        """Show the whole slide, centred."""
        self.scale = self.fit_scale
        self.l0_cx, self.l0_cy = self.l0_width / 2.0, self.l0_height / 2.0
        self._fitted = True
        self.changed.emit()

    def set_scale(self, scale: float, anchor: tuple[float, float] | None = None) -> None:
        """Zoom to ``scale`` keeping the slide point under ``anchor`` (widget coordinates) still."""
        scale = min(MAX_SCALE, max(self.min_scale, float(scale)))
        if not math.isfinite(scale) or scale == self.scale:
            return
        ax, ay = anchor if anchor is not None else (self.view_width / 2.0, self.view_height / 2.0)
        l0_ax, l0_ay = self.screen_to_l0(ax, ay)
        self.scale = scale
        # Put the anchor's slide point back under the anchor.
        self.l0_cx = l0_ax - (ax - self.view_width / 2.0) / scale
        self.l0_cy = l0_ay - (ay - self.view_height / 2.0) / scale
        self._fitted = False
        self._clamp()
        self.changed.emit()

    def zoom_by(self, factor: float, anchor: tuple[float, float] | None = None) -> None:
        self.set_scale(self.scale * factor, anchor)

    def pan_screen(self, dx: float, dy: float) -> None:
        """Move the slide by ``dx, dy`` screen pixels (a drag to the right shows what is left)."""
        if dx == 0 and dy == 0:
            return
        self.l0_cx -= dx / self.scale
        self.l0_cy -= dy / self.scale
        self._fitted = False
        self._clamp()
        self.changed.emit()

    def center_on(self, l0_x: float, l0_y: float) -> None:
        self.l0_cx, self.l0_cy = float(l0_x), float(l0_y)
        self._fitted = False
        self._clamp()
        self.changed.emit()

    def _clamp(self) -> None:
        """Keep the centre on the slide, so the slide can never be lost off screen."""
        self.l0_cx = min(max(self.l0_cx, 0.0), float(self.l0_width))
        self.l0_cy = min(max(self.l0_cy, 0.0), float(self.l0_height))
