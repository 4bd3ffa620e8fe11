"""A handle on one job submitted to the worker: its own signals, on the GUI thread.

superqt's ``create_worker`` is the model: whoever submits a job gets an object whose signals
carry only that job's messages, so no consumer filters job ids (it used to be written three
times). The :class:`~chaoyang_desktop.gui.analysis_worker.WorkerHost` owns every handle (Qt
parent), routes the worker's messages to it by id, and deletes it (``deleteLater``, on the GUI
thread) after its last message. A consumer that loses interest in a job calls :meth:`detach`:
from then on the handle stays silent, except for :attr:`ended`.

Each job ends with exactly one of :attr:`finished`, :attr:`failed`, :attr:`model_missing`,
:attr:`out_of_domain` or :attr:`no_tiles`, followed by :attr:`ended`.

Payloads (PySide6 signals carry Python objects as ``object``; their classes are fixed):
    plan_ready: :class:`~chaoyang_desktop.gui.analysis_worker.PlanReady`
    scheduler_ready: :class:`~chaoyang_desktop.core.analysis.pipeline.TileScheduler`
    batch_ready: :class:`~chaoyang_desktop.core.analysis.pipeline.BatchUpdate`
    patch_results: ``list`` of :class:`~chaoyang_desktop.core.analysis.patches.PatchResult`
    finished: status (``done`` or ``cancelled``) and, by job, :class:`SlideOutcome`,
        :class:`~chaoyang_desktop.core.analysis.cohort.SlideReport` (a cohort's slide),
        :class:`ExportDone`, :class:`EvaluationOutcome`, :class:`DeviceInfo` or None.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal


class JobHandle(QObject):
    """One job's messages, and the way to cancel it."""

    started = Signal()
    plan_ready = Signal(object)
    scheduler_ready = Signal(object)
    batch_ready = Signal(object)
    patch_results = Signal(object)
    progress = Signal(int, int, float)  # done, total, elapsed seconds
    finished = Signal(str, object)  # status, payload
    failed = Signal(str, str)  # message, details
    model_missing = Signal(str)
    out_of_domain = Signal(str)  # the domain check's findings
    no_tiles = Signal(str)  # why the plan keeps no tile
    #: Another job was submitted in front of this one, which was cancelled for it.
    replaced = Signal()
    #: The job's last message was delivered (or it was dropped before it ran).
    ended = Signal()

    def __init__(self, job_id: int, job: object, cancel_event: threading.Event, parent: QObject) -> None:
        super().__init__(parent)
        self.id = job_id
        self.job = job
        self.kind = type(job).__name__
        self._cancel = cancel_event
        self.attached = True
        self.running = True
        #: Kept running while the user works on another slide: later jobs wait behind it.
        self.background = False
        #: A background job that steps aside for the user's: a job submitted after it cancels it
        #: (its finished work is kept) instead of waiting, and its owner sends it again later.
        self.yields = False
        #: How it ended: ``done``, ``cancelled``, ``failed``, ``model-missing``, ``out-of-domain``,
        #: ``no-tiles`` ("" while it runs).
        self.outcome = ""

    @property
    def waited_for(self) -> bool:
        """Kept running in the background with later jobs waiting behind it (not one that yields)."""
        return self.background and not self.yields

    def cancel(self) -> None:
        """Ask the job to stop at its next check; returns at once (its ``finished`` follows)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def detach(self) -> None:
        """Deliver nothing more to this job's listeners (but :attr:`ended`)."""
        self.attached = False

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.kind}{'' if self.running else ' ended'}>"
