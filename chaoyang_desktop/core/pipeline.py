"""The streamed whole-slide analysis: plan the tiles, read them in threads, classify in batches.

``plan_analysis`` decides what will be analysed (pixel size, grid, tissue mask, region of
interest, the tiles kept) without touching the model; the GUI shows it as a preview.
``run_analysis`` fills an :class:`AnalysisResult`: several reader threads (OpenSlide releases the
GIL) each read one batch of tiles at the grid's pyramid level and put it on a bounded queue; one
consumer, the calling thread, preprocesses and classifies each batch on the inference device and
reports it through ``on_batch``. Memory is bounded by the queue, whatever the slide's size: only
tiles in flight and per-tile numbers are held.

A :class:`TileScheduler` hands out pending tiles; ``prioritise`` moves tiles to the front while the
run goes on (the GUI sends the tiles in view). A cancel token is checked between batches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from chaoyang_desktop import __version__
from chaoyang_desktop.core.errors import ChaoyangError, SettingsError
from chaoyang_desktop.core.inference import Classifier
from chaoyang_desktop.core.profile import ModelProfile
from chaoyang_desktop.core.results import TILE_DONE, AnalysisResult, Provenance
from chaoyang_desktop.core.roi import Roi
from chaoyang_desktop.core.slide import Slide
from chaoyang_desktop.core.tiling import GridSpec, make_grid
from chaoyang_desktop.core.tissue import TissueMask, tissue_mask_for

log = logging.getLogger(__name__)

THUMB_MAX_SIDE = 2048


@dataclass(frozen=True)
class AnalysisSettings:
    """What to analyse and how; the cache key is derived from these and the model profile."""

    tile_um: float | None = None
    stride_um: float | None = None
    tissue_threshold: float = 0.25
    roi: Roi | None = None
    roi_path: str | None = None
    workers: int = 4

    def validated(self) -> AnalysisSettings:
        if not 0.0 <= self.tissue_threshold <= 1.0:
            raise SettingsError(f"The tissue threshold is a fraction between 0 and 1 (got {self.tissue_threshold}).")
        if self.workers < 1:
            raise SettingsError(f"At least one reader thread is needed (got {self.workers}).")
        return self


@dataclass(frozen=True)
class AnalysisPlan:
    """The tiles an analysis will classify, and why."""

    provenance: Provenance
    grid: GridSpec
    t_col: np.ndarray
    t_row: np.ndarray
    tissue: np.ndarray
    tissue_mask: TissueMask
    thumbnail: np.ndarray

    @property
    def n_tiles(self) -> int:
        return len(self.t_col)

    def empty_result(self) -> AnalysisResult:
        return AnalysisResult.empty(self.provenance, self.grid, self.t_col, self.t_row, self.tissue)


@dataclass(frozen=True)
class BatchUpdate:
    """One finished batch, as the progress callback receives it."""

    indices: np.ndarray
    probs: np.ndarray
    failed: tuple[tuple[int, str], ...]
    done: int
    total: int
    elapsed_s: float


def plan_analysis(slide: Slide, profile: ModelProfile, settings: AnalysisSettings,
                  thumbnail: np.ndarray | None = None) -> AnalysisPlan:
    """Lay the grid, find tissue, apply the ROI, and list the tiles to classify."""
    settings = settings.validated()
    mpp = slide.require_mpp()
    tile_um = settings.tile_um or profile.tile_um
    l0_w, l0_h = slide.dimensions
    grid = make_grid(l0_w, l0_h, mpp, tile_um, settings.stride_um, profile.tile_px, slide.level_downsamples)
    thumb = thumbnail if thumbnail is not None else slide.thumbnail(THUMB_MAX_SIDE)
    if settings.tissue_threshold > 0:
        mask = tissue_mask_for(slide, thumb=thumb)
    else:
        sx, sy = slide.l0_per_px(thumb)
        mask = TissueMask.all_tissue(thumb.shape[:2], sx, sy)
    if settings.roi is not None:
        mask = mask.apply_roi(settings.roi.rasterize(mask.mask.shape[1], mask.mask.shape[0],
                                                     mask.l0_per_px_x, mask.l0_per_px_y))
    t_col, t_row = grid.all_tiles()
    fractions = mask.fractions(grid.tile_rects(t_col, t_row))
    if settings.tissue_threshold > 0:
        keep = fractions >= settings.tissue_threshold
    elif settings.roi is not None:
        keep = fractions > 0
    else:
        keep = np.ones(len(t_col), dtype=bool)
    provenance = Provenance(
        slide_path=str(slide.path),
        slide_fingerprint=slide.fingerprint(),
        l0_width=int(l0_w),
        l0_height=int(l0_h),
        mpp=float(mpp),
        mpp_assumed=bool(slide.mpp_assumed),
        vendor=slide.vendor,
        objective_power=slide.objective_power,
        model_id=profile.model_id,
        weights_sha256=profile.weights_sha256,
        class_names=profile.class_names,
        class_colors=profile.class_colors,
        channel_order=profile.channel_order,
        resize=profile.resize,
        tile_um=float(grid.l0_tile * mpp),
        stride_um=float(grid.l0_stride * mpp),
        tile_px=profile.tile_px,
        input_size=profile.input_size,
        tissue_threshold=float(settings.tissue_threshold),
        roi_path=settings.roi_path or (settings.roi.source if settings.roi is not None else None),
        software_version=__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        roi_digest=_roi_digest(settings.roi),
    )
    return AnalysisPlan(provenance, grid, t_col[keep], t_row[keep], fractions[keep].astype(np.float32), mask, thumb)


def _roi_digest(roi: Roi | None) -> str | None:
    if roi is None:
        return None
    return hashlib.sha256(json.dumps(roi.to_geojson(), sort_keys=True).encode()).hexdigest()[:16]


class TileScheduler:
    """Thread-safe queue of pending tile indices with a movable front."""

    def __init__(self, pending: Iterable[int]) -> None:
        self._lock = threading.Lock()
        self._order: deque[int] = deque(int(i) for i in pending)
        self._pending = set(self._order)

    def prioritise(self, indices: Iterable[int]) -> None:
        """Serve these tiles (those still pending) before all others, in the given order."""
        with self._lock:
            front = [int(i) for i in indices if int(i) in self._pending]
            if not front:
                return
            chosen = set(front)
            rest = [i for i in self._order if i not in chosen]
            self._order = deque(front + rest)

    def take(self, n: int) -> list[int]:
        with self._lock:
            out: list[int] = []
            while self._order and len(out) < n:
                i = self._order.popleft()
                if i in self._pending:
                    self._pending.discard(i)
                    out.append(i)
            return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)


_STOP = object()


def run_analysis(
    slide: Slide,
    classifier: Classifier,
    result: AnalysisResult,
    *,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_batch: Callable[[BatchUpdate], None] | None = None,
    scheduler: TileScheduler | None = None,
) -> AnalysisResult:
    """Classify every pending tile of ``result`` in place; returns it (partial if cancelled).

    Tiles marked failed in an earlier, interrupted run are tried again. A tile that cannot be
    read is marked failed with its reason and the run goes on.
    """
    cancel = cancel or threading.Event()
    grid = result.grid
    pending = np.flatnonzero(result.status != TILE_DONE)
    scheduler = scheduler or TileScheduler(pending)
    rects = result.rects()
    batch = max(1, classifier.batch_size)
    total = result.n_tiles
    lv = grid.lv_tile
    started = time.perf_counter()
    q: queue.Queue[object] = queue.Queue(maxsize=max(2, workers * 2))
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set() and not cancel.is_set():
                idx = scheduler.take(batch)
                if not idx:
                    break
                pixels = np.empty((len(idx), lv, lv, 3), dtype=np.uint8)
                ok = np.ones(len(idx), dtype=bool)
                failed: list[tuple[int, str]] = []
                for j, i in enumerate(idx):
                    x, y = int(rects[i, 0]), int(rects[i, 1])
                    try:
                        pixels[j] = slide.read_region(x, y, grid.level, lv, lv)
                    except ChaoyangError as exc:
                        ok[j] = False
                        failed.append((i, str(exc)))
                    except Exception as exc:  # a reader bug on one tile must not end the run
                        ok[j] = False
                        failed.append((i, f"tile at ({x}, {y}) could not be read: {type(exc).__name__}: {exc}"))
                _put(q, (np.asarray(idx), pixels[ok] if not ok.all() else pixels, ok, failed), stop)
        finally:
            _put(q, _STOP, stop, force=True)

    threads = [threading.Thread(target=reader, name=f"tile-reader-{k}", daemon=True) for k in range(max(1, workers))]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            if cancel.is_set():
                break
            item = q.get()
            if item is _STOP:
                finished += 1
                continue
            idx, pixels, ok, failed = item  # type: ignore[misc]
            good = idx[ok]
            probs = np.empty((0, len(result.class_names)), dtype=np.float32)
            if len(good):
                tensor = torch.from_numpy(pixels)
                if classifier.device.type == "cuda":
                    tensor = tensor.pin_memory()
                probs = classifier.predict_tensor(tensor)
                result.set_batch(good, probs)
            for i, msg in failed:
                result.set_failed(i, msg)
            if on_batch is not None:
                on_batch(BatchUpdate(good, probs, tuple(failed), result.n_done + result.n_failed, total,
                                     time.perf_counter() - started))
    finally:
        stop.set()
        _drain(q)
        for t in threads:
            t.join(timeout=30)
    return result


def _put(q: queue.Queue[object], item: object, stop: threading.Event, force: bool = False) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set() and not force:
                return
            if stop.is_set():
                _drain(q)


def _drain(q: queue.Queue[object]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def settings_with_profile(settings: AnalysisSettings, profile: ModelProfile) -> AnalysisSettings:
    """Fill the tile size from the profile when the user did not choose one."""
    return dataclasses.replace(settings, tile_um=settings.tile_um or profile.tile_um)
