"""The overlay controls and legend: mode, opacity, confidence, per-class colour and visibility.

The panel edits one :class:`~chaoyang_desktop.gui.overlay.OverlayStyle` and emits it whole on
every change; the main window hands it to the heatmap layer and the gallery. In top-class mode
the legend rows (checkbox, colour swatch, name) are the per-class show/hide and colour pickers;
in probability mode the legend is the colour bar of the chosen class.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QShowEvent, QColor, QIcon, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.gui.colormap import viridis_gradient
from chaoyang_desktop.gui.overlay import MODE_PROBABILITY, MODE_TOP, MODE_UNCERTAINTY, UNCERTAINTY_MEASURES, OverlayStyle

#: The Chaoyang classes, used until a model says otherwise (its config.json is the authority).
DEFAULT_CLASS_NAMES: tuple[str, ...] = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")


def swatch_icon(color: str, size: int = 14) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(color))
    p = QPainter(pix)
    p.setPen(QColor(40, 40, 40))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return QIcon(pix)


class ColorBar(QWidget):
    """The colour map with ticks: 0 % to 100 % for a probability, 0 to 1 for an uncertainty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(40)
        self.percent = True

    TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)

    def tick_labels(self) -> list[str]:
        """The words under the ticks, as drawn."""
        return [f"{frac * 100:.0f}%" if self.percent else f"{frac:g}" for frac in self.TICKS]

    def set_percent(self, percent: bool) -> None:
        if percent != self.percent:
            self.percent = percent
            self.update()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(220, 40)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        fm = p.fontMetrics()
        bar = QRectF(6, 4, self.width() - 12, 14)
        p.fillRect(bar, viridis_gradient(bar.left(), bar.right()))
        p.setPen(QColor(60, 60, 60))
        p.drawRect(bar)
        for frac, text in zip(self.TICKS, self.tick_labels()):
            x = bar.left() + frac * bar.width()
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom() + 4))
            w = fm.horizontalAdvance(text)
            tx = min(max(0.0, x - w / 2), self.width() - w)
            p.drawText(int(tx), int(bar.bottom() + 6 + fm.ascent()), text)
        p.end()


