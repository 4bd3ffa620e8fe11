"""ViewState: the one object the view, minimap, scale bar and hover derive from."""

from __future__ import annotations

import pytest

from chaoyang_desktop.gui.scale_bar import format_length, magnification, nice_length_um
from chaoyang_desktop.gui.view_state import MAX_SCALE, ViewState


@pytest.fixture
def state(qapp) -> ViewState:  # type: ignore[no-untyped-def]
    s = ViewState()
    s.set_view_size(800, 600)
    s.set_slide_size(4000, 3000)
    return s


def test_fit_shows_the_whole_slide_centred(state: ViewState) -> None:
    x0, y0, x1, y1 = state.visible_l0_rect()
    assert x0 <= 0 and y0 <= 0 and x1 >= 4000 and y1 >= 3000
    assert (state.l0_cx, state.l0_cy) == (2000, 1500)
    assert state.scale == pytest.approx(0.96 * 0.2)


def test_screen_and_level0_round_trip(state: ViewState) -> None:
    state.set_scale(0.7, (123, 456))
    x, y = state.screen_to_l0(321, 77)
    assert state.l0_to_screen(x, y) == pytest.approx((321, 77))


def test_zoom_keeps_the_point_under_the_cursor_still(state: ViewState) -> None:
    anchor = (650.0, 120.0)
    before = state.screen_to_l0(*anchor)
    state.zoom_by(2.0, anchor)
    assert state.screen_to_l0(*anchor) == pytest.approx(before)
    state.zoom_by(1000.0, anchor)
    assert state.scale == MAX_SCALE


def test_pan_moves_by_screen_pixels_and_stays_on_the_slide(state: ViewState) -> None:
    state.set_scale(1.0)
    cx = state.l0_cx
    state.pan_screen(100, 0)
    assert state.l0_cx == pytest.approx(cx - 100)
    state.pan_screen(-10**7, -10**7)
    assert (state.l0_cx, state.l0_cy) == (4000, 3000)


def test_changed_is_emitted_once_per_action(state: ViewState, qtbot) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(state.changed, timeout=100):
        state.zoom_by(1.5)


def test_scale_bar_lengths_are_round_and_labelled_in_um_or_mm() -> None:
    assert nice_length_um(2.0) == 200.0  # 110 px at 2 um/px -> 220 um -> 200
    assert nice_length_um(0.5) == 50.0
    assert nice_length_um(20.0) == 2000.0
    assert format_length(200.0) == "200 \u00b5m"
    assert format_length(2000.0) == "2 mm"
    assert magnification(0.5, 0.25, 40.0) == (20.0, False)
    assert magnification(1.0, 0.5, None) == (20.0, True)
    assert magnification(1.0, None, None) == (None, True)
