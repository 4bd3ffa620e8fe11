"""The slide view on real slides: tiles off the GUI thread from the right level, zoom and pan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from chaoyang_desktop.core.slide.reader import open_slide
from chaoyang_desktop.gui.slide_view import SlideView
from chaoyang_desktop.gui.tile_loader import TileKey


@pytest.fixture
def view(qtbot):  # type: ignore[no-untyped-def]
    v = SlideView()
    v.resize(900, 700)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.loader.shutdown()
    if v.slide is not None:
        v.slide.close()


def open_in(view: SlideView, qtbot, path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(view.painted_idle, timeout=20000):
        view.set_slide(open_slide(path, assumed_mpp=0.5))


def wait_idle(view: SlideView, qtbot) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(view.is_idle, timeout=20000)


def wheel(view: SlideView, pos: QPointF, notches: int) -> None:
    event = QWheelEvent(pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def test_open_real_slide_fits_and_paints_the_thumbnail(view: SlideView, qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_in(view, qtbot, test_data / "slides" / "CMU-1-Small-Region.svs")
    assert view.thumbnail_array is not None
    x0, y0, x1, y1 = view.state.visible_l0_rect()
    assert x0 <= 0 and y0 <= 0 and x1 >= 2220 and y1 >= 2967
    img = view.grab().toImage()
    centre = img.pixelColor(450, 350)
    assert (centre.red(), centre.green(), centre.blue()) != (58, 60, 64)  # slide, not background
    assert view.scale_bar.isVisible() and view.scale_bar.bar() is not None


def test_zoom_and_pan_read_tiles_from_the_right_level(view: SlideView, qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_in(view, qtbot, test_data / "slides" / "CMU-1-Small-Region_generic-pyramid.tiff")
    # Zoomed out the thumbnail is sharp enough: no tile is read at all.
    assert view.visible_tiles() == []
    anchor = QPointF(300, 200)
    before = view.state.screen_to_l0(anchor.x(), anchor.y())
    wheel(view, anchor, 5)
    assert view.state.scale > 0.5
    assert view.state.screen_to_l0(anchor.x(), anchor.y()) == pytest.approx(before, abs=1e-6)
    view.state.set_scale(0.3)
    assert view.read_level() == 1  # downsample 2 is the finest level coarser than... not finer than 1/0.3
    view.one_to_one()
    assert view.read_level() == 0
    wait_idle(view, qtbot)
    keys = view.visible_tiles()
    assert keys and all(k.level == 0 for k in keys)
    assert all(view.loader.cached(k) is not None for k in keys)
    cx = view.state.l0_cx
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.state.l0_cx > cx
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert view.state.scale < 1.0


def test_drag_pans_the_view(view: SlideView, qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_in(view, qtbot, test_data / "slides" / "CMU-1-Small-Region.svs")
    view.one_to_one()
    cx, cy = view.state.l0_cx, view.state.l0_cy
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    qtbot.mouseMove(view, QPoint(380, 300))
    qtbot.mouseMove(view, QPoint(300, 250))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 250))
    assert view.state.l0_cx == pytest.approx(cx + 100)
    assert view.state.l0_cy == pytest.approx(cy + 50)


def test_stale_tile_requests_are_dropped(view: SlideView, qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_in(view, qtbot, test_data / "slides" / "CMU-1-Small-Region.svs")
    loader = view.loader
    token = loader.token
    far = [TileKey(token, 0, tx, ty) for tx in range(5) for ty in range(6)]
    loader._pool.setMaxThreadCount(1)  # queue them up
    loader.want(far)
    loader.want(far[:1])  # the user moved on: only one tile is still wanted
    qtbot.waitUntil(lambda: not loader.busy() and not loader._in_flight, timeout=20000)
    assert loader.cached(far[0]) is not None
    assert sum(loader.cached(k) is not None for k in far) < len(far)


def test_thumbnail_is_the_backdrop_until_tiles_arrive(view: SlideView, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.synthetic import tissue_image, write_pyramid_tiff

    rgb = tissue_image(1024, 1536, [(200, 200, 600, 500)])
    path = write_pyramid_tiff(tmp_path / "s.tiff", rgb, mpp=0.5, levels=2)
    open_in(view, qtbot, path)
    view.state.set_scale(4.0, (450, 350))
    img = view.grab().toImage()  # drawn at once, before any tile of level 0 has been read
    assert img.pixelColor(450, 350).isValid()
    wait_idle(view, qtbot)
    x, y = (int(v) for v in view.state.screen_to_l0(450, 350))
    got = view.grab().toImage().pixelColor(450, 350)
    want = rgb[y, x].astype(int)
    assert np.abs(np.array([got.red(), got.green(), got.blue()]) - want).max() < 40


def test_heatmap_cells_stay_aligned_with_the_slide_at_any_zoom(view: SlideView, qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One pixel per cell, scaled with one drawImage: cell edges fall on the level-0 grid."""
    from chaoyang_desktop.core.slide.tiling import GridSpec
    from chaoyang_desktop.gui.overlay import HeatmapLayer, OverlayStyle
    from tests.synthetic import write_pyramid_tiff

    white = np.full((1000, 1300, 3), 255, dtype=np.uint8)
    open_in(view, qtbot, write_pyramid_tiff(tmp_path / "w.tiff", white, mpp=0.5, levels=2))
    grid = GridSpec(l0_width=1300, l0_height=1000, l0_stride=100, k=1, level=0, lv_downsample=1.0, lv_tile=100)
    style = OverlayStyle.for_classes(("A", "B"), ("#ff0000", "#0000ff")).replace(opacity=1.0, alpha_by_confidence=False)
    layer = HeatmapLayer(grid, style)
    rows, cols = grid.hm_rows, grid.hm_cols
    hm = np.zeros((rows, cols, 2), dtype=np.float32)
    checker = (np.add.outer(np.arange(rows), np.arange(cols)) % 2).astype(bool)
    hm[..., 0] = np.where(checker, 0.2, 0.8)
    hm[..., 1] = 1.0 - hm[..., 0]
    layer.set_cells(hm, np.ones((rows, cols), dtype=np.int32), None)
    view.set_heatmap(layer)
    for scale in (0.37, 1.0, 3.3):
        view.state.set_scale(scale)
        view.state.center_on(650, 500)
        img = view.grab().toImage()
        for l0_x, l0_y in ((600, 450), (700, 550), (1200, 900)):
            for dx, dy in ((-2, -2), (2, 2), (-2, 2), (2, -2)):
                # 2 screen pixels either side of a cell corner: the colour of the cell there.
                sx, sy = view.state.l0_to_screen(l0_x, l0_y)
                px, py = int(round(sx)) + dx, int(round(sy)) + dy
                covered = [w.geometry() for w in (view.minimap, view.scale_bar) if w.isVisible()]
                if not view.rect().contains(px, py) or any(g.contains(px, py) for g in covered):
                    continue
                x, y = view.state.screen_to_l0(px + 0.5, py + 0.5)
                r, c = int(y // 100), int(x // 100)
                c_ = img.pixelColor(px, py)
                want_red = not checker[r, c]
                assert (c_.red() > 200 and c_.blue() < 60) == want_red, (scale, l0_x, l0_y, dx, dy)


def test_minimap_click_moves_the_view(view: SlideView, qtbot, test_data: Path) -> None:  # type: ignore[no-untyped-def]
    open_in(view, qtbot, test_data / "slides" / "CMU-1-Small-Region.svs")
    view.one_to_one()
    mm = view.minimap
    mm.show()
    target = QPoint(mm.width() // 4, mm.height() * 3 // 4)
    qtbot.mouseClick(mm, Qt.MouseButton.LeftButton, pos=target)
    fx = (target.x() - 2) / (mm.width() - 4)
    fy = (target.y() - 2) / (mm.height() - 4)
    assert view.state.l0_cx == pytest.approx(fx * 2220, abs=2)
    assert view.state.l0_cy == pytest.approx(fy * 2967, abs=2)
    vr = mm.viewport_rect()
    assert vr.center().x() == pytest.approx(target.x(), abs=1.5)
