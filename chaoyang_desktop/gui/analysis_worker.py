"""The one long-lived background worker: model loading, analyses, patches, exports, evaluation, downloads.

A :class:`WorkerHost` (GUI thread) owns a ``QThread`` and an :class:`AnalysisWorker` moved onto
it. The worker keeps the loaded model between jobs (one :class:`ClassifierCache`, shared by
slide and patch jobs) and runs one job at a time. Every signal carries the job id; the host
forwards only those of its current job, so a result from a job the user already replaced is
dropped. Cancel sets the job's ``threading.Event`` directly from the GUI thread (a queued call
would only run after the job). Shutdown is cancel, quit, wait; never ``terminate``.

Only numpy arrays and frozen dataclasses cross the thread boundary (plans, batch updates,
patch results, profiles); the thread-safe :class:`TileScheduler` is handed to the GUI so it can
move the tiles in view to the front.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from chaoyang_desktop.core.model.engine_settings import EngineSettings
from chaoyang_desktop.gui.job_handle import JobHandle
from chaoyang_desktop.core.errors import (
    CancelledError,
    ChaoyangError,
    ModelNotFoundError,
    NoTilesError,
    OutOfDomainError,
    SettingsError,
)

from chaoyang_desktop.core.analysis.results import TileState

if TYPE_CHECKING:
    import numpy as np

    from chaoyang_desktop.core.slide.annotations import Annotation
    from chaoyang_desktop.core.learn.evaluate import EvaluationReport
    from chaoyang_desktop.core.model.inference import Classifier
    from chaoyang_desktop.core.analysis.pipeline import AnalysisPlan, AnalysisSettings
    from chaoyang_desktop.core.model.profile import ModelProfile
    from chaoyang_desktop.core.slide.roi import Roi
    from chaoyang_desktop.core.slide.reader import Slide

log = logging.getLogger(__name__)

STATUS_DONE = "done"
STATUS_CANCELLED = "cancelled"

#: What an :class:`ExportJob` writes.
EXPORT_REPORT = "report"
EXPORT_HEATMAP = "heatmap"
EXPORT_GEOJSON = "geojson"
EXPORT_CSV = "csv"
EXPORT_KINDS = (EXPORT_REPORT, EXPORT_HEATMAP, EXPORT_GEOJSON, EXPORT_CSV)


# ----- jobs (frozen: they cross to the worker thread) -----------------------------------------------

@dataclass(frozen=True)
class ModelRequest(EngineSettings):
    """Which model (``spec``), on which device, with which preprocessing: plain values, no torch."""

    spec: str | None = None

    def engine(self) -> EngineSettings:
        """The inference settings alone (the classifier cache compares them by value)."""
        fields = dataclasses.asdict(self)
        fields.pop("spec")
        return EngineSettings(**fields)


@dataclass(frozen=True)
class AnalysisRequest:
    """What to analyse: the fields of :class:`AnalysisSettings`, built on the worker thread."""

    tile_um: float | None = None
    stride_um: float | None = None
    tissue_threshold: float = 0.25
    workers: int = 4
    roi: Roi | None = None
    #: Analyse although the domain check finds the slide outside what the model can judge.
    allow_out_of_domain: bool = False
    #: Leave tiles that fail quality control (glass, pen, blur, dark) unclassified.
    qc: bool = True

    def settings(self) -> AnalysisSettings:
        from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings

        return AnalysisSettings(tile_um=self.tile_um, stride_um=self.stride_um, tissue_threshold=self.tissue_threshold,
                                roi=self.roi, roi_path=None, workers=self.workers,
                                allow_out_of_domain=self.allow_out_of_domain, qc=self.qc).validated()


@dataclass(frozen=True)
class ProbeJob:
    """Find the inference device (imports torch off the GUI thread at start-up)."""

    device: str = "auto"


@dataclass(frozen=True)
class SlideJob:
    """Analyse one slide, or with ``preview_only`` just plan it (tissue mask and tile grid)."""

    path: str
    mpp: float | None
    model: ModelRequest
    analysis: AnalysisRequest
    fresh: bool = False
    preview_only: bool = False
    #: With ``preview_only``: also look the plan up in the results cache (needs the model's
    #: profile, which is read from disk without building the network).
    lookup_cache: bool = False
    #: The slide's ``thumbnail(2048)`` when the GUI already read it (saves reading it again).
    thumbnail: np.ndarray | None = None


@dataclass(frozen=True)
class CohortSlideJob:
    """Analyse one slide of a cohort; it finishes with its :class:`SlideReport` as payload.

    The slide's own errors (unreadable, out of domain, no tissue) come back as the report's
    status, so the cohort goes on; only a missing model stops it (``model_missing``).
    """

    path: str
    mpp: float | None
    model: ModelRequest
    analysis: AnalysisRequest
    fresh: bool = False


@dataclass(frozen=True)
class PatchJob:
    paths: tuple[str, ...]
    model: ModelRequest
    workers: int = 4
    #: Leave patches of glass, pen, blur or dark artefacts unclassified (the "analysis/qc" setting).
    qc: bool = True


@dataclass(frozen=True)
class DownloadJob:
    repo_id: str


@dataclass(frozen=True)
class ExportJob:
    """Write one export of a slide's result, complete or partial (only done tiles are exported).

    The result crosses as its plan and copies of its arrays; the worker rebuilds it and reads
    pixels through its own handle on the slide.
    """

    kind: str  # one of EXPORT_KINDS
    path: str
    plan: AnalysisPlan
    tiles: TileState  # copies
    slide_path: str
    mpp: float | None
    assumed_mpp: float
    #: The colours the user sees (they may differ from the model's defaults).
    class_colors: tuple[str, ...] = ()
    roi: Roi | None = None
    #: Report: the slide's annotations, each with its class composition.
    annotations: tuple[Annotation, ...] = ()
    #: Report: the view's thumbnail, so the slide need not be read again for the overview.
    thumbnail: np.ndarray | None = None
    #: Heatmap: longest side of the slide picture, and the overlay as the view shows it.
    max_side: int = 2048
    alpha: float = 0.4
    alpha_by_confidence: bool = True
    legend: bool = True


@dataclass(frozen=True)
class ExportDone:
    """A finished export: what was written and a few words on its size."""

    kind: str
    path: str
    detail: str


@dataclass(frozen=True)
class EvaluateJob:
    """Evaluate the model on a labelled folder (one sub-folder per class) or a JSON label list."""

    data: str
    class_map: str | None
    model: ModelRequest
    workers: int = 4


@dataclass(frozen=True)
class EvaluationOutcome:
    report: EvaluationReport  # frozen
    notes: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class DeviceInfo:
    description: str
    is_gpu: bool
    fell_back: bool
    note: str = ""
    #: The precision the model runs in (fp32, bf16, fp16, int8); empty before a model is loaded.
    precision: str = ""
    #: The CPU multiplies bf16 in hardware, so the fast CPU mode (``--precision bf16``) is worth offering.
    fast_cpu_mode: bool = False


@dataclass(frozen=True)
class PlanReady:
    """An analysis plan and the state of its result (from the cache or empty)."""

    plan: AnalysisPlan
    tiles: TileState  # copies
    from_cache: bool = False
    profile_known: bool = True

    @property
    def status(self) -> np.ndarray:
        return self.tiles.status


@dataclass(frozen=True)
class SlideOutcome:
    """How a slide job ended: the final per-tile arrays (copies), and whether cached."""

    from_cache: bool
    tiles: TileState
    cache_key: str


def _engine_facts(request: ModelRequest) -> dict[str, Any]:
    """What the classifier will do to probabilities (TTA, temperature), without loading it: the
    preview's plan needs them for its cache key."""
    from chaoyang_desktop.core.model.temperature import temperature_of

    return {"tta": request.tta, "temperature": temperature_of(request.calibration), "calibration": request.calibration}


