"""The open slide's annotations: the drawing tools, the Annotations panel, undo and redo, GeoJSON files.

Depends on the slide's :class:`~chaoyang_desktop.core.session.SlideSession`, the slide view and the
panel, never on the main window: it turns what the user did in the view or the panel into one
undoable edit of the session (which saves the annotations, keyed by the slide's fingerprint),
and redraws both from the session when it changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QCursor, QKeySequence
from PySide6.QtWidgets import QFileDialog, QWidget

from chaoyang_desktop.core.slide.annotations import (
    QUPATH_DEFAULT_CLASSES,
    Annotation,
    AnnotationHistory,
    PathClass,
    read_annotations_file,
    write_annotations_file,
)
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.actions import make_action
from chaoyang_desktop.gui.overlay import hex_to_rgb
from chaoyang_desktop.gui.annotation_tools import (
    BOX_SHAPES,
    MODE_ELLIPSE,
    MODE_FREEHAND,
    MODE_PAN,
    MODE_POLYGON,
    MODE_RECT,
    MODE_RULER,
    AnnotationTools,
    Drawn,
    format_length,
)

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.roi import Roi
    from chaoyang_desktop.core.session import SlideSession
    from chaoyang_desktop.gui.annotations_panel import AnnotationsPanel
    from chaoyang_desktop.gui.slide_view import SlideView

#: The names given when drawn ("Rectangle 3"); the number runs across shapes.
AUTO_NAME = re.compile(r"(?:Rectangle|Ellipse|Polygon|Freehand) (\d+)")
#: Files the import accepts (QuPath writes .geojson; some tools .json).
GEOJSON_SUFFIXES = (".geojson", ".json")

TOOL_HELP = {
    MODE_RECT: "Drag a rectangle (Esc cancels).",
    MODE_ELLIPSE: "Drag the box the ellipse fits in (Esc cancels).",
    MODE_POLYGON: "Click the corners; double-click, Enter or a click on the first corner closes it; "
                  "Backspace removes a corner, Esc cancels.",
    MODE_FREEHAND: "Hold the button down and trace the outline; release to close it (Esc cancels).",
    MODE_RULER: "Drag to measure a distance; Esc clears the line.",
}


class AnnotationController(QObject):
    """Keeps the view, the panel and the session's annotations in step."""

    #: A shape was drawn: its region becomes what Analyze runs on.
    target_drawn = Signal(object)  # Roi
    #: The annotations or their selection changed (the summary's composition follows).
    changed = Signal()
    message = Signal(str, int)  # status-bar text, milliseconds
    failed = Signal(str)  # a file could not be read or written: the one-line reason

    def __init__(self, view: SlideView, panel: AnnotationsPanel, parent: QWidget) -> None:
        super().__init__(parent)
        self.view = view
        self.panel = panel
        self.session: SlideSession | None = None
        self._model_classes: tuple[PathClass, ...] = ()
        tools = view.tools
        tools.shape_drawn.connect(self._on_drawn)
        tools.clicked.connect(self._on_clicked)
        tools.moved.connect(self._on_moved)
        tools.vertex_moved.connect(self._on_vertex_moved)
        tools.measured.connect(self._on_measured)
        view.mode_changed.connect(self._on_mode_changed)
        panel.selection_changed.connect(self._on_panel_selection)
        panel.renamed.connect(self._on_renamed)
        panel.class_chosen.connect(self._on_class_chosen)
        panel.delete_requested.connect(self.delete_selected)
        panel.import_requested.connect(self.import_dialog)
        panel.export_requested.connect(self.export_dialog)

        def action(text: str, slot: Callable[..., object], shortcut: object = None, checkable: bool = False,
                   tip: str = "") -> QAction:
            act = make_action(parent, text, slot, shortcut, checkable, tip)
            parent.addAction(act)  # shortcuts work wherever the focus is in the window
            return act

        def tool(text: str, mode: str, key: str, tip: str) -> QAction:
            return action(text, lambda on: self.use_tool(mode, on), key, checkable=True, tip=f"{tip} ({key})")

        self.act_rect = tool("&Rectangle", MODE_RECT, "R", "Draw a rectangle annotation")
        self.act_ellipse = tool("&Ellipse", MODE_ELLIPSE, "O", "Draw an ellipse annotation")
        self.act_poly = tool("&Polygon", MODE_POLYGON, "P", "Draw a polygon annotation, corner by corner")
        self.act_freehand = tool("&Freehand", MODE_FREEHAND, "D", "Draw an annotation freehand")
        self.act_ruler = tool("R&uler", MODE_RULER, "L", "Measure a distance in \u00b5m or mm")
        self.act_clear_ruler = action("&Clear Ruler", self.clear_ruler, tip="Remove the measured line (Esc)")
        self.tool_actions = {MODE_RECT: self.act_rect, MODE_ELLIPSE: self.act_ellipse, MODE_POLYGON: self.act_poly,
                             MODE_FREEHAND: self.act_freehand, MODE_RULER: self.act_ruler}
        self.act_undo = action("&Undo", self.undo, QKeySequence.StandardKey.Undo)
        # The platform's Redo keys, plus the two common ones it may lack (X11: Ctrl+Shift+Z only).
        redo_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)
        redo_keys += [QKeySequence(k) for k in ("Ctrl+Y", "Ctrl+Shift+Z") if QKeySequence(k) not in redo_keys]
        self.act_redo = action("&Redo", self.redo, redo_keys)
        self.act_delete = action("&Delete Annotation", self.delete_at_cursor, [QKeySequence.StandardKey.Delete],
                                 tip="Delete the corner under the cursor, or the selected annotations (Delete)")
        self.act_select_none = action("Select &None", lambda: self.select(()), tip="Deselect every annotation")
        self.act_import = action("&Import Annotations (GeoJSON)\u2026", self.import_dialog,
                                 tip="Add annotations from a QuPath GeoJSON file")
        self.act_export = action("Export &Annotations (GeoJSON)\u2026", self.export_dialog,
                                 tip="Save this slide's annotations as GeoJSON that QuPath imports")
        self.update_actions()

    # ----- session --------------------------------------------------------------------------------
    def set_session(self, session: SlideSession | None) -> None:
        if self.session is not None and self._on_session_changed in self.session.listeners:
            self.session.listeners.remove(self._on_session_changed)
        self.session = session
        if session is not None:
            session.listeners.append(self._on_session_changed)
        self.refresh()

    def set_model_classes(self, names: tuple[str, ...], colors: tuple[str, ...]) -> None:
        """Offer the model's classes first, then QuPath's defaults."""
        self._model_classes = tuple(PathClass(n, hex_to_rgb(c)) for n, c in zip(names, colors, strict=True))
        taken = {pc.name for pc in self._model_classes}
        self.panel.set_classes(self._model_classes + tuple(c for c in QUPATH_DEFAULT_CLASSES if c.name not in taken))

    def _on_session_changed(self, what: str) -> None:
        self.refresh()

    def refresh(self) -> None:
        s = self.session
        annotations = s.annotation_list() if s is not None else ()
        selected = s.selected if s is not None else ()
        self.view.tools.set_annotations(annotations, selected)
        self.view.minimap.set_outlines([(p.exterior, AnnotationTools.color_of(a)) for a in annotations
                                        for p in a.polygons])
        self.view.update()
        mpp = s.slide.mpp if s is not None else None
        self.panel.set_annotations(annotations, selected, (mpp / 1000.0) ** 2 if mpp else None)
        self.update_actions()
        self.changed.emit()

    def update_actions(self) -> None:
        s = self.session
        history = s.annotations if s is not None else AnnotationHistory()
        self.act_undo.setEnabled(history.can_undo)
        self.act_undo.setText(f"&Undo {history.undo_label}" if history.can_undo else "&Undo")
        self.act_redo.setEnabled(history.can_redo)
        self.act_redo.setText(f"&Redo {history.redo_label}" if history.can_redo else "&Redo")
        for act in (*self.tool_actions.values(), self.act_import):
            act.setEnabled(s is not None)
        self.act_delete.setEnabled(s is not None and bool(s.selected))
        self.act_select_none.setEnabled(s is not None and bool(s.selected))
        self.act_export.setEnabled(s is not None and bool(history.state))
        self.act_clear_ruler.setEnabled(self.view.tools.ruler is not None)

    # ----- tools ----------------------------------------------------------------------------------
    def use_tool(self, mode: str, on: bool = True) -> None:
        if on:
            self.view.set_mode(mode)
            self.message.emit(TOOL_HELP[mode], 15000)
        elif self.view.mode == mode:
            self.view.set_mode(MODE_PAN)

    def _on_mode_changed(self, mode: str) -> None:
        for m, act in self.tool_actions.items():
            act.blockSignals(True)
            act.setChecked(mode == m)
            act.blockSignals(False)

    def _on_drawn(self, drawn: Drawn) -> None:
        s = self.session
        if s is None:
            return
        (x0, y0), (x1, y1) = drawn.l0_points[0], drawn.l0_points[-1]
        # Named when drawn, so the name stays when others are deleted and goes into the exports; one
        # running number across shapes, so "annotation 4" means one annotation.
        numbers = [int(m.group(1)) for a in s.annotation_list() if (m := AUTO_NAME.fullmatch(a.name))]
        name = f"{drawn.shape.capitalize()} {max(numbers, default=0) + 1}"
        try:
            if drawn.shape == MODE_RECT:
                ann = Annotation.rectangle(x0, y0, x1, y1, name=name)
            elif drawn.shape == MODE_ELLIPSE:
                ann = Annotation.ellipse(x0, y0, x1, y1, name=name)
            elif drawn.shape == MODE_FREEHAND:
                ann = Annotation.freehand(drawn.l0_points, name=name)
            else:
                ann = Annotation.polygon(drawn.l0_points, name=name)
        except ChaoyangError as exc:
            self.message.emit(str(exc), 10000)
            return
        if self.view.mode != MODE_RULER:
            self.view.set_mode(MODE_PAN)
        s.edit(lambda h: h.add(ann, f"Draw {drawn.shape.capitalize()}"))
        s.select([ann.uid])
        mpp = s.slide.mpp
        area = f" ({ann.area_l0() * (mpp / 1000.0) ** 2:.3f} mm\u00b2)" if mpp else ""
        self.message.emit(f"{name} drawn{area}. Analyze classifies the tissue inside the selected annotations; "
                          "rename and classify it in the Annotations panel.", 10000)
        self.target_drawn.emit(ann.roi())

    def draw(self, shape: str, l0_points: object) -> None:
        """Draw a shape as the tool would (scripts and tests)."""
        import numpy as np

        self._on_drawn(Drawn(shape, np.asarray(l0_points, dtype=np.float64).reshape(-1, 2)))

    def clear_ruler(self) -> None:
        self.view.tools.ruler = None
        self.view.update()
        self.update_actions()

    def _on_measured(self, l0_length: float) -> None:
        mpp = self.session.slide.mpp if self.session is not None else None
        self.message.emit(f"Distance: {format_length(l0_length, mpp)}", 30000)
        self.update_actions()

    # ----- selection ------------------------------------------------------------------------------
    def select(self, uids: tuple[str, ...] | list[str]) -> None:
        if self.session is not None:
            self.session.select(uids)

    def _on_panel_selection(self, uids: tuple[str, ...]) -> None:
        self.select(uids)

    def annotation_at(self, l0_x: float, l0_y: float) -> Annotation | None:
        """The smallest annotation containing a level-0 point (the innermost, as QuPath picks)."""
        if self.session is None:
            return None
        hits = [a for a in self.session.annotation_list() if a.contains(l0_x, l0_y)]
        return min(hits, key=lambda a: a.area_l0()) if hits else None

    def _on_clicked(self, l0_x: float, l0_y: float, additive: bool) -> None:
        s = self.session
        if s is None:
            return
        hit = self.annotation_at(l0_x, l0_y)
        if additive:
            if hit is not None:
                current = list(s.selected)
                s.select([u for u in current if u != hit.uid] if hit.uid in current else [*current, hit.uid])
        else:
            s.select([hit.uid] if hit is not None else [])

    # ----- edits ----------------------------------------------------------------------------------
    def _replace(self, uid: str, change: Callable[[Annotation], Annotation], label: str) -> None:
        s = self.session
        if s is None:
            return
        ann = s.annotations.by_uid(uid)
        if ann is None:
            return
        try:
            new = change(ann)
        except ChaoyangError as exc:
            self.message.emit(str(exc), 8000)
            return
        s.edit(lambda h: h.replace(new, label))

    def _on_moved(self, uid: str, l0_dx: float, l0_dy: float) -> None:
        self._replace(uid, lambda a: a.moved(l0_dx, l0_dy), "Move Annotation")

    def _on_vertex_moved(self, uid: str, index: int, l0_x: float, l0_y: float) -> None:
        ann = self.session.annotations.by_uid(uid) if self.session is not None else None
        label = "Resize Annotation" if ann is not None and ann.shape in BOX_SHAPES else "Move Vertex"
        self._replace(uid, lambda a: AnnotationTools.edited(a, index, l0_x, l0_y), label)

    def _on_renamed(self, uid: str, name: str) -> None:
        self._replace(uid, lambda a: a.renamed(name), "Rename Annotation")

    def _on_class_chosen(self, path_class: PathClass | None) -> None:
        s = self.session
        if s is None or not s.selected:
            return
        chosen = [a.classified(path_class) for a in s.selected_annotations()]
        by_uid = {a.uid: a for a in chosen}
        s.edit(lambda h: h.apply(tuple(by_uid.get(a.uid, a) for a in h.state), "Set Class"))

    def delete_selected(self) -> None:
        s = self.session
        if s is None or not s.selected:
            return
        n = len(s.selected)
        s.edit(lambda h: h.remove(s.selected, "Delete Annotation" if n == 1 else f"Delete {n} Annotations"))
        self.message.emit(f"{n} annotation(s) deleted; Edit > Undo brings them back.", 8000)

    def delete_at_cursor(self) -> None:
        """Delete: the corner under the cursor when there is one, else the selected annotations."""
        pos = self.view.mapFromGlobal(QCursor.pos())
        vertex = self.view.tools.hovered_vertex(pos.toPointF())
        ann = self.session.annotations.by_uid(vertex[0]) if vertex is not None and self.session is not None else None
        if vertex is not None and ann is not None and ann.shape not in BOX_SHAPES:
            self._replace(vertex[0], lambda a: a.without_vertex(vertex[1]), "Delete Vertex")
        else:
            self.delete_selected()

    def undo(self) -> None:
        if self.session is not None and (label := self.session.undo()) is not None:
            self.message.emit(f"Undone: {label}", 5000)

    def redo(self) -> None:
        if self.session is not None and (label := self.session.redo()) is not None:
            self.message.emit(f"Redone: {label}", 5000)

    # ----- files ----------------------------------------------------------------------------------
    def import_dialog(self) -> None:
        parent = self.parent()
        start = str(Path(self.session.path).parent) if self.session is not None else ""
        path, _ = QFileDialog.getOpenFileName(parent if isinstance(parent, QWidget) else None,
                                              "Import annotations", start, "GeoJSON (*.geojson *.json);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> bool:
        """Add the annotations of a GeoJSON file to the slide (one undo step); False when it cannot."""
        s = self.session
        if s is None:
            self.message.emit("Open a slide first, then import its annotations.", 8000)
            return False
        try:
            imported = read_annotations_file(path)
        except ChaoyangError as exc:
            self.failed.emit(str(exc))
            return False
        taken = {a.uid for a in s.annotation_list()}
        # The same file imported twice adds copies; each annotation keeps a uid of its own.
        new = [a if a.uid not in taken else _with_uid(a, str(uuid.uuid4())) for a in imported.annotations]
        w, h = s.slide.dimensions
        outside = sum(1 for a in new if not _overlaps(a.bounds(), w, h))
        s.edit(lambda hist: hist.apply(hist.state + tuple(new), f"Import {len(new)} Annotation(s)"))
        note = f" {outside} lie outside this slide: were they made on another image?" if outside else ""
        skipped = f" Skipped: {'; '.join(imported.notes)}" if imported.notes else ""
        self.message.emit(f"Imported {len(new)} annotation(s) from {Path(path).name}.{note}{skipped}", 15000)
        return True

    def export_dialog(self) -> None:
        s = self.session
        if s is None or not s.annotation_list():
            return
        parent = self.parent()
        start = str(Path(s.path).with_suffix(".geojson"))
        path, _ = QFileDialog.getSaveFileName(parent if isinstance(parent, QWidget) else None,
                                              "Export annotations", start, "GeoJSON (*.geojson)")
        if path:
            self.export_file(path)

    def export_file(self, path: str) -> bool:
        s = self.session
        if s is None:
            return False
        try:
            write_annotations_file(path, list(s.annotation_list()))
        except ChaoyangError as exc:
            self.failed.emit(str(exc))
            return False
        self.message.emit(f"{len(s.annotation_list())} annotation(s) saved to {path}", 10000)
        return True

    def selection_region(self) -> Roi | None:
        return self.session.selection_region() if self.session is not None else None


def _with_uid(annotation: Annotation, uid: str) -> Annotation:
    import dataclasses

    return dataclasses.replace(annotation, uid=uid)


def _overlaps(bounds: tuple[float, float, float, float], l0_width: int, l0_height: int) -> bool:
    x0, y0, x1, y1 = bounds
    return x1 > 0 and y1 > 0 and x0 < l0_width and y0 < l0_height
