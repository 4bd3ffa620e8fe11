"""The scale bar and magnification readout drawn in the bottom-left corner of the slide view.

The bar length is a round number of micrometres (1, 2 or 5 times a power of ten) whose on-screen
length is between about 60 and 150 pixels at the current zoom; the text says it in um or mm.
The magnification is the scanner's objective power times the zoom when the file gives the
objective, otherwise it is estimated from the pixel size (10 um/px is 1x, as 0.25 um/px is 40x).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from chaoyang_desktop.gui.view_state import ViewState

#: Wanted bar length on screen, in pixels.
TARGET_PX = 110.0


def nice_length_um(um_per_screen_px: float, target_px: float = TARGET_PX) -> float:
    """A round length (1, 2 or 5 x 10^n um) closest below ``target_px`` pixels."""
    raw = um_per_screen_px * target_px
    exp = math.floor(math.log10(raw))
    best = 10.0 ** exp
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10.0 ** exp <= raw:
            best = m * 10.0 ** exp
    return best


def format_length(um: float) -> str:
    if um >= 1000.0:
        mm = um / 1000.0
        return f"{mm:g} mm"
    if um >= 1.0:
        return f"{um:g} \u00b5m"
    return f"{um * 1000.0:g} nm"


def magnification(scale: float, mpp: float | None, objective_power: float | None) -> tuple[float | None, bool]:
    """``(magnification, estimated)`` at zoom ``scale`` (screen px per level-0 px)."""
    if objective_power:
        return objective_power * scale, False
    if mpp:
        return 10.0 / mpp * scale, True
    return None, True


class ScaleBar(QWidget):
    """Bar + length, and the magnification line, on a translucent white plate."""

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.mpp: float | None = None
        self.mpp_assumed = False
        self.objective_power: float | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        state.changed.connect(self._refresh)
        self.setFixedSize(200, 52)

    def set_slide_facts(self, mpp: float | None, mpp_assumed: bool, objective_power: float | None) -> None:
        self.mpp, self.mpp_assumed, self.objective_power = mpp, mpp_assumed, objective_power
        self._refresh()

    def bar(self) -> tuple[float, str] | None:
        """``(length in screen pixels, label)`` of the bar now, None without a pixel size."""
        if not self.mpp:
            return None
        um_per_px = self.mpp / self._state.scale
        um = nice_length_um(um_per_px)
        return um / um_per_px, format_length(um)

    def magnification_text(self) -> str:
        mag, estimated = magnification(self._state.scale, self.mpp, self.objective_power)
        zoom = f"{self._state.zoom_percent():.0f} %"
        if mag is None:
            return f"zoom {zoom}"
        value = f"{mag:.1f}\u00d7" if mag < 10 else f"{mag:.0f}\u00d7"
        prefix = "\u2248 " if estimated else ""
        return f"{prefix}{value}   ({zoom})"

    def _refresh(self) -> None:
        fm = QFontMetrics(self._font())
        bar = self.bar()
        label = bar[1] + (" (assumed)" if self.mpp_assumed else "") if bar else "pixel size unknown"
        width = max(fm.horizontalAdvance(self.magnification_text()), fm.horizontalAdvance(label),
                    int(bar[0]) if bar else 0) + 20
        self.setFixedSize(width, 2 * fm.height() + 22)
        self.update()

    def _font(self) -> QFont:
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF()))
        return f

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setFont(self._font())
        fm = p.fontMetrics()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 215))
        p.drawRoundedRect(QRectF(self.rect()), 4, 4)
        ink = QColor(20, 20, 20)
        x0, y = 10, 8
        bar = self.bar()
        if bar is not None:
            length, label = bar
            if self.mpp_assumed:
                label += " (assumed)"
            p.setPen(ink)
            p.drawText(x0, y + fm.ascent(), label)
            y += fm.height() + 3
            p.setPen(QPen(ink, 3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.FlatCap))
            p.drawLine(x0, y + 2, x0 + round(length), y + 2)
            p.setPen(QPen(ink, 1.5))
            p.drawLine(x0, y - 2, x0, y + 6)
            p.drawLine(x0 + round(length), y - 2, x0 + round(length), y + 6)
            y += 9
        else:
            p.setPen(QColor(140, 30, 30))
            p.drawText(x0, y + fm.ascent(), "pixel size unknown")
            y += fm.height() + 3
        p.setPen(ink)
        p.drawText(x0, y + fm.ascent(), self.magnification_text())
        p.end()
