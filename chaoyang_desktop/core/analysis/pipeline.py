"""The streamed whole-slide analysis: plan the tiles, read them in threads, classify in batches.

``plan_analysis`` decides what will be analysed (pixel size, grid, tissue mask, region of
interest, the tiles kept) without touching the model; the GUI shows it as a preview.
``run_analysis`` fills an :class:`AnalysisResult`: reader threads (the JPEG decoders release the
GIL) read tiles at the grid's pyramid level and resize them to the network's input size with
OpenCV, as training did, into batch buffers, all of them working on the oldest unfinished batch
first, so a batch is ready after ``batch / workers`` tile reads; one consumer, the calling
thread, normalises and classifies each batch on the inference device and
reports it through ``on_batch``. On CUDA the buffers are pinned, the copy does not block, and the
next batch is submitted before the previous one's probabilities are collected, so the GPU never
waits for the Python side.

At most ``prefetch`` batches are taken from the scheduler ahead of the one being classified.
That bounds memory whatever the slide's size (only tiles in flight and per-tile numbers are
held) and bounds how late a :meth:`TileScheduler.prioritise` call (the GUI's tiles in view) takes
effect. A cancel token is checked between batches.

Tile quality control (:mod:`chaoyang_desktop.core.slide.tile_qc`), when on, runs twice: the plan
flags pen and dark areas from the thumbnail, so the preview counts them and they are never read;
the reader threads then check each tile's own pixels (glass, pen, dark, focus) before it is
resized, and a flagged tile is left out of its batch. Flagged tiles are never classified.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch

from chaoyang_desktop import __version__
from chaoyang_desktop.core.analysis.domain import DomainCheck, check_domain, check_resolution
from chaoyang_desktop.core.errors import ChaoyangError, SettingsError
from chaoyang_desktop.core.model.inference import Classifier, PendingPrediction
from chaoyang_desktop.core.model.preprocess import resize_tile
from chaoyang_desktop.core.model.profile import ModelProfile
from chaoyang_desktop.core.analysis.results import AnalysisResult, Provenance
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.slide.reader import Slide
from chaoyang_desktop.core.slide.tile_qc import QC_VERSION, assess_tile, flags_from_fractions, thumbnail_fraction_masks
from chaoyang_desktop.core.slide.tiling import GridSpec, make_grid
from chaoyang_desktop.core.slide.tissue import TissueMask, tissue_mask_for

log = logging.getLogger(__name__)

THUMB_MAX_SIDE = 2048
#: Tile fields of view accepted, in micrometres: from a few cells to a few millimetres.
TILE_UM_RANGE = (16.0, 4096.0)
#: Reader threads accepted.
WORKERS_RANGE = (1, 64)
#: A tile narrower than this at the slide's finest level holds too few pixels to mean anything.
MIN_L0_TILE_PX = 32
#: More tiles than this on one slide is a wrong pixel size or tile size, not a slide.
MAX_TILES = 2_000_000
#: Share of a tile that must lie inside the slide for it to be classified (edge tiles are clipped).
MIN_INSIDE_SLIDE = 0.5


def _check_um(name: str, value: float | None) -> None:
    if value is None:
        return
    low, high = TILE_UM_RANGE
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(f"The {name} must be between {low:g} and {high:g} micrometres (got {value:g}); "
                            "leave it out for the model's default.")


@dataclass(frozen=True)
class AnalysisSettings:
    """What to analyse and how; the cache key is derived from these and the model profile.

    ``allow_out_of_domain`` analyses a slide whose domain check has findings (it changes no
    prediction, so it is not part of the cache key); the outputs then say it was overridden.
    ``qc`` leaves tiles that fail quality control unclassified (False: classify every tile).
    """

    tile_um: float | None = None
    stride_um: float | None = None
    tissue_threshold: float = 0.25
    roi: Roi | None = None
    roi_path: str | None = None
    workers: int = 4
    allow_out_of_domain: bool = False
    qc: bool = True

    def validated(self) -> AnalysisSettings:
        _check_um("tile size", self.tile_um)
        _check_um("stride", self.stride_um)
        if not 0.0 <= self.tissue_threshold <= 1.0:  # also refuses NaN
            raise SettingsError(f"The tissue threshold is a fraction between 0 and 1 (got {self.tissue_threshold}).")
        low, high = WORKERS_RANGE
        if not low <= self.workers <= high:
            raise SettingsError(f"The number of reader threads must be between {low} and {high} (got {self.workers}).")
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
    domain: DomainCheck
    #: Why no tile is kept, when none is; empty otherwise.
    empty_reason: str = ""
    #: Quality-control bits the thumbnail gave each tile (pen, dark); zeros with QC off.
    qc: np.ndarray | None = None

    @property
    def n_tiles(self) -> int:
        return len(self.t_col)

    @property
    def qc_flags(self) -> np.ndarray:
        return self.qc if self.qc is not None else np.zeros(self.n_tiles, dtype=np.uint8)

    def empty_result(self) -> AnalysisResult:
        return AnalysisResult.empty(self.provenance, self.grid, self.t_col, self.t_row, self.tissue, self.qc_flags)


@dataclass(frozen=True)
class BatchUpdate:
    """One finished batch, as the progress callback receives it."""

    indices: np.ndarray
    probs: np.ndarray
    failed: tuple[tuple[int, str], ...]
    done: int
    total: int
    elapsed_s: float
    #: Tiles quality control left out in this batch, with their bits.
    qc: tuple[tuple[int, int], ...] = ()
    #: TTA spread of ``probs`` (None without TTA).
    spread: np.ndarray | None = None


def plan_analysis(slide: Slide, profile: ModelProfile, settings: AnalysisSettings,
                  thumbnail: np.ndarray | None = None, *, tta: bool = False, temperature: float = 1.0,
                  calibration: str | None = None) -> AnalysisPlan:
    """Lay the grid, find tissue, apply the ROI, and list the tiles to classify.

    Args:
        tta, temperature, calibration: How the classifier makes its probabilities
            (:class:`~chaoyang_desktop.core.model.inference.Classifier`); recorded in the
            provenance and part of the cache key.
    """
    settings = settings.validated()
    mpp = slide.require_mpp()
    tile_um = settings.tile_um or profile.tile_um
    l0_w, l0_h = slide.dimensions
    grid = make_grid(l0_w, l0_h, mpp, tile_um, settings.stride_um, profile.tile_px, slide.level_downsamples)
    _check_grid(grid, mpp, tile_um, profile.nominal_mpp)
    thumb = thumbnail if thumbnail is not None else slide.thumbnail(THUMB_MAX_SIDE)
    if settings.tissue_threshold > 0:
        mask = tissue_mask_for(slide, thumb=thumb)
        detected: np.ndarray | None = mask.mask  # the domain check looks at the same tissue
    else:
        sx, sy = slide.l0_per_px(thumb)
        mask = TissueMask.all_tissue(thumb.shape[:2], sx, sy)
        detected = None
    domain = check_domain(thumb, mpp, profile.nominal_mpp, detected).with_override(settings.allow_out_of_domain)
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
    if l0_w < grid.l0_tile or l0_h < grid.l0_tile:
        keep[:] = False  # a clipped partial tile is not a tile the model can judge
    # A tile mostly beyond the slide's edge reaches the model as a strip of tissue in white
    # padding (a 128 x 23 px strip is 82 % padding): not a patch like those it was trained on.
    rects = grid.tile_rects(t_col, t_row)
    keep &= rects[:, 2] * rects[:, 3] >= MIN_INSIDE_SLIDE * grid.l0_tile * grid.l0_tile
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
        domain_check=domain.to_dict(),
        qc=bool(settings.qc),
        qc_version=QC_VERSION if settings.qc else None,
        tta=bool(tta),
        temperature=float(temperature),
        calibration=calibration,
    )
    empty_reason = "" if keep.any() else _why_no_tiles(slide, grid, mpp, settings, mask)
    t_col, t_row = t_col[keep], t_row[keep]
    qc = _thumbnail_qc(thumb, mask, grid.tile_rects(t_col, t_row)) if settings.qc else None
    return AnalysisPlan(provenance, grid, t_col, t_row, fractions[keep].astype(np.float32), mask, thumb,
                        domain, empty_reason, qc)


def _thumbnail_qc(thumb: np.ndarray, mask: TissueMask, rects: np.ndarray) -> np.ndarray:
    """Pen and dark bits of each tile, from the share of such thumbnail pixels under it."""
    shares = {name: TissueMask(m, mask.l0_per_px_x, mask.l0_per_px_y).fractions(rects)
              for name, m in thumbnail_fraction_masks(thumb).items()}
    return flags_from_fractions(np.zeros(len(rects)), shares["pen"], shares["dark"])


def _check_grid(grid: GridSpec, mpp: float, tile_um: float, model_mpp: float) -> None:
    """Refuse plans of a few pixels per tile, or of absurdly many tiles, before anything runs.

    No override analyses these: a tile of a few pixels enlarged to the network input is noise.
    """
    if grid.l0_tile < MIN_L0_TILE_PX:
        coarse = check_resolution(mpp, model_mpp)
        raise SettingsError(
            (f"{coarse.message} " if coarse is not None else "")
            + f"A {tile_um:g} um tile would be {grid.l0_tile} px wide at {mpp:g} um/px (at least {MIN_L0_TILE_PX} px "
            "are needed): check the pixel size (--mpp) and the tile size (--tile-um).")
    n = grid.t_cols * grid.t_rows
    if n > MAX_TILES:
        raise SettingsError(
            f"This plan has {n:,} tiles (at most {MAX_TILES:,}): check the pixel size (--mpp), the tile size "
            "(--tile-um) and the stride (--stride-um).")


def _why_no_tiles(slide: Slide, grid: GridSpec, mpp: float, settings: AnalysisSettings, mask: TissueMask) -> str:
    """One sentence on why a plan keeps no tile, and what to change."""
    l0_w, l0_h = slide.dimensions
    tile_um = grid.l0_tile * mpp
    if l0_w < grid.l0_tile or l0_h < grid.l0_tile:
        return (f"The image is {l0_w} x {l0_h} px ({l0_w * mpp:.3g} x {l0_h * mpp:.3g} um), smaller than one "
                f"{tile_um:.0f} um tile: use `classify` for single patches, or a smaller --tile-um.")
    if settings.roi is not None:
        x0, y0, x1, y1 = settings.roi.bounds()
        if x1 <= 0 or y1 <= 0 or x0 >= l0_w or y0 >= l0_h:
            return (f"The region of interest ({x0:.0f}, {y0:.0f}) - ({x1:.0f}, {y1:.0f}) lies outside the slide "
                    f"(0, 0) - ({l0_w}, {l0_h}), in level-0 pixels: check that the GeoJSON belongs to this slide.")
        return (f"No tile in the region of interest has at least {settings.tissue_threshold:.0%} tissue: draw a "
                "larger region, or lower the tissue threshold.")
    found = float(mask.mask.mean())
    return (f"No tile has at least {settings.tissue_threshold:.0%} tissue (tissue found on {found:.1%} of the "
            "slide): lower the tissue threshold (0 keeps every tile).")


def _roi_digest(roi: Roi | None) -> str | None:
    if roi is None:
        return None
    return roi.digest()


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


def default_prefetch(device: torch.device) -> int:
    """Batches read ahead of the one being classified.

    On the CPU the model is the bottleneck by far (ViT-B: 0.1 s per tile in bf16, 0.4 s in fp32,
    reading about 1 ms): two batches ahead keep even a small model fed while keeping tiles the
    user pans to close to the front.
    A GPU eats a batch in milliseconds, so it gets a deeper queue to ride out slow reads.
    """
    return 4 if device.type == "cuda" else 2


class _Batch:
    """Tiles being read into one buffer; ``remaining`` counts reads still to finish."""

    __slots__ = ("indices", "tensor", "pixels", "ok", "failed", "flagged", "remaining")

    def __init__(self, indices: list[int], tensor: torch.Tensor) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.tensor = tensor
        self.pixels: np.ndarray = tensor.numpy()
        self.ok = np.ones(len(indices), dtype=bool)
        self.failed: list[tuple[int, str]] = []
        self.flagged: list[tuple[int, int]] = []  # (tile, QC bits): read, but not to be classified
        self.remaining = len(indices)


class _TileFeeder:
    """Reader threads that fill batches tile by tile from a :class:`TileScheduler`.

    Tiles are taken from the scheduler one batch at a time and as late as possible: only when the
    readers have no tile left to read and fewer than ``prefetch`` batches wait for the consumer.
    """

    def __init__(self, slide: Slide, grid: GridSpec, rects: np.ndarray, scheduler: TileScheduler,
                 profile: ModelProfile, batch_size: int, prefetch: int, workers: int, pin_memory: bool,
                 cancel: threading.Event, qc_side: int | None = None) -> None:
        self._slide = slide
        # Quality control's focus check runs at the model's nominal resolution: this many
        # pixels across a tile (None: no quality control).
        self._qc_side = qc_side
        self._profile = profile
        self._grid = grid
        self._rects = rects
        self._scheduler = scheduler
        self._batch_size = batch_size
        self._prefetch = max(1, prefetch)
        self._pin = pin_memory
        self._cancel = cancel
        self._cond = threading.Condition()
        self._work: deque[tuple[_Batch, int]] = deque()
        self._ready: deque[_Batch] = deque()
        self._open = 0  # batches taken from the scheduler and not yet handed to the consumer
        self._batches_made = 0
        self._exhausted = False
        self._stopped = False
        self._error: BaseException | None = None
        self._threads = [threading.Thread(target=self._reader, name=f"tile-reader-{k}", daemon=True)
                         for k in range(max(1, workers))]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)

    def next_batch(self) -> _Batch | None:
        """The next batch whose tiles are all read; None when every tile was handed out or on cancel."""
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._ready:
                    self._open -= 1
                    self._cond.notify_all()
                    return self._ready.popleft()
                if self._cancel.is_set() or (self._exhausted and self._open == 0):
                    return None
                self._cond.wait(timeout=0.1)

    def _new_batch(self) -> bool:
        """Take the next batch of tiles from the scheduler (lock held); False when none are left."""
        # The first batch is a quarter batch: on a CPU a full ViT-B batch takes many seconds, and
        # the first results (the tiles in view, in the GUI) should not wait for all of it.
        size = self._batch_size if self._batches_made else max(1, self._batch_size // 4)
        self._batches_made += 1
        idx = self._scheduler.take(size)
        if not idx:
            self._exhausted = True
            self._cond.notify_all()
            return False
        size = self._profile.input_size
        # Tiles are resized as they are read, so a batch holds input-sized tiles. Pinned host
        # memory lets the copy to the GPU run without blocking; the caching host allocator
        # recycles these buffers, so pinning is paid once.
        tensor = torch.empty((len(idx), size, size, 3), dtype=torch.uint8, pin_memory=self._pin)
        batch = _Batch(idx, tensor)
        self._open += 1
        self._work.extend((batch, j) for j in range(len(idx)))
        return True

    def _reader(self) -> None:
        try:
            while True:
                with self._cond:
                    while True:
                        if self._stopped or self._cancel.is_set():
                            return
                        if self._work:
                            batch, j = self._work.popleft()
                            break
                        if not self._exhausted and self._open < self._prefetch:
                            self._new_batch()
                            continue
                        if self._exhausted:
                            return
                        self._cond.wait(timeout=0.1)
                self._read_into(batch, j)
                with self._cond:
                    batch.remaining -= 1
                    if batch.remaining == 0:
                        self._ready.append(batch)
                        self._cond.notify_all()
        except BaseException as exc:  # a bug here must reach the consumer, not hang it
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _read_into(self, batch: _Batch, j: int) -> None:
        i = int(batch.indices[j])
        x, y = int(self._rects[i, 0]), int(self._rects[i, 1])
        lv = self._grid.lv_tile
        try:
            pixels = self._slide.read_region(x, y, self._grid.level, lv, lv)
            flags = assess_tile(pixels, self._qc_side) if self._qc_side is not None else 0
            if flags:
                with self._cond:
                    batch.ok[j] = False
                    batch.flagged.append((i, flags))
                return
            # OpenCV releases the GIL: the readers resize in parallel with the model's forward.
            batch.pixels[j] = resize_tile(pixels, self._profile)
            return
        except ChaoyangError as exc:
            msg = str(exc)
        except Exception as exc:  # a reader bug on one tile must not end the run
            msg = f"tile at ({x}, {y}) could not be read: {type(exc).__name__}: {exc}"
        with self._cond:
            batch.ok[j] = False
            batch.failed.append((i, msg))


#: Seconds of model work between two cancel checks and progress reports on a CPU (or MPS): a
#: ViT-B batch of 16 takes 10 s there, so a batch is classified in slices of about this long.
CPU_SLICE_S = 1.0


def run_analysis(
    slide: Slide,
    classifier: Classifier,
    result: AnalysisResult,
    *,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_batch: Callable[[BatchUpdate], None] | None = None,
    scheduler: TileScheduler | None = None,
    prefetch: int | None = None,
    slice_s: float | None = CPU_SLICE_S,
) -> AnalysisResult:
    """Classify every pending tile of ``result`` in place; returns it (partial if cancelled).

    Tiles marked failed in an earlier, interrupted run are tried again. A tile that cannot be
    read is marked failed with its reason and the run goes on.

    Args:
        prefetch: Batches read ahead of the one being classified (None: :func:`default_prefetch`).
        slice_s: Off CUDA, classify each batch in slices of about this many seconds (sized from
            the measured time per tile), checking ``cancel`` and reporting between them, so a
            cancel acts within about that time and a live heatmap keeps moving; the tiles of a
            slice not started stay pending. None: whole batches. CUDA always runs whole batches
            (a batch takes milliseconds there, and slicing would starve the GPU).
    """
    cancel = cancel or threading.Event()
    scheduler = scheduler or TileScheduler(result.to_classify())
    total = result.n_tiles
    started = time.perf_counter()
    device = classifier.device
    feeder = _TileFeeder(slide, result.grid, result.rects(), scheduler, classifier.profile, max(1, classifier.batch_size),
                         default_prefetch(device) if prefetch is None else prefetch, workers,
                         pin_memory=device.type == "cuda", cancel=cancel,
                         qc_side=(max(8, round(result.provenance.tile_um / classifier.profile.nominal_mpp))
                                  if result.provenance.qc else None))
    # A batch whose probabilities are still being computed on the GPU: its tiles and handle.
    in_flight: tuple[np.ndarray, _Batch, PendingPrediction | None] | None = None
    sliced = slice_s is not None and device.type != "cuda"
    per_tile_s: float | None = None  # measured model time per tile, for the slice size

    def finish(good: np.ndarray, failed: Sequence[tuple[int, str]], flagged: Sequence[tuple[int, int]],
               pending_probs: PendingPrediction | None) -> None:
        probs = np.empty((0, len(result.class_names)), dtype=np.float32)
        spread = None
        if pending_probs is not None:
            probs = pending_probs.result()
            spread = pending_probs.spread()
            result.set_batch(good, probs, spread)
        for i, msg in failed:
            result.set_failed(i, msg)
        for i, flags in flagged:
            result.set_qc(i, flags)
        if on_batch is not None:
            on_batch(BatchUpdate(good, probs, tuple(failed), result.n_done + result.n_failed + result.n_qc,
                                 total, time.perf_counter() - started, tuple(flagged), spread))

    def classify_in_slices(batch: _Batch) -> None:
        nonlocal per_tile_s
        assert slice_s is not None
        positions = np.flatnonzero(batch.ok)
        failed, flagged = batch.failed, batch.flagged  # reported with the first slice
        start = 0
        while True:  # a batch holds at least one tile: classified, failed or flagged
            # Two tiles first: the time per tile is not known yet, and the first result should come soon.
            size = 2 if per_tile_s is None else max(1, int(slice_s / max(per_tile_s, 1e-6)))
            part = positions[start:start + size]
            handle = None
            if len(part):
                t0 = time.perf_counter()
                handle = classifier.submit(batch.tensor[torch.from_numpy(part)])
                handle.result()
                took = (time.perf_counter() - t0) / len(part)
                per_tile_s = took if per_tile_s is None else 0.7 * per_tile_s + 0.3 * took
            finish(batch.indices[part], failed, flagged, handle)
            failed, flagged = [], []
            start += len(part)
            if start >= len(positions) or cancel.is_set():
                break  # on cancel the rest of the batch stays pending, and a resumed run classifies it

    feeder.start()
    try:
        while not cancel.is_set():
            batch = feeder.next_batch()
            if batch is None:
                break
            if sliced:
                classify_in_slices(batch)
                continue
            good = batch.indices[batch.ok]
            handle: PendingPrediction | None = None
            if len(good):
                tensor = batch.tensor if batch.ok.all() else batch.tensor[torch.from_numpy(batch.ok)]
                handle = classifier.submit(tensor)
            # Collect the previous batch only now, so the GPU already works on this one.
            if in_flight is not None:
                finish(in_flight[0], in_flight[1].failed, in_flight[1].flagged, in_flight[2])
                in_flight = None
            if handle is not None and not handle.ready:
                in_flight = (good, batch, handle)
            else:
                finish(good, batch.failed, batch.flagged, handle)
        if in_flight is not None:  # computed already: keep it even when cancelled
            finish(in_flight[0], in_flight[1].failed, in_flight[1].flagged, in_flight[2])
    finally:
        feeder.stop()
    return result


def settings_with_profile(settings: AnalysisSettings, profile: ModelProfile) -> AnalysisSettings:
    """Fill the tile size from the profile when the user did not choose one."""
    return dataclasses.replace(settings, tile_um=settings.tile_um or profile.tile_um)
