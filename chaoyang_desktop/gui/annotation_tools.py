"""Drawing and editing on the slide view: the annotation tools, vertex editing and the ruler.

The tools follow QuPath: rectangle and ellipse are dragged, a polygon is clicked corner by
corner (double-click, Enter or a click on the first corner closes it; Backspace removes the last
corner), freehand follows the mouse while the button is down. In the pan mode a selected
annotation is edited in place: drag one of its vertex handles to move that vertex, drag inside it
to move it. The ruler measures a straight line in micrometres or millimetres.

Nothing here changes an annotation: the tools emit what the user did, in level-0 pixels, and
the :class:`~chaoyang_desktop.gui.annotation_controller.AnnotationController` turns it into an
undoable edit of the slide's session. The view paints what it is given.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPainterPath, QPen, QPolygonF

from chaoyang_desktop.core.errors import ChaoyangError

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.annotations import Annotation
    from chaoyang_desktop.gui.view_state import ViewState

MODE_PAN = "pan"
MODE_RECT = "rectangle"
MODE_ELLIPSE = "ellipse"
MODE_POLYGON = "polygon"
MODE_FREEHAND = "freehand"
MODE_RULER = "ruler"
DRAW_MODES = (MODE_RECT, MODE_ELLIPSE, MODE_POLYGON, MODE_FREEHAND)

#: Close a polygon when clicking this near (screen pixels) its first vertex.
CLOSE_SLOP = 9
#: A vertex handle is grabbed within this many screen pixels.
HANDLE_SLOP = 7
#: Freehand keeps a point once the mouse moved this many screen pixels from the last one.
FREEHAND_STEP = 2.0
#: A polygon shows a handle on each vertex up to this many (an imported outline may have hundreds,
#: and its handles would hide it). Rectangles and ellipses show the 4 corners of their box, which
#: resize them; freehand outlines show none (they are moved, not edited point by point).
MAX_HANDLES = 60
BOX_SHAPES = ("rectangle", "ellipse")
#: Outline of an annotation without a class: magenta, which no model class uses (QuPath's red would
#: read as Adenocarcinoma on the heatmap's legend).
UNCLASSIFIED = QColor(230, 60, 230)
DRAWING = QColor(255, 235, 59)


def format_length(l0_px: float, mpp: float | None) -> str:
    """A length in level-0 pixels as µm or mm (pixels when the pixel size is unknown)."""
    if not mpp:
        return f"{l0_px:,.0f} px"
    um = l0_px * mpp
    return f"{um / 1000.0:.3f} mm" if um >= 1000.0 else f"{um:.1f} \u00b5m"


@dataclass(frozen=True)
class Drawn:
    """What a drawing tool made: its shape and level-0 points (2 corners for a box)."""

    shape: str
    l0_points: np.ndarray


class AnnotationTools(QObject):
    """The drawing state of one :class:`SlideView`, its mouse handling and its painting."""

    shape_drawn = Signal(object)  # Drawn
    clicked = Signal(float, float, bool)  # level-0 point, additive (Ctrl/Shift held)
    moved = Signal(str, float, float)  # uid, level-0 dx, dy
    #: A handle was dragged: uid, handle index (a vertex, or a box corner), level-0 x, y.
    vertex_moved = Signal(str, int, float, float)
    measured = Signal(float)  # level-0 length of the ruler line

    def __init__(self, state: ViewState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.mode = MODE_PAN
        self.mpp: float | None = None
        self.annotations: tuple[Annotation, ...] = ()
        self.selected: frozenset[str] = frozenset()
        self._points: list[QPointF] = []  # level-0 points of the shape being drawn
        self._box_start: QPointF | None = None
        self._mouse: QPointF | None = None  # level-0
        self.ruler: tuple[QPointF, QPointF] | None = None
        self._ruler_active = False
        # Editing: (uid, vertex index or -1 for a move, level-0 press point)
        self._edit: tuple[str, int, QPointF] | None = None
        self._edit_to: QPointF | None = None
        #: The last release ended a move or vertex drag (not a click).
        self.was_edit_drag = False

    # ----- state -------------------------------------------------------------------------------
    def set_annotations(self, annotations: tuple[Annotation, ...], selected: tuple[str, ...]) -> None:
        self.annotations = annotations
        self.selected = frozenset(selected)
        self._edit = None

    def reset(self) -> None:
        """Drop what is being drawn or edited (mode change, Esc, another slide)."""
        self._points = []
        self._box_start = None
        self._edit = None
        self._ruler_active = False

    def is_drawing(self) -> bool:
        return bool(self._points) or self._box_start is not None or self._ruler_active

    @staticmethod
    def handles(ann: Annotation) -> np.ndarray:
        """Level-0 handle points: a box's 4 corners, a polygon's vertices, none for freehand."""
        if ann.shape in BOX_SHAPES:
            x0, y0, x1, y1 = ann.bounds()
            return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        ring = ann.vertices()
        if ann.shape == "freehand" or len(ring) > MAX_HANDLES:
            return np.empty((0, 2))
        return ring

    @staticmethod
    def edited(ann: Annotation, handle: int, l0_x: float, l0_y: float) -> Annotation:
        """The annotation with a handle dragged to a level-0 point (may raise when it loses its area)."""
        if ann.shape in BOX_SHAPES:
            corners = AnnotationTools.handles(ann)
            ox, oy = corners[(handle + 2) % 4]  # the opposite corner stays
            make = type(ann).rectangle if ann.shape == "rectangle" else type(ann).ellipse
            box = make(ox, oy, l0_x, l0_y)
            return dataclasses.replace(ann, polygons=box.polygons)
        return ann.with_vertex(handle, l0_x, l0_y)

    def hovered_vertex(self, pos: QPointF) -> tuple[str, int] | None:
        """The handle of a selected annotation under a screen point."""
        for ann in self.annotations:
            if ann.uid not in self.selected:
                continue
            ring = self.handles(ann)
            if len(ring) == 0:
                continue
            sx, sy = self._screen(ring)
            d = np.hypot(sx - pos.x(), sy - pos.y())
            k = int(np.argmin(d))
            if d[k] <= HANDLE_SLOP:
                return ann.uid, k
        return None

    def _selected_at(self, l0: QPointF) -> str | None:
        for ann in self.annotations:
            if ann.uid in self.selected and ann.contains(l0.x(), l0.y()):
                return ann.uid
        return None

    def _screen(self, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        st = self.state
        x0, y0 = st.l0_to_screen(0.0, 0.0)
        return x0 + ring[:, 0] * st.scale, y0 + ring[:, 1] * st.scale

    # ----- mouse (each returns True when it used the event) -----------------------------------------
    def press(self, event: QMouseEvent, l0: QPointF) -> bool:
        pos = event.position()
        left = event.button() == Qt.MouseButton.LeftButton
        if event.button() == Qt.MouseButton.RightButton and self.mode != MODE_PAN:
            self.reset()
            return False  # the view leaves the drawing mode
        if not left:
            return False
        if self.mode == MODE_PAN:
            vertex = self.hovered_vertex(pos)
            if vertex is not None:
                self._edit = (vertex[0], vertex[1], l0)
                self._edit_to = l0
                return True
            uid = self._selected_at(l0)
            if uid is not None:
                self._edit = (uid, -1, l0)
                self._edit_to = l0
                return True
            return False
        if self.mode in (MODE_RECT, MODE_ELLIPSE):
            self._box_start = l0
        elif self.mode == MODE_FREEHAND:
            self._points = [l0]
        elif self.mode == MODE_RULER:
            self.ruler = (l0, l0)
            self._ruler_active = True
        elif self.mode == MODE_POLYGON:
            if len(self._points) >= 3:
                first = QPointF(*self.state.l0_to_screen(self._points[0].x(), self._points[0].y()))
                if (first - pos).manhattanLength() <= CLOSE_SLOP:
                    self.finish_polygon()
                    return True
            self._points.append(l0)
        self._mouse = l0
        return True

    def move(self, event: QMouseEvent, l0: QPointF) -> bool:
        """Track the mouse; True when something being drawn or edited needs a repaint."""
        self._mouse = l0
        if self._edit is not None:
            self._edit_to = l0
            return True
        if self.mode == MODE_FREEHAND and self._points:
            last = QPointF(*self.state.l0_to_screen(self._points[-1].x(), self._points[-1].y()))
            if (last - event.position()).manhattanLength() >= FREEHAND_STEP:
                self._points.append(l0)
            return True
        if self._ruler_active and self.ruler is not None:
            self.ruler = (self.ruler[0], l0)
            return True
        return self.is_drawing()

    def release(self, event: QMouseEvent, l0: QPointF, additive: bool) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        if self._edit is not None:
            uid, vertex, start = self._edit
            self._edit = None
            moved = (QPointF(*self.state.l0_to_screen(l0.x(), l0.y()))
                     - QPointF(*self.state.l0_to_screen(start.x(), start.y()))).manhattanLength() > 3
            self.was_edit_drag = moved
            if not moved:
                self.clicked.emit(l0.x(), l0.y(), additive)
            elif vertex >= 0:
                self.vertex_moved.emit(uid, vertex, l0.x(), l0.y())
            else:
                self.moved.emit(uid, l0.x() - start.x(), l0.y() - start.y())
            return True
        if self.mode in (MODE_RECT, MODE_ELLIPSE) and self._box_start is not None:
            a, b = self._box_start, l0
            self._box_start = None
            sa = QPointF(*self.state.l0_to_screen(a.x(), a.y()))
            if abs(sa.x() - event.position().x()) >= 4 and abs(sa.y() - event.position().y()) >= 4:
                self.shape_drawn.emit(Drawn(self.mode, np.array([[a.x(), a.y()], [b.x(), b.y()]])))
            return True
        if self.mode == MODE_FREEHAND and self._points:
            pts = self._points + [l0]
            self._points = []
            if len(pts) >= 3:
                self.shape_drawn.emit(Drawn(MODE_FREEHAND, np.array([[q.x(), q.y()] for q in pts])))
            return True
        if self.mode == MODE_RULER and self._ruler_active and self.ruler is not None:
            self._ruler_active = False
            a, b = self.ruler[0], l0
            self.ruler = (a, b)
            self.measured.emit(math.hypot(b.x() - a.x(), b.y() - a.y()))
            return True
        return self.mode != MODE_PAN

    def finish_polygon(self) -> None:
        # A double-click adds its first click as a vertex; drop repeated points.
        pts: list[tuple[float, float]] = []
        for q in self._points:
            if not pts or (abs(pts[-1][0] - q.x()) > 1e-6 or abs(pts[-1][1] - q.y()) > 1e-6):
                pts.append((q.x(), q.y()))
        self._points = []
        if len(pts) >= 3:
            self.shape_drawn.emit(Drawn(MODE_POLYGON, np.array(pts, dtype=np.float64)))

    def remove_last_point(self) -> bool:
        if self.mode == MODE_POLYGON and self._points:
            self._points.pop()
            return True
        return False

    # ----- painting --------------------------------------------------------------------------------
    def paint(self, p: QPainter) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for ann in self.annotations:
            self._paint_annotation(p, ann)
        self._paint_drawing(p)
        self._paint_ruler(p)

    def _path(self, ann: Annotation) -> QPainterPath:
        path = QPainterPath()
        path.setFillRule(Qt.FillRule.OddEvenFill)
        for polygon in ann.polygons:
            for ring in (polygon.exterior, *polygon.holes):
                sx, sy = self._screen(ring)
                path.addPolygon(QPolygonF([QPointF(x, y) for x, y in zip(sx, sy, strict=True)]))
                path.closeSubpath()
        return path

    def _being_edited(self, ann: Annotation) -> Annotation:
        """The annotation as the drag in progress would leave it (itself when not dragged)."""
        if self._edit is None or self._edit[0] != ann.uid or self._edit_to is None:
            return ann
        _, handle, start = self._edit
        to = self._edit_to
        try:
            if handle < 0:
                return ann.moved(to.x() - start.x(), to.y() - start.y())
            return self.edited(ann, handle, to.x(), to.y())
        except (ChaoyangError, IndexError):
            return ann  # the drag would leave no area: shown where it was, refused on release

    @staticmethod
    def color_of(ann: Annotation) -> QColor:
        """The outline colour: the class's, or magenta without a class."""
        return QColor(*ann.path_class.color) if ann.path_class is not None else QColor(UNCLASSIFIED)

    def _paint_annotation(self, p: QPainter, ann: Annotation) -> None:
        color = self.color_of(ann)
        selected = ann.uid in self.selected
        ann = self._being_edited(ann)
        path = self._path(ann)
        p.setPen(QPen(QColor(0, 0, 0, 150), 4.5 if selected else 3.5))
        p.drawPath(path)
        p.setPen(QPen(color, 2.6 if selected else 1.8))
        if selected:
            fill = QColor(color)
            fill.setAlpha(36)
            p.setBrush(fill)
        p.drawPath(path)
        p.setBrush(Qt.BrushStyle.NoBrush)
        handles = self.handles(ann) if selected else np.empty((0, 2))
        if len(handles):
            sx, sy = self._screen(handles)
            p.setPen(QPen(QColor(0, 0, 0), 1))
            p.setBrush(QColor(255, 255, 255))
            for x, y in zip(sx, sy, strict=True):
                p.drawRect(QRectF(x - 3, y - 3, 6, 6))
            p.setBrush(Qt.BrushStyle.NoBrush)
        if ann.name:
            self._paint_label(p, ann, color)

    def _paint_label(self, p: QPainter, ann: Annotation, color: QColor) -> None:
        """The name in white on a dark plate above the shape's box, so it reads on any stain."""
        x0, y0, x1, _ = ann.bounds()
        sx0, sy0 = self.state.l0_to_screen(x0, y0)
        sx1, _ = self.state.l0_to_screen(x1, y0)
        p.setFont(QFont(p.font().family(), 9))
        metrics = p.fontMetrics()
        text = metrics.elidedText(ann.name, Qt.TextElideMode.ElideRight, max(60, int(sx1 - sx0) + 40))
        rect = QRectF(metrics.boundingRect(text)).adjusted(-4, -2, 4, 2)
        rect.moveBottomLeft(QPointF(sx0, sy0 - 4))
        rect.adjust(0, 0, 6, 0)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 180))
        p.drawRoundedRect(rect, 3, 3)
        p.setBrush(color)  # the class colour as a bar: white text reads on any class colour
        p.drawRect(QRectF(rect.left(), rect.top(), 6, rect.height()))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QColor(255, 255, 255))
        p.drawText(rect.adjusted(6, 0, 0, 0), Qt.AlignmentFlag.AlignCenter, text)

    def _paint_drawing(self, p: QPainter) -> None:
        st = self.state
        mouse = self._mouse
        pts: list[QPointF] = []
        if self._box_start is not None and mouse is not None:
            a, b = QPointF(*st.l0_to_screen(self._box_start.x(), self._box_start.y())), \
                QPointF(*st.l0_to_screen(mouse.x(), mouse.y()))
            box = QRectF(a, b).normalized()
            for pen in (QPen(QColor(0, 0, 0), 3.5), QPen(DRAWING, 1.6, Qt.PenStyle.DashLine)):
                p.setPen(pen)
                p.drawEllipse(box) if self.mode == MODE_ELLIPSE else p.drawRect(box)
            return
        if self._points:
            pts = list(self._points) + ([mouse] if mouse is not None and self.mode == MODE_POLYGON else [])
            if self.mode == MODE_POLYGON and len(pts) >= 3:
                pts.append(self._points[0])  # the edge that closing adds
        if not pts:
            return
        poly = QPolygonF([QPointF(*st.l0_to_screen(q.x(), q.y())) for q in pts])
        for pen in (QPen(QColor(0, 0, 0), 3.5), QPen(DRAWING, 1.6, Qt.PenStyle.DashLine)):
            p.setPen(pen)
            p.drawPolyline(poly)
        if self.mode == MODE_POLYGON:
            p.setBrush(DRAWING)
            p.setPen(QPen(QColor(0, 0, 0), 1))
            for q in self._points:
                p.drawEllipse(QPointF(*st.l0_to_screen(q.x(), q.y())), 3.5, 3.5)
            p.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_ruler(self, p: QPainter) -> None:
        if self.ruler is None:
            return
        a, b = self.ruler
        sa = QPointF(*self.state.l0_to_screen(a.x(), a.y()))
        sb = QPointF(*self.state.l0_to_screen(b.x(), b.y()))
        p.setPen(QPen(QColor(0, 0, 0), 4))
        p.drawLine(sa, sb)
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawLine(sa, sb)
        text = format_length(math.hypot(b.x() - a.x(), b.y() - a.y()), self.mpp)
        mid = (sa + sb) / 2 + QPointF(8, -8)
        p.setFont(QFont(p.font().family(), 10, QFont.Weight.Bold))
        rect = p.fontMetrics().boundingRect(text).adjusted(-4, -2, 4, 2).translated(mid.toPoint())
        p.fillRect(rect, QColor(0, 0, 0, 170))
        p.setPen(QColor(255, 255, 255))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
