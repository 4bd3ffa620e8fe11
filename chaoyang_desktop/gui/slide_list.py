"""The slide list shown when a folder of slides is opened; picking one opens it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget


class SlideList(QWidget):
    slide_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.header = QLabel()
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setAcceptDrops(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setWordWrap(False)
        layout.addWidget(self.list, 1)
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)

    def set_slides(self, paths: list[Path], folder: Path | None, note: str = "") -> None:
        self.list.clear()
        base = folder if folder is not None else None
        for p in paths:
            try:
                label = str(p.relative_to(base)) if base is not None else p.name
            except ValueError:
                label = p.name
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, str(p))
            item.setToolTip(str(p))
            self.list.addItem(item)
        where = f" in the folder \u201c{folder.name}\u201d" if folder is not None else ""
        self.header.setText(f"{len(paths)} slide{'s' if len(paths) != 1 else ''}{where}" + (f"\n{note}" if note else ""))

    def mark_current(self, path: str) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                self.list.blockSignals(True)
                self.list.setCurrentItem(item)
                self.list.blockSignals(False)
                return

    def paths(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _chosen(self, item: QListWidgetItem) -> None:
        self.slide_chosen.emit(item.data(Qt.ItemDataRole.UserRole))
