"""The direct JPEG-tile reader of tiled TIFF slides returns exactly OpenSlide's pixels."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openslide
import pytest

from chaoyang_desktop.core.slide import reader as slide_module
from chaoyang_desktop.core.slide.reader import open_slide
from tests.synthetic import tissue_image, write_pyramid_tiff


def _openslide_rgb(path: Path, l0_x: int, l0_y: int, level: int, w: int, h: int) -> np.ndarray:
    osr = openslide.OpenSlide(str(path))
    try:
        return slide_module._rgb_over_white(osr.read_region((l0_x, l0_y), level, (w, h)))
    finally:
        osr.close()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(level, number of regions) the direct reader answered, to prove it was used."""
    calls: list[tuple[int, int]] = []
    original = slide_module._TiffTiles.read

    def spy(self: slide_module._TiffTiles, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int,
            downsample: float) -> np.ndarray | None:
        out = original(self, l0_x, l0_y, level, lv_w, lv_h, downsample)
        if out is not None:
            calls.append((level, 1))
        return out

    monkeypatch.setattr(slide_module._TiffTiles, "read", spy)
    return calls


REGIONS = [
    (0, 0, 512, 512),            # aligned with the tiles
    (100, 37, 300, 260),         # across tile borders
    (2000, 2800, 512, 512),      # over the right and bottom edges
    (-50, -70, 200, 180),        # partly outside, top left
    (5000, 5000, 64, 64),        # wholly outside
    (1, 1, 1, 1),
]


@pytest.mark.parametrize("name", ["CMU-1-Small-Region.svs", "CMU-1-Small-Region_generic-pyramid.tiff"])
def test_real_slides_match_openslide(test_data: Path, served: list[tuple[int, int]], name: str) -> None:
    path = test_data / "slides" / name
    with open_slide(path) as slide:
        assert slide._tiles is not None
        for x, y, w, h in REGIONS:
            ours = slide.read_region(x, y, 0, w, h)
            np.testing.assert_array_equal(ours, _openslide_rgb(path, x, y, 0, w, h), err_msg=f"{name} {x},{y},{w},{h}")
            assert ours.flags.writeable and ours.flags.c_contiguous
        # Level 1 of the generic pyramid has a downsample of 2.0003: regions start between
        # pixels there, so OpenSlide (which resamples) serves them, and the answer is the same.
        if slide.level_count > 1:
            np.testing.assert_array_equal(slide.read_region(1000, 1000, 1, 256, 256),
                                          _openslide_rgb(path, 1000, 1000, 1, 256, 256))
    assert len(served) >= len(REGIONS)


def test_synthetic_pyramid_levels_match_openslide(tmp_path: Path, served: list[tuple[int, int]]) -> None:
    rgb = tissue_image(1100, 1300, [(100, 100, 900, 700), (0, 900, 1300, 200)], seed=5)
    path = write_pyramid_tiff(tmp_path / "p.tiff", rgb, mpp=0.5, levels=3, tile=128)
    with open_slide(path) as slide:
        for level in range(slide.level_count):
            ds = slide.level_downsamples[level]
            for x, y, w, h in [(0, 0, 300, 200), (256, 512, 129, 257), (1024, 768, 200, 200)]:
                l0_x, l0_y = int(x * ds), int(y * ds)
                np.testing.assert_array_equal(slide.read_region(l0_x, l0_y, level, w, h),
                                              _openslide_rgb(path, l0_x, l0_y, level, w, h))
    assert {level for level, _ in served} == {0, 1, 2}


def test_threads_read_the_same_pixels(test_data: Path) -> None:
    path = test_data / "slides" / "CMU-1-Small-Region.svs"
    rects = [(x, y) for x in range(0, 2000, 480) for y in range(0, 2800, 560)]
    with open_slide(path) as slide:
        expected = [slide.read_region(x, y, 0, 512, 512) for x, y in rects]
        with ThreadPoolExecutor(6) as pool:
            again = list(pool.map(lambda r: slide.read_region(r[0], r[1], 0, 512, 512), rects * 3))
    for i, a in enumerate(again):
        np.testing.assert_array_equal(a, expected[i % len(rects)])


def test_reads_after_close_are_refused(test_data: Path) -> None:
    slide = open_slide(test_data / "slides" / "CMU-1-Small-Region.svs")
    slide.read_region(0, 0, 0, 64, 64)
    slide.close()
    with pytest.raises(ValueError, match="closed"):
        slide.read_region(0, 0, 0, 64, 64)


def test_other_formats_use_openslide_alone(test_data: Path) -> None:
    with open_slide(test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi") as slide:
        assert slide._tiles is None
