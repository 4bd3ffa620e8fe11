"""The cohort's run: its slides queued on the app's one worker, or sent to a Ray cluster.

:class:`CohortRunner` (no widgets) owns the cohort's table model and changes its rows as slides
are queued, run and finished; the cohort window shows them. Analyze All takes a
:class:`CohortSnapshot` of the settings, which every slide of that run uses: changing Settings
during a run changes nothing for the slides still queued.

On this computer the slides go one at a time to the worker thread every analysis uses, as
background jobs that yield (:attr:`JobHandle.yields`): the user's own preview or analysis of an
open slide goes first, cancelling the running cohort slide at its next batch (its finished tiles
are checkpointed, and it is queued first again), and a cohort slide is only sent once the worker
has nothing of the user's to do (``busy_changed(False)``), so the cohort never cancels the user's
work nor makes it wait for a whole slide.
A slide's failure is recorded in its row and the queue goes on; only a missing model stops it.

Pause cancels the running slide at its next batch (its finished tiles are checkpointed in the
results cache, so Resume goes on from them) and keeps the rest queued. Cancel stops it the same
way and sets the queued slides back to ``new``. On Ray, Pause and Cancel both stop the run after
the slides in flight are dropped (Ray resumes nothing half-done; a result the cluster finished is
in the results cache, so Resume skips it); Pause keeps the unfinished slides queued for Resume,
Cancel sets them back to ``new``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from chaoyang_desktop.core.analysis.cohort import (
    FINAL_STATUSES,
    SLIDE_DONE,
    SLIDE_FAILED,
    SLIDE_NEW,
    SLIDE_NO_TILES,
    SLIDE_OUT_OF_DOMAIN,
    SLIDE_QUEUED,
    SLIDE_RUNNING,
    CohortClock,
    SlideReport,
    pace_line,
)
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.gui.analysis_worker import AnalysisRequest, CohortSlideJob, DeviceInfo, ModelRequest
from chaoyang_desktop.gui.cohort_model import CohortTableModel
from chaoyang_desktop.gui.cohort_ray import RayCohortBridge, RayRunner

if TYPE_CHECKING:
    from chaoyang_desktop.core.cluster.events import ClusterSettings
    from chaoyang_desktop.core.model.profile import ModelProfile
    from chaoyang_desktop.gui.analysis_worker import WorkerHost
    from chaoyang_desktop.gui.job_handle import JobHandle

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Where a cohort runs.
RUN_LOCAL = "local"
RUN_RAY = "ray"
RUN_CHOICES = ((RUN_LOCAL, "This computer"), (RUN_RAY, "Ray cluster"))

# The run's state.
STATE_IDLE = "idle"
STATE_RUNNING = "running"
STATE_PAUSING = "pausing"
STATE_PAUSED = "paused"
STATE_CANCELLING = "cancelling"

#: Where a slide analysed on this computer ran, in words (the report's ``worker``).
THIS_COMPUTER = "this computer"
#: The pace line is refreshed this often while a run goes on (the time left moves without batches).
PACE_MS = 1000


@dataclass(frozen=True)
class CohortSnapshot:
    """The settings a cohort run uses for every slide, taken when Analyze All is pressed."""

    model: ModelRequest
    analysis: AnalysisRequest
    #: ``view --mpp``: the pixel size every slide is read with (None: the file's own).
    mpp: float | None = None
    where: str = RUN_LOCAL

    def same_settings(self, other: CohortSnapshot | None) -> bool:
        """Whether ``other`` gives the same results (where it runs does not change them)."""
        return other is not None and (self.model, self.analysis, self.mpp) == (other.model, other.analysis, other.mpp)

    def settings_pairs(self, profile: ModelProfile | None = None,
                       device: DeviceInfo | None = None) -> list[tuple[str, str]]:
        """``(label, value)`` per setting that changes the results, for the window's line and the PDF."""
        m, a = self.model, self.analysis
        if profile is not None or m.spec:
            spec = profile.model_id if profile is not None else str(m.spec)
            model = spec.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or spec  # a hub id's or folder's last part
        else:
            from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID

            model = DEFAULT_MODEL_ID
        if device is not None:
            where = f"{device.description}, {device.precision}" if device.precision else device.description
        else:
            where = m.device if m.precision == "auto" else f"{m.device}, {m.precision}"
        tile_um = a.tile_um or (profile.tile_um if profile is not None else None)
        tiles = f"{tile_um:g} \u00b5m" if tile_um else "the model's size"
        if a.stride_um and tile_um and a.stride_um < tile_um:
            tiles += f", stride {a.stride_um:g} \u00b5m ({1 - a.stride_um / tile_um:.0%} overlap)"
        else:
            tiles += ", no overlap"
        pairs = [("Model", model), ("Device", where), ("Tiles", tiles), ("Tissue threshold", f"{a.tissue_threshold:g}"),
                 ("Quality control", "on" if a.qc else "off"), ("TTA", "on" if m.tta else "off"),
                 ("Calibration", Path(m.calibration).name if m.calibration else "none")]
        if a.allow_out_of_domain:
            pairs.append(("Out-of-domain slides", "analysed anyway"))
        if self.mpp:
            pairs.append(("Pixel size", f"{self.mpp:g} \u00b5m/px"))
        return pairs

    def describe(self, profile: ModelProfile | None = None, device: DeviceInfo | None = None) -> str:
        """``Model: X · Device: cpu · Tiles: 256 µm, no overlap · Tissue threshold: 0.25 · ...``."""
        return " \u00b7 ".join(f"{k}: {v}" for k, v in self.settings_pairs(profile, device))


