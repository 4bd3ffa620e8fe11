"""The patch gallery: thumbnails framed in their class colour, sort/filter, counts, export, details.

Items are the images of a folder (or single patches) in the order ``classify`` uses, so the
CSV/JSON export is byte-for-byte what ``chaoyang-desktop classify --format csv|json`` writes
for the same inputs. Classification runs on the app's worker; results arrive in batches and
frame the thumbnails as they come. Thumbnails are decoded on a small thread pool when first
painted, and kept in a bounded cache, so a folder of thousands of patches stays light.

A patch that quality control left out (glass, pen ink, blur, a dark artefact) wears a grey
"Not classified: <reasons>" badge where a class would be, so nobody reads a class into it; a
classified patch's tooltip says how unsure the model was (margin, entropy, TTA spread).
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
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.analysis.results import UNSURE_MARGIN
from chaoyang_desktop.gui.inspector import TileImage
from chaoyang_desktop.gui.prob_chart import ProbabilityChart
from chaoyang_desktop.gui.tile_loader import rgb_to_qimage

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.patches import PatchResult

log = logging.getLogger(__name__)

THUMB_SIDE = 128
CELL = QSize(156, 192)
MAX_THUMBS = 3000

SORT_NAME, SORT_CLASS, SORT_CONF_DESC, SORT_CONF_ASC = range(4)
FILTER_ALL, FILTER_FAILED, FILTER_PENDING, FILTER_QC = -1, -2, -3, -4
#: Frame and badge of a patch that quality control left out: grey, the colour of no class.
QC_FRAME = QColor(165, 165, 165)
QC_BADGE = QColor(105, 105, 105)

ResultRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2


@dataclass
class PatchItem:
    path: str
    result: PatchResult | None = None


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


class _ThumbSignals(QObject):
    done = Signal(str, object)  # path, rgb array or None


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
            self._signals.done.emit(self._path, rgb)
        except Exception as exc:  # drawn as "cannot read"
            log.info("Thumbnail of %s failed: %s", self._path, exc)
            self._signals.done.emit(self._path, None)


class ImageReader(QObject):
    """Decodes images off the GUI thread: bounded cache of thumbnails, plus full-size reads."""

    thumbnail_ready = Signal(str)
    image_ready = Signal(str, object)  # path, rgb ndarray or None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._thumb_signals = _ThumbSignals(self)
        self._thumb_signals.done.connect(self._on_thumb)
        self._full_signals = _ThumbSignals(self)
        self._full_signals.done.connect(lambda path, rgb: self.image_ready.emit(path, rgb))
        self._thumbs: OrderedDict[str, QImage | None] = OrderedDict()
        self._in_flight: set[str] = set()

    def thumbnail(self, path: str) -> QImage | None:
        if path in self._thumbs:
            self._thumbs.move_to_end(path)
            return self._thumbs[path]
        if path not in self._in_flight:
            self._in_flight.add(path)
            self._pool.start(_ThumbRead(path, THUMB_SIDE, self._thumb_signals))
        return None

    def has_thumbnail(self, path: str) -> bool:
        return path in self._thumbs

    def read_full(self, path: str) -> None:
        self._pool.start(_ThumbRead(path, 4096, self._full_signals))

    def _on_thumb(self, path: str, rgb: np.ndarray | None) -> None:
        self._in_flight.discard(path)
        self._thumbs[path] = rgb_to_qimage(rgb) if rgb is not None else None
        while len(self._thumbs) > MAX_THUMBS:
            self._thumbs.popitem(last=False)
        self.thumbnail_ready.emit(path)

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

    def set_paths(self, paths: list[str]) -> None:
        self.beginResetModel()
        self.items = [PatchItem(p) for p in paths]
        self._rows = {p: i for i, p in enumerate(paths)}
        self.endResetModel()

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
            r = item.result
            if r is None:
                return item.path
            if not r.ok:
                return f"{item.path}\n{r.error}"
            if not r.classified:
                return (f"{item.path}\n{qc_badge_text(r)}\n"
                        "Quality control left this patch out; turn it off in Settings to classify it.")
            probs = "\n".join(f"  {n}: {100 * p:.1f}%" for n, p in zip(r.class_names, r.probabilities or ()))
            unsure = uncertainty_words(r)
            return (f"{item.path}\n{r.label} ({100 * (r.confidence or 0):.1f}%)\n"
                    + (f"{unsure}\n" if unsure else "") + probs)
        if role == ResultRole:
            return item.result
        if role == PathRole:
            return item.path
        return None

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
    """Thumbnail in a frame of its class colour, label and confidence underneath.

    A QC-flagged patch has a grey frame and, instead of the label, a grey badge with the
    reasons; when they need two lines the badge grows upwards over the thumbnail's foot
    rather than being cut short, since the reason is the point.
    """

    def __init__(self, gallery: PatchGallery) -> None:
        super().__init__(gallery)
        self._gallery = gallery

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return CELL

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        g = self._gallery
        path = index.data(PathRole)
        result: PatchResult | None = index.data(ResultRole)
        rect: QRect = option.rect.adjusted(4, 4, -4, -4)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if selected:
            p.fillRect(option.rect, option.palette.highlight().color().lighter(160))
        box = QRect(rect.x() + (rect.width() - THUMB_SIDE - 12) // 2, rect.y(), THUMB_SIDE + 12, THUMB_SIDE + 12)
        if result is not None and result.classified:
            color = QColor(g.class_colors[result.label_index])
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
        text_top = box.bottom() + 4
        line = QRect(rect.x(), text_top, rect.width(), 18)
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
            p.drawText(line, Qt.AlignmentFlag.AlignCenter, f"{result.label}  {100 * (result.confidence or 0):.0f}%")
        p.setFont(option.font)
        p.setPen(QColor(100, 100, 100))
        name_line = QRect(rect.x(), text_top + 18, rect.width(), 16)
        name = p.fontMetrics().elidedText(Path(path).name, Qt.TextElideMode.ElideMiddle, rect.width())
        p.drawText(name_line, Qt.AlignmentFlag.AlignCenter, name)
        if selected:
            p.setPen(QPen(option.palette.highlight().color(), 2))
            p.drawRect(option.rect.adjusted(1, 1, -1, -1))
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.class_names: tuple[str, ...] = ()
        self.class_colors: tuple[str, ...] = ()
        self.problems: list[PatchResult] = []
        self.reader = ImageReader(self)
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
        self.view.setGridSize(CELL)
        self.view.setSpacing(0)
        self.view.setDragEnabled(False)
        self.view.setAcceptDrops(False)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setItemDelegate(PatchDelegate(self))
        self.view.setModel(self.proxy)
        self.view.viewport().setAcceptDrops(False)
        split.addWidget(self.view)

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
        self.reader.image_ready.connect(self._on_full_image)
        self._detail_path = ""
        self.set_classes(("Normal", "Serrated", "Adenocarcinoma", "Adenoma"),
                         ("#2ca02c", "#f2c500", "#d62728", "#1f77b4"))

    # ----- content ---------------------------------------------------------------------------------
    def set_patches(self, paths: list[str], problems: list[PatchResult] | None = None) -> None:
        self.problems = list(problems or [])
        self.model.set_paths(paths)
        self._detail_path = ""
        self.detail_title.setText("<b>Select a patch</b>")
        self.detail_image.set_image(None, "")
        self.detail_chart.set_values((), (), None)
        self.detail_path.setText("")
        self._apply_filter()
        if len(paths) == 1:  # a single patch: show its details straight away
            self.select_path(paths[0])

    def add_results(self, results: list[PatchResult]) -> None:
        self.model.set_results(results)
        self._refresh_counts()
        self.proxy.invalidate()
        if self._detail_path and any(r.path == self._detail_path for r in results):
            self._show_detail(self.view.currentIndex())

    def clear_results(self) -> None:
        self.model.clear_results()
        self._refresh_counts()

    def set_classes(self, names: tuple[str, ...], colors: tuple[str, ...]) -> None:
        self.class_names, self.class_colors = tuple(names), tuple(colors)
        current = self.filter_combo.currentData()
        self.filter_combo.blockSignals(True)
        self.filter_combo.clear()
        self.filter_combo.addItem("All patches", FILTER_ALL)
        for i, n in enumerate(names):
            self.filter_combo.addItem(n, i)
        self.filter_combo.addItem("Cannot read", FILTER_FAILED)
        self.filter_combo.addItem("Left out by quality control", FILTER_QC)
        self.filter_combo.addItem("Not classified", FILTER_PENDING)
        self.filter_combo.setCurrentIndex(max(0, self.filter_combo.findData(current)))
        self.filter_combo.blockSignals(False)
        self._refresh_counts()
        self.view.viewport().update()
        if self._detail_path:
            self._show_detail(self.view.currentIndex())

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
            return
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
        self.detail_path.setText(path + err + (f"\n{note}" if note else ""))

    @property
    def detail_probabilities(self) -> tuple[float, ...]:
        return self.detail_chart.values

    def _on_full_image(self, path: str, rgb: np.ndarray | None) -> None:
        if path == self._detail_path:
            if rgb is None:
                self.detail_image.set_image(None, "Cannot read this image.")
            else:
                self.detail_image.set_image(rgb_to_qimage(rgb))

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
        self.reader.shutdown()
