"""Builds the QApplication and the main window: the only glue between the GUI and the core."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

LOG_FILE_NAME = "chaoyang-desktop.log"
_log_handler: logging.Handler | None = None


def main() -> int:
    """Entry point of the `chaoyang-desktop-gui` launcher (no console on Windows)."""
    return run_gui(sys.argv[1:])


def setup_logging() -> str | None:
    """Log to a rotating file in the user's data directory; returns its path (None if unwritable)."""
    global _log_handler
    from chaoyang_desktop.core.paths import log_dir

    folder = log_dir()
    if _log_handler is not None:
        current = getattr(_log_handler, "baseFilename", None)
        if current == str(folder / LOG_FILE_NAME):
            return current
        # The data folder moved (CHAOYANG_DATA_DIR changed within this process): follow it.
        logging.getLogger().removeHandler(_log_handler)
        _log_handler.close()
        _log_handler = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            folder / LOG_FILE_NAME, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:
        print(f"warning: cannot write the log file ({exc}); logging to stderr only", file=sys.stderr)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
        # Keep the console as quiet as the CLI asked for: only the file gets INFO.
        for h in root.handlers:
            if h is not handler and h.level == logging.NOTSET:
                h.setLevel(logging.WARNING)
    _log_handler = handler
    return str(folder / LOG_FILE_NAME)


def _install_qt_message_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    qt_log = logging.getLogger("qt")
    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}

    def handler(kind: Any, context: Any, message: str) -> None:
        qt_log.log(levels.get(kind, logging.WARNING), message)

    qInstallMessageHandler(handler)


def _install_excepthook() -> None:
    """An exception escaping a slot is logged and shown, instead of killing the app silently.

    The hook may run on any thread (a worker's slot); it only logs there and posts the message
    to an object of the GUI thread, which shows the dialog. Building widgets off the GUI thread
    crashes Qt.
    """
    from PySide6.QtCore import QCoreApplication, QObject, Signal, Slot

    class ErrorPoster(QObject):
        post = Signal(str, str)

        def __init__(self, parent: QObject | None) -> None:
            super().__init__(parent)
            self.box: Any = None  # the last dialog: a parentless one would be deleted at once

        @Slot(str, str)
        def show(self, message: str, details: str) -> None:
            from PySide6.QtWidgets import QApplication

            from chaoyang_desktop.gui.dialogs import show_error

            self.box = show_error(QApplication.activeWindow(), "Unexpected error", message, details)

    poster = ErrorPoster(QCoreApplication.instance())  # the application owns it, on the GUI thread
    poster.post.connect(poster.show)  # queued when emitted from another thread
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        log.critical("Unhandled exception", exc_info=(exc_type, exc, tb))
        try:
            import traceback

            poster.post.emit(f"{exc_type.__name__}: {exc}", "".join(traceback.format_exception(exc_type, exc, tb)))
        except Exception:  # never fail inside the hook
            previous(exc_type, exc, tb)

    sys.excepthook = hook


def make_application(argv0: str = "chaoyang-desktop") -> QApplication:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from chaoyang_desktop import __version__
    from chaoyang_desktop.gui.settings import APPLICATION, ORGANIZATION

    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    app = QApplication.instance() or QApplication([argv0])
    app.setApplicationDisplayName(APPLICATION)
    try:
        from PySide6.QtGui import QIcon

        from chaoyang_desktop.resources import icon_path

        icon = QIcon()
        for size in (16, 24, 32, 48, 64, 128, 256):
            icon.addFile(str(icon_path(size)))
        app.setWindowIcon(icon)
    except FileNotFoundError as exc:  # a damaged installation still runs, without its icon
        log.warning("%s", exc)
    return app  # type: ignore[return-value]


def run_gui(paths: list[str], model: str | None = None) -> int:
    """Start the desktop app, opening ``paths`` if given; returns the exit code.

    One app runs per user: a second launch (a second double-clicked slide) hands its paths to the
    running window and exits. On macOS, Finder sends documents as ``QFileOpenEvent``.
    """
    from chaoyang_desktop.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    from PySide6.QtCore import Qt, QTimer

    from chaoyang_desktop.gui.file_open import FileOpenFilter
    from chaoyang_desktop.gui.main_window import MainWindow
    from chaoyang_desktop.gui.settings import AppSettings, user_settings
    from chaoyang_desktop.gui.single_instance import SingleInstance

    setup_logging()
    app = make_application()
    _install_qt_message_handler()
    instance = SingleInstance()
    if instance.send_to_running(list(paths)):
        log.info("Handed %d path(s) to the running Chaoyang Desktop", len(paths))
        return 0
    instance.listen()
    _install_excepthook()
    window = MainWindow(AppSettings(user_settings()), model=model)
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    window.resize(1400, 900)
    window.restore_layout()
    window.show()

    def open_here(more: list[str]) -> None:
        # Raise first: a question the window asks about the paths (a run to stop) stays on top.
        if window.isMinimized():
            window.showNormal()
        window.raise_()
        window.activateWindow()
        if more:
            window.open_paths(list(more))

    instance.paths_received.connect(open_here)
    file_open = FileOpenFilter(app)
    app.installEventFilter(file_open)
    file_open.file_opened.connect(lambda path: open_here([path]))
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(list(paths)))
    log.info("Chaoyang Desktop started")
    try:
        return int(app.exec())
    finally:
        instance.close()
        app.removeEventFilter(file_open)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"--size must look like 1400x900 (got {text!r}).") from exc
    if not (320 <= w <= 10000 and 240 <= h <= 10000):
        raise ValueError(f"--size {text} is out of range (320x240 to 10000x10000).")
    return w, h


