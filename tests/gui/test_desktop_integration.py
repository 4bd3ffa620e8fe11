"""Single instance over QLocalServer, and macOS file-open events."""

from __future__ import annotations

import uuid
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QUrl
from PySide6.QtGui import QFileOpenEvent
from PySide6.QtWidgets import QApplication

from chaoyang_desktop.gui.file_open import FileOpenFilter
from chaoyang_desktop.gui.single_instance import SingleInstance


def test_second_launch_hands_paths_to_the_first(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = f"chaoyang-test-{uuid.uuid4().hex[:8]}"
    first = SingleInstance(name)
    assert first.listen()
    try:
        second = SingleInstance(name)
        slide = tmp_path / "a b.svs"
        with qtbot.waitSignal(first.paths_received, timeout=5000) as got:
            assert second.send_to_running([str(slide)])
        assert got.args[0] == [str(slide.resolve())]
    finally:
        first.close()
    assert not SingleInstance(name).send_to_running(["x"])  # nobody listens any more


def test_file_open_event_is_forwarded(qtbot) -> None:  # type: ignore[no-untyped-def]
    app = QApplication.instance()
    assert app is not None
    filt = FileOpenFilter()
    app.installEventFilter(filt)
    try:
        with qtbot.waitSignal(filt.file_opened, timeout=2000) as got:
            QCoreApplication.sendEvent(app, QFileOpenEvent(QUrl.fromLocalFile("/data/slide.svs")))
        assert got.args[0] == "/data/slide.svs"
    finally:
        app.removeEventFilter(filt)
