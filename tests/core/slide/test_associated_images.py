"""The label, macro and thumbnail pictures stored beside a slide's pyramid, checked against OpenSlide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide
import pytest

from chaoyang_desktop.core.slide.reader import open_slide


def _openslide_rgb_over_white(path: Path, name: str) -> np.ndarray:
    """OpenSlide's own picture, composited over white with plain numpy (the reference)."""
    with openslide.OpenSlide(path) as osr:
        rgba = np.asarray(osr.associated_images[name]).astype(np.float64)
    alpha = rgba[..., 3:] / 255.0
    return np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


@pytest.mark.parametrize("name, expected", [
    ("CMU-1-Small-Region.svs", ("label", "macro", "thumbnail")),
    ("Hamamatsu-test3-DAPI-2-387.ndpi", ("macro",)),
])
def test_associated_images_are_openslides(test_data: Path, name: str, expected: tuple[str, ...]) -> None:
    path = test_data / "slides" / name
    with openslide.OpenSlide(path) as osr:
        sizes = {n: image.size for n, image in osr.associated_images.items()}
    assert tuple(sorted(sizes)) == expected
    with open_slide(path) as slide:
        assert sorted(slide.associated_image_names) == sorted(sizes)
        for n, (width, height) in sizes.items():
            rgb = slide.read_associated_image(n)
            assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)
            np.testing.assert_array_equal(rgb, _openslide_rgb_over_white(path, n))


def test_a_slide_without_associated_images(test_data: Path) -> None:
    for path in (test_data / "slides" / "CMU-1-Small-Region_generic-pyramid.tiff",
                 test_data / "images" / "CMU-1-Small-Region_full.jpg"):
        with open_slide(path) as slide:
            assert slide.associated_image_names == ()
            with pytest.raises(KeyError):
                slide.read_associated_image("label")


def test_unknown_name_and_closed_slide(test_data: Path) -> None:
    slide = open_slide(test_data / "slides" / "CMU-1-Small-Region.svs")
    with pytest.raises(KeyError, match="label, macro, thumbnail"):
        slide.read_associated_image("barcode")
    slide.close()
    assert slide.associated_image_names  # the names stay known; reading needs the file
    with pytest.raises(ValueError, match="closed"):
        slide.read_associated_image("label")
