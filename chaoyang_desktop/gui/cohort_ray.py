"""Runs a cohort on a Ray cluster from the app: the driver on a Python thread, its events as Qt signals.

:func:`~chaoyang_desktop.core.cluster.ray_cohort.run_cohort_on_ray` blocks until every slide has
ended (or the cancel event is set) and reports through a callback on the thread that called it.
:class:`RayCohortBridge` calls it on a ``threading.Thread`` (Ray's driver works from any thread)
and emits each event as a signal of this GUI-thread object, which Qt queues to the GUI thread.
Ray is an optional extra: it is imported only inside the thread, after
:func:`~chaoyang_desktop.core.cluster.availability.require_ray` said it is there.

The runner is a parameter, so tests drive the bridge with a fake that emits the same events.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from chaoyang_desktop.core.errors import ChaoyangError

if TYPE_CHECKING:
    from chaoyang_desktop.core.cluster.events import ClusterSettings, CohortSlide
    from chaoyang_desktop.core.model.engine_settings import EngineSettings
    from chaoyang_desktop.gui.analysis_worker import AnalysisRequest

log = logging.getLogger(__name__)

#: ``run_cohort_on_ray``'s signature: (slides, model, engine, settings, cluster, *, on_event, cancel, cache, fresh).
RayRunner = Callable[..., None]


def run_on_ray(*args: Any, **kwargs: Any) -> None:
    """The real driver (imports Ray)."""
    from chaoyang_desktop.core.cluster.ray_cohort import run_cohort_on_ray

    run_cohort_on_ray(*args, **kwargs)


class RayCohortBridge(QObject):
    """One Ray run at a time; ``event_received`` per cluster event, then ``ended`` once."""

    #: ClusterReady, SlideStarted, WorkerLost or SlideDone (core.cluster.events), in order.
    event_received = Signal(object)
    #: The run is over: "" when it ended or was cancelled, else why it could not run (one line).
    ended = Signal(str)

    def __init__(self, runner: RayRunner | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        #: The driver function (tests put a fake here).
        self.runner: RayRunner = runner or run_on_ray
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, slides: Sequence[CohortSlide], model: str | None, engine: EngineSettings,
              analysis: AnalysisRequest, cluster: ClusterSettings, fresh: bool = False) -> None:
        """Send ``slides`` to the cluster; returns at once."""
        if self.running:
            raise RuntimeError("a Ray run is already going")
        self._cancel = threading.Event()
        # Daemon: a cluster that does not answer must not keep the app from exiting.
        self._thread = threading.Thread(target=self._run, name="chaoyang-ray-cohort", daemon=True,
                                        args=(list(slides), model, engine, analysis, cluster, fresh, self._cancel))
        self._thread.start()

    def cancel(self) -> None:
        """Stop sending slides; the run ends once the slides in flight are dropped (``ended`` follows)."""
        self._cancel.set()

    def wait(self, timeout_s: float) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running

    # ----- on the driver thread ------------------------------------------------------------------------
    def _run(self, slides: list[CohortSlide], model: str | None, engine: EngineSettings, analysis: AnalysisRequest,
             cluster: ClusterSettings, fresh: bool, cancel: threading.Event) -> None:
        error = ""
        try:
            from chaoyang_desktop.core.analysis.cache import ResultCache

            # Built here: AnalysisSettings lives beside torch, which the GUI thread does not import.
            self.runner(slides, model, engine, analysis.settings(), cluster, on_event=self._emit_event,
                         cancel=cancel, cache=ResultCache(), fresh=fresh)
        except ChaoyangError as exc:
            error = " ".join(str(exc).split()) or type(exc).__name__
        except Exception as exc:  # a bug: logged with its traceback, said in one line
            log.exception("The Ray cohort run crashed")
            error = f"Unexpected error: {type(exc).__name__}: {exc}"
        self._emit(self.ended, error)

    def _emit_event(self, event: object) -> None:
        self._emit(self.event_received, event)

    def _emit(self, signal: Any, value: object) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # the window (and this object) went while the cluster was still answering
            log.info("Ray cohort event after the window closed: %r", type(value).__name__)
