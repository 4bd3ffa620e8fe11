"""The patch gallery: thumbnails framed in their class colour, sort/filter, counts, export, details.

Items are the images of a folder (or single patches) in the order ``classify`` uses, so the
CSV/JSON export is byte-for-byte what ``chaoyang-desktop classify --format csv|json`` writes
for the same inputs. Classification runs on the app's worker; results arrive in batches and
frame the thumbnails as they come. Thumbnails are decoded on a small thread pool when first
painted, and kept in a bounded cache, so a folder of thousands of patches stays light.

A patch that quality control left out (glass, pen ink, blur, a dark artefact) wears a grey
"Not classified: <reasons>" badge where a class would be, so nobody reads a class into it; a
classified patch's tooltip says how unsure the model was (margin, entropy, TTA spread).

Patches kept in class folders (``patches/Normal/x.png``) show their folder under the file name.
A folder named like one of the model's classes (case-insensitive) is taken as the truth: the
thumbnail wears a green tick or a red cross for the predicted class, and the counts line says
how many match. The thumbnail size is a slider (remembered while the app runs); a double-click
or Enter opens the patch large in a :class:`~chaoyang_desktop.gui.patch_viewer.PatchViewer`.
"""

from __future__ import annotations

import html
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QRunnable,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QKeyEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.model.profile import default_colors
from chaoyang_desktop.gui.inspector import TileImage
from chaoyang_desktop.gui.patch_viewer import (
    MARK_RIGHT,
    MARK_WRONG,
    PatchFacts,
    PatchViewer,
    qc_badge_text,
    uncertainty_words,
)
from chaoyang_desktop.gui.prob_chart import ProbabilityChart
from chaoyang_desktop.gui.tile_loader import rgb_to_qimage

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.patches import PatchResult

log = logging.getLogger(__name__)

#: Thumbnail side in pixels: the default, and the slider's range and step.
THUMB_SIDE = 128
THUMB_MIN, THUMB_MAX, THUMB_STEP = 96, 320, 16
#: Thumbnails are decoded at the displayed side rounded up to this step (fewer re-reads while sliding).
DECODE_STEP = 64
#: How many 128 px thumbnails the cache keeps; fewer, in proportion, at larger sides.
MAX_THUMBS = 3000
#: Text lines under a thumbnail: the label, the file name and (when shown) the folder.
LABEL_H, NAME_H = 18, 16

SORT_NAME, SORT_CLASS, SORT_CONF_DESC, SORT_CONF_ASC = range(4)
FILTER_ALL, FILTER_FAILED, FILTER_PENDING, FILTER_QC, FILTER_MISMATCH = -1, -2, -3, -4, -5
#: Frame and badge of a patch that quality control left out: grey, the colour of no class.
QC_FRAME = QColor(165, 165, 165)
QC_BADGE = QColor(105, 105, 105)

ResultRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
#: The patch's folder name, "" when the gallery does not show folders.
FolderRole = Qt.ItemDataRole.UserRole + 3
#: True/False: the predicted class is/is not its folder's class; None: nothing to compare.
MatchRole = Qt.ItemDataRole.UserRole + 4

__all__ = ["PatchGallery", "qc_badge_text", "uncertainty_words"]


@dataclass
class PatchItem:
    path: str
    result: PatchResult | None = None
    #: The name of the folder the file sits in.
    folder: str = ""
    #: The class that folder names (its index), None when it names none.
    truth: int | None = None

    @property
    def match(self) -> bool | None:
        """Whether the predicted class is the folder's; None when unclassified or the folder names no class."""
        if self.truth is None or self.result is None or not self.result.classified:
            return None
        return self.result.label_index == self.truth


def class_key(name: str) -> str:
    """Folder and class names compare case-insensitively, ignoring surrounding blanks (as datasets do)."""
    return name.strip().casefold()


