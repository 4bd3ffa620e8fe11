"""The Settings dialog: model, inference device and precision, tiling, tissue threshold, cluster, colours.

It reads and writes :class:`~chaoyang_desktop.gui.settings.AppSettings` only; nothing is applied
until OK. Values the engine would refuse (a stride that does not divide the tile) are refused
here with the engine's own message.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.profile import CHANNEL_ORDERS, DEFAULT_MODEL_ID, RESIZE_METHODS, default_colors
from chaoyang_desktop.core.slide.tiling import stride_factor
from chaoyang_desktop.gui.overlay_panel import swatch_icon
from chaoyang_desktop.gui.settings import DEFAULTS, AppSettings

DEVICE_CHOICES = (("Automatic (GPU if available)", "auto"), ("NVIDIA GPU (CUDA)", "cuda"),
                  ("Apple GPU (Metal)", "mps"), ("CPU", "cpu"))
PRECISION_CHOICES = (("Automatic (bf16/fp16 on GPU)", "auto"), ("fp32", "fp32"), ("bf16", "bf16"), ("fp16", "fp16"))
MODEL_TILE_UM = 256.0


class SettingsDialog(QDialog):
    """Edits the persistent settings."""

    def __init__(self, settings: AppSettings, class_names: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settings_dialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self._settings = settings
        self._names = class_names
        self._colors = list(settings.class_colors(class_names, default_colors(class_names)))
        layout = QVBoxLayout(self)

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        row = QHBoxLayout()
        self.model_edit = QLineEdit(settings.get("model/spec"))
        self.model_edit.setPlaceholderText(DEFAULT_MODEL_ID)
        self.model_edit.setToolTip("A model folder (config.json + weights) or a Hugging Face repository id; "
                                   "empty for the default model.")
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_model)
        row.addWidget(self.model_edit, 1)
        row.addWidget(browse)
        form.addRow("Model", row)
        self.channel_combo = QComboBox()
        self.channel_combo.addItem("Model default (BGR, as in training)", "")
        for c in CHANNEL_ORDERS:
            self.channel_combo.addItem(c.upper(), c)
        form.addRow("Channel order", self.channel_combo)
        self.resize_combo = QComboBox()
        self.resize_combo.addItem("Model default (linear, as in training)", "")
        for r in RESIZE_METHODS:
            self.resize_combo.addItem(r, r)
        form.addRow("Resize", self.resize_combo)
        layout.addWidget(model_box)

        engine_box = QGroupBox("Inference")
        form = QFormLayout(engine_box)
        self.device_combo = QComboBox()
        for label, value in DEVICE_CHOICES:
            self.device_combo.addItem(label, value)
        form.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox()
        for label, value in PRECISION_CHOICES:
            self.precision_combo.addItem(label, value)
        form.addRow("Precision", self.precision_combo)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 1024)
        form.addRow("Batch size", self.batch_spin)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setSpecialValueText("PyTorch default")
        form.addRow("CPU threads", self.threads_spin)
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, 32)
        form.addRow("Tile reader threads", self.workers_spin)
        self.tta_check = QCheckBox("Test-time augmentation (8 orientations; 8\u00d7 slower)")
        self.tta_check.setToolTip("Classify each tile in the eight flips and rotations the model was trained with "
                                  "and average them. Gives the spread across them for the Uncertainty overlay.")
        form.addRow("", self.tta_check)
        self.calibration_edit = QLineEdit()
        self.calibration_edit.setPlaceholderText("None: probabilities as the model gives them")
        self.calibration_edit.setToolTip("A temperature fitted on your own labelled patches (Tools \u25b8 Evaluate "
                                         "\u25b8 Fit Temperature). It changes confidences, never the class.")
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse_calibration)
        row = QHBoxLayout()
        row.addWidget(self.calibration_edit, 1)
        row.addWidget(browse)
        form.addRow("Calibration", row)
        layout.addWidget(engine_box)

        tiling_box = QGroupBox("Tiling")
        form = QFormLayout(tiling_box)
        self.tile_spin = QDoubleSpinBox()
        self.tile_spin.setRange(0.0, 10000.0)
        self.tile_spin.setDecimals(1)
        self.tile_spin.setSuffix(" \u00b5m")
        self.tile_spin.setSpecialValueText(f"Model default ({MODEL_TILE_UM:g} \u00b5m)")
        form.addRow("Tile size", self.tile_spin)
        self.stride_spin = QDoubleSpinBox()
        self.stride_spin.setRange(0.0, 10000.0)
        self.stride_spin.setDecimals(1)
        self.stride_spin.setSuffix(" \u00b5m")
        self.stride_spin.setSpecialValueText("Same as the tile (no overlap)")
        form.addRow("Stride", self.stride_spin)
        self.tissue_spin = QDoubleSpinBox()
        self.tissue_spin.setRange(0.0, 1.0)
        self.tissue_spin.setSingleStep(0.05)
        self.tissue_spin.setDecimals(2)
        self.tissue_spin.setToolTip("Minimum fraction of tissue under a tile for it to be classified; 0 keeps every tile.")
        form.addRow("Tissue threshold", self.tissue_spin)
        self.qc_check = QCheckBox("Quality control: leave out tiles of glass, pen ink, blur or dark artefacts")
        self.qc_check.setToolTip("Flagged tiles are not classified; the heatmap shows them dark grey and the "
                                 "summary counts them per reason. Off: every tissue tile is classified.")
        form.addRow("", self.qc_check)
        note = QLabel("The model's field of view is inferred from its training patches (512 px at 0.5 \u00b5m/px, "
                      "256 \u00b5m); the publishers do not state it.")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(placeholder-text);")
        form.addRow(note)
        layout.addWidget(tiling_box)

        cluster_box = QGroupBox("Cohorts on a Ray cluster")
        form = QFormLayout(cluster_box)
        self.ray_address_edit = QLineEdit()
        self.ray_address_edit.setPlaceholderText("local")
        self.ray_address_edit.setToolTip(
            "Where the cohort window's \u201cRay cluster\u201d runs the slides: local (Ray started on this computer for "
            "the run), auto (the cluster this computer joined with \u201cray start\u201d), or the head's address "
            "(10.0.0.1:6379, ray://head:10001). Every node must read the slides at the same path.")
        form.addRow("Ray address", self.ray_address_edit)
        self.cpus_per_worker_spin = QSpinBox()
        self.cpus_per_worker_spin.setRange(1, 256)
        self.cpus_per_worker_spin.setToolTip("CPUs each Ray worker reserves on a cluster without GPUs "
                                             "(PyTorch uses that many threads).")
        form.addRow("CPUs per worker", self.cpus_per_worker_spin)

        colors_box = QGroupBox("Default class colours")
        grid = QGridLayout(colors_box)
        self._color_buttons: list[QToolButton] = []
        for i, name in enumerate(class_names):
            button = QToolButton()
            button.setText(name)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.clicked.connect(lambda _=False, i=i: self._pick(i))
            grid.addWidget(button, i // 2, i % 2)
            self._color_buttons.append(button)
        reset = QPushButton("Reset colours")
        reset.clicked.connect(self._reset_colors)
        grid.addWidget(reset, (len(class_names) + 1) // 2, 0)
        side_by_side = QHBoxLayout()  # the dialog is tall enough already
        side_by_side.addWidget(colors_box)
        side_by_side.addWidget(cluster_box)
        layout.addLayout(side_by_side)

        behaviour = QGroupBox("Behaviour")
        v = QVBoxLayout(behaviour)
        self.confirm_check = QCheckBox("Show the tissue and tile preview before each analysis")
        self.classify_check = QCheckBox("Classify patches as soon as a patch folder opens")
        v.addWidget(self.confirm_check)
        v.addWidget(self.classify_check)
        layout.addWidget(behaviour)

        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self._restore_defaults)
        layout.addWidget(self.buttons)
        self._align_label_columns(model_box, engine_box, tiling_box)
        self._load()

    # ----- values ---------------------------------------------------------------------------------------
    def _set_combo(self, combo: QComboBox, value: str) -> None:
        i = combo.findData(value)
        combo.setCurrentIndex(max(0, i))

    def _load(self) -> None:
        s = self._settings
        self._set_combo(self.channel_combo, s.get("engine/channel_order"))
        self._set_combo(self.resize_combo, s.get("engine/resize"))
        self._set_combo(self.device_combo, s.get("engine/device"))
        self._set_combo(self.precision_combo, s.get("engine/precision"))
        self.batch_spin.setValue(s.get("engine/batch_size"))
        self.threads_spin.setValue(s.get("engine/threads"))
        self.workers_spin.setValue(s.get("analysis/workers"))
        self.tile_spin.setValue(s.get("analysis/tile_um"))
        self.stride_spin.setValue(s.get("analysis/stride_um"))
        self.tissue_spin.setValue(s.get("analysis/tissue_threshold"))
        self.qc_check.setChecked(s.get("analysis/qc"))
        self.tta_check.setChecked(s.get("engine/tta"))
        self.calibration_edit.setText(s.get("engine/calibration"))
        self.confirm_check.setChecked(s.get("ui/confirm_analysis"))
        self.classify_check.setChecked(s.get("ui/classify_patches_on_open"))
        address = s.get("cluster/ray_address")
        self.ray_address_edit.setText("" if address == DEFAULTS["cluster/ray_address"] else address)
        self.cpus_per_worker_spin.setValue(s.get("cluster/cpus_per_worker"))
        self._show_colors()

    @staticmethod
    def _align_label_columns(*boxes: QWidget) -> None:
        """One label column width for every group, so the fields line up down the dialog."""
        forms = [box.layout() for box in boxes if isinstance(box.layout(), QFormLayout)]
        labels = [form.itemAt(row, QFormLayout.ItemRole.LabelRole).widget()  # type: ignore[union-attr]
                  for form in forms for row in range(form.rowCount())  # type: ignore[union-attr]
                  if form.itemAt(row, QFormLayout.ItemRole.LabelRole) is not None]  # type: ignore[union-attr]
        labels = [w for w in labels if w is not None]
        width = max((w.sizeHint().width() for w in labels), default=0)
        for w in labels:
            w.setMinimumWidth(width)

    def _restore_defaults(self) -> None:
        self.model_edit.setText("")
        self._set_combo(self.channel_combo, "")
        self._set_combo(self.resize_combo, "")
        self._set_combo(self.device_combo, "auto")
        self._set_combo(self.precision_combo, "auto")
        self.batch_spin.setValue(DEFAULTS["engine/batch_size"])
        self.threads_spin.setValue(0)
        self.workers_spin.setValue(DEFAULTS["analysis/workers"])
        self.tile_spin.setValue(0.0)
        self.stride_spin.setValue(0.0)
        self.tissue_spin.setValue(DEFAULTS["analysis/tissue_threshold"])
        self.qc_check.setChecked(DEFAULTS["analysis/qc"])
        self.tta_check.setChecked(DEFAULTS["engine/tta"])
        self.calibration_edit.setText("")
        self.confirm_check.setChecked(True)
        self.classify_check.setChecked(True)
        self.ray_address_edit.setText("")
        self.cpus_per_worker_spin.setValue(DEFAULTS["cluster/cpus_per_worker"])
        self._reset_colors()

    def _show_colors(self) -> None:
        for button, color in zip(self._color_buttons, self._colors):
            button.setIcon(swatch_icon(color))

    def _pick(self, i: int) -> None:
        color = QColorDialog.getColor(QColor(self._colors[i]), self, f"Colour of {self._names[i]}")
        if color.isValid():
            self.set_color(i, color.name())

    def set_color(self, i: int, color: str) -> None:
        self._colors[i] = QColor(color).name()
        self._show_colors()

    def _reset_colors(self) -> None:
        self._colors = list(default_colors(self._names))
        self._show_colors()

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (config.json + weights)")
        if folder:
            self.model_edit.setText(folder)

    def _browse_calibration(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Calibration (temperature) file", "", "Calibration (*.json)")
        if path:
            self.calibration_edit.setText(path)

    def validate(self) -> str | None:
        """The engine's complaint about the tiling values or the calibration file, or None."""
        calibration = self.calibration_edit.text().strip()
        if calibration:
            from chaoyang_desktop.core.model.temperature import TemperatureFile

            try:
                TemperatureFile.load(calibration)
            except SettingsError as exc:
                return str(exc)
        tile = self.tile_spin.value() or MODEL_TILE_UM
        stride = self.stride_spin.value() or None
        try:
            stride_factor(tile, stride)
        except SettingsError as exc:
            return str(exc)
        return None

    def accept(self) -> None:
        problem = self.validate()
        if problem:
            self.error_label.setText(problem)
            self.error_label.show()
            return
        self.apply()
        super().accept()

    def apply(self) -> None:
        s = self._settings
        s.set("model/spec", self.model_edit.text().strip())
        s.set("engine/channel_order", self.channel_combo.currentData())
        s.set("engine/resize", self.resize_combo.currentData())
        s.set("engine/device", self.device_combo.currentData())
        s.set("engine/precision", self.precision_combo.currentData())
        s.set("engine/batch_size", self.batch_spin.value())
        s.set("engine/threads", self.threads_spin.value())
        s.set("analysis/workers", self.workers_spin.value())
        s.set("analysis/tile_um", self.tile_spin.value())
        s.set("analysis/stride_um", self.stride_spin.value())
        s.set("analysis/tissue_threshold", self.tissue_spin.value())
        s.set("analysis/qc", self.qc_check.isChecked())
        s.set("engine/tta", self.tta_check.isChecked())
        s.set("engine/calibration", self.calibration_edit.text().strip())
        s.set("ui/confirm_analysis", self.confirm_check.isChecked())
        s.set("ui/classify_patches_on_open", self.classify_check.isChecked())
        s.set("cluster/ray_address", self.ray_address_edit.text().strip() or DEFAULTS["cluster/ray_address"])
        s.set("cluster/cpus_per_worker", self.cpus_per_worker_spin.value())
        defaults = default_colors(self._names)
        for name, color, default in zip(self._names, self._colors, defaults):
            s.set_class_color(name, None if color == default else color)
        s.sync()

    @property
    def colors(self) -> tuple[str, ...]:
        return tuple(self._colors)
