"""Error and information dialogs that never block the event loop (the worker keeps reporting)."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from chaoyang_desktop import __version__

log = logging.getLogger(__name__)


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """A window-modal error box with the engine's message (and a traceback under Details)."""
    log.error("%s: %s%s", title, message, f"\n{details}" if details else "")
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("error_dialog")
    box.setTextFormat(Qt.TextFormat.PlainText)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.open()
    return box


def show_about(parent: QWidget, notice: str) -> QMessageBox:
    """What the app does, its version, and that the model's weights are not part of it."""
    box = QMessageBox(parent)
    box.setWindowTitle("About Chaoyang Desktop")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(
        f"<h3>Chaoyang Desktop {__version__}</h3>"
        "<p>Classifies colon H&amp;E tissue (Normal, Serrated, Adenocarcinoma, Adenoma) with a Vision "
        "Transformer fine-tuned on the Chaoyang dataset.</p>"
        f"<p><b>{notice}</b></p>"
        "<p>The model weights are not part of this application; they are downloaded to this computer "
        "under their own non-commercial licence.</p>")
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def open_log_folder() -> None:
    """Show the log folder in the file manager (created when missing)."""
    from chaoyang_desktop.core.paths import log_dir

    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
