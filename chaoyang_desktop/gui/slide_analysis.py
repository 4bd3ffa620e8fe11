"""The open slide's analysis and preview jobs, and the result mirrored from the worker into its session.

Depends on the :class:`~chaoyang_desktop.core.session.SlideSession` and the
:class:`~chaoyang_desktop.gui.analysis_worker.WorkerHost`, never on the window: it submits
jobs, listens to their :class:`~chaoyang_desktop.gui.job_handle.JobHandle`, keeps the session's
``plan``, ``result``, ``preview_plan`` and ``scheduler`` up to date, and says what happened
through its signals; the window shows it.

A session's jobs belong to that session. When another slide opens, the controller lets go of
them: they are cancelled (their finished tiles are checkpointed by the worker), or, when the
user asked for it, kept running in the background, where their results go to the cache and
to their own session only, never to the slide on screen.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from chaoyang_desktop.core.analysis.results import TILE_PENDING
from chaoyang_desktop.gui.analysis_worker import AnalysisRequest, ModelRequest, PlanReady, SlideJob, SlideOutcome

if TYPE_CHECKING:
    from chaoyang_desktop.core.analysis.pipeline import BatchUpdate, TileScheduler
    from chaoyang_desktop.core.session import SlideSession
    from chaoyang_desktop.gui.analysis_worker import WorkerHost
    from chaoyang_desktop.gui.job_handle import JobHandle

#: The result and summary are refreshed at most this often while batches arrive.
REFRESH_MS = 250

# How an analysis ended (the ``ended`` signal and the window's ``analysis_finished``).
ENDED_DONE = "done"
ENDED_CANCELLED = "cancelled"
ENDED_FAILED = "failed"
ENDED_MODEL_MISSING = "model-missing"
ENDED_OUT_OF_DOMAIN = "out-of-domain"
ENDED_NO_TILES = "no-tiles"


class SlideAnalysis(QObject):
    """Runs and previews the analysis of the session's slide."""

    #: A preview plan arrived (tissue, tiles; a stored result was adopted first when there is one).
    preview_ready = Signal(object)  # PlanReady
    preview_failed = Signal(str, str)  # message, details
    #: The session's result was replaced: a stored one (True) or a new run's (False).
    result_adopted = Signal(bool)
    #: The running result changed (coalesced to one signal per ``REFRESH_MS``).
    result_changed = Signal()
    #: The running analysis has its plan (tiles to do, tiles done before).
    run_planned = Signal(object)  # PlanReady
    progress = Signal(int, int, float)  # done, total, elapsed seconds
    #: The analysis ended: one of the ``ENDED_*`` values, a message, details.
    ended = Signal(str, str, str)
    #: The running analysis takes tile priorities now (send it the tiles in view).
    scheduler_ready = Signal()
    #: A job kept running in the background for another slide: its slide's path, done, total, elapsed.
    background_progress = Signal(str, int, int, float)
    #: It ended: its slide's path, its outcome.
    background_ended = Signal(str, str)

    def __init__(self, host: WorkerHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.session: SlideSession | None = None
        self.analysis: JobHandle | None = None
        self.preview: JobHandle | None = None
        self.started_at = 0.0
        #: Seconds per classified tile of the last finished run on this device (None: none yet).
        self.seconds_per_tile: float | None = None
        self._refresh = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh.timeout.connect(self.result_changed)

    # ----- state ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """An analysis of this session's slide is queued or running."""
        return self.analysis is not None

    def set_session(self, session: SlideSession | None, keep_running: bool = False) -> None:
        """Work for another slide (or none); the last one's jobs are cancelled or, if asked, kept running."""
        if session is self.session:
            return
        self.leave(keep_running)
        self.session = session

    def leave(self, keep_running: bool = False) -> None:
        """Let go of the session's jobs: cancel them, or keep its analysis running in the background."""
        self._refresh.stop()
        if self.preview is not None:
            self.preview.cancel()
            self.preview.detach()
            self.preview = None
        job, self.analysis = self.analysis, None
        if job is None:
            return
        session = self.session
        if keep_running and session is not None:
            job.background = True
            # Nothing of it reaches this session's views any more, only its progress and its end.
            for signal, slot in self._run_slots(job):
                signal.disconnect(slot)
            job.batch_ready.connect(functools.partial(self._on_background_batch, session.path))
            job.ended.connect(functools.partial(self._on_background_ended, job, session.path))
        else:
            job.cancel()  # the worker checkpoints the finished tiles as it stops
            job.detach()
        if session is not None:
            session.scheduler = None

    # ----- jobs -------------------------------------------------------------------------------------
    def run(self, model: ModelRequest, analysis: AnalysisRequest, fresh: bool = False) -> None:
        """Analyse the session's slide (its region when one is set); resumes from the cache unless ``fresh``."""
        s = self.session
        if s is None:
            return
        for old in (self.preview, self.analysis):  # replaced (and so cancelled) by this run
            if old is not None:
                old.detach()
        self.preview = None
        s.scheduler = None
        handle = self.host.submit(SlideJob(s.path, s.mpp_override, model, analysis, fresh=fresh))
        self.analysis = handle
        for signal, slot in self._run_slots(handle):
            signal.connect(slot)
        self.started_at = time.perf_counter()

    def _run_slots(self, handle: JobHandle) -> list[tuple[SignalInstance, Callable[..., None]]]:
        """What this controller listens to on a running analysis."""
        return [(handle.plan_ready, self._on_run_plan), (handle.scheduler_ready, self._on_scheduler),
                (handle.batch_ready, self._on_batch), (handle.finished, self._on_finished),
                (handle.failed, self._on_failed), (handle.model_missing, self._on_model_missing),
                (handle.out_of_domain, self._on_out_of_domain), (handle.no_tiles, self._on_no_tiles),
                (handle.replaced, self._on_replaced)]

    def request_preview(self, model: ModelRequest, analysis: AnalysisRequest, lookup_cache: bool,
                        thumbnail: np.ndarray | None) -> None:
        """Plan the analysis on the worker (tissue mask, tile grid); optionally look up the cache."""
        s = self.session
        if s is None or s.slide.mpp is None or self.running:
            return
        if self.preview is not None:  # a newer question replaces it
            self.preview.detach()
            self.preview = None
        # Settings are validated on the worker; bad values come back as a job error.
        handle = self.host.submit(SlideJob(s.path, s.mpp_override, model, analysis, preview_only=True,
                                           lookup_cache=lookup_cache, thumbnail=thumbnail))
        self.preview = handle
        handle.plan_ready.connect(self._on_preview_plan)
        handle.failed.connect(self._on_preview_failed)
        handle.ended.connect(self._on_preview_ended)
        handle.replaced.connect(self._on_preview_replaced)

    def cancel(self) -> None:
        if self.analysis is not None:
            self.analysis.cancel()

    def refresh_pending(self) -> bool:
        """Batches arrived that the views have not shown yet."""
        return self._refresh.isActive()

    def pace_refresh(self, interval_ms: int) -> None:
        """Refresh less often when a refresh takes long (huge slides), so the GUI thread stays mostly idle."""
        self._refresh.setInterval(interval_ms)

    # ----- preview ----------------------------------------------------------------------------------
    def _on_preview_plan(self, ready: PlanReady) -> None:
        s = self.session
        if s is None:
            return
        s.preview_plan = ready.plan
        if ready.from_cache and (s.result is None or not self.running):
            self.adopt(ready)
            self.result_adopted.emit(True)
        self.preview_ready.emit(ready)

    def _on_preview_failed(self, message: str, details: str) -> None:
        self.preview = None
        self.preview_failed.emit(message, details)

    def _on_preview_ended(self) -> None:
        if self.preview is not None and not self.preview.running:
            self.preview = None

    def _on_preview_replaced(self) -> None:
        """An export or an evaluation took the worker: forget the preview (its answer is dropped)."""
        if self.preview is not None:
            self.preview.detach()
            self.preview = None
            self.preview_failed.emit("", "")

    # ----- the running analysis ---------------------------------------------------------------------
    def adopt(self, ready: PlanReady) -> None:
        """Mirror a result of the worker (its arrays copied) into the session."""
        s = self.session
        assert s is not None
        plan = ready.plan
        s.result = ready.tiles.applied_to(plan.empty_result())
        s.plan = plan

    def _on_run_plan(self, ready: PlanReady) -> None:
        self.adopt(ready)
        self.result_adopted.emit(False)
        self.started_at = time.perf_counter()
        self.run_planned.emit(ready)

    def _on_scheduler(self, scheduler: TileScheduler) -> None:
        if self.session is not None:
            self.session.scheduler = scheduler
            self.scheduler_ready.emit()

    def _on_batch(self, update: BatchUpdate) -> None:
        r = self.session.result if self.session is not None else None
        if r is None:
            return
        if len(update.indices):
            r.set_batch(update.indices, update.probs, update.spread)
        for i, msg in update.failed:
            r.set_failed(i, msg)
        for i, flags in update.qc:
            r.set_qc(i, flags)
        self.progress.emit(update.done, update.total, update.elapsed_s)
        if not self._refresh.isActive():
            self._refresh.start()

    def _on_finished(self, status: str, payload: object) -> None:
        s = self.session
        if isinstance(payload, SlideOutcome) and s is not None and s.result is not None:
            payload.tiles.copy_into(s.result)
        self._end(ENDED_DONE if status == "done" else ENDED_CANCELLED, self.finish_message(status, payload))

    def _on_failed(self, message: str, details: str) -> None:
        self._end(ENDED_FAILED, message, details)

    def _on_model_missing(self, message: str) -> None:
        self._end(ENDED_MODEL_MISSING, message)

    def _on_out_of_domain(self, message: str) -> None:
        self._end(ENDED_OUT_OF_DOMAIN, message)

    def _on_no_tiles(self, message: str) -> None:
        self._end(ENDED_NO_TILES, message)

    def _on_background_batch(self, path: str, update: BatchUpdate) -> None:
        self.background_progress.emit(path, update.done, update.total, update.elapsed_s)

    def _on_background_ended(self, job: JobHandle, path: str) -> None:
        self.background_ended.emit(path, job.outcome)

    def _on_replaced(self) -> None:
        """Only a job of this session replaces its analysis (it asks first); nothing to say."""

    def _end(self, how: str, message: str = "", details: str = "") -> None:
        self.analysis = None
        if self.session is not None:
            self.session.scheduler = None
        self._refresh.stop()
        self.ended.emit(how, message, details)

    def finish_message(self, status: str, payload: object) -> str:
        r = self.session.result if self.session is not None else None
        if r is None:
            return ""
        took = time.perf_counter() - self.started_at
        if isinstance(payload, SlideOutcome) and payload.from_cache:
            msg = f"Stored analysis shown ({r.n_tiles:,} tiles; same slide, model and settings)."
        elif status != "done":
            msg = (f"Analysis cancelled: {r.n_done:,} of {r.n_tiles:,} tiles done. "
                   "They are kept; Analyze resumes from there.")
        else:
            rate = f", {r.n_done / took:.1f} tiles/s" if took > 0 and r.n_done else ""
            if took > 0 and r.n_done:
                self.seconds_per_tile = took / r.n_done  # for the next estimate (the fast-mode offer)
            msg = f"Analysis finished: {r.n_done:,} tile{'s' if r.n_done != 1 else ''} in {took:.1f} s{rate}."
        if r.n_failed:
            msg += f" {r.n_failed} tile(s) could not be read (see the log)."
        return msg

    # ----- tiles in view first ----------------------------------------------------------------------
    def visible_pending_tiles(self, l0_view: tuple[float, float, float, float]) -> np.ndarray:
        """Indices of pending tiles that intersect a level-0 rectangle, nearest to its centre first."""
        r = self.session.result if self.session is not None else None
        if r is None:
            return np.empty(0, dtype=np.int64)
        x0, y0, x1, y1 = l0_view
        rects = r.rects()
        hit = ((rects[:, 0] < x1) & (rects[:, 0] + rects[:, 2] > x0) & (rects[:, 1] < y1)
               & (rects[:, 1] + rects[:, 3] > y0) & (r.status == TILE_PENDING))
        idx = np.flatnonzero(hit)
        if len(idx) == 0:
            return idx
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        d = (rects[idx, 0] + rects[idx, 2] / 2 - cx) ** 2 + (rects[idx, 1] + rects[idx, 3] / 2 - cy) ** 2
        return idx[np.argsort(d, kind="stable")]

    def prioritise(self, l0_view: tuple[float, float, float, float]) -> None:
        s = self.session
        if s is None or s.scheduler is None:
            return
        idx = self.visible_pending_tiles(l0_view)
        if len(idx):
            s.scheduler.prioritise(idx.tolist())
