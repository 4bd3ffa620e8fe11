"""``chaoyang-desktop view PATH [--analyze] [--screenshot FILE.png]``: open, analyse, wait, capture.

The script drives a :class:`MainWindow` through its public methods and signals, step by step:
open PATH, optionally run the analysis (or classify the patches), wait until it has finished and
every visible tile and thumbnail is painted, then save a PNG of the window and quit. Failures
(cannot open, model missing, analysis error) end it with exit status 1 and the engine's message.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from chaoyang_desktop.gui.main_window import PAGE_GALLERY, PAGE_SLIDE, MainWindow

log = logging.getLogger(__name__)

#: Longest wait for the view to be painted after the analysis, before capturing anyway.
PAINT_TIMEOUT_S = 60.0


class ViewScript(QObject):
    """Runs the ``view`` steps on the event loop; :attr:`exit_code` says how it ended.

    ``done`` is emitted when a screenshot run has ended (saved or failed); the caller stops its
    event loop and closes the window. Nothing here quits the application, so the script can run
    inside a larger program (or a test session) too.
    """

    done = Signal(int)

    def __init__(self, window: MainWindow, path: str, analyze: bool, screenshot: str | None) -> None:
        super().__init__(window)
        self.window = window
        self.path = path
        self.analyze = analyze
        self.screenshot = screenshot
        self.exit_code = 0
        self._waiting_since = 0.0
        self._poll = QTimer(self, interval=100)
        self._poll.timeout.connect(self._check_painted)
        self._grabs = 0

    def start(self) -> None:
        w = self.window
        if self.screenshot:
            folder = Path(self.screenshot).resolve().parent
            if not folder.is_dir():
                self.fail(f"Cannot write {self.screenshot}: the folder {folder} does not exist.")
                return
        if not w.open_paths([self.path], auto_classify=self.analyze):
            self.fail(w.last_error or f"Cannot open {self.path}.")
            return
        if self.analyze:
            if self.screenshot is not None:
                w.analysis_finished.connect(self._on_finished)
                w.error_shown.connect(self._on_error)
            if w.stack.currentIndex() == PAGE_SLIDE:
                w.analyze(confirm=False)
            # A gallery starts classifying on open (auto_classify above).
        elif self.screenshot is None:
            return  # interactive: the window stays open
        else:
            self._wait_painted()

    def _on_error(self, message: str) -> None:
        self.fail(message)

    def _on_finished(self, status: str) -> None:
        if status == "done":
            if self.screenshot is None:
                return
            self._wait_painted()
        elif status == "model-missing":
            pass  # the error signal carries the message
        else:
            self.fail(self.window.last_error or f"The analysis ended: {status}.")

    def _wait_painted(self) -> None:
        self._waiting_since = time.monotonic()
        self._poll.start()

    def _is_painted(self) -> bool:
        w = self.window
        if w.stack.currentIndex() == PAGE_SLIDE:
            return w.slide_view.is_idle() and not w.analysis.refresh_pending()
        if w.stack.currentIndex() == PAGE_GALLERY:
            w.gallery.view.viewport().repaint()  # paints, and so asks for the visible thumbnails
            return w.gallery.reader.pending() == 0
        return True

    def _check_painted(self) -> None:
        timed_out = time.monotonic() - self._waiting_since > PAINT_TIMEOUT_S
        if not (self._is_painted() or timed_out):
            self._grabs = 0
            return
        self._grabs += 1
        if self._grabs < 3 and not timed_out:
            return  # stable for a few polls: late tiles or repaints have landed
        if timed_out:
            log.warning("The view was not fully painted after %.0f s; capturing anyway.", PAINT_TIMEOUT_S)
        self._poll.stop()
        self.capture()

    def capture(self) -> None:
        from chaoyang_desktop.core import atomic
        from chaoyang_desktop.core.errors import ChaoyangError

        assert self.screenshot is not None
        image = self.window.grab().toImage()
        try:
            with atomic.atomic_path(self.screenshot, suffix=".png") as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise OSError(f"Qt could not encode {self.screenshot}")
        except (ChaoyangError, OSError) as exc:
            self.fail(str(exc))
            return
        print(self.screenshot)
        # As ``classify``: the picture is written, but unreadable patches make the run fail.
        failed = self.window.gallery.unreadable() if self.window.stack.currentIndex() == PAGE_GALLERY else []
        for record in failed:
            print(f"error: {record.error}", file=sys.stderr)
        self.finish(1 if failed and self.analyze else 0)

    def fail(self, message: str) -> None:
        if self.exit_code:  # the first failure is the one to report; later ones follow from it
            return
        print(f"error: {message}", file=sys.stderr)
        self.finish(1)

    def finish(self, code: int) -> None:
        if self.exit_code == 0:
            self.exit_code = code
        self._poll.stop()
        self.done.emit(self.exit_code)
