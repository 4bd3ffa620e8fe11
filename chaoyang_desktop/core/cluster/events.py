"""What a cohort run on a cluster reports, as plain values (no Ray, no Qt).

:func:`~chaoyang_desktop.core.cluster.ray_cohort.run_cohort_on_ray` calls its ``on_event`` with
these, on the thread that called it, in the order they happen. Each slide ends with exactly one
:class:`SlideDone`; before it come one :class:`SlideStarted` per attempt, :class:`SlideProgress`
now and then while its tiles are classified, and one :class:`WorkerLost` per attempt whose
worker died.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from chaoyang_desktop.core.analysis.cohort import SlideReport
    from chaoyang_desktop.core.analysis.results import AnalysisResult

#: Local Ray on this computer (started for the run, stopped after it).
ADDRESS_LOCAL = "local"
#: The cluster this computer already belongs to (``ray start`` ran here, or ``RAY_ADDRESS`` is set).
ADDRESS_AUTO = "auto"
#: A slide whose worker dies is tried on a fresh worker this many times in all.
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how a cohort runs on Ray.

    Attributes:
        address: ``local``, ``auto``, or a cluster address (``10.0.0.1:6379``, ``ray://head:10001``).
        workers: How many workers (each loads the model once); None: one per GPU of the cluster,
            or its CPUs divided by ``cpus_per_worker`` when it has no GPU.
        cpus_per_worker: CPUs each worker reserves on a CPU-only cluster (PyTorch uses that many
            threads).
        max_attempts: Tries per slide when its worker dies (a slide that fails with an error of
            its own, an unreadable file say, is not tried again).
        local_cpus: With ``local``: the CPUs the local Ray may use (None: all of them).
    """

    address: str = ADDRESS_LOCAL
    workers: int | None = None
    cpus_per_worker: int = 1
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    local_cpus: int | None = None

    def __post_init__(self) -> None:
        from chaoyang_desktop.core.errors import SettingsError

        if not self.address.strip():
            raise SettingsError("The Ray address is empty: give an address (head:6379), auto or local.")
        if self.workers is not None and self.workers < 1:
            raise SettingsError(f"The number of Ray workers must be at least 1 (got {self.workers}).")
        if self.cpus_per_worker < 1:
            raise SettingsError(f"Each Ray worker needs at least 1 CPU (got {self.cpus_per_worker}).")
        if self.max_attempts < 1:
            raise SettingsError(f"A slide must be tried at least once (got {self.max_attempts} attempts).")


@dataclass(frozen=True)
class CohortSlide:
    """One slide sent to the cluster: its place in the cohort and its path (which every node reads)."""

    index: int
    path: str
    mpp: float | None = None


@dataclass(frozen=True)
class ClusterReady:
    """The cluster is up: its workers, in words ("2 workers, 1 CPU each, on 1 node")."""

    description: str
    workers: int


@dataclass(frozen=True)
class SlideStarted:
    """Slide ``index`` went to a worker (``attempt`` counts from 1)."""

    index: int
    attempt: int
    worker: str
    pid: int


@dataclass(frozen=True)
class SlideProgress:
    """Slide ``index`` has ``done`` of its ``total`` tiles classified (sent about once a second)."""

    index: int
    done: int
    total: int


@dataclass(frozen=True)
class WorkerLost:
    """The worker running slide ``index`` died; the slide goes to another one unless it ran out of tries."""

    index: int
    attempt: int
    message: str


@dataclass(frozen=True)
class SlideDone:
    """Slide ``index`` ended: its report, and its result and thumbnail when the model ran or the cache had it."""

    index: int
    report: SlideReport
    result: AnalysisResult | None = None
    thumbnail: np.ndarray | None = None