def decode_side(side: int) -> int:
    """The side thumbnails are decoded at for a displayed ``side``: at least 128, in steps of 64."""
    return max(THUMB_SIDE, -(-side // DECODE_STEP) * DECODE_STEP)


class _ThumbSignals(QObject):
    done = Signal(str, object, int)  # path, rgb array or None, the side it was read for


class _ThumbRead(QRunnable):
    def __init__(self, path: str, side: int, signals: _ThumbSignals) -> None:
        super().__init__()
        self._path, self._side, self._signals = path, side, signals

    def run(self) -> None:
        from PIL import Image

        from chaoyang_desktop.core.slide.imageio import decode_image

        try:
            rgb = decode_image(self._path)
            if max(rgb.shape[:2]) > self._side:
                im = Image.fromarray(rgb)
                im.thumbnail((self._side, self._side), Image.Resampling.LANCZOS)
                rgb = np.asarray(im)
            self._signals.done.emit(self._path, rgb, self._side)
        except Exception as exc:  # drawn as "cannot read"
            log.info("Thumbnail of %s failed: %s", self._path, exc)
            self._signals.done.emit(self._path, None, self._side)


class ImageReader(QObject):
    """Decodes images off the GUI thread: bounded cache of thumbnails, plus full-size reads.

    Thumbnails are read at :attr:`side`; when it changes, the old ones are still drawn (scaled)
    until their replacements arrive, and those already at full resolution are kept.
    """

    thumbnail_ready = Signal(str)
    image_ready = Signal(str, object)  # path, rgb ndarray or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._thumb_signals = _ThumbSignals(self)
        self._thumb_signals.done.connect(self._on_thumb)
        self._full_signals = _ThumbSignals(self)
        self._full_signals.done.connect(self._on_full)
        self.side = THUMB_SIDE
        self._thumbs: OrderedDict[str, QImage | None] = OrderedDict()
        self._stale: dict[str, QImage | None] = {}
        self._in_flight: set[tuple[str, int]] = set()

    def thumbnail(self, path: str) -> QImage | None:
        if path in self._thumbs:
            self._thumbs.move_to_end(path)
            return self._thumbs[path]
        if (path, self.side) not in self._in_flight:
            self._in_flight.add((path, self.side))
            self._pool.start(_ThumbRead(path, self.side, self._thumb_signals))
        return self._stale.get(path)

    def has_thumbnail(self, path: str) -> bool:
        return path in self._thumbs

    def set_side(self, side: int) -> None:
        """Read thumbnails at ``side`` px from now on."""
        if side == self.side:
            return
        old, self.side = self.side, side
        self._stale = dict(self._thumbs)
        # A picture smaller than the side it was read for is the whole image: no need to read it again.
        self._thumbs = OrderedDict((p, im) for p, im in self._thumbs.items()
                                   if im is not None and max(im.width(), im.height()) < min(old, side))

    def max_thumbs(self) -> int:
        return max(200, MAX_THUMBS * THUMB_SIDE**2 // self.side**2)

    def read_full(self, path: str) -> None:
        self._pool.start(_ThumbRead(path, 4096, self._full_signals))

    def _on_thumb(self, path: str, rgb: np.ndarray | None, side: int) -> None:
        self._in_flight.discard((path, side))
        if side != self.side:  # read for a size the user has left
            return
        self._thumbs[path] = rgb_to_qimage(rgb) if rgb is not None else None
        self._stale.pop(path, None)
        while len(self._thumbs) > self.max_thumbs():
            self._thumbs.popitem(last=False)
        self.thumbnail_ready.emit(path)

    def _on_full(self, path: str, rgb: np.ndarray | None, _side: int) -> None:
        self.image_ready.emit(path, rgb)

    def pending(self) -> int:
        return len(self._in_flight)

    def shutdown(self) -> None:
        self._pool.clear()
        self._pool.waitForDone()


class PatchListModel(QAbstractListModel):
    def __init__(self, reader: ImageReader, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.items: list[PatchItem] = []
        self._rows: dict[str, int] = {}
        self.reader = reader
        reader.thumbnail_ready.connect(self._on_thumb)

        #: Whether thumbnails show their folder: the patches sit in several folders, or in one
        #: named like a class.
        self.show_folders = False
        self._class_keys: dict[str, int] = {}

    def set_paths(self, paths: list[str]) -> None:
        self.beginResetModel()
        self.items = [PatchItem(p, folder=Path(p).parent.name) for p in paths]
        self._rows = {p: i for i, p in enumerate(paths)}
        self._update_truth()
        self.endResetModel()

    def set_class_names(self, names: tuple[str, ...]) -> None:
        self._class_keys = {class_key(n): i for i, n in enumerate(names)}
        self._update_truth()
        if self.items:
            self.dataChanged.emit(self.index(0), self.index(len(self.items) - 1))

    def _update_truth(self) -> None:
        for item in self.items:
            item.truth = self._class_keys.get(class_key(item.folder)) if item.folder else None
        parents = {str(Path(it.path).parent) for it in self.items}
        self.show_folders = len(parents) > 1 or any(it.truth is not None for it in self.items)

    def has_truth(self) -> bool:
        """Some patch sits in a folder named like a class."""
        return self.show_folders and any(it.truth is not None for it in self.items)

    def set_results(self, results: list[PatchResult]) -> None:
        rows = []
        for r in results:
            row = self._rows.get(r.path)
            if row is not None:
                self.items[row].result = r
                rows.append(row)
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))

    def clear_results(self) -> None:
        for item in self.items:
            item.result = None
        if self.items:
            self.dataChanged.emit(self.index(0), self.index(len(self.items) - 1))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.items)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(item.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(item)
        if role == ResultRole:
            return item.result
        if role == PathRole:
            return item.path
        if role == FolderRole:
            return item.folder if self.show_folders else ""
        if role == MatchRole:
            return item.match if self.show_folders else None
        return None

    def _tooltip(self, item: PatchItem) -> str:
        r = item.result
        head = item.path
        if self.show_folders:
            head += f"\nFolder: {item.folder}"
            if item.match is not None:
                head += " \u2713 matches the prediction" if item.match else " \u2717 differs from the prediction"
        if r is None:
            return head
        if not r.ok:
            return f"{head}\n{r.error}"
        if not r.classified:
            return (f"{head}\n{qc_badge_text(r)}\n"
                    "Quality control left this patch out; turn it off in Settings to classify it.")
        probs = "\n".join(f"  {n}: {100 * p:.1f}%" for n, p in zip(r.class_names, r.probabilities or ()))
        unsure = uncertainty_words(r)
        return (f"{head}\n{r.label} ({100 * (r.confidence or 0):.1f}%)\n"
                + (f"{unsure}\n" if unsure else "") + probs)

    def _on_thumb(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class PatchFilter(QSortFilterProxyModel):
    """Filter by class and minimum confidence; sort by name, class or confidence.

    Only classified patches have a class and a confidence: QC-flagged ones are found under
    their own filter and sort after every classified patch, as unreadable ones do.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.class_filter = FILTER_ALL
        self.min_confidence = 0.0
        self.sort_mode = SORT_NAME
        self.setDynamicSortFilter(True)

    def configure(self, class_filter: int, min_confidence: float, sort_mode: int) -> None:
        self.class_filter, self.min_confidence, self.sort_mode = class_filter, min_confidence, sort_mode
        self.invalidate()
        self.sort(0, Qt.SortOrder.AscendingOrder)

    def filterAcceptsRow(self, row: int, parent: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        item = self.sourceModel().items[row]  # type: ignore[attr-defined]
        r = item.result
        if self.class_filter == FILTER_PENDING:
            return r is None
        if self.class_filter == FILTER_FAILED:
            return r is not None and not r.ok
        if self.class_filter == FILTER_QC:
            return r is not None and r.ok and not r.classified
        if self.class_filter == FILTER_MISMATCH and item.match is not False:
            return False
        if self.class_filter >= 0 and (r is None or not r.classified or r.label_index != self.class_filter):
            return False
        if self.min_confidence > 0 and (r is None or not r.classified or (r.confidence or 0) < self.min_confidence):
            return False
        return True

    def lessThan(self, a: QModelIndex | QPersistentModelIndex, b: QModelIndex | QPersistentModelIndex) -> bool:  # noqa: N802
        items = self.sourceModel().items  # type: ignore[attr-defined]
        ia, ib = items[a.row()], items[b.row()]

        def conf(it: PatchItem) -> float:
            return float(it.result.confidence or 0) if it.result is not None and it.result.classified else -1.0

        def cls(it: PatchItem) -> int:
            return it.result.label_index if it.result is not None and it.result.classified else 10**6

        if self.sort_mode == SORT_CLASS:
            return (cls(ia), -conf(ia), a.row()) < (cls(ib), -conf(ib), b.row())
        if self.sort_mode == SORT_CONF_DESC:
            return (-conf(ia), a.row()) < (-conf(ib), b.row())
        if self.sort_mode == SORT_CONF_ASC:
            ca = conf(ia) if conf(ia) >= 0 else 2.0
            cb = conf(ib) if conf(ib) >= 0 else 2.0
            return (ca, a.row()) < (cb, b.row())
        return a.row() < b.row()


class PatchDelegate(QStyledItemDelegate):
    """Thumbnail in a frame of its class colour, label and confidence underneath, then the file name.

    A QC-flagged patch has a grey frame and, instead of the label, a grey badge with the
    reasons; when they need two lines the badge grows upwards over the thumbnail's foot
    rather than being cut short, since the reason is the point. When the gallery shows
    folders, the folder name is the last line, and a patch whose folder names a class wears a
    tick (green) or a cross (red) on the thumbnail's corner.
    """

    def __init__(self, gallery: PatchGallery) -> None:
        super().__init__(gallery)
        self._gallery = gallery

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return self._gallery.cell_size()

    @staticmethod
    def elided(font: QFont, text: str, width: int) -> str:
        """``text`` cut at the end with an ellipsis to fit ``width`` pixels in ``font``."""
        return QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideRight, max(0, width))

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        g = self._gallery
        side = g.thumb_side
        path = index.data(PathRole)
        result: PatchResult | None = index.data(ResultRole)
        rect: QRect = option.rect.adjusted(4, 4, -4, -4)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if selected:
            p.fillRect(option.rect, option.palette.highlight().color().lighter(160))
        box = QRect(rect.x() + (rect.width() - side - 12) // 2, rect.y(), side + 12, side + 12)
        if result is not None and result.classified:
            color = QColor(g.class_colors[result.label_index]) if result.label_index < len(g.class_colors) else QColor(120, 120, 120)
            p.fillRect(box, color)
        elif result is not None and result.ok:
            p.fillRect(box, QC_FRAME)
        elif result is not None:
            p.fillRect(box, QColor(120, 120, 120))
        else:
            p.fillRect(box, QColor(215, 215, 215))
        inner = box.adjusted(6, 6, -6, -6)
        p.fillRect(inner, QColor(250, 250, 250))
        thumb = g.reader.thumbnail(path)
        if thumb is not None:
            size = QSize(thumb.width(), thumb.height()).scaled(inner.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(inner.x() + (inner.width() - size.width()) // 2,
                           inner.y() + (inner.height() - size.height()) // 2, size.width(), size.height())
            p.drawImage(target, thumb)
        match = index.data(MatchRole)
        if match is not None:
            self._paint_mark(p, box, bool(match))
        text_top = box.bottom() + 4
        line = QRect(rect.x(), text_top, rect.width(), LABEL_H)
        bold = QFont(option.font)
        bold.setBold(True)
        p.setFont(bold)
        ink = option.palette.text().color()
        if result is None:
            p.setPen(QColor(110, 110, 110))
            p.drawText(line, Qt.AlignmentFlag.AlignCenter, "not classified")
        elif not result.ok:
            p.setPen(QColor(176, 0, 32))
            p.drawText(line, Qt.AlignmentFlag.AlignCenter, "cannot read")
        elif not result.classified:
            self._paint_badge(p, option, line, qc_badge_text(result))
        else:
            p.setPen(ink)
            share = f" {100 * (result.confidence or 0):.0f}%"
            label = self.elided(bold, result.label or "", rect.width() - QFontMetrics(bold).horizontalAdvance(share))
            p.drawText(line, Qt.AlignmentFlag.AlignCenter, label + share)
        p.setFont(option.font)
        p.setPen(QColor(100, 100, 100))
        name_line = QRect(rect.x(), text_top + LABEL_H, rect.width(), NAME_H)
        p.drawText(name_line, Qt.AlignmentFlag.AlignCenter, self.elided(option.font, Path(path).name, rect.width()))
        folder = index.data(FolderRole)
        if folder:
            small = QFont(option.font)
            small.setItalic(True)
            p.setFont(small)
            p.setPen(QColor(120, 120, 120))
            folder_line = QRect(rect.x(), text_top + LABEL_H + NAME_H, rect.width(), NAME_H)
            p.drawText(folder_line, Qt.AlignmentFlag.AlignCenter, self.elided(small, f"in {folder}", rect.width()))
        if selected:
            p.setPen(QPen(option.palette.highlight().color(), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(option.rect.adjusted(1, 1, -1, -1))
        p.restore()

    @staticmethod
    def _paint_mark(p: QPainter, box: QRect, right: bool) -> None:
        """A green disc with a tick, or a red one with a cross, on the frame's top right corner."""
        d = max(20, min(30, box.width() // 6))
        disc = QRectF(box.right() - d - 1, box.top() + 1, d, d)
        p.save()
        p.setPen(QPen(QColor(255, 255, 255), 1.5))
        p.setBrush(MARK_RIGHT if right else MARK_WRONG)
        p.drawEllipse(disc)
        pen = QPen(QColor(255, 255, 255), max(2.0, d / 9))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        x, y = disc.x(), disc.y()
        glyph = QPainterPath()
        if right:
            glyph.moveTo(QPointF(x + 0.27 * d, y + 0.53 * d))
            glyph.lineTo(QPointF(x + 0.44 * d, y + 0.70 * d))
            glyph.lineTo(QPointF(x + 0.74 * d, y + 0.32 * d))
        else:
            glyph.moveTo(QPointF(x + 0.32 * d, y + 0.32 * d))
            glyph.lineTo(QPointF(x + 0.68 * d, y + 0.68 * d))
            glyph.moveTo(QPointF(x + 0.68 * d, y + 0.32 * d))
            glyph.lineTo(QPointF(x + 0.32 * d, y + 0.68 * d))
        p.drawPath(glyph)
        p.restore()

    @staticmethod
    def _paint_badge(p: QPainter, option: QStyleOptionViewItem, line: QRect, text: str) -> None:
        """A grey rounded badge of white ``text``, bottom-aligned on the label ``line``."""
        p.save()  # the brush must not fill what paint() draws next (the selection outline)
        font = QFont(option.font)
        font.setBold(True)
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        flags = int(Qt.AlignmentFlag.AlignCenter) | int(Qt.TextFlag.TextWordWrap)
        inner_width = line.width() - 10
        need = p.fontMetrics().boundingRect(QRect(0, 0, inner_width, 1000), flags, text)
        height = min(need.height(), 3 * p.fontMetrics().lineSpacing()) + 4
        badge = QRect(line.x() + 2, line.bottom() - height + 1, line.width() - 4, height)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QC_BADGE)
        p.drawRoundedRect(badge, 5, 5)
        p.setPen(QColor(255, 255, 255))
        p.drawText(badge.adjusted(3, 0, -3, 0), flags, text)
        p.restore()


class PatchGallery(QWidget):
    """Thumbnails of patches with their predictions; sort, filter, counts, export and details."""

    export_failed = Signal(str)
    classify_requested = Signal()

    #: The thumbnail side last chosen in any gallery: a new gallery starts there (while the app runs).
    remembered_side = THUMB_SIDE

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_names: tuple[str, ...] = ()
        self.class_colors: tuple[str, ...] = ()
        self.problems: list[PatchResult] = []
        self.thumb_side = PatchGallery.remembered_side
        self._label_width = 136
        self.viewer: PatchViewer | None = None
        self._full_image: tuple[str, QImage | None] | None = None
        self.reader = ImageReader(self)
        self.reader.set_side(decode_side(self.thumb_side))
        self.model = PatchListModel(self.reader, self)
        self.proxy = PatchFilter(self)
        self.proxy.setSourceModel(self.model)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show"))
        self.filter_combo = QComboBox()
        bar.addWidget(self.filter_combo)
        bar.addWidget(QLabel("min. confidence"))
        self.min_conf_spin = QSpinBox()
        self.min_conf_spin.setRange(0, 100)
        self.min_conf_spin.setSuffix(" %")
        bar.addWidget(self.min_conf_spin)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Sort by"))
        self.sort_combo = QComboBox()
        for label in ("File name", "Class", "Confidence, high first", "Confidence, low first"):
            self.sort_combo.addItem(label)
        bar.addWidget(self.sort_combo)
        bar.addStretch(1)
        layout.addLayout(bar)
        row = QHBoxLayout()
        self.counts = QLabel()
        self.counts.setTextFormat(Qt.TextFormat.RichText)
        self.counts.setWordWrap(True)
        row.addWidget(self.counts, 1)
        self.classify_button = QPushButton("Classify")
        self.export_csv_button = QPushButton("Export CSV\u2026")
        self.export_json_button = QPushButton("Export JSON\u2026")
        for b in (self.classify_button, self.export_csv_button, self.export_json_button):
            row.addWidget(b)
        layout.addLayout(row)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setGridSize(self.cell_size())
        self.view.setIconSize(QSize(self.thumb_side, self.thumb_side))
        self.view.setSpacing(0)
        self.view.setDragEnabled(False)
        self.view.setAcceptDrops(False)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setItemDelegate(PatchDelegate(self))
        self.view.setModel(self.proxy)
        self.view.viewport().setAcceptDrops(False)
        self.view.setAccessibleName("Patches")
        self.view.setAccessibleDescription("Double-click or press Enter to open a patch large.")
        self.view.installEventFilter(self)
        self.view.viewport().installEventFilter(self)
        # Under the thumbnails (not in the top bar: the gallery's minimum width is the window's,
        # since it shares the central stack with the slide page).
        grid_pane = QWidget()
        gl = QVBoxLayout(grid_pane)
        gl.setContentsMargins(0, 0, 0, 0)
        gl.setSpacing(4)
        gl.addWidget(self.view, 1)
        under = QHBoxLayout()
        self.open_button = QPushButton("Open Large\u2026")
        self.open_button.setToolTip("Show the selected patch as large as the screen allows (double-click or Enter)")
        self.open_button.setEnabled(False)
        under.addWidget(self.open_button)
        under.addStretch(1)
        size_label = QLabel("Size")
        under.addWidget(size_label)
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(THUMB_MIN, THUMB_MAX)
        self.size_slider.setSingleStep(THUMB_STEP)
        self.size_slider.setPageStep(2 * THUMB_STEP)
        self.size_slider.setValue(self.thumb_side)
        self.size_slider.setFixedWidth(140)
        self.size_slider.setAccessibleName("Thumbnail size")
        self.size_slider.setToolTip("Thumbnail size (Ctrl + mouse wheel over the thumbnails)")
        size_label.setBuddy(self.size_slider)
        under.addWidget(self.size_slider)
        gl.addLayout(under)
        split.addWidget(grid_pane)

        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(6, 0, 0, 0)
        self.detail_title = QLabel("<b>Select a patch</b>")
        self.detail_title.setTextFormat(Qt.TextFormat.RichText)
        self.detail_title.setWordWrap(True)
        self.detail_image = TileImage()
        self.detail_chart = ProbabilityChart()
        self.detail_path = QLabel()
        self.detail_path.setWordWrap(True)
        self.detail_path.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_image.setFixedHeight(300)
        dl.addWidget(self.detail_title)
        dl.addWidget(self.detail_image)
        dl.addWidget(self.detail_chart)
        dl.addWidget(self.detail_path)
        dl.addStretch(1)
        detail.setMinimumWidth(220)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([900, 320])
        layout.addWidget(split, 1)

        self.filter_combo.currentIndexChanged.connect(self._apply_filter)
        self.min_conf_spin.valueChanged.connect(self._apply_filter)
        self.sort_combo.currentIndexChanged.connect(self._apply_filter)
        self.export_csv_button.clicked.connect(lambda: self._export_dialog("csv"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))
        self.classify_button.clicked.connect(self.classify_requested)
        self.view.selectionModel().currentChanged.connect(lambda cur, _prev: self._show_detail(cur))
        self.view.doubleClicked.connect(self.open_patch)
        self.open_button.clicked.connect(self._open_current)
        self.reader.image_ready.connect(self._on_full_image)
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(150)  # read thumbnails again once the slider rests
        self._resize_timer.timeout.connect(self._read_at_new_side)
        self.size_slider.valueChanged.connect(self.set_thumb_side)
        self._detail_path = ""
        names = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")  # until a model says otherwise
        self.set_classes(names, default_colors(names))

    # ----- content ---------------------------------------------------------------------------------
    def set_patches(self, paths: list[str], problems: list[PatchResult] | None = None) -> None:
        self.problems = list(problems or [])
        if self.viewer is not None:
            self.viewer.reject()
        self.model.set_paths(paths)
        self._detail_path = ""
        self._full_image = None
        self.detail_title.setText("<b>Select a patch</b>")
        self.detail_image.set_image(None, "")
        self.detail_chart.set_values((), (), None)
        self.detail_path.setText("")
        self.open_button.setEnabled(False)
        self._fill_filter_combo()
        self.view.setGridSize(self.cell_size())
        self._apply_filter()
        if len(paths) == 1:  # a single patch: show its details straight away
            self.select_path(paths[0])

    def add_results(self, results: list[PatchResult]) -> None:
        self.model.set_results(results)
        self._refresh_counts()
        self.proxy.invalidate()
        if self._detail_path and any(r.path == self._detail_path for r in results):
            self._show_detail(self.view.currentIndex())
        if self.viewer is not None and self.viewer.isVisible() and any(r.path == self.viewer.path for r in results):
            self._refresh_viewer()

    def clear_results(self) -> None:
        self.model.clear_results()
        self._refresh_counts()

    def set_classes(self, names: tuple[str, ...], colors: tuple[str, ...]) -> None:
        self.class_names, self.class_colors = tuple(names), tuple(colors)
        self.model.set_class_names(self.class_names)
        self._measure_labels()
        self._fill_filter_combo()
        self.view.setGridSize(self.cell_size())
        self.proxy.invalidate()
        self._refresh_counts()
        self.view.viewport().update()
        if self._detail_path:
            self._show_detail(self.view.currentIndex())
        if self.viewer is not None and self.viewer.isVisible():
            self._refresh_viewer()

    def _fill_filter_combo(self) -> None:
        current = self.filter_combo.currentData()
        self.filter_combo.blockSignals(True)
        self.filter_combo.clear()
        self.filter_combo.addItem("All patches", FILTER_ALL)
        for i, n in enumerate(self.class_names):
            self.filter_combo.addItem(n, i)
        if self.model.has_truth():
            self.filter_combo.addItem("Not matching their folder", FILTER_MISMATCH)
        self.filter_combo.addItem("Cannot read", FILTER_FAILED)
        self.filter_combo.addItem("Left out by quality control", FILTER_QC)
        self.filter_combo.addItem("Not classified", FILTER_PENDING)
        found = self.filter_combo.findData(current)
        self.filter_combo.setCurrentIndex(max(0, found))
        self.filter_combo.blockSignals(False)
        if found < 0 and current is not None and current != FILTER_ALL:
            self._apply_filter()  # the filter shown is gone: show every patch again

    # ----- thumbnail size ----------------------------------------------------------------------------
    def cell_size(self) -> QSize:
        """One grid cell: the framed thumbnail, then the label, file name and (when shown) folder lines."""
        lines = LABEL_H + NAME_H + (NAME_H if self.model.show_folders else 0)
        return QSize(max(self.thumb_side + 28, self._label_width), self.thumb_side + 12 + 8 + 4 + lines + 4)

    def _measure_labels(self) -> None:
        """The width the longest "class 100%" label needs (capped), so small thumbnails do not cut it."""
        bold = QFont(self.view.font())
        bold.setBold(True)
        fm = QFontMetrics(bold)
        need = max([fm.horizontalAdvance(f"{n} 100%") for n in self.class_names] + [0]) + 14
        self._label_width = min(max(136, need), 220)

    def set_thumb_side(self, side: int) -> None:
        """Show thumbnails ``side`` px wide (clamped to the slider's range); new galleries start there too."""
        side = max(THUMB_MIN, min(THUMB_MAX, int(side)))
        if self.size_slider.value() != side:
            self.size_slider.setValue(side)  # comes back here
            return
        if side == self.thumb_side:
            return
        self.thumb_side = PatchGallery.remembered_side = side
        self.view.setIconSize(QSize(side, side))
        self.view.setGridSize(self.cell_size())
        self.view.doItemsLayout()
        current = self.view.currentIndex()
        if current.isValid():
            self.view.scrollTo(current)
        self._resize_timer.start()

    def _read_at_new_side(self) -> None:
        self.reader.set_side(decode_side(self.thumb_side))
        self.view.viewport().update()

    # ----- opening one patch large -------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if (watched is self.view and event.type() == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and self.view.currentIndex().isValid()):
            self.open_patch(self.view.currentIndex())
            return True
        if (watched is self.view.viewport() and event.type() == QEvent.Type.Wheel
                and isinstance(event, QWheelEvent)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            steps = event.angleDelta().y() // 120
            if steps:
                self.set_thumb_side(self.thumb_side + steps * THUMB_STEP)
            return True
        return super().eventFilter(watched, event)

    def open_patch(self, index: QModelIndex | None = None) -> PatchViewer | None:
        """Open the patch at ``index`` of the view (default: the current one) in the large viewer."""
        if index is None:
            index = self.view.currentIndex()
        if not index.isValid():
            return None
        if self.view.currentIndex() != index:
            self.view.setCurrentIndex(index)  # the details panel follows, and asks for the full image
        if self.viewer is None:
            self.viewer = PatchViewer(self)
            self.viewer.setWindowModality(Qt.WindowModality.WindowModal)
            self.viewer.step_requested.connect(self._step_viewer)
        viewer = self.viewer
        path = index.data(PathRole)
        cached = self._full_image if self._full_image is not None and self._full_image[0] == path else None
        if cached is not None and cached[1] is not None:
            viewer.show_patch(self._facts(index), cached[1], full=True)
        else:
            viewer.show_patch(self._facts(index), self.reader.thumbnail(path))
            if cached is not None:  # read already, and it cannot be
                viewer.set_image(path, None)
            elif path != self._detail_path:
                self.reader.read_full(path)
        if not viewer.isVisible():
            viewer.show()
            if cached is not None:
                viewer.fit_to_screen()
        viewer.raise_()
        viewer.activateWindow()
        return viewer

    def _open_current(self) -> None:
        self.open_patch(self.view.currentIndex())

    def _facts(self, index: QModelIndex | QPersistentModelIndex) -> PatchFacts:
        return PatchFacts(path=index.data(PathRole), result=index.data(ResultRole), class_names=self.class_names,
                          class_colors=self.class_colors, folder=index.data(FolderRole) or "",
                          match=index.data(MatchRole), position=index.row() + 1, count=self.proxy.rowCount())

    def _refresh_viewer(self) -> None:
        assert self.viewer is not None
        for r in range(self.proxy.rowCount()):
            idx = self.proxy.index(r, 0)
            if idx.data(PathRole) == self.viewer.path:
                self.viewer.show_patch(self._facts(idx), None)
                return

    def _step_viewer(self, step: int) -> None:
        if self.viewer is None:
            return
        rows = [r for r in range(self.proxy.rowCount()) if self.proxy.index(r, 0).data(PathRole) == self.viewer.path]
        if not rows:
            return
        row = rows[0] + step
        if 0 <= row < self.proxy.rowCount():
            self.open_patch(self.proxy.index(row, 0))

    @property
    def paths(self) -> list[str]:
        return [it.path for it in self.model.items]

    def results(self) -> list[PatchResult]:
        return [it.result for it in self.model.items if it.result is not None]

    def records(self) -> list[PatchResult]:
        """What ``classify`` would write: unreadable inputs first, then every result in input order."""
        return self.problems + self.results()

    def qc_flagged(self) -> list[PatchResult]:
        """The patches quality control left out (not classified, and not errors either)."""
        return [r for r in self.results() if r.ok and not r.classified]

    def unreadable(self) -> list[PatchResult]:
        """The inputs that could not be classified, each with its error (``classify`` exits 1 on these)."""
        return list(self.problems) + [r for r in self.results() if not r.ok]

    def counts_by_class(self) -> dict[str, int]:
        out = {n: 0 for n in self.class_names}
        for r in self.results():
            if r.classified and r.label is not None:
                out[r.label] = out.get(r.label, 0) + 1
        return out

    def visible_paths(self) -> list[str]:
        return [self.proxy.index(r, 0).data(PathRole) for r in range(self.proxy.rowCount())]

    def is_complete(self) -> bool:
        return all(it.result is not None for it in self.model.items)

    # ----- filter, counts, details ---------------------------------------------------------------------
    def set_filter(self, class_filter: int = FILTER_ALL, min_confidence: float = 0.0, sort_mode: int = SORT_NAME) -> None:
        self.filter_combo.setCurrentIndex(max(0, self.filter_combo.findData(class_filter)))
        self.min_conf_spin.setValue(round(min_confidence * 100))
        self.sort_combo.setCurrentIndex(sort_mode)
        self._apply_filter()

    def _apply_filter(self) -> None:
        data = self.filter_combo.currentData()
        self.proxy.configure(FILTER_ALL if data is None else int(data), self.min_conf_spin.value() / 100.0,
                             self.sort_combo.currentIndex())
        self._refresh_counts()

    def folder_agreement(self) -> tuple[int, int]:
        """``(matching, judged)``: classified patches whose folder names a class, and how many of them
        the model put in that class."""
        if not self.model.show_folders:
            return 0, 0
        marks = [it.match for it in self.model.items if it.match is not None]
        return sum(marks), len(marks)

    def _refresh_counts(self) -> None:
        counts = self.counts_by_class()
        results = self.results()
        failed = len(self.unreadable())
        total = len(self.model.items)
        parts = [f"<span style='color:{c}'>\u25a0</span>&nbsp;{n}&nbsp;<b>{counts.get(n, 0)}</b>"
                 for n, c in zip(self.class_names, self.class_colors)]
        tail = f"{total} patch{'es' if total != 1 else ''}"
        pending = total - len(results)
        if pending:
            tail += f", {pending} not classified"
        if flagged := len(self.qc_flagged()):
            tail += f", {flagged} left out by quality control"
        if failed:
            tail += f", {failed} unreadable"
        right, judged = self.folder_agreement()
        if judged:
            agreement = f"{right} of {judged} match their folder".replace(" ", "&nbsp;")
            tail += f" \u00b7 <b>{agreement}</b>&nbsp;({100 * right / judged:.0f}%)"
        shown = self.proxy.rowCount()
        if shown != total:
            tail += f" \u00b7 showing {shown}"
        self.counts.setText(" &nbsp;&nbsp; ".join(parts) + f" &nbsp;&nbsp;\u2014&nbsp; {tail}")
        has = bool(results) or bool(self.problems)
        self.export_csv_button.setEnabled(has)
        self.export_json_button.setEnabled(has)

    def select_path(self, path: str) -> None:
        for r in range(self.proxy.rowCount()):
            idx = self.proxy.index(r, 0)
            if idx.data(PathRole) == path:
                self.view.setCurrentIndex(idx)
                return

    def _show_detail(self, index: QModelIndex) -> None:
        if not index.isValid():
            self.open_button.setEnabled(False)
            return
        self.open_button.setEnabled(True)
        path = index.data(PathRole)
        result: PatchResult | None = index.data(ResultRole)
        if path != self._detail_path:
            self._detail_path = path
            self.detail_image.set_image(self.reader.thumbnail(path), "Reading\u2026")
            self.reader.read_full(path)
        note = ""
        if result is not None and result.classified:
            color = self.class_colors[result.label_index]
            self.detail_title.setText(f"<b><span style='color:{color}'>\u25a0</span> {result.label}</b>"
                                      f" &nbsp;{100 * (result.confidence or 0):.1f}%")
            self.detail_chart.set_values(self.class_names, self.class_colors, result.probabilities)
            note = uncertainty_words(result)
        elif result is not None and result.ok:
            self.detail_title.setText(f"<b>{html.escape(qc_badge_text(result))}</b>")
            self.detail_chart.set_values(self.class_names, self.class_colors, None)
            note = "Quality control left this patch out; turn it off in Settings to classify it."
        elif result is not None:
            self.detail_title.setText("<b>Cannot read this image</b>")
            self.detail_chart.set_values(self.class_names, self.class_colors, None)
        else:
            self.detail_title.setText("<b>Not classified yet</b>")
            self.detail_chart.set_values(self.class_names, self.class_colors, None)
        err = f"\n{result.error}" if result is not None and result.error else ""
        folder = index.data(FolderRole)
        if folder:
            match = index.data(MatchRole)
            folder = f"\nFolder: {folder}" + ("" if match is None else " \u2713" if match else " \u2717 (differs)")
        self.detail_path.setText(path + (folder or "") + err + (f"\n{note}" if note else ""))

    @property
    def detail_probabilities(self) -> tuple[float, ...]:
        return self.detail_chart.values

    def _on_full_image(self, path: str, rgb: np.ndarray | None) -> None:
        wanted = path == self._detail_path
        viewing = self.viewer is not None and path == self.viewer.path
        if not (wanted or viewing):
            return
        image = rgb_to_qimage(rgb) if rgb is not None else None
        self._full_image = (path, image)
        if wanted:
            if image is None:
                self.detail_image.set_image(None, "Cannot read this image.")
            else:
                self.detail_image.set_image(image)
        if viewing and self.viewer is not None:
            self.viewer.set_image(path, image)

    # ----- export -------------------------------------------------------------------------------------
    def export_text(self, fmt: str) -> str:
        from chaoyang_desktop.export.patch_results import format_patch_results

        return format_patch_results(self.records(), self.class_names, fmt)

    def export_to(self, path: str, fmt: str) -> None:
        """Write the results as ``classify --format fmt`` would (atomically)."""
        from chaoyang_desktop.core import atomic

        atomic.write_text(path, self.export_text(fmt))

    def _export_dialog(self, fmt: str) -> None:
        from chaoyang_desktop.core.errors import ChaoyangError

        name, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", f"predictions.{fmt}",
                                              "CSV (*.csv)" if fmt == "csv" else "JSON (*.json)")
        if not name:
            return
        try:
            self.export_to(name, fmt)
        except ChaoyangError as exc:
            self.export_failed.emit(str(exc))

    def shutdown(self) -> None:
        if self.viewer is not None:
            self.viewer.reject()
        self.reader.shutdown()
