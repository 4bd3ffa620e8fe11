"""One patch of the gallery, large: the image as big as the screen allows, and what the model said.

The gallery opens it on a double-click (or Enter) on a thumbnail. It shows the image scaled to
fit (aspect ratio kept, smooth), the file name and folder, the predicted class with its
probabilities, how unsure the model was, or why quality control left the patch out. Left and
Right step through the gallery's patches in the order shown; Esc closes. It knows nothing of
the gallery: it asks for another patch with :attr:`PatchViewer.step_requested`, and the gallery
answers with :meth:`PatchViewer.show_patch`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHideEvent, QImage, QKeySequence, QPainter, QPaintEvent, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.analysis.results import UNSURE_MARGIN
from chaoyang_desktop.gui.inspector import TileImage
from chaoyang_desktop.gui.prob_chart import ProbabilityChart

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.patches import PatchResult

#: Colours of the right/wrong mark: a patch whose predicted class is (not) its folder's class.
MARK_RIGHT = QColor(27, 133, 52)
MARK_WRONG = QColor(200, 30, 45)
#: The smallest side a patch first opens at: small patches (Kather's 150 px) are scaled up.
MIN_OPEN_SIDE = 768
INFO_WIDTH = 300


def uncertainty_words(r: PatchResult) -> str:
    """How unsure the model was about a classified patch, in the words the slide inspector uses.

    ``(unsure)`` marks a margin under :data:`UNSURE_MARGIN`, the threshold the slide summary
    counts unsure tissue with; empty when the record carries no measures.
    """
    if r.margin is None or r.entropy is None:
        return ""
    unsure = " (unsure)" if r.margin < UNSURE_MARGIN else ""
    return (f"Margin {r.margin:.2f}{unsure} \u00b7 entropy {r.entropy:.2f}"
            + (f" \u00b7 TTA spread {r.tta_spread:.2f}" if r.tta_spread is not None else ""))


def qc_badge_text(r: PatchResult) -> str:
    """The badge a QC-flagged patch shows instead of a class."""
    return f"Not classified: {r.qc_words}"


def breakable(text: str) -> str:
    """``text`` with zero-width spaces after separators, so a long file name wraps in a label."""
    return re.sub(r"([_\-./\\ ])", "\\1\u200b", text)


@dataclass(frozen=True)
class PatchFacts:
    """What the viewer shows about one patch (plain values, filled by the gallery)."""

    path: str
    result: PatchResult | None
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    #: The patch's folder name when the gallery shows folders; empty otherwise.
    folder: str = ""
    #: True/False: the predicted class is/is not the folder's class; None: nothing to compare.
    match: bool | None = None
    #: Where the patch is in the gallery's order (1-based) and how many are shown.
    position: int = 0
    count: int = 0


class ScaledImage(TileImage):
    """An image as large as the widget, aspect ratio kept, smoothly scaled up or down, centred."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 160)

    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget pixels (empty without an image)."""
        if self._img is None or self._img.isNull():
            return QRectF()
        size = QSize(self._img.width(), self._img.height()).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2,
                      size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(40, 40, 40))
        if self._img is not None and not self._img.isNull():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(self.image_rect(), self._img)
        else:
            p.setPen(QColor(220, 220, 220))
            p.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
        p.end()


class PatchViewer(QDialog):
    """A patch at up to the screen's size with its class, probabilities and uncertainty."""

    #: -1: the previous patch of the gallery, +1: the next.
    step_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Patch")
        self.setSizeGripEnabled(True)
        self.facts: PatchFacts | None = None
        self._sized = False
        self._full_size: QSize | None = None

        outer = QVBoxLayout(self)
        body = QHBoxLayout()
        outer.addLayout(body, 1)
        self.picture = ScaledImage()
        body.addWidget(self.picture, 1)

        info = QWidget()
        info.setFixedWidth(INFO_WIDTH)
        il = QVBoxLayout(info)
        il.setContentsMargins(10, 0, 0, 0)
        self.name_label = QLabel()
        self.name_label.setWordWrap(True)
        self.name_label.setTextFormat(Qt.TextFormat.RichText)
        self.folder_label = QLabel()
        self.folder_label.setWordWrap(True)
        self.folder_label.setTextFormat(Qt.TextFormat.RichText)
        self.class_label = QLabel()
        self.class_label.setWordWrap(True)
        self.class_label.setTextFormat(Qt.TextFormat.RichText)
        self.chart = ProbabilityChart()
        self.notes_label = QLabel()
        self.notes_label.setWordWrap(True)
        self.path_label = QLabel()
        self.path_label.setWordWrap(True)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setStyleSheet("color: palette(mid);")
        for w in (self.name_label, self.folder_label, self.class_label, self.chart, self.notes_label, self.path_label):
            il.addWidget(w)
        il.addStretch(1)
        body.addWidget(info)

        buttons = QDialogButtonBox()
        self.prev_button = QPushButton("\u25c0 Previous")
        self.next_button = QPushButton("Next \u25b6")
        self.prev_button.setToolTip("The previous patch of the gallery (Left arrow)")
        self.next_button.setToolTip("The next patch of the gallery (Right arrow)")
        buttons.addButton(self.prev_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.next_button, QDialogButtonBox.ButtonRole.ActionRole)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.setToolTip("Esc")
        for b in (self.prev_button, self.next_button):
            b.setAutoDefault(False)
        outer.addWidget(buttons)

        self.prev_button.clicked.connect(self._previous)
        self.next_button.clicked.connect(self._next)
        buttons.rejected.connect(self.reject)
        for key, slot in ((Qt.Key.Key_Left, self._previous), (Qt.Key.Key_Right, self._next),
                          (Qt.Key.Key_PageUp, self._previous), (Qt.Key.Key_PageDown, self._next)):
            QShortcut(QKeySequence(key), self, slot)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802
        self._sized = False  # opened again, it fits the screen again
        super().hideEvent(event)

    def _previous(self) -> None:
        self.step_requested.emit(-1)

    def _next(self) -> None:
        self.step_requested.emit(1)

    # ----- content ---------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.facts.path if self.facts is not None else ""

    def show_patch(self, facts: PatchFacts, image: QImage | None, full: bool = False) -> None:
        """Show ``facts`` with ``image``: the full image (``full``), or a thumbnail until :meth:`set_image`."""
        same = self.facts is not None and self.facts.path == facts.path
        self.facts = facts
        if not same or full:
            self._full_size = image.size() if full and image is not None else None
        if not same or image is not None:
            self.picture.set_image(image, "Reading\u2026")
        name = Path(facts.path).name
        self.setWindowTitle(f"{name} \u2014 patch {facts.position} of {facts.count}" if facts.count else name)
        self.name_label.setText(f"<b>{html.escape(breakable(name))}</b>")
        self.name_label.setToolTip(facts.path)
        self._show_folder(facts)
        self._show_result(facts)
        self.prev_button.setEnabled(facts.position > 1)
        self.next_button.setEnabled(0 < facts.position < facts.count)

    def _show_folder(self, facts: PatchFacts) -> None:
        if not facts.folder:
            self.folder_label.hide()
            return
        text = f"Folder: <b>{html.escape(facts.folder)}</b>"
        if facts.match is True:
            text += f"<br><span style='color:{MARK_RIGHT.name()}'>\u2713 the prediction matches its folder</span>"
        elif facts.match is False:
            text += f"<br><span style='color:{MARK_WRONG.name()}'>\u2717 the prediction differs from its folder</span>"
        self.folder_label.setText(text)
        self.folder_label.show()

    def _show_result(self, facts: PatchFacts) -> None:
        r = facts.result
        notes: list[str] = []
        if r is not None and r.classified:
            color = facts.class_colors[r.label_index] if r.label_index < len(facts.class_colors) else "#777777"
            self.class_label.setText(f"<span style='font-size:large'><b><span style='color:{color}'>\u25a0</span> "
                                     f"{html.escape(r.label or '')}</b> &nbsp;{100 * (r.confidence or 0):.1f}%</span>")
            self.chart.set_values(facts.class_names, facts.class_colors, r.probabilities)
            self.chart.show()
            if words := uncertainty_words(r):
                notes.append(words)
        elif r is not None and r.ok:
            self.class_label.setText(f"<b>{html.escape(qc_badge_text(r))}</b>")
            self.chart.hide()
            notes.append("Quality control left this patch out; turn it off in Settings to classify it.")
        elif r is not None:
            self.class_label.setText("<b>Cannot read this image</b>")
            self.chart.hide()
            notes.append(r.error or "")
        else:
            self.class_label.setText("<b>Not classified yet</b>")
            self.chart.hide()
        if self._full_size is not None:
            notes.append(f"{self._full_size.width()} \u00d7 {self._full_size.height()} px")
        self.notes_label.setText("\n".join(n for n in notes if n))
        self.notes_label.setVisible(bool(self.notes_label.text()))
        self.path_label.setText(breakable(facts.path))

    def set_image(self, path: str, image: QImage | None) -> None:
        """The full image of ``path`` arrived (None: it cannot be read); ignored for another patch."""
        if path != self.path:
            return
        if image is None:
            self._full_size = None
            self.picture.set_image(None, "Cannot read this image.")
        else:
            self._full_size = image.size()
            self.picture.set_image(image)
            if not self._sized and self.isVisible():
                self.fit_to_screen()
        if self.facts is not None:
            self._show_result(self.facts)

    def fit_to_screen(self) -> None:
        """Size the dialog so the image shows as large as the screen allows (once, on first open).

        Small patches (Kather's 150 or 224 px) open scaled up to :data:`MIN_OPEN_SIDE`; large ones
        are scaled down to fit. The dialog can then be resized, and the image follows.
        """
        image = self.picture.image
        screen = self.screen()
        if image is None or image.isNull() or screen is None:
            return
        self._sized = True
        layout = self.layout()
        if layout is not None:
            layout.activate()
        extra = self.size() - self.picture.size()  # the info column, buttons and margins
        frame = self.frameGeometry().size() - self.size()  # the window frame, where there is one
        avail = screen.availableGeometry()
        room = QSize(int(avail.width() * 0.96) - extra.width() - frame.width(),
                     int(avail.height() * 0.94) - extra.height() - frame.height())
        room = room.expandedTo(QSize(160, 160))
        want = image.size()
        if max(want.width(), want.height()) < MIN_OPEN_SIDE:
            want = want.scaled(MIN_OPEN_SIDE, MIN_OPEN_SIDE, Qt.AspectRatioMode.KeepAspectRatio)
        if want.width() > room.width() or want.height() > room.height():
            want = want.scaled(room, Qt.AspectRatioMode.KeepAspectRatio)
        self.resize(want + extra)
        geometry = self.frameGeometry()
        geometry.moveCenter(avail.center())
        self.move(geometry.topLeft())
