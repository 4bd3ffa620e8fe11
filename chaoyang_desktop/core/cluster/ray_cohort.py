"""A cohort's slides spread over a Ray cluster: one worker per GPU (or per N CPUs), each with the model loaded once.

The driver (this process) connects to the cluster, starts the workers, hands each idle worker the
next slide and collects the results. A worker opens its slide by path (every node reads the same
shared storage) and runs the pipeline every front end runs, :func:`analyze_cohort_slide`, without
a cache; it returns the per-tile result, which the driver writes (workers need no write access to
the outputs). With the same device and precision the tiles and probabilities are those of an
in-process run.

A worker that dies mid-slide (killed, out of memory, its node lost) is replaced by a fresh one
and its slide tried again, up to :attr:`ClusterSettings.max_attempts` tries; a slide that fails
with an error of its own (an unreadable file, no tissue, out of domain) is reported at once. The
other slides finish either way.

This is the only module that imports Ray.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import ray
import ray.exceptions

from chaoyang_desktop.core.analysis.cache import ResultCache, cache_key, name_for_this_run
from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE, SLIDE_FAILED, SlideReport
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
from chaoyang_desktop.core.cluster.events import (
    ADDRESS_LOCAL,
    ClusterReady,
    ClusterSettings,
    CohortSlide,
    SlideDone,
    SlideProgress,
    SlideStarted,
    WorkerLost,
)
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.model.engine_settings import EngineSettings

log = logging.getLogger(__name__)

#: Seconds a new worker may take to load the model before the run gives up on the cluster.
WORKER_START_TIMEOUT_S = 600.0
#: How often the driver looks at the cancel flag while it waits for results.
POLL_S = 0.25
#: Seconds to wait for the cluster's head to answer before saying it cannot be reached.
CONNECT_TIMEOUT_S = 5.0
#: A worker posts a slide's tile count at most this often; the driver collects them as often.
PROGRESS_S = 1.0

#: Errors that mean the worker process (or its node) is gone, not that the slide is bad.
_WORKER_GONE = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
                ray.exceptions.NodeDiedError)


class _AlreadyCached(Exception):  # noqa: N818 (control flow inside a worker, never seen outside)
    """The driver's cache holds this slide's complete result: nothing to classify."""

    def __init__(self, key: str, plan: Any) -> None:
        super().__init__(key)
        self.key = key
        self.plan = plan


class ProgressBoard:
    """Where workers post how far their slides are, and the driver collects it (a tiny Ray actor).

    Workers call :meth:`post` without waiting for an answer, so classifying never waits on it.
    """

    def __init__(self) -> None:
        self._latest: dict[int, tuple[int, int]] = {}

    def post(self, index: int, done: int, total: int) -> None:
        self._latest[index] = (done, total)

    def take(self) -> dict[int, tuple[int, int]]:
        latest, self._latest = self._latest, {}
        return latest


@dataclasses.dataclass(frozen=True)
class _Payload:
    """What a worker sends back for one slide."""

    report: SlideReport
    result: Any = None  # AnalysisResult
    thumbnail: Any = None  # np.ndarray
    #: Set when the driver's cache already holds the result: the provenance of this run to put on it.
    cached_provenance: Any = None


class SlideWorker:
    """One Ray worker: the model, loaded once, and the pipeline. Runs in its own process."""

    def __init__(self, model: str | None, engine: EngineSettings, weights_sha256: str, allow_download: bool,
                 name: str) -> None:
        from chaoyang_desktop.core.model.inference import Classifier

        self.name = f"{name} on {socket.gethostname()}"
        self.classifier = Classifier.load(model, engine, allow_download=allow_download)
        if self.classifier.profile.weights_sha256 != weights_sha256:
            raise ChaoyangError(
                f"The model on {socket.gethostname()} has other weights than the driver's "
                f"({self.classifier.profile.weights_sha256[:12]} instead of {weights_sha256[:12]}): give every node "
                "the same model folder, on shared storage.")

    def info(self) -> tuple[int, str, str]:
        """Process id, name and device, once the model is loaded."""
        return os.getpid(), self.name, self.classifier.device_description

    def analyze(self, index: int, path: str, mpp: float | None, settings: AnalysisSettings, fresh: bool,
                known_keys: frozenset[str], board: Any) -> _Payload:
        import time

        from chaoyang_desktop.core.analysis.run import analyze_cohort_slide

        posted = [0.0]

        def on_plan(plan: Any, result: Any) -> None:
            key = cache_key(plan.provenance)
            if not fresh and key in known_keys:
                raise _AlreadyCached(key, plan)
            board.post.remote(index, 0, plan.n_tiles)

        def on_batch(update: Any) -> None:
            if time.monotonic() - posted[0] >= PROGRESS_S:
                posted[0] = time.monotonic()
                board.post.remote(index, update.done, update.total)

        try:
            report, outcome = analyze_cohort_slide(path, self.classifier, settings, mpp=mpp, cache=None, fresh=fresh,
                                                   worker=self.name, on_plan=on_plan, on_batch=on_batch)
        except _AlreadyCached as hit:
            return _Payload(SlideReport(path, SLIDE_DONE, from_cache=True, cache_key=hit.key, worker=self.name),
                            thumbnail=hit.plan.thumbnail, cached_provenance=hit.plan.provenance)
        if outcome is None:
            return _Payload(report)
        return _Payload(report, outcome.result, outcome.plan.thumbnail)


@dataclasses.dataclass
class _Slot:
    """A worker the driver can hand slides to."""

    actor: Any
    pid: int = 0
    name: str = ""


def _check_reachable(address: str) -> None:
    """Fail within seconds when nothing listens at ``host:port`` (Ray itself retries for minutes)."""
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return  # not host:port; Ray says what it makes of it
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ChaoyangError(f"Nothing answers at the Ray address {address} ({exc.strerror or exc}): start the head "
                            "with `ray start --head` there, or check the address and port.") from exc


def _connect(cluster: ClusterSettings) -> bool:
    """Join (or with ``local`` start) the cluster; True when this call did, so the run ends it too."""
    if ray.is_initialized():  # a caller (a test, a notebook) has connected already
        return False
    if cluster.address != ADDRESS_LOCAL:
        _check_reachable(cluster.address)
    try:
        if cluster.address == ADDRESS_LOCAL:
            ray.init(num_cpus=cluster.local_cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise ChaoyangError(f"Cannot reach the Ray cluster at {cluster.address!r} ({exc}). Start it with "
                            "`ray start --head` on the head node, or give its address (head:6379), or local.") from exc
    return True


def _worker_options(cluster: ClusterSettings, engine: EngineSettings) -> tuple[int, dict[str, Any], str]:
    """How many workers, what each reserves, and the two in words."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    nodes = sum(1 for k in resources if k.startswith("node:") and k != "node:__internal_head__")
    on_gpu = gpus > 0 and engine.device in ("auto", "cuda")
    if on_gpu:
        # A GPU worker's CPUs decode and resize the tiles that feed it: it takes its share of the
        # cluster's CPUs (at least --ray-cpus-per-worker), or the GPU would wait on one core.
        share = max(cluster.cpus_per_worker, cpus // gpus)
        most, options, each = gpus, {"num_gpus": 1, "num_cpus": share}, f"1 GPU and {share} CPUs"
    else:
        most = max(1, cpus // cluster.cpus_per_worker)
        options = {"num_gpus": 0, "num_cpus": cluster.cpus_per_worker}
        each = f"{cluster.cpus_per_worker} CPU{'s' if cluster.cpus_per_worker > 1 else ''}"
    workers = min(most, cluster.workers) if cluster.workers is not None else most
    words = (f"{workers} worker{'s' if workers != 1 else ''}, {each} each, on {nodes} node{'s' if nodes != 1 else ''}"
             + (f" ({cluster.workers} asked for; the cluster has room for {most})"
                if cluster.workers is not None and cluster.workers > most else ""))
    return workers, options, words


def run_cohort_on_ray(
    slides: Sequence[CohortSlide],
    model: str | None,
    engine: EngineSettings,
    settings: AnalysisSettings,
    cluster: ClusterSettings,
    *,
    on_event: Callable[[object], None],
    cancel: threading.Event | None = None,
    cache: ResultCache | None = None,
    fresh: bool = False,
    allow_download: bool = True,
) -> None:
    """Analyse ``slides`` on the cluster; blocks until each has ended, or ``cancel`` is set.

    Args:
        slides: The slides, by path (the same path on every node).
        model: The model folder or hub id, as on this computer; every worker loads the same one
            and must find the same weights.
        engine: Device, precision, batch size... as in-process. On a CPU cluster each worker
            gets as many PyTorch threads as it reserves CPUs, unless ``engine.threads`` says.
        settings: Tiling, QC, domain override: the same for every slide.
        cluster: Address, workers, tries per slide.
        on_event: Called on this thread with :class:`ClusterReady`, then per slide
            :class:`SlideStarted`, :class:`WorkerLost` and one :class:`SlideDone`.
        cancel: Set to stop: the workers are stopped and slides not done get no :class:`SlideDone`.
        cache: The local results cache: slides whose complete result it holds are planned on a
            worker but not classified, and each new result is saved into it as it arrives.
        fresh: Classify every slide again, whatever the cache holds.
        allow_download: Workers may download a hub model they do not have.

    Raises:
        ChaoyangError: The cluster cannot be reached, or a worker cannot load the model.
    """
    from chaoyang_desktop.core.model.model_source import load_profile, resolve_model

    cancel = cancel or threading.Event()
    profile = load_profile(resolve_model(model, allow_download=allow_download))
    known = frozenset(cache.complete_keys()) if cache is not None and not fresh else frozenset()
    started_here = _connect(cluster)
    slots: list[_Slot] = []
    board: Any = None
    try:
        n_workers, options, words = _worker_options(cluster, engine)
        if not options["num_gpus"] and engine.threads is None and engine.device != "cuda":
            engine = dataclasses.replace(engine, threads=cluster.cpus_per_worker)
        remote_worker = ray.remote(max_restarts=0, max_task_retries=0)(SlideWorker).options(**options)
        counter = [0]

        def new_slot() -> _Slot:
            counter[0] += 1
            return _Slot(remote_worker.remote(model, engine, profile.weights_sha256, allow_download,
                                              f"worker {counter[0]}"))

        slots = [new_slot() for _ in range(min(n_workers, max(1, len(slides))))]
        board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        _wait_ready(slots, cancel)
        on_event(ClusterReady(words, len(slots)))
        _drive(slides, slots, new_slot, settings, fresh, known, cluster.max_attempts, cache, on_event, cancel, board)
    finally:
        for slot in slots:
            ray.kill(slot.actor)
        if board is not None:
            ray.kill(board)
        if started_here:
            ray.shutdown()


def _wait_ready(slots: list[_Slot], cancel: threading.Event) -> None:
    """Wait until every worker has loaded the model; a worker that cannot is the run's error."""
    refs = {slot.actor.info.remote(): slot for slot in slots}
    pending = list(refs)
    waited = 0.0
    while pending:
        if cancel.is_set():
            return
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        waited += POLL_S
        for ref in ready:
            slot = refs[ref]
            try:
                slot.pid, slot.name, _device = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                raise ChaoyangError(f"A Ray worker could not start: {_cause(exc)}") from exc
        if pending and waited > WORKER_START_TIMEOUT_S:
            raise ChaoyangError(f"The Ray workers did not load the model within {WORKER_START_TIMEOUT_S:.0f} s: "
                                "check that the cluster has the resources (`ray status`) and the model on every node.")


def _cause(exc: BaseException) -> str:
    """The first line of what a worker raised, without Ray's traceback framing."""
    text = str(getattr(exc, "cause", None) or exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _drive(slides: Sequence[CohortSlide], slots: list[_Slot], new_slot: Callable[[], _Slot], settings: AnalysisSettings,
           fresh: bool, known: frozenset[str], max_attempts: int, cache: ResultCache | None,
           on_event: Callable[[object], None], cancel: threading.Event, board: Any) -> None:
    """Hand slides to idle workers until every slide has ended (or cancel)."""
    queue: deque[tuple[CohortSlide, int]] = deque((s, 1) for s in slides)
    idle = list(slots)
    in_flight: dict[Any, tuple[CohortSlide, int, _Slot]] = {}
    progress_ref = None
    while (queue or in_flight) and not cancel.is_set():
        while idle and queue:
            slide, attempt = queue.popleft()
            slot = idle.pop(0)
            ref = slot.actor.analyze.remote(slide.index, slide.path, slide.mpp, settings, fresh, known, board)
            in_flight[ref] = (slide, attempt, slot)
            on_event(SlideStarted(slide.index, attempt, slot.name, slot.pid))
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_S)
        progress_ref = _relay_progress(board, progress_ref, {s.index for s, _a, _w in in_flight.values()}, on_event)
        for ref in ready:
            slide, attempt, slot = in_flight.pop(ref)
            try:
                payload: _Payload = ray.get(ref)
            except _WORKER_GONE as exc:
                ray.kill(slot.actor)
                slots.remove(slot)
                fresh_slot = new_slot()
                slots.append(fresh_slot)
                _wait_ready([fresh_slot], cancel)  # its pid and name for the events; a node that cannot load stops the run
                idle.append(fresh_slot)
                message = f"{slot.name} (pid {slot.pid}) died: {_cause(exc)}"
                on_event(WorkerLost(slide.index, attempt, message))
                if attempt < max_attempts:
                    queue.appendleft((slide, attempt + 1))
                else:
                    on_event(SlideDone(slide.index, SlideReport(
                        slide.path, SLIDE_FAILED, f"Its worker died on each of {attempt} tries; the last: {message}.",
                        attempts=attempt, worker=slot.name)))
                continue
            except ray.exceptions.RayTaskError as exc:  # a bug in the pipeline: reported, not retried
                idle.append(slot)
                on_event(SlideDone(slide.index, SlideReport(slide.path, SLIDE_FAILED, f"Unexpected error: {_cause(exc)}",
                                                            attempts=attempt, worker=slot.name)))
                continue
            idle.append(slot)
            on_event(_finish(slide, attempt, payload, cache))


def _relay_progress(board: Any, pending: Any, running: set[int], on_event: Callable[[object], None]) -> Any:
    """Pass on what the workers posted, for slides still running; returns the next request.

    The request is collected on a later turn when it is not back yet, so the driver never waits
    for it.
    """
    if pending is None:
        return board.take.remote()
    ready, _ = ray.wait([pending], timeout=0)
    if not ready:
        return pending
    try:
        latest: dict[int, tuple[int, int]] = ray.get(pending)
    except ray.exceptions.RayError as exc:  # progress is a nicety: the run goes on without it
        log.warning("Cohort progress unavailable: %s", _cause(exc))
        return board.take.remote()
    for index, (done, total) in sorted(latest.items()):
        if index in running:
            on_event(SlideProgress(index, done, total))
    return board.take.remote()


def _finish(slide: CohortSlide, attempt: int, payload: _Payload, cache: ResultCache | None) -> SlideDone:
    """The slide's :class:`SlideDone`: a cache hit read back here, a new result saved into the cache."""
    report = dataclasses.replace(payload.report, attempts=attempt)
    result = payload.result
    if payload.cached_provenance is not None and cache is not None:
        result = cache.load(report.cache_key)
        if result is None:  # dropped from the cache meanwhile: an empty result would be a lie
            return SlideDone(slide.index, dataclasses.replace(
                report, status=SLIDE_FAILED, from_cache=False,
                error="Its stored result vanished from the cache during the run; analyse it again."))
        name_for_this_run(result, payload.cached_provenance)
        report = dataclasses.replace(report, summary=result.summary(), domain=result.provenance.domain_check)
    elif result is not None and cache is not None and report.cache_key:
        cache.save(report.cache_key, result)
    return SlideDone(slide.index, report, result, payload.thumbnail)
