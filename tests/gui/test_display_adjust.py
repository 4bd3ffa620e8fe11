"""Brightness, contrast and gamma change the slide on screen, never the pixels the model reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chaoyang_desktop.gui.display_adjust import DisplayAdjustment, apply_lut
from tests.gui.test_analysis_gui import open_slide_in


def test_the_table_follows_the_formula() -> None:
    assert DisplayAdjustment().lut() is None  # identity: tiles are used as read
    lut = DisplayAdjustment(brightness=0.1, contrast=1.5, gamma=2.0).lut()
    assert lut is not None and lut.dtype == np.uint8 and lut.shape == (256,)
    x = np.array([0, 64, 128, 255]) / 255.0
    expected = np.clip(np.rint((((x ** 0.5) - 0.5) * 1.5 + 0.5 + 0.1) * 255), 0, 255)
    np.testing.assert_array_equal(lut[[0, 64, 128, 255]], expected)
    rgb = np.array([[[0, 64, 128]]], dtype=np.uint8)
    np.testing.assert_array_equal(apply_lut(rgb, lut), lut[rgb])


def test_display_adjustment_changes_the_screen_not_the_analysis(qtbot, make_window, cmu_slide: Path) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    open_slide_in(qtbot, window, cmu_slide)
    view = window.slide_view
    before = view.grab().toImage()
    thumb = view.thumbnail_array.copy() if hasattr(view, "thumbnail_array") else None
    window.show_display_adjust()
    dialog = window.display_adjust_dialog
    dialog.brightness.setValue(-30)  # darker
    qtbot.waitUntil(view.is_idle, timeout=20000)
    after = view.grab().toImage()
    x, y = view.width() // 2, view.height() // 2
    assert after.pixelColor(x, y).lightness() < before.pixelColor(x, y).lightness()
    if thumb is not None:  # the overview the analysis uses keeps the slide's own pixels
        np.testing.assert_array_equal(view.thumbnail_array, thumb)
    dialog.reset()
    qtbot.waitUntil(view.is_idle, timeout=20000)
    assert view.display_adjustment.is_identity
    dialog.close()


def test_no_white_line_along_a_dark_slides_bottom_edge(qtbot, make_window, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    # Seen at 1400 x 900 on the fluorescence NDPI: the edge fell half-way into a screen row, and the
    # glass white filled beneath the overview showed there as a line.
    window = make_window()
    window.resize(1400, 900)
    open_slide_in(qtbot, window, test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi")
    view = window.slide_view
    w, h = view.slide.dimensions
    rect = view.state.l0_rect_to_screen(0, 0, w, h)
    img = view.grab().toImage()
    row = int(rect.bottom())
    xs = range(int(rect.left()) + 20, int(rect.right()) - 20, 40)
    assert max(img.pixelColor(x, row).lightness() for x in xs) < 200
