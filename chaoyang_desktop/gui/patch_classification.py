"""Classifying the patches of the gallery on the worker, with progress, cancel and one end signal.

Depends on the job host, the settings and the widgets it fills (gallery, progress), never on the
window. Whether quality control leaves patches of glass, pen ink, blur or dark artefacts
unclassified is the app's "analysis/qc" setting, the one slides use, read when each
classification starts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from chaoyang_desktop.gui.analysis_worker import STATUS_DONE, ModelRequest, PatchJob
from chaoyang_desktop.gui.settings import AppSettings

if TYPE_CHECKING:
    from chaoyang_desktop.gui.analysis_worker import WorkerHost
    from chaoyang_desktop.gui.gallery import PatchGallery
    from chaoyang_desktop.gui.job_handle import JobHandle
    from chaoyang_desktop.gui.job_status import JobProgress


class PatchClassification(QObject):
    """One classification of the gallery's patches at a time."""

    #: How it ended (``done``, ``cancelled``, ``failed``, ``model-missing``), a message, details.
    ended = Signal(str, str, str)

    def __init__(self, host: WorkerHost, gallery: PatchGallery, progress: JobProgress,
                 settings: AppSettings, parent: QObject | None = None) -> None:
        """``settings``: where the QC switch is read (the same "analysis/qc" as slides)."""
        super().__init__(parent)
        self.host = host
        self.gallery = gallery
        self.progress = progress
        self.settings = settings
        self.job: JobHandle | None = None
        self._started = 0.0

    def qc_enabled(self) -> bool:
        """The "analysis/qc" setting now."""
        return bool(self.settings.get("analysis/qc"))

    @property
    def running(self) -> bool:
        return self.job is not None

    def start(self, model: ModelRequest, workers: int, qc: bool | None = None) -> None:
        """Classify every patch of the gallery; ``qc`` None: as the "analysis/qc" setting says."""
        paths = self.gallery.paths
        if not paths:
            return
        self.gallery.clear_results()
        job = self.job = self.host.submit(PatchJob(tuple(paths), model, workers=workers,
                                                   qc=self.qc_enabled() if qc is None else qc))
        job.patch_results.connect(self.gallery.add_results)
        job.progress.connect(self.progress.update_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.model_missing.connect(self._on_model_missing)
        self._started = time.perf_counter()
        self.progress.start("Classifying", "patches", total=len(paths))

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.progress.set_cancelling()

    def leave(self) -> None:
        """Another slide or folder opens: stop, and hear nothing more of this job."""
        if self.job is not None:
            self.job.cancel()
            self.job.detach()
            self.job = None

    def _end(self, how: str, message: str, details: str = "") -> None:
        self.job = None
        self.progress.finish()
        self.ended.emit(how, message, details)

    def _on_finished(self, status: str, payload: object) -> None:
        n = len(self.gallery.results())
        took = time.perf_counter() - self._started
        done = status == STATUS_DONE
        flagged = len(self.gallery.qc_flagged())
        qc = f" ({flagged} left out by quality control)" if flagged else ""
        patches = f"{n} patch{'es' if n != 1 else ''}"
        self._end("done" if done else "cancelled", f"Classified {patches} in {took:.1f} s{qc}" if done
                  else f"Classification cancelled after {patches}{qc}")

    def _on_failed(self, message: str, details: str) -> None:
        self._end("failed", message, details)

    def _on_model_missing(self, message: str) -> None:
        self._end("model-missing", message)