class OverlayPanel(QWidget):
    """Controls of the heatmap overlay, with its legend."""

    style_changed = Signal(object)  # OverlayStyle
    color_changed = Signal(str, str)  # class name, "#rrggbb" (to persist)

    def __init__(self, style: OverlayStyle, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._style = style
        self._updating = False
        self._height_held = False  # the top-class mode's height, held once measured (see _sync_controls)
        outer = QVBoxLayout(self)
        # Tight margins: at 1000 x 700 the right-hand docks only just fit one above the other.
        outer.setContentsMargins(6, 4, 6, 2)

        self.show_check = QCheckBox("Show heatmap")
        self.show_check.setToolTip("Show or hide the whole overlay (H)")
        outer.addWidget(self.show_check)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Top class", MODE_TOP)
        self.mode_combo.addItem("Probability of one class", MODE_PROBABILITY)
        self.mode_combo.addItem("Uncertainty", MODE_UNCERTAINTY)
        form.addRow("Colour by", self.mode_combo)
        self.class_combo = QComboBox()
        self.class_label = QLabel("Class")
        form.addRow(self.class_label, self.class_combo)
        self.measure_combo = QComboBox()
        for key, words in UNCERTAINTY_MEASURES:
            self.measure_combo.addItem(words, key)
        self.measure_combo.setToolTip("Margin: how close the top two classes are. Entropy: how evenly the "
                                      "probability spreads over all classes. TTA spread: how much the answer "
                                      "changes when the tile is flipped or rotated (needs test-time augmentation).")
        self.measure_label = QLabel("Measure")
        form.addRow(self.measure_label, self.measure_combo)
        self._form = form

        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_value = QLabel()
        self.opacity_value.setMinimumWidth(36)
        row = QHBoxLayout()
        row.addWidget(self.opacity_slider, 1)
        row.addWidget(self.opacity_value)
        form.addRow("Opacity", row)

        self.min_conf_slider = QSlider(Qt.Orientation.Horizontal)
        self.min_conf_slider.setRange(0, 100)
        self.min_conf_value = QLabel()
        self.min_conf_value.setMinimumWidth(36)
        row = QHBoxLayout()
        row.addWidget(self.min_conf_slider, 1)
        row.addWidget(self.min_conf_value)
        self.min_conf_label = QLabel("Min. confidence")
        form.addRow(self.min_conf_label, row)
        outer.addLayout(form)

        # One row for both switches: the docks only just fit one above the other at 1000 x 700.
        self.alpha_check = QCheckBox("Fade uncertain cells")
        self.alpha_check.setToolTip("Opacity \u00d7 confidence: cells the model is unsure of are fainter "
                                    "(top-class mode only).")
        self.smooth_check = QCheckBox("Smooth")
        self.smooth_check.setToolTip("Interpolate the probabilities between tile centres before colouring, "
                                     "instead of one flat block per tile. Overlapping tiles are averaged first.")
        switches = QHBoxLayout()
        switches.addWidget(self.alpha_check)
        switches.addWidget(self.smooth_check)
        switches.addStretch(1)
        outer.addLayout(switches)

        self.legend_box = QGroupBox("Legend")
        legend = QVBoxLayout(self.legend_box)
        legend.setContentsMargins(8, 4, 8, 4)
        self.class_grid = QGridLayout()
        self.class_grid.setHorizontalSpacing(8)
        self.class_grid.setVerticalSpacing(2)
        legend.addLayout(self.class_grid)
        self.legend_hint = QLabel("Tick to show a class; click a colour to change it.")
        self.legend_hint.hide()  # room for the inspector at 700 px high: the same words are the box's tooltip
        self.legend_box.setToolTip("Tick to show a class; click a colour to change it. Dark grey: not classified "
                                   "(quality control).")
        self.legend_hint.setWordWrap(True)
        self.legend_hint.setStyleSheet("color: palette(placeholder-text);")
        legend.addWidget(self.legend_hint)
        self.color_bar = ColorBar()
        self.color_bar_title = QLabel()
        self.color_bar_title.setWordWrap(True)
        legend.addWidget(self.color_bar_title)
        legend.addWidget(self.color_bar)
        outer.addWidget(self.legend_box)
        outer.addStretch(1)

        self._checks: list[QCheckBox] = []
        self._swatches: list[QToolButton] = []

        self.show_check.toggled.connect(lambda v: self._edit(show=bool(v)))
        self.mode_combo.currentIndexChanged.connect(lambda _: self._edit(mode=self.mode_combo.currentData()))
        self.class_combo.currentIndexChanged.connect(
            lambda i: self._edit(prob_class=max(0, int(i))) if i >= 0 else None)
        self.measure_combo.currentIndexChanged.connect(
            lambda i: self._edit(uncertainty=self.measure_combo.itemData(i)) if i >= 0 else None)
        self.opacity_slider.valueChanged.connect(lambda v: self._edit(opacity=v / 100.0))
        self.min_conf_slider.valueChanged.connect(lambda v: self._edit(min_confidence=v / 100.0))
        self.alpha_check.toggled.connect(lambda v: self._edit(alpha_by_confidence=bool(v)))
        self.smooth_check.toggled.connect(lambda v: self._edit(smooth=bool(v)))
        self._rebuild_classes()
        self._sync_controls()

    # ----- state ----------------------------------------------------------------------------------------
    @property
    def style(self) -> OverlayStyle:
        return self._style

    def set_style(self, style: OverlayStyle) -> None:
        """Replace the whole style (e.g. a model with other classes); emits ``style_changed``."""
        rebuild = style.class_names != self._style.class_names or style.class_colors != self._style.class_colors
        self._style = style
        if rebuild:
            self._rebuild_classes()
        self._sync_controls()
        self.style_changed.emit(style)

    def set_class_color(self, index: int, color: str) -> None:
        colors = list(self._style.class_colors)
        colors[index] = QColor(color).name()
        self.set_style(self._style.replace(class_colors=tuple(colors)))
        self.color_changed.emit(self._style.class_names[index], colors[index])

    def set_class_visible(self, index: int, visible: bool) -> None:
        vis = list(self._style.visible)
        vis[index] = bool(visible)
        self.set_style(self._style.replace(visible=tuple(vis)))

    def _edit(self, **changes: object) -> None:
        if self._updating:
            return
        self._style = self._style.replace(**changes)
        self._sync_controls()
        self.style_changed.emit(self._style)

    # ----- widgets ---------------------------------------------------------------------------------------
    def _rebuild_classes(self) -> None:
        self._height_held = False  # another number of legend rows: measure again
        while self.class_grid.count():
            item = self.class_grid.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self._checks, self._swatches = [], []
        self._updating = True
        self.class_combo.clear()
        for i, (name, color) in enumerate(zip(self._style.class_names, self._style.class_colors)):
            check = QCheckBox(name)
            check.setChecked(self._style.visible[i])
            check.toggled.connect(lambda v, i=i: None if self._updating else self.set_class_visible(i, v))
            swatch = QToolButton()
            swatch.setAutoRaise(False)
            swatch.setIconSize(QSize(28, 14))
            swatch.setToolTip(f"Colour of {name}: click to change")
            swatch.clicked.connect(lambda _=False, i=i: self._pick_color(i))
            self.class_grid.addWidget(swatch, i, 0)
            self.class_grid.addWidget(check, i, 1)
            self._checks.append(check)
            self._swatches.append(swatch)
            self.class_combo.addItem(swatch_icon(color), name)
        self.class_grid.setColumnStretch(1, 1)
        self._updating = False

    def _swatch_pixmap(self, color: str) -> QIcon:
        pix = QPixmap(28, 14)
        pix.fill(QColor(color))
        p = QPainter(pix)
        p.setPen(QColor(40, 40, 40))
        p.drawRect(0, 0, 27, 13)
        p.end()
        return QIcon(pix)

    def _sync_controls(self) -> None:
        s = self._style
        self._updating = True
        self.show_check.setChecked(s.show)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(s.mode)))
        unsure = s.mode == MODE_UNCERTAINTY
        prob = s.mode == MODE_PROBABILITY
        # setRowVisible, not hiding the widgets: a hidden row would keep its spacing.
        self._form.setRowVisible(self.class_combo, prob)
        self._form.setRowVisible(self.measure_combo, unsure)
        self.measure_combo.setCurrentIndex(max(0, self.measure_combo.findData(s.uncertainty)))
        self._form.setRowVisible(self.min_conf_label, not unsure)
        if 0 <= s.prob_class < self.class_combo.count():
            self.class_combo.setCurrentIndex(s.prob_class)
        self.opacity_slider.setValue(round(s.opacity * 100))
        self.opacity_value.setText(f"{s.opacity * 100:.0f}%")
        self.min_conf_slider.setValue(round(s.min_confidence * 100))
        self.min_conf_value.setText(f"{s.min_confidence * 100:.0f}%")
        self.min_conf_label.setText("Min. probability" if prob else "Min. confidence")
        self.alpha_check.setChecked(s.alpha_by_confidence)
        # Fading only means something in top-class mode; on a colour map it would hide its low end.
        self.alpha_check.setVisible(not prob and not unsure)
        self.smooth_check.setChecked(s.smooth)
        for i, (check, swatch) in enumerate(zip(self._checks, self._swatches)):
            check.setChecked(s.visible[i])
            check.setVisible(not prob and not unsure)
            swatch.setVisible(not prob and not unsure)
            swatch.setIcon(self._swatch_pixmap(s.class_colors[i]))
            self.class_combo.setItemIcon(i, swatch_icon(s.class_colors[i]))
        self.legend_hint.setVisible(False)
        self.color_bar.setVisible(prob or unsure)
        self.color_bar.set_percent(not unsure)
        self.color_bar_title.setVisible(prob or unsure)
        if prob and s.class_names:
            self.color_bar_title.setText(f"Probability of {s.class_names[min(s.prob_class, len(s.class_names) - 1)]}")
        elif unsure:
            words = dict(UNCERTAINTY_MEASURES).get(s.uncertainty, s.uncertainty)
            self.color_bar_title.setText(f"Uncertainty: {words}, from sure (0) to unsure (1). "
                                         "Grey: left out by quality control.")
        for w in (self.mode_combo, self.class_combo, self.measure_combo, self.opacity_slider, self.min_conf_slider,
                  self.alpha_check, self.smooth_check, self.legend_box):
            w.setEnabled(s.show)
        self._updating = False
        # The other modes fit in the top-class mode's height (a class or measure row instead of the
        # legend's class rows): holding that height keeps the docks below from jumping (issue 15).
        if s.mode == MODE_TOP and self.isVisible() and not self._height_held:
            self.layout().activate()
            self.setMinimumHeight(self.sizeHint().height())
            self._height_held = True

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802
        super().showEvent(event)
        self._sync_controls()  # now visible: the top-class height can be held

    def _pick_color(self, index: int) -> None:
        name = self._style.class_names[index]
        color = QColorDialog.getColor(QColor(self._style.class_colors[index]), self, f"Colour of {name}")
        if color.isValid():
            self.set_class_color(index, color.name())
