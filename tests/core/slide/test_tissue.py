"""Tissue detection and per-rectangle tissue fractions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.errors import RoiError
from chaoyang_desktop.core.slide.reader import open_slide
from chaoyang_desktop.core.slide.tissue import TissueMask, detect_tissue, tissue_mask_for
from tests.synthetic import tissue_image, write_pyramid_tiff

BLOCKS = [(40, 30, 200, 150), (300, 220, 160, 120)]


def _coverage(blocks: list[tuple[int, int, int, int]], rect: tuple[int, int, int, int]) -> float:
    x, y, w, h = rect
    covered = 0
    for bx, by, bw, bh in blocks:
        ix = max(0, min(x + w, bx + bw) - max(x, bx))
        iy = max(0, min(y + h, by + bh) - max(y, by))
        covered += ix * iy
    return covered / (w * h)


def test_detects_exactly_the_blocks() -> None:
    rgb = tissue_image(400, 500, BLOCKS, seed=3)
    mask = detect_tissue(rgb)
    expected = np.zeros((400, 500), dtype=bool)
    for bx, by, bw, bh in BLOCKS:
        expected[by : by + bh, bx : bx + bw] = True
    assert (mask != expected).mean() < 0.005


def test_fractions_match_known_coverage() -> None:
    # A 4x-downscaled "thumbnail" of a 2000 x 1600 slide: each mask pixel is 4 level-0 pixels.
    rgb = tissue_image(400, 500, BLOCKS, seed=4)
    tm = TissueMask(detect_tissue(rgb), 4.0, 4.0)
    l0_blocks = [(x * 4, y * 4, w * 4, h * 4) for x, y, w, h in BLOCKS]
    rects = np.array(
        [[x, y, 256, 256] for y in range(0, 1600, 256) for x in range(0, 2000, 256)]
        + [[100, 80, 700, 500], [0, 0, 2000, 1600], [1300, 1000, 300, 300]],
        dtype=np.int64,
    )
    got = tm.fractions(rects)
    want = np.array([_coverage(l0_blocks, tuple(r)) for r in rects])
    assert got.dtype == np.float32 and got.shape == (len(rects),)
    np.testing.assert_allclose(got, want, atol=0.03)


def test_fractions_of_tiny_and_outside_rects() -> None:
    mask = np.zeros((10, 10), dtype=bool)
    mask[2, 3] = True
    tm = TissueMask(mask, 100.0, 100.0)
    rects = np.array(
        [
            [310, 220, 5, 5],  # far smaller than a mask pixel, inside the tissue pixel
            [110, 220, 5, 5],  # same size, on glass
            [390, 290, 12, 12],  # straddles the corner of the tissue pixel, centre inside it
            [300, 200, 100, 100],  # exactly the tissue pixel
            [-500, -500, 100, 100],  # outside the slide
            [5000, 0, 100, 100],
        ]
    )
    got = tm.fractions(rects)
    np.testing.assert_array_equal(got, np.array([1, 0, 1, 1, 0, 0], dtype=np.float32))
    assert np.isfinite(got).all()
    assert tm.fractions(np.zeros((0, 4))).shape == (0,)


def test_blank_and_all_tissue() -> None:
    blank = np.full((300, 400, 3), 245, dtype=np.uint8)
    assert not detect_tissue(blank).any()
    noisy = tissue_image(300, 400, blocks=[], seed=5)
    assert not detect_tissue(noisy).any()
    full = tissue_image(300, 400, blocks=[(0, 0, 400, 300)], seed=6)
    assert detect_tissue(full).mean() > 0.95


def test_black_border_is_not_tissue() -> None:
    rgb = tissue_image(300, 400, blocks=[(100, 100, 150, 100)], seed=7)
    rgb[:, :40] = 0  # scanner edge / black pen
    mask = detect_tissue(rgb)
    assert not mask[:, :40].any()
    assert mask[100:200, 100:250].mean() > 0.98


def test_fluorescence_dark_background() -> None:
    rng = np.random.default_rng(8)
    rgb = np.zeros((300, 400, 3), dtype=np.uint8)
    rgb[..., 2] = rng.integers(0, 15, size=(300, 400))
    nuclei = rng.random((300, 400)) < 0.15
    nuclei[:, 200:] = False
    rgb[nuclei, 2] = 230  # bright blue nuclei, left half only
    mask = detect_tissue(rgb)
    assert mask[:, 20:180].mean() > 0.9
    assert mask[:, 230:].mean() < 0.02


def test_apply_roi_and_all_tissue() -> None:
    tm = TissueMask.all_tissue((20, 30), 10.0, 10.0)
    assert tm.mask.all() and tm.fractions(np.array([[0, 0, 300, 200]]))[0] == 1.0
    roi = np.zeros((20, 30), dtype=bool)
    roi[:, :15] = True
    limited = tm.apply_roi(roi)
    assert limited.fractions(np.array([[0, 0, 300, 200]]))[0] == pytest.approx(0.5)
    assert tm.mask.all()  # the original is unchanged
    with pytest.raises(RoiError):
        tm.apply_roi(np.ones((5, 5), dtype=bool))


def test_mask_for_synthetic_slide(tmp_path: Path) -> None:
    rgb = tissue_image(1200, 1600, blocks=[(200, 100, 600, 500), (1000, 700, 400, 400)], seed=9)
    path = write_pyramid_tiff(tmp_path / "t.tif", rgb, levels=3)
    with open_slide(path) as slide:
        tm = tissue_mask_for(slide, max_side=400)
    assert tm.mask.shape == (300, 400)
    assert (tm.l0_per_px_x, tm.l0_per_px_y) == pytest.approx((4.0, 4.0))
    got = tm.fractions(np.array([[200, 100, 600, 500], [1000, 700, 400, 400], [0, 700, 800, 500], [700, 0, 256, 256]]))
    np.testing.assert_allclose(got, [1.0, 1.0, 0.0, _coverage([(200, 100, 600, 500)], (700, 0, 256, 256))], atol=0.03)


def test_cmu_tissue_fraction(test_data: Path) -> None:
    with open_slide(test_data / "slides/CMU-1-Small-Region.svs") as slide:
        thumb = slide.thumbnail(1024)
        tm = tissue_mask_for(slide, thumb=thumb)
    assert 0.2 < tm.tissue_fraction < 0.95
    # The left and right margins of this section are glass; the middle column is tissue.
    h, w = tm.mask.shape
    assert tm.mask[:, : w // 10].mean() < 0.1
    assert tm.mask[h // 2 :, w // 3 : w // 2].mean() > 0.8


def test_fluorescence_ndpi_is_reasonable(test_data: Path) -> None:
    with open_slide(test_data / "slides/Hamamatsu-test3-DAPI-2-387.ndpi") as slide:
        tm = tissue_mask_for(slide, max_side=1024)
    assert 0.3 < tm.tissue_fraction < 0.9
    h, _ = tm.mask.shape
    assert tm.mask[int(h * 0.95) :].mean() < 0.2  # black below the section
