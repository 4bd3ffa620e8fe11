"""The slide view: paints the visible part of a slide, the heatmap, the analysis preview and the ROI.

Painting follows the fast viewers: from the zoom pick the pyramid level whose downsample is just
below the screen's, compute the display tiles in view, draw the cached ones and ask the
:class:`~chaoyang_desktop.gui.tile_loader.TileLoader` for the rest. Until they arrive, the slide
thumbnail (read once when the slide opens) is drawn underneath, so panning never shows holes;
when the thumbnail alone is as sharp as the screen, no tile is read at all.

The heatmap is one small image, one pixel per cell, drawn with a single ``drawImage`` without
smoothing, clipped to the slide. Hover shows the probabilities of the cell under the cursor;
a click selects the tile for the inspector. The view also outlines the region analysed; the
annotations, the drawing tools and the ruler are painted and driven by its
:class:`~chaoyang_desktop.gui.annotation_tools.AnnotationTools`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QToolTip, QWidget

from chaoyang_desktop.core.slide.tiling import GridSpec, choose_level
from chaoyang_desktop.gui.annotation_tools import MODE_PAN, MODE_POLYGON, AnnotationTools
from chaoyang_desktop.gui.display_adjust import DisplayAdjustment, apply_lut
from chaoyang_desktop.gui.minimap import Minimap
from chaoyang_desktop.gui.overlay import HeatmapLayer, rgba_to_qimage
from chaoyang_desktop.gui.scale_bar import ScaleBar
from chaoyang_desktop.gui.tile_loader import TILE, TileKey, TileLoader, rgb_to_qimage
from chaoyang_desktop.gui.view_state import ZOOM_STEP, ViewState

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.pipeline import AnalysisPlan
    from chaoyang_desktop.core.slide.reader import Slide

#: Longest side of the thumbnail read when a slide opens (backdrop, minimap, fast zoomed-out view).
THUMB_SIDE = 2048
#: At most this many display tiles are requested for one view (the nearest to the centre).
MAX_WANTED_TILES = 400
#: A press that moves less than this many pixels is a click, not a drag.
CLICK_SLOP = 4

BACKGROUND = QColor(58, 60, 64)
#: The preview's tissue mask: diagonal light and dark stripes, a pattern no class colour has,
#: visible on bright H&E and on a dark fluorescence background alike.
TISSUE_STRIPES = ((255, 255, 255, 120), (20, 20, 20, 120))
TISSUE_STRIPE_PX = 3
PREVIEW_TILE_PEN = QColor(0, 70, 140)
SELECTED_COLOR = QColor(0, 229, 255)


@dataclass(frozen=True)
class PlanPreview:
    """What an analysis would cover, drawn before it runs: tissue mask and kept tiles."""

    tissue_rgba: np.ndarray  # (H, W, 4) over the whole slide, thumbnail resolution
    tile_rects: np.ndarray  # (N, 4) level-0 rectangles of the tiles that will be classified
    grid: GridSpec
    n_grid_tiles: int

    @classmethod
    def from_plan(cls, plan: AnalysisPlan) -> PlanPreview:
        mask = plan.tissue_mask.mask
        rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
        # Diagonal bands from one int32 sum of row and column (np.indices would make two int64 grids).
        diagonal = np.add.outer(np.arange(mask.shape[0], dtype=np.int32), np.arange(mask.shape[1], dtype=np.int32))
        light = (diagonal // TISSUE_STRIPE_PX) % 2 == 0
        rgba[mask & light] = TISSUE_STRIPES[0]
        rgba[mask & ~light] = TISSUE_STRIPES[1]
        return cls(rgba, plan.grid.tile_rects(plan.t_col, plan.t_row), plan.grid,
                   plan.grid.t_cols * plan.grid.t_rows)


class SlideView(QWidget):
    """A custom widget that shows one slide through a :class:`ViewState`."""

    tile_clicked = Signal(float, float)  # level-0 point
    mode_changed = Signal(str)
    hover_changed = Signal(object)  # (probs, n_tiles, hm_row, hm_col) or None
    cursor_moved = Signal(float, float)  # level-0 point under the cursor
    thumbnail_ready = Signal()
    painted_idle = Signal()  # thumbnail shown and every wanted tile drawn

    def __init__(self, parent: QWidget | None = None, loader: TileLoader | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState(self)
        self.loader = loader or TileLoader(self)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._slide: Slide | None = None
        self._thumb: QImage | None = None
        self._thumb_array: np.ndarray | None = None
        self.display_adjustment = DisplayAdjustment()
        self._layer: HeatmapLayer | None = None
        self._preview: PlanPreview | None = None
        self._preview_image: QImage | None = None
        self._roi: list[np.ndarray] = []
        self._selected: tuple[float, float, float, float] | None = None
        self._hover_cell: tuple[int, int] | None = None
        self._press: QPointF | None = None
        self._last_drag: QPointF | None = None
        self._dragging = False
        self.tools = AnnotationTools(self.state, self)
        self.scale_bar = ScaleBar(self.state, self)
        self.minimap = Minimap(self.state, self)
        self.scale_bar.hide()
        self.state.changed.connect(self._on_view_changed)
        self.loader.tile_ready.connect(self._on_tile_ready)
        self.loader.thumbnail_ready.connect(self._on_thumbnail)
        self.loader.idle.connect(self._maybe_idle)
        # Tile requests follow the view at most every 30 ms while the user drags or zooms.
        self._want_timer = QTimer(self, singleShot=True, interval=30)
        self._want_timer.timeout.connect(self._request_tiles)

    # ----- content ---------------------------------------------------------------------------------
    @property
    def slide(self) -> Slide | None:
        return self._slide

    @property
    def thumbnail_array(self) -> np.ndarray | None:
        return self._thumb_array

    @property
    def heatmap(self) -> HeatmapLayer | None:
        return self._layer

    def set_slide(self, slide: Slide | None) -> None:
        """Show ``slide`` fitted in the view (None: empty view)."""
        self._slide = slide
        self._thumb = None
        self._thumb_array = None
        self._layer = None
        self._preview = None
        self._preview_image = None
        self._roi = []
        self._selected = None
        self._hover_cell = None
        self.tools.reset()
        self.tools.ruler = None
        self.tools.set_annotations((), ())
        self.loader.set_slide(slide)
        self.minimap.set_thumbnail(None)
        self.minimap.set_overlay(None)  # the last slide's heatmap must not show on this one
        self.minimap.set_outlines([])
        if slide is None:
            self.scale_bar.hide()
            self.update()
            return
        self.scale_bar.set_slide_facts(slide.mpp, slide.mpp_assumed, slide.objective_power)
        self.scale_bar.show()
        self.state.set_view_size(self.width(), self.height())
        self.state.set_slide_size(*slide.dimensions)
        self.loader.request_thumbnail(THUMB_SIDE)
        self._place_children()
        self.update()

    def set_heatmap(self, layer: HeatmapLayer | None) -> None:
        self._layer = layer
        self.heatmap_changed()

    def heatmap_changed(self) -> None:
        """The layer's cells or style changed: repaint (called at most every few hundred ms)."""
        layer = self._layer
        if layer is None:
            self.minimap.set_overlay(None)
        else:
            g = layer.grid
            self.minimap.set_overlay(layer.image(), (g.hm_cols * g.l0_stride, g.hm_rows * g.l0_stride))
        self._hover_cell = None
        self.update()

    def set_preview(self, preview: PlanPreview | None) -> None:
        self._preview = preview
        self._preview_image = rgba_to_qimage(preview.tissue_rgba) if preview is not None else None
        self.update()

    @property
    def preview(self) -> PlanPreview | None:
        return self._preview

    def set_roi(self, polygons: list[np.ndarray]) -> None:
        """Region outlines to draw, each an ``(M, 2)`` array of level-0 points."""
        self._roi = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons]
        self.update()

    def roi_outlines(self) -> list[np.ndarray]:
        """The region outlines drawn (level-0 rings)."""
        return list(self._roi)

    def set_selected_tile(self, l0_rect: tuple[float, float, float, float] | None) -> None:
        self._selected = l0_rect
        self.update()

    # ----- interaction mode ---------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.tools.mode

    def set_mode(self, mode: str) -> None:
        if mode == self.tools.mode:
            return
        self.tools.mode = mode
        self.tools.reset()
        self.setCursor(Qt.CursorShape.CrossCursor if mode != MODE_PAN else Qt.CursorShape.ArrowCursor)
        self.mode_changed.emit(mode)
        self.update()

    # ----- zoom commands --------------------------------------------------------------------------------
    def zoom_in(self) -> None:
        self.state.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.state.zoom_by(1.0 / ZOOM_STEP)

    def fit(self) -> None:
        self.state.fit()

    def one_to_one(self) -> None:
        self.state.set_scale(1.0 / self.devicePixelRatioF())

    # ----- tiles ---------------------------------------------------------------------------------------
    def read_level(self) -> int:
        """The pyramid level tiles are read from at the current zoom."""
        if self._slide is None:
            return 0
        l0_per_device_px = 1.0 / (self.state.scale * self.devicePixelRatioF())
        return choose_level(self._slide.level_downsamples, l0_per_device_px)

    def _thumb_is_enough(self) -> bool:
        """Whether the thumbnail is as sharp as the screen (known before it has been read)."""
        if self._slide is None:
            return False
        return self._thumb_l0_per_px() <= 1.05 / (self.state.scale * self.devicePixelRatioF())

    def visible_tiles(self) -> list[TileKey]:
        """Display tiles in view at the read level, nearest to the centre first."""
        slide = self._slide
        if slide is None or self._thumb_is_enough():
            return []
        level = self.read_level()
        ds = slide.level_downsamples[level]
        lv_w, lv_h = slide.level_dimensions[level]
        x0, y0, x1, y1 = self.state.visible_l0_rect()
        span = TILE * ds
        tx0, ty0 = max(0, math.floor(x0 / span)), max(0, math.floor(y0 / span))
        tx1 = min(math.ceil(lv_w / TILE), math.ceil(x1 / span))
        ty1 = min(math.ceil(lv_h / TILE), math.ceil(y1 / span))
        if tx1 <= tx0 or ty1 <= ty0:
            return []
        cx, cy = self.state.l0_cx / span - 0.5, self.state.l0_cy / span - 0.5
        coords = [(tx, ty) for ty in range(ty0, ty1) for tx in range(tx0, tx1)]
        coords.sort(key=lambda t: (t[0] - cx) ** 2 + (t[1] - cy) ** 2)
        token = self.loader.token
        return [TileKey(token, level, tx, ty) for tx, ty in coords[:MAX_WANTED_TILES]]

    def _request_tiles(self) -> None:
        keys = self.visible_tiles()
        if self._thumb_array is None and len(keys) > 64:
            keys = []  # a huge single-level image: wait for the thumbnail rather than read everything
        self.loader.want(keys)
        self._maybe_idle()

    def _on_view_changed(self) -> None:
        self._hover_cell = None
        if not self._want_timer.isActive():
            self._want_timer.start()
        self.update()

    def _on_tile_ready(self, key: TileKey) -> None:
        self.update()

    def set_display_adjustment(self, adjustment: DisplayAdjustment) -> None:
        """Brightness/contrast/gamma of the slide layer (display only; the analysis reads raw pixels)."""
        self.display_adjustment = adjustment
        lut = adjustment.lut()
        self.loader.set_display_lut(lut)
        if self._thumb_array is not None:
            self._thumb = rgb_to_qimage(apply_lut(self._thumb_array, lut))
        self.update()

    def _on_thumbnail(self, token: int, rgb: np.ndarray) -> None:
        if token != self.loader.token:
            return
        self._thumb_array = rgb
        self._thumb = rgb_to_qimage(apply_lut(rgb, self.display_adjustment.lut()))
        self.minimap.set_thumbnail(self._thumb)
        self._place_children()
        self._request_tiles()
        self.thumbnail_ready.emit()
        self.update()

    def is_idle(self) -> bool:
        """True when what the view shows is final: thumbnail read and no wanted tile pending."""
        return self._slide is None or (self._thumb is not None and not self.loader.busy()
                                       and not self._want_timer.isActive())

    def _maybe_idle(self) -> None:
        if self._slide is not None and self.is_idle():
            self.painted_idle.emit()

    # ----- painting ------------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        slide = self._slide
        if slide is None:
            p.end()
            return
        st = self.state
        l0_w, l0_h = slide.dimensions
        slide_rect = st.l0_rect_to_screen(0, 0, l0_w, l0_h)
        if self._thumb is None:
            # Glass while the overview loads. Not under the overview: its last, partly covered row
            # of screen pixels let the white through, a thin line along a dark slide's edge.
            p.fillRect(slide_rect, QColor(255, 255, 255))
        p.save()
        p.setClipRect(slide_rect)
        if self._thumb is not None:
            # Backdrop (or the whole picture when it is sharp enough); smooth when shrunk.
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, st.scale * self._thumb_l0_per_px() < 1.0)
            p.drawImage(slide_rect, self._thumb)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        for key in self.visible_tiles():
            img = self.loader.cached(key)
            rect = self.loader.tile_rect_l0(key)
            if img is None or rect is None:
                continue
            target = st.l0_rect_to_screen(*rect)
            p.drawImage(target, img)
        self._paint_preview(p)
        if self._preview is None:  # the preview replaces the old heatmap while it shows
            self._paint_heatmap(p)
        p.restore()
        self._paint_marks(p)
        p.end()

    def _thumb_l0_per_px(self) -> float:
        if self._slide is None:
            return 1.0
        if self._thumb_array is not None:
            return self._slide.dimensions[0] / self._thumb_array.shape[1]
        return max(1.0, max(self._slide.dimensions) / THUMB_SIDE)  # what Slide.thumbnail will return

    def _visible_cells(self, grid: GridSpec) -> tuple[int, int, int, int] | None:
        x0, y0, x1, y1 = self.state.visible_l0_rect()
        c0 = max(0, math.floor(x0 / grid.l0_stride))
        r0 = max(0, math.floor(y0 / grid.l0_stride))
        c1 = min(grid.hm_cols, math.ceil(x1 / grid.l0_stride))
        r1 = min(grid.hm_rows, math.ceil(y1 / grid.l0_stride))
        if c1 <= c0 or r1 <= r0:
            return None
        return c0, r0, c1, r1

    def _paint_heatmap(self, p: QPainter) -> None:
        layer = self._layer
        if layer is None:
            return
        g = layer.grid
        cells = self._visible_cells(g)
        if cells is None:
            return
        c0, r0, c1, r1 = cells
        s = g.l0_stride
        f = layer.image_scale
        target = self.state.l0_rect_to_screen(c0 * s, r0 * s, (c1 - c0) * s, (r1 - r0) * s)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, layer.style.smooth)
        p.drawImage(target, layer.image(), QRectF(c0 * f, r0 * f, (c1 - c0) * f, (r1 - r0) * f))

    def _paint_preview(self, p: QPainter) -> None:
        pv = self._preview
        if pv is None or self._slide is None:
            return
        l0_w, l0_h = self._slide.dimensions
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if self._preview_image is not None:
            p.drawImage(self.state.l0_rect_to_screen(0, 0, l0_w, l0_h), self._preview_image)
        rects = pv.tile_rects
        if len(rects) == 0 or pv.grid.l0_tile * self.state.scale < 5:
            return
        x0, y0, x1, y1 = self.state.visible_l0_rect()
        vis = rects[(rects[:, 0] < x1) & (rects[:, 0] + rects[:, 2] > x0) & (rects[:, 1] < y1) & (rects[:, 1] + rects[:, 3] > y0)]
        if len(vis) > 5000:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setBrush(QColor(0, 70, 140, 28))
        p.setPen(QPen(PREVIEW_TILE_PEN, 1))
        p.drawRects([self.state.l0_rect_to_screen(*map(float, r)) for r in vis])
        p.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_marks(self, p: QPainter) -> None:
        """Region outline, annotations and tools, the hovered cell and the selected tile."""
        st = self.state
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for ring in self._roi:
            poly = QPolygonF([QPointF(*st.l0_to_screen(x, y)) for x, y in ring])
            p.setPen(QPen(QColor(0, 0, 0), 3.5))
            p.drawPolygon(poly)
            p.setPen(QPen(QColor(255, 235, 59), 1.6))
            p.drawPolygon(poly)
        self.tools.mpp = self._slide.mpp if self._slide is not None else None
        self.tools.paint(p)
        if self._hover_cell is not None and self._layer is not None:
            r, c = self._hover_cell
            s = self._layer.grid.l0_stride
            rect = st.l0_rect_to_screen(c * s, r * s, s, s)
            if rect.width() >= 6:
                p.setPen(QPen(QColor(0, 0, 0, 160), 3))
                p.drawRect(rect)
                p.setPen(QPen(QColor(255, 255, 255), 1.2))
                p.drawRect(rect)
        if self._selected is not None:
            rect = st.l0_rect_to_screen(*self._selected)
            p.setPen(QPen(QColor(0, 0, 0), 4))
            p.drawRect(rect)
            p.setPen(QPen(SELECTED_COLOR, 2))
            p.drawRect(rect)

    # ----- geometry of children ------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self.state.set_view_size(self.width(), self.height())
        self._place_children()
        super().resizeEvent(event)

    def _place_children(self) -> None:
        margin = 10
        self.minimap.move(self.width() - self.minimap.width() - margin, margin)
        self.scale_bar.move(margin, self.height() - self.scale_bar.height() - margin)

    # ----- mouse and keys --------------------------------------------------------------------------------
    def _l0(self, pos: QPointF, clamp: bool = False) -> QPointF:
        x, y = self.state.screen_to_l0(pos.x(), pos.y())
        if clamp and self._slide is not None:
            w, h = self._slide.dimensions
            x, y = min(max(x, 0.0), float(w)), min(max(y, 0.0), float(h))
        return QPointF(x, y)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self._slide is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps:
            pos = event.position()
            self.state.zoom_by(ZOOM_STEP ** steps, (pos.x(), pos.y()))
        event.accept()

    def _additive(self, event: QMouseEvent) -> bool:
        mods = event.modifiers()
        return bool(mods & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._slide is None:
            return
        self.setFocus()
        pos = event.position()
        drawing = self.tools.mode != MODE_PAN
        if event.button() == Qt.MouseButton.RightButton and drawing:
            self.cancel_drawing()
        elif event.button() == Qt.MouseButton.MiddleButton or not self.tools.press(event, self._l0(pos, clamp=drawing)):
            if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton) and (
                    not drawing or event.button() == Qt.MouseButton.MiddleButton):
                self._press = pos
                self._last_drag = pos
                self._dragging = False
        self.update()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._slide is None:
            return
        pos = event.position()
        if self._last_drag is not None and self._press is not None:
            if not self._dragging and (pos - self._press).manhattanLength() > CLICK_SLOP:
                self._dragging = True
                self.setCursor(Qt.CursorShape.ClosedHandCursor)
            if self._dragging:
                d = pos - self._last_drag
                self._last_drag = pos
                self.state.pan_screen(d.x(), d.y())
                return
        if self.tools.move(event, self._l0(pos, clamp=self.tools.mode != MODE_PAN)):
            self.update()
        l0 = self._l0(pos)
        self.cursor_moved.emit(l0.x(), l0.y())
        self._update_hover(l0, event.globalPosition().toPoint())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._slide is None:
            return
        pos = event.position()
        if self._press is not None and event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            was_drag = self._dragging
            self._press = self._last_drag = None
            self._dragging = False
            self.setCursor(Qt.CursorShape.CrossCursor if self.tools.mode != MODE_PAN else Qt.CursorShape.ArrowCursor)
            if not was_drag and event.button() == Qt.MouseButton.LeftButton:
                l0 = self._l0(pos)
                w, h = self._slide.dimensions
                if 0 <= l0.x() < w and 0 <= l0.y() < h:
                    self.tools.clicked.emit(l0.x(), l0.y(), self._additive(event))
                    self.tile_clicked.emit(l0.x(), l0.y())
        elif self.tools.release(event, self._l0(pos, clamp=self.tools.mode != MODE_PAN), self._additive(event)):
            if self.tools.mode == MODE_PAN:
                # A click (not a drag) on a selected annotation also inspects the tile under it.
                l0 = self._l0(pos)
                w, h = self._slide.dimensions
                if not self.tools.was_edit_drag and 0 <= l0.x() < w and 0 <= l0.y() < h:
                    self.tile_clicked.emit(l0.x(), l0.y())
        self.update()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.tools.mode == MODE_POLYGON:
            self.tools.finish_polygon()
            self.update()
        elif self.tools.mode == MODE_PAN and event.button() == Qt.MouseButton.LeftButton and self._slide is not None:
            pos = event.position()
            self.state.zoom_by(2.0, (pos.x(), pos.y()))
        event.accept()

    def cancel_drawing(self) -> None:
        self.tools.reset()
        self.set_mode(MODE_PAN)
        self.update()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        step = max(40.0, 0.15 * min(self.width(), self.height()))
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            step *= 3
        moves = {Qt.Key.Key_Left: (step, 0), Qt.Key.Key_Right: (-step, 0),
                 Qt.Key.Key_Up: (0, step), Qt.Key.Key_Down: (0, -step)}
        if key in moves and self._slide is not None:
            self.state.pan_screen(*moves[key])
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key == Qt.Key.Key_Minus:
            self.zoom_out()
        elif key == Qt.Key.Key_Escape and (self.tools.mode != MODE_PAN or self.tools.ruler is not None):
            self.tools.ruler = None
            self.cancel_drawing()
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tools.mode == MODE_POLYGON:
            self.tools.finish_polygon()
            self.update()
        elif key == Qt.Key.Key_Backspace and self.tools.remove_last_point():
            self.update()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        if self._hover_cell is not None:
            self._hover_cell = None
            self.update()
        QToolTip.hideText()
        self.hover_changed.emit(None)

    # ----- hover ---------------------------------------------------------------------------------------
    def hover_at(self, l0_x: float, l0_y: float) -> tuple[np.ndarray, int, int, int] | None:
        """What the tooltip shows at a level-0 point: ``(probs, n_tiles, hm_row, hm_col)`` or None."""
        return self._layer.probabilities_at(l0_x, l0_y) if self._layer is not None else None

    def hover_text(self, l0_x: float, l0_y: float) -> str | None:
        """The tooltip's HTML at a level-0 point, None where nothing is known."""
        info = self.hover_at(l0_x, l0_y)
        if info is None or self._layer is None:
            return None
        probs, n, r, c = info
        style = self._layer.style
        top = int(np.argmax(probs))
        rows = []
        for k in np.argsort(-probs):
            name = style.class_names[k]
            weight = "font-weight:600;" if k == top else ""
            rows.append(
                f"<tr><td><span style='color:{style.class_colors[k]}'>\u25a0</span></td>"
                f"<td style='{weight}padding-right:10px'>{name}</td>"
                f"<td align='right' style='{weight}'>{100.0 * float(probs[k]):.1f}%</td></tr>"
            )
        note = f"<br><i>mean of {n} overlapping tiles</i>" if n > 1 else ""
        return (f"<b>{style.class_names[top]}</b> &nbsp;<small>cell {c}, {r}</small>"
                f"<table cellspacing='0' cellpadding='1'>{''.join(rows)}</table>{note}")

    def _update_hover(self, l0: QPointF, global_pos: QPoint) -> None:
        info = self.hover_at(l0.x(), l0.y())
        cell = (info[2], info[3]) if info is not None else None
        if cell == self._hover_cell:
            return
        self._hover_cell = cell
        self.hover_changed.emit(info)
        self.update()
        if info is None or self.tools.mode != MODE_PAN:
            QToolTip.hideText()
            return
        text = self.hover_text(l0.x(), l0.y())
        QToolTip.showText(global_pos, text or "", self)
