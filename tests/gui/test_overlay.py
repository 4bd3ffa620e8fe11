"""The heatmap is one small RGBA image with one pixel per cell; the controls change its pixels."""

from __future__ import annotations

import numpy as np
import pytest

from chaoyang_desktop.gui.colormap import VIRIDIS
from chaoyang_desktop.gui.overlay import MODE_PROBABILITY, PENDING_RGBA, OverlayStyle, render_cells

NAMES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")
COLORS = ("#2ca02c", "#f2c500", "#d62728", "#1f77b4")


def cells() -> tuple[np.ndarray, np.ndarray]:
    hm = np.full((2, 3, 4), np.nan, dtype=np.float32)
    hm[0, 0] = [0.7, 0.1, 0.1, 0.1]
    hm[0, 1] = [0.1, 0.1, 0.5, 0.3]
    hm[1, 2] = [0.25, 0.25, 0.25, 0.25]
    cnt = (~np.isnan(hm[..., 0])).astype(np.int32)
    return hm, cnt


def test_top_class_colour_and_confidence_alpha() -> None:
    hm, cnt = cells()
    style = OverlayStyle.for_classes(NAMES, COLORS).replace(opacity=1.0)
    rgba = render_cells(hm, cnt, style)
    assert rgba.shape == (2, 3, 4)
    assert tuple(rgba[0, 0, :3]) == (0x2C, 0xA0, 0x2C)
    assert rgba[0, 0, 3] == round(0.7 * 255)
    assert tuple(rgba[0, 1, :3]) == (0xD6, 0x27, 0x28)
    assert rgba[1, 0, 3] == 0  # not covered: transparent
    flat = render_cells(hm, cnt, style.replace(alpha_by_confidence=False, opacity=0.5))
    assert flat[0, 0, 3] == flat[0, 1, 3] == round(0.5 * 255)


def test_threshold_hidden_classes_and_master_switch() -> None:
    hm, cnt = cells()
    style = OverlayStyle.for_classes(NAMES, COLORS)
    assert render_cells(hm, cnt, style.replace(min_confidence=0.6))[0, 1, 3] == 0
    assert render_cells(hm, cnt, style.replace(min_confidence=0.6))[0, 0, 3] > 0
    hidden = render_cells(hm, cnt, style.replace(visible=(False, True, True, True)))
    assert hidden[0, 0, 3] == 0 and hidden[0, 1, 3] > 0
    assert not render_cells(hm, cnt, style.replace(show=False)).any()


def test_probability_mode_uses_the_colour_map() -> None:
    hm, cnt = cells()
    style = OverlayStyle.for_classes(NAMES, COLORS).replace(mode=MODE_PROBABILITY, prob_class=2, opacity=1.0,
                                                            alpha_by_confidence=False)
    rgba = render_cells(hm, cnt, style)
    assert tuple(rgba[0, 1, :3]) == tuple(VIRIDIS[round(0.5 * 255)])
    assert tuple(rgba[0, 0, :3]) == tuple(VIRIDIS[round(0.1 * 255)])
    assert render_cells(hm, cnt, style.replace(min_confidence=0.3))[0, 0, 3] == 0


def test_pending_cells_get_a_faint_veil() -> None:
    hm, cnt = cells()
    pending = np.zeros(cnt.shape, dtype=bool)
    pending[1, 1] = True
    rgba = render_cells(hm, cnt, OverlayStyle.for_classes(NAMES, COLORS), pending)
    assert tuple(rgba[1, 1]) == PENDING_RGBA


def test_viridis_runs_dark_to_bright() -> None:
    lum = VIRIDIS.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.all(np.diff(lum) > -1.0)
    assert VIRIDIS.shape == (256, 3)
    assert tuple(VIRIDIS[0]) == (0x44, 0x01, 0x54) and tuple(VIRIDIS[-1]) == (0xFD, 0xE7, 0x25)


@pytest.mark.parametrize("mode", ["top", MODE_PROBABILITY])
def test_all_nan_grid_is_transparent(mode: str) -> None:
    hm = np.full((3, 3, 4), np.nan, dtype=np.float32)
    rgba = render_cells(hm, np.zeros((3, 3), np.int32), OverlayStyle.for_classes(NAMES, COLORS).replace(mode=mode))
    assert not rgba.any()


def test_colour_map_modes_show_their_low_end() -> None:
    # Fading by the value would hide a low probability, the very thing the colour map shows.
    hm, cnt = cells()
    style = OverlayStyle.for_classes(NAMES, COLORS).replace(mode=MODE_PROBABILITY, prob_class=0, opacity=0.6)
    rgba = render_cells(hm, cnt, style)
    assert rgba[0, 1, 3] == rgba[0, 0, 3] == round(0.6 * 255)  # 0.1 and 0.7 equally opaque
    unsure = render_cells(hm, cnt, style.replace(mode="uncertainty"))
    assert unsure[0, 0, 3] == unsure[1, 2, 3] == round(0.6 * 255)


def test_smooth_mode_interpolates_between_cell_centres() -> None:
    from chaoyang_desktop.gui.overlay import upsample_cells

    hm = np.full((1, 2, 2), np.nan, dtype=np.float32)
    hm[0, 0] = [1.0, 0.0]
    hm[0, 1] = [0.0, 1.0]
    cnt = np.ones((1, 2), dtype=np.int32)
    probs, count, _ = upsample_cells(hm, cnt, 4)
    assert probs.shape == (4, 8, 2) and count.all()
    row = probs[0, :, 0]
    # Reference: linear interpolation between the two centres (fine pixels 1.5 and 5.5), flat outside.
    x = np.arange(8) + 0.5
    expected = np.clip((6.0 - x) / 4.0, 0.0, 1.0)
    np.testing.assert_allclose(row, expected, atol=1e-5)
    # An uncovered neighbour does not drag a covered cell's probabilities towards zero.
    hm[0, 1] = np.nan
    cnt[0, 1] = 0
    probs, count, _ = upsample_cells(hm, cnt, 4)
    assert count[0, :4].all() and not count[0, -2:].any()
    np.testing.assert_allclose(probs[0, :4, 0], 1.0, atol=1e-5)


def test_changing_the_colour_mode_does_not_make_the_docks_below_jump(qtbot, make_window, cmu_slide) -> None:  # type: ignore[no-untyped-def]
    from tests.gui.test_analysis_gui import open_slide_in

    window = make_window()
    window.resize(1024, 700)
    window.show()
    qtbot.waitExposed(window)
    open_slide_in(qtbot, window, cmu_slide)
    panel = window.overlay_panel
    tops = []
    for mode in ("top", "probability", "uncertainty", "top", "uncertainty", "probability", "top"):
        panel.set_style(panel.style.replace(mode=mode))
        qtbot.wait(20)
        tops.append(window.summary_dock.geometry().top())
    assert len(set(tops)) == 1, tops  # the uncertainty mode's shorter panel used to pull them up


def test_the_colour_bar_reads_0_to_1_for_an_uncertainty_and_percent_for_a_probability(qtbot, make_window) -> None:  # type: ignore[no-untyped-def]
    window = make_window()
    panel = window.overlay_panel
    panel.set_style(panel.style.replace(mode="uncertainty"))
    assert panel.color_bar.tick_labels() == ["0", "0.25", "0.5", "0.75", "1"]
    panel.set_style(panel.style.replace(mode="probability"))
    assert panel.color_bar.tick_labels() == ["0%", "25%", "50%", "75%", "100%"]