def _weakly(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` without a strong reference to its object (a window's method would make a reference cycle).

    The window owns the runner; the runner holding the window's bound method would close a cycle
    through Python, and Qt objects in a cycle may be freed by the collector on any thread.
    """
    if not hasattr(fn, "__self__"):
        return fn
    ref = weakref.WeakMethod(fn)

    def call() -> T:
        method = ref()
        if method is None:
            raise RuntimeError("the cohort's owner was deleted")
        return method()

    return call


class CohortRunner(QObject):
    """Runs the cohort's slides and keeps its table (:attr:`model`) up to date."""

    #: The run's state changed (one of the ``STATE_*`` values).
    state_changed = Signal(str)
    #: ``4 of 12 slides · 30 slides/h · about 16 min left`` (and whether it is paused).
    paced = Signal(str)
    #: The settings line changed (a run started, its model or device became known, Settings changed).
    described = Signal(str)
    #: The model is not on this computer: the queue stopped (the main window offers the model dialog).
    model_missing = Signal(str)
    #: The run could not start or go on (Ray missing, the cluster unreachable), in one line.
    failed = Signal(str)
    #: Every queued slide ended.
    finished = Signal()

    def __init__(self, host: WorkerHost, snapshot: Callable[[], CohortSnapshot],
                 cluster: Callable[[], ClusterSettings], class_names: tuple[str, ...], *,
                 ray_runner: RayRunner | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self._snapshot = _weakly(snapshot)
        self._cluster = _weakly(cluster)
        self.model = CohortTableModel(class_names, self)
        self.state = STATE_IDLE
        #: The settings of the last run (None before the first).
        self.snapshot: CohortSnapshot | None = None
        self.clock = CohortClock()
        self.profile: ModelProfile | None = None
        self.device: DeviceInfo | None = None
        self.cluster_description = ""
        self._queue: deque[int] = deque()
        self._job: JobHandle | None = None
        self._job_row = -1
        self._job_started = False
        self._shut_down = False
        self.ray = RayCohortBridge(ray_runner, self)
        self.ray.event_received.connect(self._on_ray_event)
        self.ray.ended.connect(self._on_ray_ended)
        host.busy_changed.connect(self._on_host_busy)
        host.model_ready.connect(self._on_model_ready)
        host.device_ready.connect(self._on_device_ready)
        self._pace_timer = QTimer(self, interval=PACE_MS)
        self._pace_timer.timeout.connect(self._emit_pace)

    # ----- what it is doing ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Slides are being analysed (not paused, not stopping)."""
        return self.state == STATE_RUNNING

    @property
    def active(self) -> bool:
        """A run is under way or paused (the cohort cannot be replaced now)."""
        return self.state != STATE_IDLE

    @property
    def where(self) -> str:
        return self.snapshot.where if self.snapshot is not None else RUN_LOCAL

    def progress(self) -> float:
        """Slides' worth of the cohort ended, running ones by their share of tiles (for the overall bar)."""
        rows = self.model.rows
        return sum(1.0 if r.status in FINAL_STATUSES else r.fraction if r.status == SLIDE_RUNNING else 0.0
                   for r in rows)

    def pace(self) -> str:
        total = len(self.model.rows)
        line = pace_line(self.model.finished(), total, self.clock) if total else ""
        if self.state in (STATE_PAUSED, STATE_PAUSING):
            line += " \u00b7 paused"
        elif self.state == STATE_CANCELLING:
            line += " \u00b7 stopping\u2026"
        return line

    def run_summary(self) -> tuple[str, str]:
        """``("The cohort “name”", " (4 of 12 slides done)")``, for the question asked before quitting."""
        folder = self.model.folder
        name = f"The cohort \u201c{folder.name}\u201d" if folder is not None else "The cohort"
        return name, f" ({self.model.finished()} of {len(self.model.rows)} slides done)"

    def settings_line(self) -> str:
        """The settings of the run (or, before one, of the next): what every slide is analysed with."""
        if self.snapshot is None:
            return "Analyze All uses: " + self._snapshot().describe(self.profile)
        line = self.snapshot.describe(self.profile, self.device)
        if self.snapshot.where == RUN_RAY:
            line += f" \u00b7 on Ray{': ' + self.cluster_description if self.cluster_description else ''}"
        if self.active:
            return line
        text = "Last run: " + line
        current = self._snapshot()
        if not current.same_settings(self.snapshot):  # Settings changed since: say what Analyze All does now
            text += "\nAnalyze All now analyses every slide again with: " + current.describe()
        return text

    def settings_changed(self) -> None:
        """Settings were saved: the next run's line changes (a running one keeps its snapshot)."""
        self.described.emit(self.settings_line())

    # ----- the cohort ------------------------------------------------------------------------------------
    def load(self, paths: list[str], folder: Path | None) -> bool:
        """Show these slides, all ``new``; refused (False) while a run is under way or paused."""
        if self.active:
            return False
        self.model.set_slides([str(p) for p in paths], folder)
        self.snapshot = None
        self.clock = CohortClock()
        self.described.emit(self.settings_line())
        self._emit_pace()
        return True

    def slide_requests(self, path: str) -> tuple[ModelRequest, AnalysisRequest] | None:
        """The model and analysis settings a finished slide was analysed with (None: not analysed here)."""
        row = self.model.row_of(path)
        if row < 0 or self.snapshot is None or self.model.rows[row].status != SLIDE_DONE:
            return None
        return self.snapshot.model, self.snapshot.analysis

    # ----- commands --------------------------------------------------------------------------------------
    def analyze_all(self, where: str = RUN_LOCAL) -> bool:
        """Queue every slide not ended yet (all of them when none is left, or when the settings changed).

        Returns False when nothing started (a run is under way, no slides, or Ray cannot run: ``failed`` says why).
        """
        rows = self.model.rows
        if self.active or not rows or self._shut_down:
            return False
        snap = dataclasses.replace(self._snapshot(), where=where)
        cluster = None
        if where == RUN_RAY:
            from chaoyang_desktop.core.cluster.availability import require_ray

            try:
                require_ray()
                cluster = self._cluster()
            except ChaoyangError as exc:
                self.failed.emit(str(exc))
                return False
        if snap.same_settings(self.snapshot):
            todo = [i for i, r in enumerate(rows) if r.status not in FINAL_STATUSES]
        else:
            todo = []  # other settings: every slide again (results for these settings may be cached)
        if not todo:
            # Everything ended: run it all again. Finished slides come back from the cache at once,
            # failed ones are tried again (a file may have been replaced).
            todo = list(range(len(rows)))
        if not snap.same_settings(self.snapshot):
            self.profile = self.device = None  # the model or its engine may change with them
        self.snapshot = snap
        self.cluster_description = ""
        self.clock = CohortClock()
        self.clock.start()
        for i in todo:
            self.model.update(i, status=SLIDE_QUEUED, done=0, total=0, elapsed_s=0.0, report=None, note="")
        self._queue = deque(todo)
        self._set_state(STATE_RUNNING)
        if where == RUN_RAY:
            assert cluster is not None
            self._start_ray(todo, cluster)
        else:
            self._pump()
        return True

    def pause(self) -> None:
        """Stop after cancelling the running slide (its finished tiles are kept); Resume goes on."""
        if self.state != STATE_RUNNING:
            return
        self.clock.pause()
        if self.where == RUN_RAY:
            self._set_state(STATE_PAUSING)
            self.ray.cancel()
        elif self._job is not None:
            self._set_state(STATE_PAUSING)
            self._job.cancel()
        else:
            self._set_state(STATE_PAUSED)

    def resume(self) -> None:
        if self.state != STATE_PAUSED or self.snapshot is None:
            return
        self.clock.resume()
        self._set_state(STATE_RUNNING)
        if self.where == RUN_RAY:
            try:
                cluster = self._cluster()
            except ChaoyangError as exc:
                self._stop_here(str(exc))
                return
            self._start_ray([i for i, r in enumerate(self.model.rows) if r.status == SLIDE_QUEUED], cluster)
        else:
            self._pump()

    def cancel(self) -> None:
        """Stop the run; slides not ended go back to ``new`` (finished tiles stay in the cache)."""
        if self.state in (STATE_IDLE, STATE_CANCELLING):
            return
        self._queue.clear()
        self.clock.pause()
        if self.state == STATE_PAUSED or (self.where == RUN_LOCAL and self._job is None):
            self._reset_unfinished()
            self._set_state(STATE_IDLE)
            return
        self._set_state(STATE_CANCELLING)
        if self.where == RUN_RAY:
            self.ray.cancel()
        elif self._job is not None:
            self._job.cancel()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """The app is closing: stop whatever runs (the worker host cancels its own jobs)."""
        self._shut_down = True
        self._pace_timer.stop()
        self._queue.clear()
        if self._job is not None:
            self._job.cancel()
        if self.ray.running:
            self.ray.cancel()
            if not self.ray.wait(timeout_s):
                log.warning("The Ray cohort run did not stop within %.0f s; leaving it to exit with the app.",
                            timeout_s)
        self.state = STATE_IDLE

    # ----- this computer: one slide at a time on the worker -------------------------------------------------
    def _pump(self) -> None:
        """Send the next queued slide, unless one is out or the worker has the user's work to do."""
        if self.state != STATE_RUNNING or self.where != RUN_LOCAL or self._job is not None or self._shut_down:
            return  # (a cluster keeps its own queue)
        if self.host.is_busy():
            return  # a job of the user's: sent when it ends (busy_changed)
        if not self._queue:
            self._complete()
            return
        row = self._queue.popleft()
        snap = self.snapshot
        assert snap is not None
        handle = self.host.submit(CohortSlideJob(self.model.rows[row].path, snap.mpp, snap.model, snap.analysis))
        # The user's jobs go first: a job submitted while this one runs cancels it (its finished
        # tiles are checkpointed) and _pump sends it again when the worker is free.
        handle.background = True
        handle.yields = True
        self._job, self._job_row, self._job_started = handle, row, False
        p = functools.partial
        handle.started.connect(p(self._on_job_started, handle))
        handle.progress.connect(p(self._on_job_progress, handle))
        handle.finished.connect(p(self._on_job_finished, handle))
        handle.failed.connect(p(self._on_job_failed, handle))
        handle.model_missing.connect(p(self._on_job_model_missing, handle))
        handle.out_of_domain.connect(p(self._on_job_refused, handle, SLIDE_OUT_OF_DOMAIN))
        handle.no_tiles.connect(p(self._on_job_refused, handle, SLIDE_NO_TILES))
        handle.ended.connect(p(self._on_job_ended, handle))

    def _on_host_busy(self, busy: bool) -> None:
        if not busy:
            self._pump()

    def _on_job_started(self, handle: JobHandle) -> None:
        if handle is self._job:
            self._job_started = True
            self.model.update(self._job_row, status=SLIDE_RUNNING, note="")
            self.clock.running(self._job_row, 0.0)

    def _on_job_progress(self, handle: JobHandle, done: int, total: int, elapsed_s: float) -> None:
        if handle is self._job:
            self.model.update(self._job_row, done=done, total=total, elapsed_s=elapsed_s)
            self.clock.running(self._job_row, done / total if total else 0.0)

    def _on_job_finished(self, handle: JobHandle, status: str, payload: object) -> None:
        if handle is not self._job:
            return
        if status == "done" and isinstance(payload, SlideReport):
            self._slide_ended(self._job_row, payload)
        else:
            self._slide_interrupted(self._job_row)

    def _on_job_failed(self, handle: JobHandle, message: str, details: str) -> None:
        if handle is self._job:
            # A bug or a settings problem: recorded on the slide, and the queue goes on.
            log.error("Cohort slide %s failed: %s\n%s", self.model.rows[self._job_row].path, message, details)
            self._slide_ended(self._job_row, SlideReport(self.model.rows[self._job_row].path, SLIDE_FAILED, message,
                                                         worker=THIS_COMPUTER))

    def _on_job_refused(self, handle: JobHandle, status: str, message: str) -> None:
        if handle is self._job:
            self._slide_ended(self._job_row, SlideReport(self.model.rows[self._job_row].path, status, message,
                                                         worker=THIS_COMPUTER))

    def _on_job_model_missing(self, handle: JobHandle, message: str) -> None:
        if handle is not self._job:
            return
        self._queue.clear()
        self._stop_here("")
        self.model_missing.emit(message)

    def _on_job_ended(self, handle: JobHandle) -> None:
        if handle is not self._job:
            return
        self._job = None
        self._job_row = -1
        if self.state == STATE_RUNNING:
            self._pump()
        elif self.state == STATE_PAUSING:
            self._set_state(STATE_PAUSED)
        elif self.state == STATE_CANCELLING:
            self._reset_unfinished()
            self._set_state(STATE_IDLE)

    def _slide_interrupted(self, row: int) -> None:
        """The running slide was cancelled: by Pause or a job of the user's (queued first again), or Cancel."""
        r = self.model.rows[row]
        self.clock.finished(row, analysed=False)
        if self.state == STATE_CANCELLING:
            self.model.update(row, status=SLIDE_NEW, done=0, total=0, elapsed_s=0.0)
            return
        self._queue.appendleft(row)
        if self.state == STATE_RUNNING:  # it stepped aside for the user's job: sent again once the worker is free
            log.info("Cohort slide %s steps aside for a job of the user's.", r.path)
            self.model.update(row, status=SLIDE_QUEUED, note="after your job")
        else:
            self.model.update(row, status=SLIDE_QUEUED)

    # ----- a Ray cluster ------------------------------------------------------------------------------------
    def _start_ray(self, rows: list[int], cluster: ClusterSettings) -> None:
        from chaoyang_desktop.core.cluster.events import CohortSlide

        snap = self.snapshot
        assert snap is not None
        self._queue.clear()  # the cluster keeps its own queue
        slides = [CohortSlide(i, self.model.rows[i].path, snap.mpp) for i in rows]
        self.ray.start(slides, snap.model.spec, snap.model.engine(), snap.analysis, cluster)
        self.described.emit(self.settings_line())

    def _on_ray_event(self, event: object) -> None:
        from chaoyang_desktop.core.cluster.events import ClusterReady, SlideDone, SlideProgress, SlideStarted, WorkerLost

        if isinstance(event, ClusterReady):
            self.cluster_description = event.description
            self.described.emit(self.settings_line())
        elif isinstance(event, SlideStarted):
            note = event.worker + (f" (attempt {event.attempt})" if event.attempt > 1 else "")
            self.model.update(event.index, status=SLIDE_RUNNING, note=note)
            self.clock.running(event.index, 0.0)
        elif isinstance(event, SlideProgress):
            self.model.update(event.index, done=event.done, total=event.total)
            self.clock.running(event.index, event.done / event.total if event.total else 0.0)
        elif isinstance(event, WorkerLost):
            self.model.update(event.index, status=SLIDE_QUEUED, note=f"worker lost: {event.message}")
        elif isinstance(event, SlideDone):
            self._slide_ended(event.index, event.report)

    def _on_ray_ended(self, error: str) -> None:
        if self._shut_down:
            return
        if self.state == STATE_CANCELLING:
            self._reset_unfinished()
            self._set_state(STATE_IDLE)
        elif self.state == STATE_PAUSING:
            for i, r in enumerate(self.model.rows):
                if r.status == SLIDE_RUNNING:
                    self.model.update(i, status=SLIDE_QUEUED, note="")
                    self.clock.finished(i, analysed=False)
            self._set_state(STATE_PAUSED)
        elif error:
            self._stop_here(error)
        else:
            self._complete()

    # ----- shared ---------------------------------------------------------------------------------------------
    def _slide_ended(self, row: int, report: SlideReport) -> None:
        r = self.model.rows[row]
        total = r.total
        if report.summary is not None:
            total = int(report.summary["tiles_total"])
            names = tuple(c["name"] for c in report.summary.get("classes", []))
            if names:
                self.model.set_class_names(names)
        self.model.update(row, status=report.status, report=report, done=total, total=total, note="")
        self.clock.finished(row, analysed=report.status == SLIDE_DONE and not report.from_cache)
        self._emit_pace()

    def _reset_unfinished(self) -> None:
        for i, r in enumerate(self.model.rows):
            if r.status not in FINAL_STATUSES:
                self.model.update(i, status=SLIDE_NEW, done=0, total=0, elapsed_s=0.0, note="")
                self.clock.finished(i, analysed=False)

    def _stop_here(self, error: str) -> None:
        """The run cannot go on: unfinished slides back to ``new``, and ``failed`` says why (when it says)."""
        self._queue.clear()
        self.clock.pause()
        self._reset_unfinished()
        self._set_state(STATE_IDLE)
        if error:
            self.failed.emit(error)

    def _complete(self) -> None:
        self.clock.pause()
        self._reset_unfinished()  # none on this computer; a cluster could leave one without a report
        self._set_state(STATE_IDLE)
        self.finished.emit()

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if state in (STATE_RUNNING, STATE_PAUSING, STATE_CANCELLING):
            self._pace_timer.start()
        else:
            self._pace_timer.stop()
        self.state_changed.emit(state)
        self.described.emit(self.settings_line())
        self._emit_pace()

    def _emit_pace(self) -> None:
        self.paced.emit(self.pace())

    # ----- what the worker says about the model, while a cohort slide runs ---------------------------------
    def _ours_running(self) -> bool:
        # The worker runs one job at a time and its messages arrive in order: between our job's start
        # and its end, the model and device it reports are those of the cohort's settings.
        return self._job is not None and self._job_started

    def _on_model_ready(self, profile: ModelProfile) -> None:
        if self._ours_running() and profile != self.profile:
            self.profile = profile
            self.model.set_class_names(tuple(profile.class_names))
            self.described.emit(self.settings_line())

    def _on_device_ready(self, info: DeviceInfo) -> None:
        if self._ours_running() and info != self.device:
            self.device = info
            self.described.emit(self.settings_line())
