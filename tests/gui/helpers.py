"""Helpers shared by GUI test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest


def wait_until(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Process events until ``condition()`` (module fixtures cannot use the function-scoped qtbot)."""
    import time

    from PySide6.QtTest import QTest

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        QTest.qWait(10)


@contextlib.contextmanager
def analysed_cmu_window(tiny_model: Path, test_data: Path, home: Path, size: tuple[int, int],
                        before_analysis=None):  # type: ignore[no-untyped-def]
    """A main window that opened CMU-1-Small-Region and analysed it with the tiny model.

    For module-scoped fixtures: they run before the per-test isolation of tests/conftest.py, so
    the user folders are moved into ``home`` here too. ``before_analysis(window)`` runs once the
    slide is painted. Yields ``(window, status)``; the window is closed and its thread checked after.
    """
    from PySide6.QtCore import QSettings

    from chaoyang_desktop.gui.main_window import MainWindow
    from chaoyang_desktop.gui.settings import AppSettings

    mp = pytest.MonkeyPatch()
    for var, sub in (("HF_HOME", "hf"), ("CHAOYANG_DATA_DIR", "chaoyang"), ("XDG_CONFIG_HOME", "config"),
                     ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data")):
        mp.setenv(var, str(home / sub))
    settings = AppSettings(QSettings(str(home / "settings.ini"), QSettings.Format.IniFormat))
    settings.set("ui/confirm_analysis", False)
    settings.set("engine/device", "cpu")
    settings.set("engine/batch_size", 8)
    window = MainWindow(settings, model=str(tiny_model))
    window.resize(*size)
    window.show()
    try:
        assert window.open_paths([str(test_data / "slides" / "CMU-1-Small-Region.svs")])
        wait_until(window.slide_view.is_idle)
        if before_analysis is not None:
            before_analysis(window)
        finished: list[str] = []
        window.analysis_finished.connect(finished.append)
        window.run_analysis(fresh=True)
        wait_until(lambda: bool(finished))
        yield window, finished[0]
    finally:
        window.close()
        assert window.host.thread.isFinished()
        window.deleteLater()
        mp.undo()
