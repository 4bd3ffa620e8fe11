"""The "no model" dialog: download the model (progress, Cancel, licence note) or choose a local folder.

The download runs on the app's worker thread like any other job; this dialog only shows its
progress and sets its cancel event. Choosing a folder checks that it holds a model (config.json
and weights) before it is accepted.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID
from chaoyang_desktop.gui.analysis_worker import STATUS_DONE, DownloadJob, WorkerHost
from chaoyang_desktop.gui.job_handle import JobHandle


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def gui_words(message: str) -> str:
    """An engine message without its command-line advice (sentences naming `commands` or --options).

    The engine's messages serve the command line too; a dialog has buttons for the same advice.
    """
    sentences = re.split(r"(?<=[.!?])\s+", message.strip())
    return " ".join(x for x in sentences if "`" not in x and " --" not in x)


class ModelDialog(QDialog):
    """Offers Download or Choose local folder; ``model_chosen(spec)`` when a model is ready."""

    model_chosen = Signal(str)

    def __init__(self, host: WorkerHost, message: str, repo_id: str = DEFAULT_MODEL_ID,
                 parent: QWidget | None = None, *, current: str | None = None) -> None:
        """``current``: the model in use, when there is one (the dialog then offers a change
        instead of saying the model is missing)."""
        from chaoyang_desktop.core.model.model_source import LICENCE_NOTE  # imports torch: only when shown

        super().__init__(parent)
        self.setObjectName("model_dialog")
        self.setWindowTitle("Model needed")
        self.setMinimumWidth(560)
        self._host = host
        self._repo_id = repo_id
        self._job: JobHandle | None = None
        layout = QVBoxLayout(self)
        if current:
            head = QLabel(f"<b>Model in use:</b> <code>{current}</code><br>Download another copy of the published "
                          "model, or choose a folder that holds a model.")
            self.setWindowTitle("Choose Model")
        else:
            head = QLabel(f"<b>The classification model is not on this computer yet.</b><br>{gui_words(message)}"
                          "<br>Download it here (once), or choose a folder that holds a copy (config.json and "
                          "the weights).")
        head.setWordWrap(True)
        head.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(head)
        what = QLabel(f"Model: <code>{repo_id}</code> (Vision Transformer, about 345 MB), "
                      "downloaded once into the Hugging Face cache.")
        what.setWordWrap(True)
        layout.addWidget(what)
        licence = QLabel(f"<b>Licence.</b> {LICENCE_NOTE}")
        licence.setWordWrap(True)
        licence.setFrameShape(QFrame.Shape.StyledPanel)
        licence.setStyleSheet("QLabel { background: #fff8e1; color: #3b3000; padding: 8px; }")
        layout.addWidget(licence)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.folder_button = QPushButton("Choose local folder\u2026")
        self.cancel_button = QPushButton("Cancel")
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.download_button.clicked.connect(self.start_download)
        self.folder_button.clicked.connect(self._browse)
        self.cancel_button.clicked.connect(self._cancel)

    # ----- download ---------------------------------------------------------------------------------
    def start_download(self) -> None:
        self._job = job = self._host.submit(DownloadJob(self._repo_id))
        job.progress.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        self.download_button.setEnabled(False)
        self.folder_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.status.setText("Connecting to the Hugging Face hub\u2026")

    def _on_progress(self, done: int, total: int, elapsed: float) -> None:
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(round(1000 * done / total))
            rate = done / elapsed if elapsed > 0 else 0
            self.status.setText(f"{_megabytes(done)} of {_megabytes(total)}"
                                + (f" \u00b7 {rate / 1e6:.1f} MB/s" if rate else ""))

    def _on_finished(self, status: str, payload: object) -> None:
        self._job = None
        if status == STATUS_DONE:
            self.status.setText("Downloaded.")
            self.model_chosen.emit(self._repo_id)
            self.accept()
        else:
            self._reset("Download cancelled.")

    def _on_failed(self, message: str, details: str) -> None:
        self._job = None
        self._reset(gui_words(message) or message)

    def _reset(self, text: str) -> None:
        self.progress.hide()
        self.download_button.setEnabled(True)
        self.folder_button.setEnabled(True)
        self.status.setText(text)

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.status.setText("Cancelling\u2026")
        else:
            self.reject()

    def reject(self) -> None:
        if self._job is not None:
            self._job.cancel()
        super().reject()

    # ----- local folder ----------------------------------------------------------------------------------
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the model folder (with config.json and the weights)")
        if folder:
            self.choose_folder(folder)

    def choose_folder(self, folder: str) -> bool:
        """Accept ``folder`` if it holds a model; otherwise say why and stay open."""
        from pathlib import Path

        from chaoyang_desktop.core.model.checkpoint import find_weights
        from chaoyang_desktop.core.model.model_source import resolve_model

        try:
            location = resolve_model(folder)
            find_weights(location.model_dir)
        except ChaoyangError as exc:
            self.status.setText(gui_words(str(exc)) or str(exc))
            return False
        self.model_chosen.emit(str(Path(location.model_dir)))
        self.accept()
        return True
