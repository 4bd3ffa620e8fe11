"""The tile under a click, shown in the Inspector with its pixels; the cursor position in the status bar.

Depends on the open slide's :class:`~chaoyang_desktop.core.session.SlideSession` (its result) and
the widgets it fills, never on the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_FAILED, TILE_QC, entropy_of, margin_of
from chaoyang_desktop.core.slide.tile_qc import describe
from chaoyang_desktop.gui.inspector import TileInfo

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.results import AnalysisResult
    from PySide6.QtWidgets import QLabel

    from chaoyang_desktop.core.session import SlideSession
    from chaoyang_desktop.gui.inspector import Inspector
    from chaoyang_desktop.gui.overlay import OverlayStyle
    from chaoyang_desktop.gui.slide_view import SlideView


class TileInspection(QObject):
    """Fills the Inspector from the session's result, and the cursor label from the slide."""

    #: A tile is shown in the Inspector (the window brings it forward).
    tile_shown = Signal()

    def __init__(self, view: SlideView, inspector: Inspector, cursor_label: QLabel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.inspector = inspector
        self.cursor_label = cursor_label
        self.session: SlideSession | None = None
        self.style: OverlayStyle | None = None
        self._rects_of: AnalysisResult | None = None
        self._rects_cache = np.empty((0, 4), dtype=np.int64)
        self._request = 0
        view.tile_clicked.connect(self.inspect_at)
        view.cursor_moved.connect(self._on_cursor_moved)
        view.loader.region_ready.connect(self._on_region_ready)
        view.loader.region_failed.connect(self._on_region_failed)

    def _rects(self, r: AnalysisResult) -> np.ndarray:
        """The result's tile rectangles, kept while it is the same result: the hover asks on
        every mouse move, and they never change for a result."""
        if self._rects_of is not r:
            self._rects_of, self._rects_cache = r, r.rects()
        return self._rects_cache

    def tile_at(self, l0_x: float, l0_y: float) -> int | None:
        """Index of the analysed tile under a point (with overlap: the done one centred nearest)."""
        r = self.session.result if self.session is not None else None
        if r is None or r.n_tiles == 0:
            return None
        rects = self._rects(r)
        inside = np.flatnonzero((rects[:, 0] <= l0_x) & (l0_x < rects[:, 0] + rects[:, 2])
                                & (rects[:, 1] <= l0_y) & (l0_y < rects[:, 1] + rects[:, 3]))
        if len(inside) == 0:
            return None
        done = r.status[inside] == TILE_DONE
        cand = inside[done] if np.any(done) else inside
        cx = rects[cand, 0] + rects[cand, 2] / 2
        cy = rects[cand, 1] + rects[cand, 3] / 2
        return int(cand[np.argmin((cx - l0_x) ** 2 + (cy - l0_y) ** 2)])

    def inspect_at(self, l0_x: float, l0_y: float) -> None:
        i = self.tile_at(l0_x, l0_y)
        r = self.session.result if self.session is not None else None
        if i is None or r is None or self.style is None:
            self.view.set_selected_tile(None)
            if r is not None:
                self.inspector.clear("No analysed tile here: only tissue tiles are classified.")
            return
        x, y, w, h = (int(v) for v in self._rects(r)[i])
        status = {TILE_DONE: "done", TILE_FAILED: "failed", TILE_QC: "qc"}.get(int(r.status[i]), "pending")
        probs = tuple(float(p) for p in r.probs[i]) if status == "done" else None
        done = status == "done"
        top = int(np.argmax(r.probs[i])) if done else 0
        info = TileInfo(i, int(r.t_col[i]), int(r.t_row[i]), (x, y, w, h), r.provenance.tile_um, status, probs,
                        r.errors.get(i), self.style.class_names, self.style.class_colors, float(r.tissue[i]),
                        qc=describe(int(r.qc[i])),
                        entropy=float(entropy_of(r.probs[i:i + 1])[0]) if done else None,
                        margin=float(margin_of(r.probs[i:i + 1])[0]) if done else None,
                        spread=float(r.spread[i, top]) if done and r.spread is not None else None)
        self.inspector.show_tile(info)
        self.view.set_selected_tile((x, y, w, h))
        self._request = self.view.loader.request_region(x, y, 0, w, h)
        self.tile_shown.emit()

    def _on_region_ready(self, rid: int, rgb: np.ndarray) -> None:
        if rid == self._request:
            self.inspector.set_pixels(rgb)

    def _on_region_failed(self, rid: int, message: str) -> None:
        if rid == self._request:
            self.inspector.set_pixels_failed(message)

    def _on_cursor_moved(self, l0_x: float, l0_y: float) -> None:
        slide = self.session.slide if self.session is not None else None
        if slide is None:
            return
        w, h = slide.dimensions
        if not (0 <= l0_x < w and 0 <= l0_y < h):
            self.cursor_label.setText("")
            return
        text = f"x {l0_x:,.0f}  y {l0_y:,.0f} px"
        if slide.mpp:
            text += f"  ({l0_x * slide.mpp / 1000:.2f}, {l0_y * slide.mpp / 1000:.2f} mm)"
        about = self.tile_words(l0_x, l0_y)
        self.cursor_label.setText(f"{text}  \u00b7  {about}" if about else text)

    def tile_words(self, l0_x: float, l0_y: float) -> str:
        """What the tile under the cursor is, in a few words: its class and uncertainty, or why it was left out."""
        i = self.tile_at(l0_x, l0_y)
        r = self.session.result if self.session is not None else None
        if i is None or r is None:
            return ""
        status = int(r.status[i])
        if status == TILE_QC:
            return f"not classified: {describe(int(r.qc[i]))}"
        if status == TILE_FAILED:
            return "tile could not be read"
        if status != TILE_DONE:
            return ""
        probs = r.probs[i]
        k = int(np.argmax(probs))
        words = (f"{r.class_names[k]} {100 * float(probs[k]):.0f}%, margin {float(margin_of(probs[None])[0]):.2f}, "
                 f"entropy {float(entropy_of(probs[None])[0]):.2f}")
        if r.spread is not None:
            words += f", TTA spread {float(r.spread[i, k]):.2f}"
        return words
