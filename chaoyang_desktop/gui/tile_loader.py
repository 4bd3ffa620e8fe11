"""Decoding slide pixels off the GUI thread: display tiles, the thumbnail, and single regions.

Display tiles are ``TILE x TILE`` pixels of one pyramid level, named by a :class:`TileKey`
``(slide token, level, tx, ty)``. The view says which keys it wants with :meth:`TileLoader.want`;
that bumps a generation counter. A queued read whose generation is old and whose key is no
longer wanted is skipped without touching the file, so fast panning does not pile up work.
Worker threads return numpy arrays only; the QImage is made here, on the GUI thread, and kept in
an LRU cache bounded in bytes.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from chaoyang_desktop.core.slide.reader import Slide

log = logging.getLogger(__name__)

#: Side of a display tile in pixels of its pyramid level.
TILE = 512
#: Decoded tiles kept in memory.
DEFAULT_CACHE_BYTES = 384 * 1024 * 1024


@dataclass(frozen=True)
class TileKey:
    """One display tile: ``tx, ty`` count tiles of ``TILE`` pixels at pyramid level ``level``."""

    token: int
    level: int
    tx: int
    ty: int


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """An owned QImage copy of an ``(H, W, 3)`` uint8 array."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _Signals(QObject):
    """Lives on the GUI thread; emitted from pool threads, so delivery is queued."""

    tile_done = Signal(object, int, object, str)  # key, generation, rgb array or None, error
    thumbnail_done = Signal(int, object, str)  # token, rgb array or None, error
    region_done = Signal(int, object, str)  # request id, rgb array or None, error


class _Read(QRunnable):
    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__()
        self._work = work

    def run(self) -> None:
        self._work()


