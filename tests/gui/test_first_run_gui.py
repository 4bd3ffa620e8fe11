"""First run: the start page opens the bundled sample, which pans and zooms at once; Analyze asks for a model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from chaoyang_desktop.gui.main_window import PAGE_SLIDE, PAGE_WELCOME


def test_sample_slide_from_the_start_page(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    from chaoyang_desktop.app import _view_pixels, painted_fraction
    from chaoyang_desktop.gui.slide_view import BACKGROUND
    from chaoyang_desktop.resources import resources_dir, sample_slide_path

    assert (resources_dir() / "icons").is_dir()  # the source checkout's resources/ is found
    window = make_window(model="")  # no model chosen: the default one, not downloaded (offline)
    assert window.stack.currentIndex() == PAGE_WELCOME
    button = window.welcome.sample_button
    assert button.isVisible() and "CMU-1" in button.text() and "CC0" in button.text()
    with qtbot.waitSignal(window.slide_opened, timeout=10000) as opened:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert Path(opened.args[0]) == sample_slide_path()
    assert window.stack.currentIndex() == PAGE_SLIDE
    view = window.slide_view
    qtbot.waitUntil(view.is_idle, timeout=20000)
    background = (BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue())
    assert painted_fraction(_view_pixels(window), background) > 0.3
    # Zoom and pan right away: full-resolution tiles are read and painted.
    state = view.state
    fit_scale = state.scale
    while state.scale < 1.0:  # zoom in until the thumbnail is not sharp enough
        view.zoom_in()
    assert state.scale > fit_scale
    before = state.visible_l0_rect()
    state.pan_screen(200, 150)
    assert state.visible_l0_rect() != before
    qtbot.waitUntil(view.is_idle, timeout=20000)
    keys = view.visible_tiles()
    assert keys and all(view.loader.cached(k) is not None for k in keys)
    assert painted_fraction(_view_pixels(window), background) > 0.3
    # Analyze without a model: the model dialog offers the download or a local folder.
    with qtbot.waitSignal(window.analysis_finished, timeout=20000) as blocker:
        window.analyze(confirm=False)
    assert blocker.args == ["model-missing"]
    assert window.model_dialog is not None and window.model_dialog.isVisible()
    window.model_dialog.reject()
