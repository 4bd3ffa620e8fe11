"""The Annotations panel: every annotation of the open slide with its name, class and area.

Selecting rows selects the annotations on the slide (and the reverse); a double-click on a name
renames it; the class box sets the class of the selected ones. The panel only shows what it is
given and emits what the user asked; the
:class:`~chaoyang_desktop.gui.annotation_controller.AnnotationController` makes the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.gui.overlay_panel import swatch_icon

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.annotations import Annotation, PathClass

UID_ROLE = Qt.ItemDataRole.UserRole + 1
NO_CLASS = "(no class)"


def rgb_hex(color: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


class AnnotationsPanel(QWidget):
    """A list of annotations plus the controls that act on the selected ones."""

    selection_changed = Signal(object)  # tuple[str, ...] of uids
    renamed = Signal(str, str)  # uid, new name
    class_chosen = Signal(object)  # PathClass | None
    delete_requested = Signal()
    import_requested = Signal()
    export_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.tree = QTreeWidget()
        self.tree.setObjectName("annotations_list")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Name", "Class", "mm\u00b2"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 90)  # room for a class name before one is set
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.headerItem().setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        self.tree.itemChanged.connect(self._on_item_changed)
        layout.addWidget(self.tree)

        row = QHBoxLayout()
        row.addWidget(QLabel("Class"))
        self.class_box = QComboBox()
        self.class_box.setObjectName("annotation_class")
        self.class_box.setToolTip("The class of the selected annotations")
        self.class_box.activated.connect(self._on_class)
        row.addWidget(self.class_box, 1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected annotations (Delete; Edit > Undo brings them back)")
        self.delete_button.clicked.connect(self.delete_requested)
        row.addWidget(self.delete_button)
        layout.addLayout(row)

        files = QHBoxLayout()
        self.import_button = QPushButton("Import\u2026")
        self.import_button.setToolTip("Add annotations from a QuPath GeoJSON file")
        self.import_button.clicked.connect(self.import_requested)
        self.export_button = QPushButton("Export\u2026")
        self.export_button.setToolTip("Save the annotations as GeoJSON that QuPath imports")
        self.export_button.clicked.connect(self.export_requested)
        files.addWidget(self.import_button)
        files.addWidget(self.export_button)
        files.addStretch(1)
        layout.addLayout(files)
        self.hint = QLabel("Draw with the Rectangle, Ellipse, Polygon or Freehand tool. Click an annotation to "
                           "select it; drag it or its corners to edit. Analyze runs on the selected ones.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(dark);")
        self.tree.setToolTip(self.hint.text())
        layout.addWidget(self.hint)
        self._classes: tuple[PathClass, ...] = ()
        self._class_of: dict[str, str] = {}  # uid -> class name ("" without one)
        self._filling = False
        self._update_buttons()

    def set_classes(self, classes: tuple[PathClass, ...]) -> None:
        self._classes = classes
        self.class_box.clear()
        self.class_box.addItem(NO_CLASS)
        for pc in classes:
            self.class_box.addItem(swatch_icon(rgb_hex(pc.color)), pc.name)

    def set_annotations(self, annotations: tuple[Annotation, ...], selected: tuple[str, ...],
                        mm2_per_l0px: float | None) -> None:
        """Show the annotations (in drawing order) with ``selected`` selected."""
        self._filling = True
        self.tree.blockSignals(True)
        self.tree.clear()
        chosen = set(selected)
        self._class_of = {a.uid: a.path_class.name if a.path_class else "" for a in annotations}
        for i, ann in enumerate(annotations, 1):
            area = f"{ann.area_l0() * mm2_per_l0px:.3f}" if mm2_per_l0px else "\u2013"
            item = QTreeWidgetItem([ann.display_name(i), ann.path_class.name if ann.path_class else "", area])
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            item.setData(0, UID_ROLE, ann.uid)
            item.setData(0, Qt.ItemDataRole.EditRole, ann.name or ann.display_name(i))
            if ann.path_class is not None:
                item.setIcon(1, swatch_icon(rgb_hex(ann.path_class.color)))
            item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.tree.addTopLevelItem(item)
            item.setSelected(ann.uid in chosen)
        self.tree.blockSignals(False)
        self._filling = False
        self.hint.setVisible(not annotations)  # how to start; once there are some, room for the list
        self._update_buttons()

    def uids(self) -> list[str]:
        return [self.tree.topLevelItem(i).data(0, UID_ROLE) for i in range(self.tree.topLevelItemCount())]

    def selected_uids(self) -> tuple[str, ...]:
        return tuple(item.data(0, UID_ROLE) for item in self.tree.selectedItems())

    def row_texts(self) -> list[tuple[str, str, str]]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            out.append((item.text(0), item.text(1), item.text(2)))
        return out

    def _update_buttons(self) -> None:
        some = bool(self.tree.selectedItems())
        self.delete_button.setEnabled(some)
        self.class_box.setEnabled(some)
        self.export_button.setEnabled(self.tree.topLevelItemCount() > 0)
        # The box shows the class the selected annotations share (none when mixed or none selected).
        names = {self._class_of.get(uid, "") for uid in self.selected_uids()}
        shared = names.pop() if len(names) == 1 else ""
        index = self.class_box.findText(shared) if shared else 0
        self.class_box.setCurrentIndex(max(0, index))

    def _on_selection(self) -> None:
        self._update_buttons()
        if not self._filling:
            self.selection_changed.emit(self.selected_uids())

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 0:
            return
        self.renamed.emit(item.data(0, UID_ROLE), item.text(0).strip())

    def _on_class(self, index: int) -> None:
        self.class_chosen.emit(None if index <= 0 else self._classes[index - 1])
