"""Decoding patches of every mode, and refusing bad files with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.errors import ImageDecodeError, ImageTooLargeError
from chaoyang_desktop.core.slide.imageio import decode_image


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(p)


def test_text_named_png(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("hello, not an image")
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(p)


def test_truncated_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cut.jpg"
    rgb = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(p, quality=90)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match="damaged or truncated"):
        decode_image(p)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:5, :, 3] = 255  # top half opaque red, bottom half transparent
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    out = decode_image(p)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[9, 9]) == (255, 255, 255)


def test_grayscale_and_16_bit(tmp_path: Path) -> None:
    g = tmp_path / "g.png"
    Image.fromarray(np.full((8, 8), 100, dtype=np.uint8), "L").save(g)
    assert tuple(decode_image(g)[0, 0]) == (100, 100, 100)
    t = tmp_path / "w.tif"
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(t)
    assert tuple(decode_image(t)[0, 0]) == (255, 255, 255)
    Image.fromarray(np.full((8, 8), 257 * 40, dtype=np.uint16)).save(t)
    assert tuple(decode_image(t)[0, 0]) == (40, 40, 40)


def test_float_images_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "f.tif"
    Image.fromarray(np.zeros((4, 4), dtype=np.float32)).save(p)
    with pytest.raises(ImageDecodeError, match="floating-point"):
        decode_image(p)


def test_too_large_is_refused_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(p)
    with pytest.raises(ImageTooLargeError, match="analyze"):
        decode_image(p, max_pixels=10_000)


def test_patches_and_plain_slides_get_the_same_pixels(tmp_path: Path) -> None:
    """One decoder: ``classify`` and ``analyze`` see the same RGB for every kind of file."""
    import tifffile

    from chaoyang_desktop.core.slide.reader import open_slide

    rng = np.random.default_rng(1)
    rgb16 = rng.integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16)  # Pillow would keep only the high byte
    rgba = rng.integers(0, 256, (40, 30, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8), "L").convert("P").save(tmp_path / "pal.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "rgb.jpg", quality=90)
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    for name in ("rgb16.tif", "rgba.png", "pal.png", "rgb.jpg", "lzw.tif"):
        patch = decode_image(tmp_path / name)
        with open_slide(tmp_path / name, assumed_mpp=0.5) as slide:
            region = slide.read_region(0, 0, 0, 30, 40)
        np.testing.assert_array_equal(patch, region, err_msg=name)
    # 16-bit scaled as 65535 -> 255 (with rounding), from the raw samples.
    expected = ((rgb16.astype(np.uint32) + 128) // 257).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(tmp_path / "rgb16.tif"), expected)
    # Samples without a trustworthy brightness are refused by both.
    tifffile.imwrite(tmp_path / "f32.tif", np.zeros((8, 8), dtype=np.float32))
    with pytest.raises(ImageDecodeError, match="floating-point"):
        decode_image(tmp_path / "f32.tif")
    with pytest.raises(ImageDecodeError, match="floating-point"):
        open_slide(tmp_path / "f32.tif", assumed_mpp=0.5)
