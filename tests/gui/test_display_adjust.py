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
