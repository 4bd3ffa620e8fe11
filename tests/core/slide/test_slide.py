"""The slide reader: real scanner files, synthetic pyramids and plain images, bad input."""

from __future__ import annotations

import shutil
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from chaoyang_desktop.core.slide import reader as slide_module
from chaoyang_desktop.core.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    MissingPixelSizeError,
    SettingsError,
    SlideOpenError,
)
from chaoyang_desktop.core.slide.reader import (
    IMAGE_SUFFIXES,
    SLIDE_SUFFIXES,
    file_fingerprint,
    is_probably_slide,
    open_slide,
)
from tests.synthetic import tile_rect, tissue_image, write_pyramid_tiff

CMU = "slides/CMU-1-Small-Region.svs"
NDPI = "slides/Hamamatsu-test3-DAPI-2-387.ndpi"
GENERIC = "slides/CMU-1-Small-Region_generic-pyramid.tiff"
JPEG = "images/CMU-1-Small-Region_full.jpg"


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A 600 x 700 synthetic H&E image: enough for 3 x 3 tiles of 256."""
    return tissue_image(600, 700, blocks=[(50, 40, 300, 250), (400, 300, 250, 250)], seed=1)


# -- real slides ------------------------------------------------------------------------------


def test_aperio_svs(test_data: Path) -> None:
    with open_slide(test_data / CMU) as s:
        assert s.format == "aperio"
        assert s.vendor == "Aperio"
        assert s.dimensions == (2220, 2967)
        assert s.level_count == 1
        assert s.level_downsamples == (1.0,)
        assert s.mpp == pytest.approx(0.499)
        assert s.mpp_source == "metadata" and not s.mpp_assumed
        assert s.objective_power == 20
        assert s.require_mpp() == pytest.approx(0.499)
        assert s.properties["openslide.vendor"] == "aperio"


def test_ndpi_pyramid(test_data: Path) -> None:
    with open_slide(test_data / NDPI) as s:
        assert s.format == "hamamatsu" and s.vendor == "Hamamatsu"
        assert s.level_count == 7
        assert s.level_downsamples == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
        assert s.mpp == pytest.approx(0.22818, abs=1e-4)
        assert s.objective_power == 40
        thumb = s.thumbnail(300)
        assert max(thumb.shape[:2]) == 300 and thumb.dtype == np.uint8 and thumb.shape[2] == 3
        assert s.l0_per_px(thumb) == pytest.approx((3968 / thumb.shape[1], 4864 / thumb.shape[0]))
        assert thumb.shape[1] / thumb.shape[0] == pytest.approx(3968 / 4864, rel=0.01)


def test_generic_tiff_levels_agree(test_data: Path) -> None:
    with open_slide(test_data / GENERIC) as s:
        assert s.format == "generic-tiff" and s.vendor == "Generic TIFF"
        assert s.level_count == 4
        assert s.mpp == pytest.approx(0.499)
        assert s.objective_power is None
        l0 = s.read_region(400, 600, 0, 512, 512)
        l1 = s.read_region(400, 600, 1, 256, 256)
        assert l0.shape == (512, 512, 3) and l1.shape == (256, 256, 3) and l1.dtype == np.uint8
        reduced = np.asarray(Image.fromarray(l0).reduce(2)).astype(float)
        assert np.abs(reduced - l1).mean() < 8


def test_region_partly_outside_is_white(test_data: Path) -> None:
    with open_slide(test_data / CMU) as s:
        w, h = s.dimensions
        region = s.read_region(w - 50, -30, 0, 100, 80)
        assert region.shape == (80, 100, 3)
        assert (region[:30] == 255).all()  # above the slide
        assert (region[:, 50:] == 255).all()  # right of the slide
        inside = s.read_region(w - 50, 0, 0, 50, 50)
        np.testing.assert_array_equal(region[30:, :50], inside)
        assert (s.read_region(-500, -500, 0, 64, 64) == 255).all()
        assert s.read_region(0, 0, 0, 0, 10).shape == (10, 0, 3)
        with pytest.raises(ValueError):
            s.read_region(0, 0, 3, 10, 10)


def test_concurrent_reads_match_serial(test_data: Path) -> None:
    rng = np.random.default_rng(0)
    with open_slide(test_data / GENERIC) as s:
        xs, ys, levels = rng.integers(-100, 2100, 24), rng.integers(-100, 2800, 24), rng.integers(0, 4, 24)
        requests = [(int(x), int(y), int(lv)) for x, y, lv in zip(xs, ys, levels)]
        serial = [s.read_region(x, y, lv, 200, 150) for x, y, lv in requests]
        with ThreadPoolExecutor(4) as pool:
            parallel = list(pool.map(lambda r: s.read_region(r[0], r[1], r[2], 200, 150), requests))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_plain_jpeg(test_data: Path) -> None:
    with open_slide(test_data / JPEG) as s:
        assert s.format == "image" and s.vendor == "Image (JPEG)"
        assert s.dimensions == (2220, 2967) and s.level_count == 1
        assert s.mpp is None and s.mpp_source == "none"  # JPEG DPI is not a pixel size
        with pytest.raises(MissingPixelSizeError, match="--mpp"):
            s.require_mpp()
        region = s.read_region(2200, 2950, 0, 40, 40)
        assert (region[20:] == 255).all() and (region[:, 20:] == 255).all()
        thumb = s.thumbnail(512)
        assert thumb.shape == (512, 383, 3)
    with open_slide(test_data / JPEG, assumed_mpp=0.5) as s:
        assert s.mpp == 0.5 and s.mpp_assumed and s.mpp_source == "assumed"
    with open_slide(test_data / JPEG, mpp=0.25, assumed_mpp=0.5) as s:
        assert s.mpp == 0.25 and not s.mpp_assumed and s.mpp_source == "override"


def test_jpeg_and_svs_have_same_pixels(test_data: Path) -> None:
    with open_slide(test_data / CMU) as wsi, open_slide(test_data / JPEG) as img:
        a = wsi.read_region(1000, 1000, 0, 256, 256).astype(float)
        b = img.read_region(1000, 1000, 0, 256, 256).astype(float)
        assert np.abs(a - b).mean() < 10  # two JPEG encodings of the same pixels


def test_override_mpp_on_wsi(test_data: Path) -> None:
    with open_slide(test_data / CMU, mpp=0.25) as s:
        assert s.mpp == 0.25 and s.mpp_source == "override"
    with pytest.raises(SettingsError):
        open_slide(test_data / CMU, mpp=-1)


# -- synthetic pyramids -----------------------------------------------------------------------


def test_synthetic_pyramid_opens_as_generic_tiff(tmp_path: Path, rgb: np.ndarray) -> None:
    path = write_pyramid_tiff(tmp_path / "s.tif", rgb, mpp=0.25, levels=3, compression=None)
    with open_slide(path) as s:
        assert s.format == "generic-tiff"
        assert s.level_dimensions == ((700, 600), (350, 300), (175, 150))
        assert s.mpp == pytest.approx(0.25) and s.mpp_source == "metadata"
        np.testing.assert_array_equal(s.read_region(0, 0, 0, 700, 600), rgb)
        thumb = s.thumbnail(200)
        assert thumb.shape == (171, 200, 3)


def test_no_resolution_means_no_mpp(tmp_path: Path, rgb: np.ndarray) -> None:
    path = write_pyramid_tiff(tmp_path / "nores.tif", rgb, mpp=None)
    with open_slide(path, assumed_mpp=0.5) as s:  # assumed_mpp is for plain images only
        assert s.format == "generic-tiff"
        assert s.mpp is None and s.mpp_source == "none" and not s.mpp_assumed
        with pytest.raises(MissingPixelSizeError, match="--mpp"):
            s.require_mpp()


def test_implausible_resolution_is_ignored(tmp_path: Path, rgb: np.ndarray) -> None:
    # 72 dpi, a common default: OpenSlide reports mpp 352.8, which is not a scan.
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, rgb, tile=(256, 256), photometric="rgb", resolution=(72, 72), resolutionunit="INCH")
    with open_slide(path) as s:
        assert s.properties["openslide.mpp-x"].startswith("352")
        assert s.mpp is None


def test_corrupt_tile_raises_and_others_still_read(tmp_path: Path, rgb: np.ndarray) -> None:
    path = write_pyramid_tiff(tmp_path / "bad.tif", rgb, corrupt_tile=4)
    x, y, w, h = tile_rect(4, 700)
    with open_slide(path) as s:
        good = s.read_region(0, 0, 0, 256, 256)
        with pytest.raises(ImageDecodeError, match=f"level 0, level-0 x={x} y={y}"):
            s.read_region(x, y, 0, w, h)
        np.testing.assert_array_equal(s.read_region(0, 0, 0, 256, 256), good)
        assert s.read_region(x, y, 1, w // 2, h // 2).shape == (128, 128, 3)  # level 1 is intact
        with pytest.raises(ImageDecodeError):
            s.read_region(x + 10, y + 10, 0, 20, 20)
        with ThreadPoolExecutor(4) as pool:
            again = list(pool.map(lambda _: s.read_region(0, 0, 0, 256, 256), range(8)))
        for a in again:
            np.testing.assert_array_equal(a, good)


def test_corrupt_tile_does_not_fail_other_threads(tmp_path: Path, rgb: np.ndarray) -> None:
    path = write_pyramid_tiff(tmp_path / "bad.tif", rgb, corrupt_tile=4)
    bad = tile_rect(4, 700)
    good = [tile_rect(i, 700) for i in (0, 1, 2, 3, 5, 6, 7, 8)]
    with open_slide(path) as s:
        expected = [s.read_region(x, y, 0, w, h) for x, y, w, h in good]

        def read(i: int) -> np.ndarray | None:
            if i % 3 == 0:
                with pytest.raises(ImageDecodeError):
                    s.read_region(*bad[:2], 0, *bad[2:])
                return None
            x, y, w, h = good[i % len(good)]
            return s.read_region(x, y, 0, w, h)

        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(read, range(60)))
    for i, result in enumerate(results):
        if result is not None:
            np.testing.assert_array_equal(result, expected[i % len(good)])


# -- plain images -----------------------------------------------------------------------------


def test_tiff_image_16bit_and_gray(tmp_path: Path) -> None:
    rgb16 = np.random.default_rng(0).integers(0, 65536, size=(40, 50, 3), dtype=np.uint16)
    tifffile.imwrite(
        tmp_path / "rgb16.tif", rgb16, photometric="rgb", resolution=(20000, 20000), resolutionunit="CENTIMETER"
    )
    with open_slide(tmp_path / "rgb16.tif") as s:
        assert s.format == "image" and s.vendor == "Image (TIFF)"
        assert s.mpp == pytest.approx(0.5) and s.mpp_source == "metadata"
        out = s.read_region(0, 0, 0, 50, 40)
        expected = np.rint(rgb16 / 257).astype(np.uint8)
        np.testing.assert_array_equal(out, expected)

    gray16 = np.linspace(0, 65535, 40 * 50).reshape(40, 50).astype(np.uint16)
    tifffile.imwrite(tmp_path / "g16.tif", gray16)
    with open_slide(tmp_path / "g16.tif") as s:
        out = s.read_region(0, 0, 0, 50, 40)
        assert out.dtype == np.uint8 and out.shape == (40, 50, 3)
        assert out[0, 0, 0] == 0 and out[-1, -1, 2] == 255
        np.testing.assert_array_equal(out[..., 0], np.rint(gray16 / 257).astype(np.uint8))
        assert (out[..., 0] == out[..., 1]).all()


def test_png_modes_become_rgb(tmp_path: Path) -> None:
    gray16 = np.linspace(0, 65535, 30 * 20).reshape(30, 20).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    rgba = np.zeros((30, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:15, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((30, 20), 100, np.uint8)).convert("P").save(tmp_path / "pal.png")
    with open_slide(tmp_path / "g16.png") as s:
        out = s.read_region(0, 0, 0, 20, 30)
        np.testing.assert_array_equal(out[..., 1], np.rint(gray16 / 257).astype(np.uint8))
    with open_slide(tmp_path / "rgba.png") as s:
        out = s.read_region(0, 0, 0, 20, 30)
        assert (out[:15] == [200, 0, 0]).all() and (out[15:] == 255).all()
    with open_slide(tmp_path / "pal.png") as s:
        assert (s.read_region(0, 0, 0, 20, 30) == 100).all()


def test_png_dpi_is_not_a_pixel_size(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png", dpi=(50800, 50800))
    with open_slide(tmp_path / "a.png") as s:
        assert s.mpp is None


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_huge_image_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "huge.png").write_bytes(_png_header(100_000, 100_000))
    with pytest.raises(ImageTooLargeError, match="pyramid"):
        open_slide(tmp_path / "huge.png")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "small.png")
    tifffile.imwrite(tmp_path / "small.tif", np.zeros((100, 100, 3), np.uint8), photometric="rgb")
    monkeypatch.setattr(slide_module, "MAX_IMAGE_BYTES", 100 * 100 * 3 - 1)
    for name in ("small.png", "small.tif"):
        with pytest.raises(ImageTooLargeError, match="vips tiffsave"):
            open_slide(tmp_path / name)


def test_truncated_image_is_decode_error(tmp_path: Path, test_data: Path) -> None:
    data = (test_data / JPEG).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageDecodeError, match="cut.jpg"):
        open_slide(tmp_path / "cut.jpg")


# -- bad input --------------------------------------------------------------------------------


def test_bad_files_raise_slide_open_error(tmp_path: Path) -> None:
    with pytest.raises(SlideOpenError, match="does not exist"):
        open_slide(tmp_path / "missing.svs")
    (tmp_path / "empty.svs").write_bytes(b"")
    with pytest.raises(SlideOpenError, match="empty"):
        open_slide(tmp_path / "empty.svs")
    (tmp_path / "notes.svs").write_text("this is not a slide\n" * 100)
    with pytest.raises(SlideOpenError, match="Supported"):
        open_slide(tmp_path / "notes.svs")
    (tmp_path / "folder").mkdir()
    with pytest.raises(SlideOpenError, match="folder"):
        open_slide(tmp_path / "folder")


def test_truncated_svs_is_slide_open_error(tmp_path: Path, test_data: Path) -> None:
    data = (test_data / CMU).read_bytes()
    (tmp_path / "cut.svs").write_bytes(data[:2000])
    with pytest.raises(SlideOpenError):
        with open_slide(tmp_path / "cut.svs") as s:
            s.read_region(0, 0, 0, 10, 10)


def test_closed_slide_refuses_reads(test_data: Path) -> None:
    s = open_slide(test_data / CMU)
    s.close()
    with pytest.raises(ValueError):
        s.read_region(0, 0, 0, 10, 10)


# -- identity and names -----------------------------------------------------------------------


def test_fingerprint(tmp_path: Path, test_data: Path, rgb: np.ndarray) -> None:
    with open_slide(test_data / CMU) as a, open_slide(test_data / CMU) as b:
        fp = a.fingerprint()
        assert fp == b.fingerprint() and len(fp) == 32
    copy = tmp_path / "renamed.svs"
    shutil.copyfile(test_data / CMU, copy)
    with open_slide(copy) as c:
        assert c.fingerprint() == fp
    p1 = write_pyramid_tiff(tmp_path / "one.tif", rgb)
    changed = rgb.copy()
    changed[300, 350] = 0
    p2 = write_pyramid_tiff(tmp_path / "two.tif", changed, compression=None)
    p3 = write_pyramid_tiff(tmp_path / "three.tif", rgb, compression=None)
    prints = {open_slide(p).fingerprint() for p in (p1, p2, p3)}
    assert len(prints) == 3 and fp not in prints


def test_fingerprint_sees_mrxs_companions(tmp_path: Path) -> None:
    main = tmp_path / "slide.mrxs"
    main.write_bytes(b"index")
    (tmp_path / "slide").mkdir()
    digests = []
    for payload in (b"a" * 10, b"b" * 10):
        (tmp_path / "slide" / "Data0000.dat").write_bytes(payload)
        digests.append(file_fingerprint(main))
    (tmp_path / "slide" / "Data0001.dat").write_bytes(b"")
    digests.append(file_fingerprint(main))
    assert len(set(digests)) == 3


def test_suffixes_and_is_probably_slide() -> None:
    assert ".svs" in SLIDE_SUFFIXES and ".mrxs" in SLIDE_SUFFIXES and ".dcm" in SLIDE_SUFFIXES
    assert ".jpg" in IMAGE_SUFFIXES and ".webp" in IMAGE_SUFFIXES
    assert is_probably_slide("a/b/Slide.NDPI")
    assert is_probably_slide("x.png")
    assert not is_probably_slide("notes.txt")
    assert not is_probably_slide(".hidden.svs")


def test_thumbnail_in_bands_matches_one_read(tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_pyramid_tiff(tmp_path / "single.tif", rgb, levels=1, compression=None)
    with open_slide(path) as s:
        whole = s.thumbnail(100)
        monkeypatch.setattr(slide_module, "_THUMB_READ_PIXELS", 700 * 50)  # 50-row bands
        banded = s.thumbnail(100)
    assert whole.shape == banded.shape == (86, 100, 3)
    assert np.abs(whole.astype(float) - banded).mean() < 2


@pytest.mark.parametrize("keep", [0.6, 0.99])
@pytest.mark.parametrize("suffix", [".svs", ".tif"])
def test_a_truncated_whole_slide_image_is_refused_not_read_as_a_plain_image(tmp_path: Path, test_data: Path,
                                                                           keep: float, suffix: str) -> None:
    # OpenSlide refuses it; the TIFF reader could still decode a page, but with a guessed pixel size.
    data = (test_data / CMU).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SlideOpenError, match="damaged or incomplete"):
        open_slide(cut, assumed_mpp=0.5)


def test_unsupported_formats_and_compressions_are_named(tmp_path: Path) -> None:
    from chaoyang_desktop.core.slide.reader import unsupported_message

    (tmp_path / "scan.vsi").write_bytes(b"II*\x00" + bytes(1000))
    with pytest.raises(SlideOpenError, match="Olympus VSI file, a format this version cannot read"):
        open_slide(tmp_path / "scan.vsi")
    # OpenSlide reads CZI, but not every pixel type: its "Unsupported ..." becomes ours.
    czi = unsupported_message(Path("scan.czi"), "Unsupported pixel type: GRAY16")
    assert czi is not None and "format or compression is not supported" in czi and "GRAY16" in czi
    dicom = unsupported_message(Path("slide.dcm"), "Unsupported transfer syntax 1.2.840.10008.1.2.4.80")
    assert dicom is not None and "JPEG-LS lossless" in dicom and "damaged" not in dicom
    tiff = unsupported_message(Path("x.tif"), "Unsupported TIFF compression: 34712")
    assert tiff is not None and "not supported" in tiff and "34712" in tiff
    assert unsupported_message(Path("x.svs"), "Not a TIFF file") is None
