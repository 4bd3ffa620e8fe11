"""The questions asked about a running or refused analysis, as window-modal message boxes.

Each opens without blocking the event loop and calls back with the answer, so the worker's
batches keep arriving (and tests can answer by clicking a button).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

# Answers to :func:`ask_before_leaving_run`.
STOP = "stop"
BACKGROUND = "background"
STAY = "stay"


def ask_before_leaving_run(parent: QWidget, name: str, done: str, action: str,
                           answered: Callable[[str], None]) -> QMessageBox:
    """Ask before opening something else (``Open``), closing the slide (``Close``) or quitting (``Quit``).

    Answers :data:`STOP` (cancel it, keeping its finished tiles), :data:`BACKGROUND` (keep it
    running for its own slide; not offered when quitting) or :data:`STAY` (do nothing).
    """
    box = QMessageBox(QMessageBox.Icon.Question, "An analysis is running", f"{name} is being analysed{done}.",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("leave_run_dialog")
    doing = {"Open": "Opening something else", "Close": "Closing the slide"}.get(action, "Quitting")
    text = (f"{doing} stops it; its finished tiles are kept, and Analyze on that slide later resumes where it "
            "stopped.")
    buttons = {box.addButton(f"Stop and {action}", QMessageBox.ButtonRole.AcceptRole): STOP}
    if action != "Quit":
        text += (" Or keep it running in the background: its result is stored, and shown when you open that "
                 "slide again.")
        buttons[box.addButton(f"{action}, Keep Running in Background", QMessageBox.ButtonRole.ActionRole)] = BACKGROUND
    stay = box.addButton("Keep Analysing", QMessageBox.ButtonRole.RejectRole)
    buttons[stay] = STAY
    box.setInformativeText(text)
    box.setDefaultButton(stay)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.finished.connect(lambda _code: answered(buttons.get(box.clickedButton(), STAY)))
    box.open()
    return box


def ask_out_of_domain(parent: QWidget, message: str, anyway: Callable[[], None]) -> QMessageBox:
    """Say why the domain check refused the slide, and offer to analyse it anyway."""
    box = QMessageBox(QMessageBox.Icon.Warning, "The model cannot judge this slide",
                      "This slide is outside what the model was trained on, so its classes would mean nothing.",
                      QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("out_of_domain_dialog")
    box.setInformativeText(f"{message}\n\nIf you analyse it anyway, the summary, exports and report say so.")
    button = box.addButton("Analyze Anyway", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.WindowModal)
    box.finished.connect(lambda _code: anyway() if box.clickedButton() is button else None)
    box.open()
    return box