# ----- the worker (lives on the worker thread) ------------------------------------------------------

class AnalysisWorker(QObject):
    """Runs jobs on its thread; reports through signals whose first argument is the job id."""

    job_started = Signal(int, str)
    device_ready = Signal(int, object)  # DeviceInfo
    model_ready = Signal(int, object)  # ModelProfile
    model_missing = Signal(int, str)
    out_of_domain = Signal(int, str)  # the domain check's findings
    no_tiles = Signal(int, str)  # why the plan keeps no tile
    plan_ready = Signal(int, object)  # PlanReady
    scheduler_ready = Signal(int, object)  # TileScheduler (thread-safe)
    batch_ready = Signal(int, object)  # BatchUpdate
    patch_results = Signal(int, object)  # list[PatchResult]
    progress_changed = Signal(int, int, int, float)  # done, total, elapsed seconds
    job_finished = Signal(int, str, object)  # status, payload
    job_failed = Signal(int, str, str)  # message, details

    def __init__(self, classifiers: Any = None) -> None:
        super().__init__()
        self._classifiers = classifiers
        self._slide: Slide | None = None
        self._slide_key: tuple[str, float | None, float] | None = None
        self._profiles: dict[tuple[Any, ...], ModelProfile] = {}

    # The GUI thread calls this through a queued signal.
    @Slot(int, object, object)
    def run_job(self, job_id: int, job: object, cancel: threading.Event) -> None:
        kind = type(job).__name__
        self.job_started.emit(job_id, kind)
        try:
            if isinstance(job, ProbeJob):  # cheap, and its answer is wanted even if replaced
                info = self._probe(job)
                self.device_ready.emit(job_id, info)
                self.job_finished.emit(job_id, STATUS_DONE, info)
                return
            if cancel.is_set():
                self.job_finished.emit(job_id, STATUS_CANCELLED, None)
                return
            if isinstance(job, SlideJob):
                self._run_slide(job_id, job, cancel)
            elif isinstance(job, CohortSlideJob):
                self._run_cohort_slide(job_id, job, cancel)
            elif isinstance(job, PatchJob):
                self._run_patches(job_id, job, cancel)
            elif isinstance(job, DownloadJob):
                self._run_download(job_id, job, cancel)
            elif isinstance(job, ExportJob):
                self._run_export(job_id, job, cancel)
            elif isinstance(job, EvaluateJob):
                self._run_evaluate(job_id, job, cancel)
            else:
                raise TypeError(f"unknown job {kind}")
        except CancelledError:
            self.job_finished.emit(job_id, STATUS_CANCELLED, None)
        except ModelNotFoundError as exc:
            if isinstance(job, DownloadJob):
                self.job_failed.emit(job_id, str(exc), traceback.format_exc())
            else:
                self.model_missing.emit(job_id, str(exc))
        except OutOfDomainError as exc:
            log.info("Job %d (%s) stopped by the domain check: %s", job_id, kind, exc)
            self.out_of_domain.emit(job_id, str(exc))
        except NoTilesError as exc:
            log.info("Job %d (%s) has nothing to analyse: %s", job_id, kind, exc)
            self.no_tiles.emit(job_id, str(exc))
        except ChaoyangError as exc:
            log.info("Job %d (%s) failed: %s", job_id, kind, exc)
            self.job_failed.emit(job_id, str(exc), traceback.format_exc())
        except Exception as exc:  # a bug: report it with the traceback, never swallow it
            log.exception("Job %d (%s) crashed", job_id, kind)
            self.job_failed.emit(job_id, f"Unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc())

    @Slot()
    def close_slide(self) -> None:
        if self._slide is not None:
            self._slide.close()
            self._slide = None
            self._slide_key = None

    # ----- helpers --------------------------------------------------------------------------------
    def _cache(self) -> Any:
        if self._classifiers is None:
            from chaoyang_desktop.core.model.inference import ClassifierCache

            self._classifiers = ClassifierCache()
        return self._classifiers

    def _probe(self, job: ProbeJob) -> DeviceInfo:
        from chaoyang_desktop.core.model.inference import cpu_has_native_bf16, describe_device, select_device

        try:
            device = select_device(job.device)
            fell_back = False
            note = ""
        except SettingsError as exc:
            device = select_device("cpu")
            fell_back = True
            note = str(exc)
        is_gpu = device.type in ("cuda", "mps")
        if not is_gpu and not fell_back and job.device == "auto":
            note = "No GPU found: the analysis runs on the CPU, which is much slower."
        return DeviceInfo(describe_device(device), is_gpu, fell_back, note, fast_cpu_mode=not is_gpu and cpu_has_native_bf16())

    def _classifier(self, job_id: int, request: ModelRequest) -> Classifier:
        """The model on the device of ``request``, falling back to the CPU when that device is absent."""
        import dataclasses

        engine = request.engine()
        fell_back = False
        note = ""
        try:
            clf = self._cache().get(request.spec, engine)
        except SettingsError as exc:
            if engine.device in ("auto", "cpu"):
                raise
            fell_back, note = True, str(exc)
            clf = self._cache().get(request.spec, dataclasses.replace(engine, device="cpu", precision="auto"))
        is_gpu = clf.device.type in ("cuda", "mps")
        if not is_gpu and not fell_back and engine.device == "auto":
            note = "No GPU found: the analysis runs on the CPU, which is much slower."
        from chaoyang_desktop.core.model.inference import cpu_has_native_bf16

        self.device_ready.emit(job_id, DeviceInfo(clf.device_description, is_gpu, fell_back, note, clf.precision,
                                                  fast_cpu_mode=not is_gpu and cpu_has_native_bf16()))
        self.model_ready.emit(job_id, clf.profile)
        return clf

    def _profile(self, request: ModelRequest) -> ModelProfile | None:
        """The model's profile without building the network; None when the model is absent."""
        from chaoyang_desktop.core.model.model_source import load_profile, resolve_model

        key = (request.spec, request.channel_order, request.resize)
        if key not in self._profiles:
            try:
                location = resolve_model(request.spec, allow_download=False)
            except ModelNotFoundError:
                return None
            self._profiles[key] = load_profile(location).with_overrides(
                channel_order=request.channel_order, resize=request.resize)
        return self._profiles[key]

    def _open(self, path: str, mpp: float | None, assumed_mpp: float) -> Slide:
        """The worker's own handle on the slide (kept between jobs on the same file)."""
        from chaoyang_desktop.core.slide.reader import open_slide

        key = (path, mpp, assumed_mpp)
        if self._slide is None or self._slide_key != key:
            self.close_slide()
            self._slide = open_slide(path, mpp=mpp, assumed_mpp=assumed_mpp)
            self._slide_key = key
        return self._slide

    # ----- slide jobs --------------------------------------------------------------------------------
    def _run_slide(self, job_id: int, job: SlideJob, cancel: threading.Event) -> None:
        from chaoyang_desktop.core.analysis.cache import ResultCache

        if job.preview_only:
            self._run_preview(job_id, job)
            return
        from chaoyang_desktop.core.analysis.run import analyze_open_slide

        clf = self._classifier(job_id, job.model)
        slide = self._open(job.path, job.mpp, clf.profile.nominal_mpp)

        def on_plan(plan: Any, result: Any) -> None:
            self.plan_ready.emit(job_id, PlanReady(plan, TileState.of(result), from_cache=False))

        outcome = analyze_open_slide(
            slide, clf, job.analysis.settings(), cache=ResultCache(), cancel=cancel, on_plan=on_plan,
            on_batch=lambda update: self.batch_ready.emit(job_id, update),
            scheduler_ready=lambda scheduler: self.scheduler_ready.emit(job_id, scheduler),
            fresh=job.fresh,
        )
        status = STATUS_CANCELLED if outcome.cancelled else STATUS_DONE
        result = outcome.result
        self.job_finished.emit(job_id, status, SlideOutcome(outcome.from_cache, TileState.of(result), outcome.cache_key))

    def _run_cohort_slide(self, job_id: int, job: CohortSlideJob, cancel: threading.Event) -> None:
        from chaoyang_desktop.core.analysis.cache import ResultCache
        from chaoyang_desktop.core.analysis.run import analyze_cohort_slide

        clf = self._classifier(job_id, job.model)
        started = time.perf_counter()

        def on_plan(plan: Any, result: Any) -> None:
            # Tiles finished before (a paused or interrupted run) count as done from the start.
            done = result.n_tiles - len(result.to_classify())
            self.progress_changed.emit(job_id, done, result.n_tiles, time.perf_counter() - started)

        report, outcome = analyze_cohort_slide(
            job.path, clf, job.analysis.settings(), mpp=job.mpp, cache=ResultCache(), fresh=job.fresh,
            cancel=cancel, on_plan=on_plan,
            on_batch=lambda u: self.progress_changed.emit(job_id, u.done, u.total, time.perf_counter() - started))
        status = STATUS_CANCELLED if outcome is not None and outcome.cancelled else STATUS_DONE
        self.job_finished.emit(job_id, status, report)

    def _run_preview(self, job_id: int, job: SlideJob) -> None:
        from chaoyang_desktop.core.analysis.cache import ResultCache, cache_key
        from chaoyang_desktop.core.analysis.pipeline import plan_analysis

        profile = self._profile(job.model)
        known = profile is not None
        if profile is None:
            profile = stand_in_profile()
        else:
            self.model_ready.emit(job_id, profile)  # the status bar names the model before any run
        slide = self._open(job.path, job.mpp, profile.nominal_mpp)
        plan = plan_analysis(slide, profile, job.analysis.settings(), thumbnail=job.thumbnail,
                             **_engine_facts(job.model))
        empty = plan.empty_result()
        ready = PlanReady(plan, TileState.of(empty), from_cache=False, profile_known=known)
        if known and job.lookup_cache:
            cached = ResultCache().load(cache_key(plan.provenance))
            if cached is not None and cached.n_tiles == plan.n_tiles:
                ready = PlanReady(plan, TileState.of(cached),
                                  from_cache=True, profile_known=True)
        self.plan_ready.emit(job_id, ready)
        self.job_finished.emit(job_id, STATUS_DONE, None)

    # ----- patch jobs ---------------------------------------------------------------------------------
    def _run_patches(self, job_id: int, job: PatchJob, cancel: threading.Event) -> None:
        from pathlib import Path

        from chaoyang_desktop.core.analysis.patches import classify_files

        clf = self._classifier(job_id, job.model)
        paths = [Path(p) for p in job.paths]
        pending: list[Any] = []
        started = time.perf_counter()

        def on_progress(done: int, total: int) -> None:
            self.patch_results.emit(job_id, list(pending))
            pending.clear()
            self.progress_changed.emit(job_id, done, total, time.perf_counter() - started)

        for record in classify_files(clf, paths, workers=job.workers, cancel=cancel, on_progress=on_progress,
                                     qc=job.qc):
            pending.append(record)
        if pending:
            self.patch_results.emit(job_id, list(pending))
        self.job_finished.emit(job_id, STATUS_DONE, None)

    # ----- exports ----------------------------------------------------------------------------------------
    def _run_export(self, job_id: int, job: ExportJob, cancel: threading.Event) -> None:
        import dataclasses

        result = job.tiles.applied_to(job.plan.empty_result())
        if len(job.class_colors) == len(result.class_names):
            result = dataclasses.replace(result, provenance=dataclasses.replace(
                result.provenance, class_colors=tuple(job.class_colors)))
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            self.progress_changed.emit(job_id, done, total, time.perf_counter() - started)

        if job.kind == EXPORT_CSV:
            from chaoyang_desktop.export.csv_tiles import write_tiles_csv

            write_tiles_csv(result, job.path)
            detail = f"{result.n_done:,} tiles"
        elif job.kind == EXPORT_GEOJSON:
            from chaoyang_desktop.export.geojson_tiles import write_tiles_geojson

            write_tiles_geojson(result, job.path)
            detail = f"{result.n_done:,} tiles"
        elif job.kind == EXPORT_HEATMAP:
            detail = self._export_heatmap(job, result, cancel)
        elif job.kind == EXPORT_REPORT:
            detail = self._export_report(job, result, cancel, progress)
        else:
            raise TypeError(f"unknown export {job.kind!r}")
        self.job_finished.emit(job_id, STATUS_DONE, ExportDone(job.kind, job.path, detail))

    def _export_heatmap(self, job: ExportJob, result: Any, cancel: threading.Event) -> str:
        from chaoyang_desktop.export.heatmap_image import render_heatmap
        from chaoyang_desktop.export.report_data import roi_rings

        slide = self._open(job.slide_path, job.mpp, job.assumed_mpp)
        thumb = slide.thumbnail(job.max_side)  # the slow part on a big slide
        if cancel.is_set():
            raise CancelledError("Export cancelled.")
        image = render_heatmap(thumb, result, alpha=job.alpha, alpha_by_confidence=job.alpha_by_confidence,
                               legend=job.legend, roi_polygons=roi_rings(job.roi) if job.roi is not None else None)
        if cancel.is_set():
            raise CancelledError("Export cancelled.")
        from chaoyang_desktop.core.atomic import atomic_path

        with atomic_path(job.path, suffix=".png") as tmp:
            image.save(tmp, format="PNG")
        return f"{image.width:,} \u00d7 {image.height:,} px"

    def _export_report(self, job: ExportJob, result: Any, cancel: threading.Event, progress: Any) -> str:
        import numpy as np

        from chaoyang_desktop.export.pdf_report import write_report
        from chaoyang_desktop.export.report_data import ReportOptions, slide_tile_reader

        options = ReportOptions()
        slide = self._open(job.slide_path, job.mpp, job.assumed_mpp)
        labels = result.labels()
        per_class = [min(options.top_per_class, int(np.count_nonzero(labels == k))) for k in range(len(result.class_names))]
        total = sum(per_class) + min(options.least_confident, result.n_done)
        read_tile = slide_tile_reader(slide, options.gallery_px)
        reads = [0]

        def read(l0_x: int, l0_y: int, l0_w: int, l0_h: int) -> np.ndarray:
            # The report builder records a tile that fails to read and goes on, so cancelling
            # must raise something it does not catch; nothing is written before every tile is read.
            if cancel.is_set():
                raise _ExportCancelled
            rgb = read_tile(l0_x, l0_y, l0_w, l0_h)
            reads[0] += 1
            progress(min(reads[0], total), total)
            return rgb

        thumb = job.thumbnail if job.thumbnail is not None else slide.thumbnail(options.overview_max_side)
        progress(0, total)
        try:
            write_report(result, thumb, read, job.path, options, roi=job.roi, annotations=job.annotations)
        except _ExportCancelled:
            raise CancelledError("Export cancelled.") from None
        return f"{result.n_done:,} of {result.n_tiles:,} tiles"

    # ----- evaluation ---------------------------------------------------------------------------------
    def _run_evaluate(self, job_id: int, job: EvaluateJob, cancel: threading.Event) -> None:
        from chaoyang_desktop.core.learn.datasets import load_class_map, load_labelled_dataset
        from chaoyang_desktop.core.learn.evaluate import evaluate_dataset

        clf = self._classifier(job_id, job.model)
        class_map = load_class_map(job.class_map) if job.class_map else None
        dataset = load_labelled_dataset(job.data, clf.profile.class_names, class_map=class_map)
        started = time.perf_counter()
        self.progress_changed.emit(job_id, 0, len(dataset), 0.0)
        report = evaluate_dataset(
            clf, dataset, workers=job.workers, cancel=cancel,
            on_progress=lambda done, total: self.progress_changed.emit(job_id, done, total,
                                                                      time.perf_counter() - started))
        self.job_finished.emit(job_id, STATUS_DONE, EvaluationOutcome(report, tuple(dataset.notes), dataset.describe()))

    # ----- downloads ------------------------------------------------------------------------------------
    def _run_download(self, job_id: int, job: DownloadJob, cancel: threading.Event) -> None:
        from chaoyang_desktop.core.model.model_source import download_model

        started = time.perf_counter()
        folder = download_model(
            job.repo_id, cancel=cancel,
            progress=lambda done, total: self.progress_changed.emit(job_id, int(done), int(total),
                                                                    time.perf_counter() - started))
        self._profiles.clear()
        self.job_finished.emit(job_id, STATUS_DONE, str(folder))


class _ExportCancelled(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Raised from inside the report builder's tile reads when the export is cancelled."""


def stand_in_profile() -> ModelProfile:
    """A profile with the model's nominal tiling, to preview a grid before any model is present."""
    from chaoyang_desktop.core.model.profile import ModelProfile, VitArch, default_colors

    from chaoyang_desktop.gui.overlay_panel import DEFAULT_CLASS_NAMES

    arch = VitArch(384, 16, 3, 768, 12, 12, 3072, 1e-12, True, "gelu")
    return ModelProfile(model_id="(no model)", source="none", model_dir="", weights_file="", weights_sha256="",
                        arch=arch, class_names=DEFAULT_CLASS_NAMES, class_colors=default_colors(DEFAULT_CLASS_NAMES))


# ----- the host (GUI thread) -----------------------------------------------------------------------

class WorkerHost(QObject):
    """Owns the worker thread; submits jobs and routes each job's messages to its :class:`JobHandle`.

    The worker runs one job at a time. Submitting a job cancels the current one (its handle
    emits ``replaced``, then ``finished("cancelled")`` when the worker stops it) unless that one
    was moved to the background: then the new job waits behind it.
    """

    #: The host's current job started (id, kind); the handles say the same per job.
    job_started = Signal(int, str)
    device_ready = Signal(object)  # DeviceInfo
    model_ready = Signal(object)  # ModelProfile
    #: The current job's batches and patch results, for monitors (status widgets, tests).
    batch_ready = Signal(int, object)
    patch_results = Signal(int, object)
    busy_changed = Signal(bool)

    _submit = Signal(int, object, object)
    _close_slide = Signal()

    def __init__(self, parent: QObject | None = None, classifiers: Any = None) -> None:
        super().__init__(parent)
        # Owned by this host (its Qt parent), so it is never left to Python's collector.
        self._thread = QThread(self)
        self._thread.setObjectName("chaoyang-worker")
        self.worker = AnalysisWorker(classifiers)
        self.worker.moveToThread(self._thread)
        self._thread.finished.connect(self.worker.deleteLater)
        self._submit.connect(self.worker.run_job)
        self._close_slide.connect(self.worker.close_slide)
        self._next_id = 0
        self._current: JobHandle | None = None
        self._handles: dict[int, JobHandle] = {}
        w = self.worker
        # Only bound methods of this GUI-thread object: Qt queues them to the GUI thread. A lambda
        # or closure would run on the worker thread that emits.
        w.job_started.connect(self._on_started)
        w.device_ready.connect(self._on_device_ready)
        w.model_ready.connect(self._on_model_ready)
        w.model_missing.connect(self._on_missing)
        w.out_of_domain.connect(self._on_out_of_domain)
        w.no_tiles.connect(self._on_no_tiles)
        w.plan_ready.connect(self._on_plan_ready)
        w.scheduler_ready.connect(self._on_scheduler_ready)
        w.batch_ready.connect(self._on_batch_ready)
        w.patch_results.connect(self._on_patch_results)
        w.progress_changed.connect(self._on_progress)
        w.job_finished.connect(self._on_finished)
        w.job_failed.connect(self._on_failed)
        self._shut_down = False
        self._thread.start()

    # ----- jobs -------------------------------------------------------------------------------------
    @property
    def current(self) -> JobHandle | None:
        """The last job submitted, while it is queued or running."""
        return self._current if self._current is not None and self._current.running else None

    def is_busy(self) -> bool:
        """Whether the current job is still queued or running."""
        return self.current is not None

    def running_jobs(self) -> list[JobHandle]:
        """Every job queued or running, oldest first (background ones included)."""
        return [h for h in self._handles.values() if h.kind != "ProbeJob"]

    def submit(self, job: object) -> JobHandle:
        """Queue ``job`` behind a background job, else in place of the current one (cancelled).

        A background job that :attr:`~JobHandle.yields` is cancelled too: a cohort's slide steps
        aside for the user's job and is sent again when the worker is free.
        """
        self._next_id += 1
        handle = JobHandle(self._next_id, job, threading.Event(), self)
        if self._shut_down:
            handle.running = False
            return handle
        current = self.current
        if current is not None and not current.waited_for:
            current.cancel()
            if current.attached:
                current.replaced.emit()
        self._handles[handle.id] = handle
        self._current = handle
        self._submit.emit(handle.id, job, handle._cancel)  # noqa: SLF001 (the host owns its handles)
        self.busy_changed.emit(True)
        return handle

    def probe_device(self, device: str) -> None:
        """Ask which device ``device`` means here; ``device_ready`` answers. Runs beside jobs, cancels none."""
        if self._shut_down:
            return
        self._next_id += 1
        handle = JobHandle(self._next_id, ProbeJob(device), threading.Event(), self)
        self._handles[handle.id] = handle
        self._submit.emit(handle.id, handle.job, handle._cancel)  # noqa: SLF001

    def cancel(self) -> None:
        """Ask the current job to stop at its next check; returns at once."""
        if self.current is not None:
            self.current.cancel()

    def close_slide(self) -> None:
        """Let the worker release its handle on the slide (after the current job)."""
        self._close_slide.emit()

    # ----- routing: each job's messages to its handle, on the GUI thread -------------------------------
    def _live(self, job_id: int) -> JobHandle | None:
        handle = self._handles.get(job_id)
        return handle if handle is not None and handle.attached else None

    @Slot(int, str)
    def _on_started(self, job_id: int, kind: str) -> None:
        if (h := self._live(job_id)) is not None:
            h.started.emit()
        if self._current is not None and job_id == self._current.id:
            self.job_started.emit(job_id, kind)

    @Slot(int, object)
    def _on_device_ready(self, job_id: int, info: object) -> None:
        self.device_ready.emit(info)  # device facts stay true whichever job asked

    @Slot(int, object)
    def _on_model_ready(self, job_id: int, profile: object) -> None:
        self.model_ready.emit(profile)

    @Slot(int, object)
    def _on_plan_ready(self, job_id: int, ready: object) -> None:
        if (h := self._live(job_id)) is not None:
            h.plan_ready.emit(ready)

    @Slot(int, object)
    def _on_scheduler_ready(self, job_id: int, scheduler: object) -> None:
        if (h := self._live(job_id)) is not None:
            h.scheduler_ready.emit(scheduler)

    @Slot(int, object)
    def _on_batch_ready(self, job_id: int, update: object) -> None:
        if (h := self._live(job_id)) is not None:
            h.batch_ready.emit(update)
        if self.current is not None and job_id == self.current.id:
            self.batch_ready.emit(job_id, update)

    @Slot(int, object)
    def _on_patch_results(self, job_id: int, results: object) -> None:
        if (h := self._live(job_id)) is not None:
            h.patch_results.emit(results)
        if self.current is not None and job_id == self.current.id:
            self.patch_results.emit(job_id, results)

    @Slot(int, int, int, float)
    def _on_progress(self, job_id: int, done: int, total: int, elapsed: float) -> None:
        if (h := self._live(job_id)) is not None:
            h.progress.emit(done, total, elapsed)

    def _end(self, job_id: int, outcome: str) -> JobHandle | None:
        """Forget a job that sent its last message; its handle, when still listened to."""
        handle = self._handles.pop(job_id, None)
        if handle is None:
            return None
        handle.running = False
        handle.outcome = outcome
        if handle is self._current:
            self.busy_changed.emit(False)
        # Its last signal is delivered first (this slot returns before the deletion runs).
        handle.ended.connect(handle.deleteLater)
        return handle

    def _finish(self, handle: JobHandle | None) -> None:
        if handle is not None:
            handle.ended.emit()

    @Slot(int, str, object)
    def _on_finished(self, job_id: int, status: str, payload: object) -> None:
        h = self._end(job_id, status)
        if h is not None and h.attached:
            h.finished.emit(status, payload)
        self._finish(h)

    @Slot(int, str, str)
    def _on_failed(self, job_id: int, message: str, details: str) -> None:
        h = self._end(job_id, "failed")
        if h is not None and h.attached:
            h.failed.emit(message, details)
        self._finish(h)

    @Slot(int, str)
    def _on_missing(self, job_id: int, message: str) -> None:
        h = self._end(job_id, "model-missing")
        if h is not None and h.attached:
            h.model_missing.emit(message)
        self._finish(h)

    @Slot(int, str)
    def _on_out_of_domain(self, job_id: int, message: str) -> None:
        h = self._end(job_id, "out-of-domain")
        if h is not None and h.attached:
            h.out_of_domain.emit(message)
        self._finish(h)

    @Slot(int, str)
    def _on_no_tiles(self, job_id: int, message: str) -> None:
        h = self._end(job_id, "no-tiles")
        if h is not None and h.attached:
            h.no_tiles.emit(message)
        self._finish(h)

    # ----- lifetime ------------------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = -1) -> bool:
        """Cancel every job, stop the thread and wait for it; True when it has finished."""
        if self._shut_down:
            return self._thread.isFinished()
        self._shut_down = True
        for handle in self._handles.values():
            handle.cancel()
        self._thread.quit()
        finished = bool(self._thread.wait() if timeout_ms < 0 else self._thread.wait(timeout_ms))
        if finished:
            self.worker.close_slide()  # the thread has ended: safe to call from here
        return finished

    @property
    def thread(self) -> QThread:
        return self._thread
