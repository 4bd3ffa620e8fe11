"""The start page: what the app does, Open buttons, recent files, and the research-use notice."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    open_file = Signal()
    open_folder = Signal()
    open_recent = Signal(str)
    open_sample = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        box = QVBoxLayout()
        title = QLabel("<h1>Chaoyang Desktop</h1>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        sub = QLabel("Classify colon H&amp;E tissue as <b>Normal</b>, <b>Serrated</b>, <b>Adenocarcinoma</b> "
                     "or <b>Adenoma</b> in whole-slide images and patches.")
        sub.setWordWrap(True)
        sub.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addWidget(title)
        box.addWidget(sub)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        b1 = QPushButton("Open slide or image\u2026")
        b2 = QPushButton("Open folder\u2026")
        for b in (b1, b2):
            b.setMinimumHeight(36)
            b.setMinimumWidth(190)
            buttons.addWidget(b)
        buttons.addStretch(1)
        box.addSpacing(12)
        box.addLayout(buttons)
        hint = QLabel("or drop slides, images or folders anywhere on this window")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setStyleSheet("color: palette(placeholder-text);")
        box.addWidget(hint)
        box.addSpacing(10)
        sample_row = QHBoxLayout()
        sample_row.addStretch(1)
        self.sample_button = QPushButton("Open the sample slide (CMU-1, CC0)")
        self.sample_button.setObjectName("sample_button")
        self.sample_button.setToolTip("A small H&E region of the OpenSlide test slide CMU-1, bundled with the app "
                                      "(public domain, CC0): try panning, zooming and Analyze on it")
        self.sample_button.setMinimumHeight(32)
        self.sample_button.clicked.connect(self.open_sample)
        sample_row.addWidget(self.sample_button)
        sample_row.addStretch(1)
        box.addLayout(sample_row)
        box.addSpacing(16)
        self.recent_label = QLabel("<b>Recent</b>")
        box.addWidget(self.recent_label)
        self.recent = QListWidget()
        self.recent.setMaximumHeight(180)
        self.recent.setAcceptDrops(False)
        box.addWidget(self.recent)
        notice = QLabel("<i>For research use only; not for diagnosis.</i>")
        notice.setAlignment(Qt.AlignmentFlag.AlignCenter)
        box.addSpacing(8)
        box.addWidget(notice)
        row = QHBoxLayout()
        row.addStretch(1)
        inner = QWidget()
        inner.setLayout(box)
        inner.setMaximumWidth(640)
        row.addWidget(inner, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        b1.clicked.connect(self.open_file)
        b2.clicked.connect(self.open_folder)
        self.recent.itemActivated.connect(lambda it: self.open_recent.emit(it.data(Qt.ItemDataRole.UserRole)))
        self.recent.itemClicked.connect(lambda it: self.open_recent.emit(it.data(Qt.ItemDataRole.UserRole)))

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for p in paths:
            item = QListWidgetItem(f"{Path(p).name}    \u2014 {Path(p).parent}")
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