class TileLoader(QObject):
    """A small thread pool that reads slide pixels, and the cache of decoded display tiles."""

    tile_ready = Signal(object)  # TileKey
    thumbnail_ready = Signal(int, object)  # token, rgb ndarray
    region_ready = Signal(int, object)  # request id, rgb ndarray
    region_failed = Signal(int, str)
    idle = Signal()  # no display tile is being read any more

    def __init__(self, parent: QObject | None = None, threads: int | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads or max(2, min(4, os.cpu_count() or 2)))
        self._signals = _Signals(self)
        self._signals.tile_done.connect(self._on_tile_done)
        self._signals.thumbnail_done.connect(self._on_thumbnail_done)
        self._signals.region_done.connect(self._on_region_done)
        self._slide: Slide | None = None
        self._token = 0
        self._generation = 0
        self._wanted: frozenset[TileKey] = frozenset()
        self._in_flight: set[TileKey] = set()
        self._failed: set[TileKey] = set()
        self._cache: OrderedDict[TileKey, QImage] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = int(cache_bytes)
        self._next_region = 0
        self.tiles_read = 0  # for tests and diagnostics
        #: Brightness/contrast/gamma table applied to display tiles (never to regions or thumbnails).
        self._lut: np.ndarray | None = None

    # ----- slide ---------------------------------------------------------------------------------
    @property
    def token(self) -> int:
        return self._token

    @property
    def generation(self) -> int:
        return self._generation

    def set_slide(self, slide: Slide | None) -> int:
        """Serve a new slide (or none); returns its token. Tiles of the old one are forgotten."""
        self._token += 1
        self._slide = slide
        self._wanted = frozenset()
        self._in_flight.clear()
        self._failed.clear()
        self._cache.clear()
        self._cache_bytes = 0
        self._generation += 1
        return self._token

    def set_display_lut(self, lut: np.ndarray | None) -> None:
        """Apply ``lut`` to the display tiles from now on; the cached ones are read again."""
        self._lut = lut
        self._in_flight.clear()
        self._failed.clear()
        self._cache.clear()
        self._cache_bytes = 0
        self._generation += 1

    # ----- display tiles ----------------------------------------------------------------------------
    def tile_rect_l0(self, key: TileKey) -> tuple[float, float, float, float] | None:
        """Level-0 ``(x, y, w, h)`` covered by a tile, None when it lies outside the level."""
        if self._slide is None:
            return None
        lv_w, lv_h = self._slide.level_dimensions[key.level]
        ds = self._slide.level_downsamples[key.level]
        w = min(TILE, lv_w - key.tx * TILE)
        h = min(TILE, lv_h - key.ty * TILE)
        if w <= 0 or h <= 0:
            return None
        return key.tx * TILE * ds, key.ty * TILE * ds, w * ds, h * ds

    def cached(self, key: TileKey) -> QImage | None:
        img = self._cache.get(key)
        if img is not None:
            self._cache.move_to_end(key)
        return img

    def is_failed(self, key: TileKey) -> bool:
        return key in self._failed

    def want(self, keys: Iterable[TileKey]) -> None:
        """The tiles the view needs now, most important first; missing ones are read."""
        keys = list(keys)
        self._generation += 1
        self._wanted = frozenset(keys)
        for key in keys:
            if key.token != self._token or key in self._cache or key in self._in_flight or key in self._failed:
                continue
            self._submit_tile(key)

    def busy(self) -> bool:
        """Whether any wanted display tile is still being read."""
        return any(k in self._wanted for k in self._in_flight)

    def _submit_tile(self, key: TileKey) -> None:
        slide, rect = self._slide, self.tile_rect_l0(key)
        if slide is None or rect is None:
            return
        self._in_flight.add(key)
        gen = self._generation
        lv_w, lv_h = slide.level_dimensions[key.level]
        w = min(TILE, lv_w - key.tx * TILE)
        h = min(TILE, lv_h - key.ty * TILE)
        l0_x, l0_y = round(rect[0]), round(rect[1])
        signals = self._signals
        lut = self._lut

        def work() -> None:
            # Skip reads for a view the user already left (the GUI thread swaps these atomically).
            if gen != self._generation and key not in self._wanted:
                signals.tile_done.emit(key, gen, None, "")
                return
            try:
                rgb = slide.read_region(l0_x, l0_y, key.level, w, h)
                if lut is not None:
                    rgb = lut[rgb]
            except Exception as exc:  # reported, and the tile is drawn as missing
                signals.tile_done.emit(key, gen, None, f"{type(exc).__name__}: {exc}")
                return
            signals.tile_done.emit(key, gen, rgb, "")

        self._pool.start(_Read(work))

    def _on_tile_done(self, key: TileKey, gen: int, rgb: np.ndarray | None, error: str) -> None:
        if key.token != self._token:
            return
        if gen != self._generation and rgb is not None and key not in self._in_flight:
            return  # read before the display table changed: another read of it is coming
        self._in_flight.discard(key)
        if rgb is not None:
            self.tiles_read += 1
            img = rgb_to_qimage(rgb)
            self._cache[key] = img
            self._cache_bytes += img.sizeInBytes()
            while self._cache_bytes > self._cache_limit and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= old.sizeInBytes()
            self.tile_ready.emit(key)
        elif error:
            log.warning("Cannot read display tile %s: %s", key, error)
            self._failed.add(key)
            self.tile_ready.emit(key)
        elif key in self._wanted:
            self._submit_tile(key)  # skipped while stale, wanted again since
        if not self.busy():
            self.idle.emit()

    # ----- thumbnail and regions ------------------------------------------------------------------
    def request_thumbnail(self, max_side: int) -> None:
        """Read the whole slide small; ``thumbnail_ready(token, rgb)`` follows."""
        slide, token, signals = self._slide, self._token, self._signals
        if slide is None:
            return

        def work() -> None:
            try:
                signals.thumbnail_done.emit(token, slide.thumbnail(max_side), "")
            except Exception as exc:
                signals.thumbnail_done.emit(token, None, f"{type(exc).__name__}: {exc}")

        self._pool.start(_Read(work))

    def _on_thumbnail_done(self, token: int, rgb: np.ndarray | None, error: str) -> None:
        if token != self._token:
            return
        if rgb is None:
            log.warning("Cannot read the thumbnail: %s", error)
            rgb = np.full((1, 1, 3), 255, dtype=np.uint8)
        self.thumbnail_ready.emit(token, rgb)

    def request_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> int:
        """Read one region (e.g. a tile at full resolution); returns the request id."""
        self._next_region += 1
        rid, slide, signals = self._next_region, self._slide, self._signals
        if slide is None:
            return rid

        def work() -> None:
            try:
                signals.region_done.emit(rid, slide.read_region(l0_x, l0_y, level, lv_w, lv_h), "")
            except Exception as exc:
                signals.region_done.emit(rid, None, f"{type(exc).__name__}: {exc}")

        self._pool.start(_Read(work))
        return rid

    def _on_region_done(self, rid: int, rgb: np.ndarray | None, error: str) -> None:
        if rgb is None:
            self.region_failed.emit(rid, error)
        else:
            self.region_ready.emit(rid, rgb)

    # ----- lifetime --------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Drop queued reads and wait for the running ones (each is one small region)."""
        self._wanted = frozenset()
        self._generation += 1
        self._pool.clear()
        self._pool.waitForDone()
