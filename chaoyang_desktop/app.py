"""Builds the QApplication and the main window: the only glue between the GUI and the core."""

from __future__ import annotations

import sys


def main() -> int:
    """Entry point of the `chaoyang-desktop-gui` launcher (no console on Windows)."""
    return run_gui(sys.argv[1:])


def run_gui(paths: list[str], model: str | None = None) -> int:
    """Start the desktop app, opening ``paths`` if given; returns the exit code."""
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    from chaoyang_desktop import __version__

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Chaoyang Desktop")
    window = QMainWindow()
    window.setWindowTitle(f"Chaoyang Desktop {__version__}")
    window.setCentralWidget(QLabel("\n".join(paths) or "Open a slide, an image or a folder of patches."))
    window.resize(1200, 800)
    window.show()
    return int(app.exec())
