"""The Analyses panel: the whole slide and each region drawn on it, one analysis each.

A region's analysis and the whole slide's are separate results (each cached under its own key),
so drawing a region never replaces the whole slide's analysis: choosing an entry shows that
analysis again, from the cache when it was made before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.roi import Roi

#: The item data role that holds the entry's region (None: the whole slide).
REGION_ROLE = Qt.ItemDataRole.UserRole + 1


class AnalysesPanel(QWidget):
    """Lists the analyses of the open slide; choosing one emits :attr:`chosen` with its region."""

    chosen = Signal(object)  # Roi | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.list = QListWidget()
        self.list.setObjectName("analyses_list")
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        layout.addWidget(self.list)
        hint = QLabel("Each region drawn keeps its own analysis. Click one to show it; Analyze runs "
                      "the one shown.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid);")
        layout.addWidget(hint)

    def set_entries(self, regions: list[Roi], mm2_per_l0px: float | None, current: Roi | None) -> None:
        """The whole slide first, then the regions in the order they were drawn; ``current`` selected."""
        self.list.blockSignals(True)
        self.list.clear()
        entries: list[tuple[str, Roi | None]] = [("Whole slide", None)]
        for i, roi in enumerate(regions, 1):
            area = f" ({roi.area_l0() * mm2_per_l0px:.3f} mm\u00b2)" if mm2_per_l0px else ""
            name = roi.source if roi.source and roi.source != "drawn" else f"Region {i}"
            entries.append((f"{name}{area}", roi))
        for text, roi in entries:
            item = QListWidgetItem(text)
            item.setData(REGION_ROLE, roi)
            self.list.addItem(item)
            if (roi is None and current is None) or (roi is not None and current is not None
                                                     and roi.digest() == current.digest()):
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)

    def entry_texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def choose(self, row: int) -> None:
        """Select entry ``row`` as a click would."""
        item = self.list.item(row)
        self.list.setCurrentItem(item)
        self._activated(item)

    def _activated(self, item: QListWidgetItem) -> None:
        self.chosen.emit(item.data(REGION_ROLE))
