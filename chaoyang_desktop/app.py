"""Builds the QApplication and the main window: the only glue between the GUI and the core."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
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

    if _log_handler is not None:
        return getattr(_log_handler, "baseFilename", None)
    try:
        folder = log_dir()
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
    """An exception escaping a slot is logged and shown, instead of killing the app silently."""
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        log.critical("Unhandled exception", exc_info=(exc_type, exc, tb))
        try:
            import traceback

            from PySide6.QtWidgets import QApplication

            from chaoyang_desktop.gui.dialogs import show_error

            if QApplication.instance() is not None:
                show_error(QApplication.activeWindow(), "Unexpected error", f"{exc_type.__name__}: {exc}",
                           "".join(traceback.format_exception(exc_type, exc, tb)))
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
        if more:
            window.open_paths(list(more))
        if window.isMinimized():
            window.showNormal()
        window.raise_()
        window.activateWindow()

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
    if args.batch_size < 1:
        raise ChaoyangError("--batch-size must be at least 1.")
    if args.mpp is not None and not args.mpp > 0:
        raise ChaoyangError("--mpp must be a positive number of micrometres per pixel.")
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
    settings = AppSettings(user_settings())
    stored = settings.model_request(args.model)
    request = ModelRequest(spec=args.model or stored.spec, device=args.device, precision=args.precision,
                           batch_size=args.batch_size, threads=args.threads,
                           channel_order=args.channel_order or stored.channel_order,
                           resize=args.resize or stored.resize)
    overrides = {"tile_um": args.tile_um, "stride_um": args.stride_um, "tissue_threshold": args.tissue_threshold}
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
