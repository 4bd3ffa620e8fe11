"""Brightness, contrast and gamma of the slide layer: what the eye sees, never what the model sees.

A faded or dark scan is easier to read adjusted, as in QuPath's Brightness & Contrast window. The
adjustment is a 256-entry lookup table applied to the display tiles and the overview only; the
analysis, the inspector's tile picture and every export read the slide's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget


@dataclass(frozen=True)
class DisplayAdjustment:
    """Brightness (added, -0.5..0.5), contrast (a factor around mid-grey) and gamma (> 1 lightens)."""

    brightness: float = 0.0
    contrast: float = 1.0
    gamma: float = 1.0

    @property
    def is_identity(self) -> bool:
        return self.brightness == 0.0 and self.contrast == 1.0 and self.gamma == 1.0

    def lut(self) -> np.ndarray | None:
        """The 256-entry uint8 table, or None for no change (the tiles are then used as read)."""
        if self.is_identity:
            return None
        v = np.arange(256, dtype=np.float64) / 255.0
        v = v ** (1.0 / self.gamma)
        v = (v - 0.5) * self.contrast + 0.5 + self.brightness
        table: np.ndarray = np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)
        return table


def apply_lut(rgb: np.ndarray, lut: np.ndarray | None) -> np.ndarray:
    """``rgb`` through the table (a new array), or ``rgb`` itself when there is none."""
    return rgb if lut is None else lut[rgb]


class DisplayAdjustDialog(QDialog):
    """Three sliders and Reset; ``adjustment_changed`` on every move (the view redraws at once)."""

    adjustment_changed = Signal(object)  # DisplayAdjustment

    def __init__(self, current: DisplayAdjustment, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("display_adjust_dialog")
        self.setWindowTitle("Brightness & Contrast")
        layout = QVBoxLayout(self)
        note = QLabel("Changes how the slide looks on screen only; the analysis uses the slide's own pixels.")
        note.setWordWrap(True)
        layout.addWidget(note)
        form = QFormLayout()
        # Sliders in hundredths: brightness -50..50, contrast 25..300, gamma 25..400.
        self.brightness = self._slider(-50, 50, round(current.brightness * 100))
        self.contrast = self._slider(25, 300, round(current.contrast * 100))
        self.gamma = self._slider(25, 400, round(current.gamma * 100))
        self._values: dict[QSlider, QLabel] = {}
        for label, slider in (("Brightness", self.brightness), ("Contrast", self.contrast), ("Gamma", self.gamma)):
            value = QLabel()
            value.setMinimumWidth(40)
            row = QHBoxLayout()
            row.addWidget(slider, 1)
            row.addWidget(value)
            form.addRow(label, row)
            self._values[slider] = value
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Reset | QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Reset).clicked.connect(self.reset)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        for slider in self._values:
            slider.valueChanged.connect(self._changed)
        self._show_values()

    @staticmethod
    def _slider(low: int, high: int, value: int) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(low, high)
        s.setValue(value)
        s.setMinimumWidth(220)
        return s

    @property
    def adjustment(self) -> DisplayAdjustment:
        return DisplayAdjustment(self.brightness.value() / 100.0, self.contrast.value() / 100.0,
                                 self.gamma.value() / 100.0)

    def reset(self) -> None:
        for slider, value in ((self.brightness, 0), (self.contrast, 100), (self.gamma, 100)):
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        self._changed()

    def _show_values(self) -> None:
        a = self.adjustment
        self._values[self.brightness].setText(f"{a.brightness:+.2f}")
        self._values[self.contrast].setText(f"{a.contrast:.2f}\u00d7")
        self._values[self.gamma].setText(f"{a.gamma:.2f}")

    def _changed(self) -> None:
        self._show_values()
        self.adjustment_changed.emit(self.adjustment)
