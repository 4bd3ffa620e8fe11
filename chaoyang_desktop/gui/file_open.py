"""macOS opens documents by sending the app a QFileOpenEvent, not by command-line arguments."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QFileOpenEvent


class FileOpenFilter(QObject):
    """Installed on the QApplication; emits ``file_opened`` for Finder double-clicks and drops on the Dock icon."""

    file_opened = Signal(str)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.FileOpen and isinstance(event, QFileOpenEvent):
            path = event.file() or event.url().toLocalFile()
            if path:
                self.file_opened.emit(path)
                return True
        return super().eventFilter(watched, event)
