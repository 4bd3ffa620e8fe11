"""The status-bar pieces: progress of the running job (done/total, rate, time left, Cancel) and the device."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class JobProgress(QWidget):
    """``[title] [=====     ] 12 / 182 tiles · 8.3 tiles/s · 0:21 left [Cancel]``; hidden when idle."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel()
        self.bar = QProgressBar()
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(True)
        self.rate = QLabel()
        self.rate.setMinimumWidth(170)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.cancel_button.clicked.connect(self.cancel_requested)
        for w in (self.title, self.bar, self.rate, self.cancel_button):
            layout.addWidget(w)
        self._unit = "tiles"
        self._done0 = 0
        self.hide()

    def start(self, title: str, unit: str = "tiles", total: int = 0) -> None:
        self._unit = unit
        self._done0 = 0
        self.title.setText(title)
        self.bar.setRange(0, 0)  # busy until the total is known
        self.bar.setFormat("")
        self.rate.setText("starting\u2026")
        self.cancel_button.setEnabled(True)
        if total:
            self.set_total(total, 0)
        self.show()

    def set_total(self, total: int, done_before: int = 0) -> None:
        """The job's size; ``done_before`` items were already done (resumed from the cache)."""
        self._done0 = done_before
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(done_before)
        self.bar.setFormat(f"%v / %m {self._unit}")

    def update_progress(self, done: int, total: int, elapsed_s: float) -> None:
        if self.bar.maximum() != max(1, total):
            self.bar.setRange(0, max(1, total))
            self.bar.setFormat(f"%v / %m {self._unit}")
        self.bar.setValue(done)
        new = done - self._done0
        if elapsed_s > 0 and new > 0:
            per_s = new / elapsed_s
            left = (total - done) / per_s if per_s > 0 else 0.0
            self.rate.setText(f"{per_s:.1f} {self._unit}/s \u00b7 {format_eta(left)} left")
        else:
            self.rate.setText("")

    def set_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.rate.setText("cancelling\u2026")

    def finish(self) -> None:
        self.hide()


class DeviceLabel(QLabel):
    """The active model and where it runs: name, source and weights, device and precision.

    Always in the status bar, so a pathologist can tell which model made the colours on screen.
    Orange with a tooltip when the model fell back to the CPU.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Device: detecting\u2026", parent)
        self.setContentsMargins(6, 0, 6, 0)
        self.description = ""
        self.warning = ""
        self.precision = ""
        self.model = ""
        self.model_tip = ""

    def set_device(self, description: str, warning: str = "", precision: str = "") -> None:
        self.description, self.warning = description, warning
        if precision:
            self.precision = precision
        self._show()

    def set_model(self, model_id: str, source: str, weights_sha256: str, temperature: float = 1.0,
                  tta: bool = False) -> None:
        """The model in use: its name (the last part of a hub id or folder), source and weights."""
        name = model_id.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or model_id
        short = name if len(name) <= 34 else name[:33] + "\u2026"
        where = "local folder" if source == "local" else "Hugging Face"
        extras = [f"calibrated T={temperature:.2g}"] if abs(temperature - 1.0) > 1e-9 else []
        extras += ["TTA"] if tta else []
        self.model = f"{short} ({weights_sha256[:8]})" + (f" \u00b7 {', '.join(extras)}" if extras else "")
        self.model_tip = (f"Model: {model_id}\nFrom: {where}\nWeights SHA-256: {weights_sha256}"
                          + (f"\nCalibration: temperature {temperature:.3g}" if extras and "calibrated" in extras[0] else "")
                          + ("\nTest-time augmentation: on" if tta else ""))
        self._show()

    def _show(self) -> None:
        device = self.description + (f" \u00b7 {self.precision}" if self.precision else "")
        text = f"{self.model} \u00b7 {device}" if self.model else device
        if self.warning:
            self.setText(f"\u26a0 {text}")
            self.setStyleSheet("color: #b35c00; font-weight: 600;")
            self.setToolTip(f"{self.warning}\n\n{self.model_tip}".strip())
        else:
            self.setText(text)
            self.setStyleSheet("")
            self.setToolTip((self.model_tip + "\n" if self.model_tip else "") + "The device that runs the model")