def run_view(args: argparse.Namespace) -> int:
    """``chaoyang-desktop view``: open PATH, optionally analyse it and save a screenshot."""
    from chaoyang_desktop.core.errors import ChaoyangError

    try:
        width, height = _parse_size(args.size)
    except ValueError as exc:
        raise ChaoyangError(str(exc)) from exc
    from chaoyang_desktop.core.model.engine_settings import EngineSettings
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.slide.reader import check_mpp

    # Every option is checked before Qt starts: a bad one is a one-line error, never a traceback.
    check_mpp(args.mpp, "--mpp")
    EngineSettings(batch_size=args.batch_size, threads=args.threads)
    threshold = AnalysisSettings().tissue_threshold if args.tissue_threshold is None else args.tissue_threshold
    AnalysisSettings(tile_um=args.tile_um, stride_um=args.stride_um, tissue_threshold=threshold).validated()
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and sys.platform.startswith("linux"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen

    from PySide6.QtCore import QEventLoop, Qt, QTimer

    from chaoyang_desktop.gui.analysis_worker import ModelRequest
    from chaoyang_desktop.gui.main_window import MainWindow
    from chaoyang_desktop.gui.settings import AppSettings, user_settings
    from chaoyang_desktop.gui.view_script import ViewScript

    setup_logging()
    app = make_application()
    _install_qt_message_handler()
    if args.screenshot is None:
        settings = AppSettings(user_settings())
    else:
        # A scripted view depends on its command line only, never on what the app last saved
        # (a 64 um tile size or a 60 % minimum confidence there changed screenshots; issue 15).
        import tempfile

        from PySide6.QtCore import QSettings

        scratch = tempfile.TemporaryDirectory(prefix="chaoyang-view-")
        settings = AppSettings(QSettings(os.path.join(scratch.name, "settings.ini"), QSettings.Format.IniFormat))
        settings.scratch = scratch  # type: ignore[attr-defined]  # removed with the settings
    stored = settings.model_request(args.model)
    request = ModelRequest(spec=args.model or stored.spec, device=args.device, precision=args.precision,
                           batch_size=args.batch_size, threads=args.threads,
                           channel_order=args.channel_order or stored.channel_order,
                           resize=args.resize or stored.resize, tta=bool(getattr(args, "tta", False)) or stored.tta,
                           calibration=getattr(args, "calibration", None) or stored.calibration)
    overrides = {"tile_um": args.tile_um, "stride_um": args.stride_um, "tissue_threshold": args.tissue_threshold,
                 "allow_out_of_domain": args.allow_out_of_domain}
    window = MainWindow(settings, model=args.model, interactive=args.screenshot is None,
                        model_request=request, analysis_overrides=overrides, mpp=args.mpp)
    window.resize(width, height)
    script = ViewScript(window, args.path, bool(args.analyze), args.screenshot)
    if args.screenshot is None:  # an interactive session that happens to start with PATH
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.show()
        QTimer.singleShot(0, script.start)
        code = int(app.exec())
        return script.exit_code or code
    # Scripted: a local event loop, so nothing quits an application that was already running.
    window.setAttribute(Qt.WidgetAttribute.WA_QuitOnClose, False)
    window.show()
    loop = QEventLoop()
    script.done.connect(loop.quit)
    QTimer.singleShot(0, script.start)
    loop.exec()
    window.close()
    window.deleteLater()
    return script.exit_code


# ----- smoke test ------------------------------------------------------------------------------------

#: Longest wait for each step of the smoke test (the first start of a frozen app can be slow).
SMOKE_TIMEOUT_S = 60.0


class SmokeTestError(Exception):
    """A step of the smoke test failed; the message says which and why."""


def _wait_for(app: Any, condition: Callable[[], bool], what: str, timeout_s: float) -> float:
    """Run the event loop until ``condition()``; returns the seconds it took, raises after ``timeout_s``."""
    from PySide6.QtCore import QEventLoop

    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout_s:
            raise SmokeTestError(f"{what} did not happen within {timeout_s:.0f} s.")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    return time.perf_counter() - started


def painted_fraction(rgb: Any, background: tuple[int, int, int]) -> float:
    """Share of the pixels that are neither the view's background nor flat white or black."""
    import numpy as np

    arr = np.asarray(rgb, dtype=np.int16)[:, :, :3]
    bg = np.all(np.abs(arr - np.array(background, dtype=np.int16)) <= 3, axis=2)
    flat = np.all(arr >= 250, axis=2) | np.all(arr <= 5, axis=2)
    return float(np.count_nonzero(~bg & ~flat)) / max(1, arr.shape[0] * arr.shape[1])


def _view_pixels(window: Any) -> Any:
    import numpy as np
    from PySide6.QtGui import QImage

    image = window.slide_view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), dtype=np.uint8, count=bpl * h).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def run_smoke_test(slide: str | None = None, timeout_s: float = SMOKE_TIMEOUT_S) -> int:
    """``chaoyang-desktop --smoke-test``: start offscreen, open the sample slide, check it paints, exit.

    Checks what a broken installation breaks: Qt and its platform plugin, the slide reader and its
    native libraries (the thumbnail, then full-resolution tiles), and the inference engine (the
    worker finds a device, which imports PyTorch). Settings live in a temporary file, so the user's
    recent files and window layout are untouched. Prints one line and returns 0, or prints the
    failed step and returns 1.
    """
    import tempfile
    from pathlib import Path

    t0 = time.perf_counter()
    # Always offscreen: the check must pass on a build server and must not flash a window.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from PySide6.QtCore import QSettings, qVersion

        from chaoyang_desktop import __version__
        from chaoyang_desktop.gui.main_window import MainWindow
        from chaoyang_desktop.gui.settings import AppSettings
        from chaoyang_desktop.gui.slide_view import BACKGROUND
        from chaoyang_desktop.resources import sample_slide_path

        path = Path(slide) if slide else sample_slide_path()
        if not path.is_file():
            raise SmokeTestError(f"The sample slide {path} is missing; reinstall the app.")
        setup_logging()
        app = make_application()
        _install_qt_message_handler()
        # The offscreen platform warns about window hints it ignores; that is not a failure.
        logging.getLogger("qt").addFilter(lambda record: "propagateSizeHints" not in record.getMessage())
    except (ImportError, OSError, SmokeTestError) as exc:
        _say(f"smoke test FAILED: cannot start: {exc}", error=True)
        return 1
    background = (BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue())
    window = None
    with tempfile.TemporaryDirectory(prefix="chaoyang-smoke-") as tmp:
        try:
            settings = AppSettings(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
            window = MainWindow(settings, interactive=False)
            window.resize(1200, 800)
            window.show()
            started = time.perf_counter() - t0
            view = window.slide_view
            if not window.open_paths([str(path)]):
                raise SmokeTestError(f"cannot open {path}: {window.last_error}")
            t_open = _wait_for(app, lambda: view.thumbnail_array is not None and view.is_idle(),
                               "Painting the slide overview", timeout_s)
            share = painted_fraction(_view_pixels(window), background)
            if share < 0.05:
                raise SmokeTestError(f"the slide overview painted blank ({100 * share:.1f} % of the view shows tissue).")
            view.one_to_one()  # full resolution: tiles come from the slide reader, not the thumbnail
            t_tiles = _wait_for(app, lambda: view.is_idle() and not view.loader.busy(),
                                "Painting full-resolution tiles", timeout_s)
            keys = view.visible_tiles()
            missing = [k for k in keys if view.loader.cached(k) is None]
            if not keys or missing:
                raise SmokeTestError(f"{len(missing)} of {len(keys)} full-resolution tiles could not be read from {path}.")
            share = painted_fraction(_view_pixels(window), background)
            if share < 0.05:
                raise SmokeTestError(f"full-resolution tiles painted blank ({100 * share:.1f} % of the view shows tissue).")
            t_dev = _wait_for(app, lambda: bool(window.device_label.description), "Finding the inference device",
                              timeout_s)
            device = window.device_label.description
        except SmokeTestError as exc:
            _say(f"smoke test FAILED: {exc} (log: {_log_file()})", error=True)
            return 1
        except Exception as exc:  # any bug is a failed smoke test, with its message
            log.exception("Smoke test crashed")
            _say(f"smoke test FAILED: {type(exc).__name__}: {exc} (log: {_log_file()})", error=True)
            return 1
        finally:
            if window is not None:
                window.close()
                window.deleteLater()
                app.processEvents()
    total = time.perf_counter() - t0
    _say(f"Chaoyang Desktop {__version__} smoke test OK: Qt {qVersion()} started in {started:.1f} s; "
         f"{path.name} painted in {t_open:.1f} s, full-resolution tiles in {t_tiles:.1f} s; "
         f"device {device} after {t_dev:.1f} s more; total {total:.1f} s")
    return 0


def _log_file() -> str:
    return str(getattr(_log_handler, "baseFilename", "none"))


def _say(line: str, error: bool = False) -> None:
    """Print the smoke test's line, and log it: a windowed Windows build has no stdout or stderr."""
    log.info("%s", line)  # the file only: the console gets the printed line
    stream = sys.stderr if error else sys.stdout
    if stream is not None:
        print(line, file=stream, flush=True)
