"""The slide properties panel: format, size, levels, pixel size, objective; and a pixel-size override.

A slide without a pixel size cannot be analysed (tiles are a fixed field of view in micrometres);
the engine's error tells the user to set it here, so the panel offers the override.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from chaoyang_desktop.core.slide.reader import Slide


def slide_facts(slide: Slide) -> list[tuple[str, str]]:
    """``(label, value)`` rows that describe a slide for a pathologist."""
    w, h = slide.dimensions
    if slide.mpp:
        mm = f"{w * slide.mpp / 1000:.2f} \u00d7 {h * slide.mpp / 1000:.2f} mm"
        source = {"metadata": "from the file", "override": "set by you", "assumed": "ASSUMED (not in the file)"}.get(
            slide.mpp_source, slide.mpp_source)
        mpp = f"{slide.mpp:.4f} \u00b5m/px ({source})"
    else:
        mm = "unknown"
        mpp = "unknown: set it below to analyse"
    levels = ", ".join(f"{d:g}" for d in slide.level_downsamples)
    return [
        ("File", slide.path.name),
        ("Format", slide.vendor),
        ("Dimensions", f"{w:,} \u00d7 {h:,} px"),
        ("Physical size", mm),
        ("Pixel size", mpp),
        ("Objective", f"{slide.objective_power:g}\u00d7" if slide.objective_power else "not given"),
        ("Pyramid", f"{slide.level_count} level(s), downsamples {levels}"),
        ("Folder", str(slide.path.parent)),
    ]


class PropertiesPanel(QWidget):
    """Read-only facts plus the pixel-size override."""

    mpp_override = Signal(object)  # float, or None to go back to the file's value

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        layout.addLayout(self.form)
        row = QHBoxLayout()
        self.mpp_spin = QDoubleSpinBox()
        self.mpp_spin.setDecimals(4)
        self.mpp_spin.setRange(0.05, 50.0)
        self.mpp_spin.setSingleStep(0.01)
        self.mpp_spin.setValue(0.5)
        self.mpp_spin.setSuffix(" \u00b5m/px")
        self.apply_button = QPushButton("Set pixel size")
        self.reset_button = QPushButton("Use file's")
        row.addWidget(self.mpp_spin, 1)
        row.addWidget(self.apply_button)
        row.addWidget(self.reset_button)
        self.override_label = QLabel("Pixel size override (about 0.25 at 40\u00d7, 0.5 at 20\u00d7):")
        self.override_label.setWordWrap(True)
        layout.addWidget(self.override_label)
        layout.addLayout(row)
        layout.addStretch(1)
        self.apply_button.clicked.connect(lambda: self.mpp_override.emit(float(self.mpp_spin.value())))
        self.reset_button.clicked.connect(lambda: self.mpp_override.emit(None))
        self.set_slide(None)

    def set_slide(self, slide: Slide | None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        enabled = slide is not None
        for w in (self.mpp_spin, self.apply_button, self.override_label):
            w.setEnabled(enabled)
        self.reset_button.setEnabled(enabled and slide.mpp_source == "override")
        if slide is None:
            self.form.addRow(QLabel("No slide open."))
            return
        for label, value in slide_facts(slide):
            v = QLabel(value)
            v.setWordWrap(True)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if label == "Pixel size" and (slide.mpp is None or slide.mpp_assumed):
                v.setStyleSheet("color: #b00020; font-weight: 600;")
            self.form.addRow(label, v)
        if slide.mpp:
            self.mpp_spin.setValue(slide.mpp)
