"""GUI test fixtures: an isolated settings file, a tiny random model, a main window that is shut down."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings

from tests.model_factory import TINY_CONFIG, write_checkpoint


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("models") / "tiny", TINY_CONFIG)
    return folder


@pytest.fixture(autouse=True)
def _qt_names(qapp: object):  # type: ignore[no-untyped-def]
    # Anything that would still reach a default QSettings lands under a test name (and the XDG
    # folders are temporary anyway, see tests/conftest.py).
    QCoreApplication.setOrganizationName("ChaoyangDesktopTests")
    QCoreApplication.setApplicationName("chaoyang-desktop-tests")
    yield
    # A test's own lambdas and locals can hold its widgets in reference cycles (the app's code
    # holds none: tests/gui/test_gc_probe.py). Collected later, they could be freed by Python's
    # collector on whichever thread runs it, a worker thread of the next test included, and Qt
    # crashes (seen once in 14 runs, inside an evaluation job). So: deferred deletions and the
    # collector run here, on the GUI thread, after every test.
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def app_settings(settings_file: Path):  # type: ignore[no-untyped-def]
    from chaoyang_desktop.gui.settings import AppSettings

    s = AppSettings(QSettings(str(settings_file), QSettings.Format.IniFormat))
    s.set("ui/confirm_analysis", False)
    s.set("ui/ask_before_stopping_a_run", False)  # the tests that want the question turn it on
    s.set("engine/batch_size", 8)
    s.set("engine/device", "cpu")
    return s


@pytest.fixture
def make_window(qtbot, app_settings, tiny_model):  # type: ignore[no-untyped-def]
    """Factory of shown main windows; each is closed (worker stopped) at the end of the test."""
    from chaoyang_desktop.gui.main_window import MainWindow

    windows: list[MainWindow] = []

    def make(model: str | None = None, **kw: object) -> MainWindow:
        w = MainWindow(app_settings, model=str(tiny_model) if model is None else model, **kw)
        w.resize(1200, 800)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        if w.isVisible():
            w.close()
        assert w.host.thread.isFinished()
        w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # now, on this thread


@pytest.fixture
def window(make_window):  # type: ignore[no-untyped-def]
    return make_window()


@pytest.fixture
def cmu_slide(test_data: Path) -> Path:
    return test_data / "slides" / "CMU-1-Small-Region.svs"


@pytest.fixture
def slow_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every forward pass sleeps 0.2 s: a run lasts long enough to be interrupted."""
    from chaoyang_desktop.core.model.inference import Classifier

    real_forward = Classifier._forward

    def slow_forward(self: Classifier, x):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return real_forward(self, x)

    monkeypatch.setattr(Classifier, "_forward", slow_forward)
