"""The one image decoder: patches (``classify``) and plain images opened as slides (``analyze``).

Both read a file into RGB uint8 the same way, so a patch and the same picture analysed as a
slide give the model the same pixels:

- TIFF with tifffile (Pillow reduces 16-bit RGB by dropping the low byte and cannot read many
  sample formats); everything else with Pillow (PNG, JPEG, BMP, WEBP);
- transparency composited over white (the colour of glass), grayscale repeated, palettes
  looked up, MinIsWhite inverted, 16-bit scaled (65535 -> 255, not clipped);
- samples that carry no brightness we can trust (floating point, integers beyond 16 bits) are
  refused with a reason;
- a TIFF's resolution tags give a pixel size when they are in physical units and plausible.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image, ImageFile, UnidentifiedImageError

from chaoyang_desktop.core.errors import ChaoyangError, ImageDecodeError, ImageTooLargeError

# A patch is small; a larger plain image belongs in `analyze`, which tiles it.
MAX_PATCH_PIXELS = 64_000_000
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
#: Pixel sizes outside this range (um/px) are metadata accidents, e.g. a 72 dpi default.
MPP_PLAUSIBLE = (0.05, 50.0)

# Truncated files must fail, not be padded with grey silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow formats served as plain images (its JPEG reader also returns multi-picture "MPO" JPEGs).
_PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class NotAnImageError(ImageDecodeError):
    """The file is no image format we read (as opposed to a damaged image)."""


class DamagedFileError(ImageDecodeError):
    """The file's structure (not only some pixel data) cannot be read: damaged or incomplete."""


@dataclass(frozen=True)
class DecodedImage:
    """An image file's pixels and what its header said."""

    rgb: np.ndarray
    kind: str
    properties: dict[str, str]
    #: From the TIFF resolution tags; None without physical units or for other formats.
    mpp: float | None


def decode_file(path: Path, max_pixels: int, too_large_hint: str) -> DecodedImage:
    """Decode ``path`` into RGB uint8, or raise with a reason.

    Raises:
        ImageTooLargeError: more than ``max_pixels`` (the message ends with ``too_large_hint``).
        NotAnImageError: no format we read.
        DamagedFileError: a TIFF whose structure cannot be read.
        ImageDecodeError: damaged or truncated pixel data, or samples we refuse.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic in TIFF_MAGIC:
        return _decode_tiff(path, max_pixels, too_large_hint)
    return _decode_pillow(path, max_pixels, too_large_hint)


def _decode_tiff(path: Path, max_pixels: int, too_large_hint: str) -> DecodedImage:
    try:
        tf = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises many types for files it cannot parse
        raise DamagedFileError(f"{path}: the TIFF cannot be read ({exc}); it is damaged or incomplete.") from exc
    with tf:
        if not tf.pages:
            raise DamagedFileError(f"{path}: a TIFF without images; it is damaged or incomplete.")
        page = tf.pages.first
        if page.imagewidth * page.imagelength > max_pixels:
            raise ImageTooLargeError(f"{path}: {page.imagewidth} x {page.imagelength} pixels is {too_large_hint}")
        try:
            arr = page.asarray()
        except Exception as exc:  # imagecodecs errors, truncated strips, unsupported compression
            raise ImageDecodeError(f"{path}: the TIFF image cannot be decoded ({exc}).") from exc
        if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and arr.ndim == 3:
            arr = np.moveaxis(arr, 0, -1)
        photometric = page.photometric
        if photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
            arr = to_uint8(np.moveaxis(page.colormap, 0, -1), path)[arr]
        elif photometric == tifffile.PHOTOMETRIC.MINISWHITE and arr.dtype.kind == "u":
            arr = np.iinfo(arr.dtype).max - arr
        tags = page.tags
        unit = {2: "inch", 3: "centimeter"}.get(int(_tag(tags, "ResolutionUnit") or 1), "none")
        mpp = mpp_from_resolution(_rational(_tag(tags, "XResolution")), _rational(_tag(tags, "YResolution")), unit)
        bits = str(page.bitspersample)
    rgb = to_rgb(arr, path)
    props = {
        "image.format": "TIFF",
        "image.width": str(rgb.shape[1]),
        "image.height": str(rgb.shape[0]),
        "image.bits-per-sample": bits,
        "image.photometric": str(getattr(photometric, "name", photometric)),
        "tiff.ResolutionUnit": unit,
    }
    return DecodedImage(rgb, "TIFF", props, mpp)


def _decode_pillow(path: Path, max_pixels: int, too_large_hint: str) -> DecodedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=_PILLOW_FORMATS) as im:
                if im.width * im.height > max_pixels:
                    raise ImageTooLargeError(f"{path}: {im.width} x {im.height} pixels is {too_large_hint}")
                kind = "JPEG" if im.format == "MPO" else str(im.format)
                mode = im.mode
                im.load()
                if mode == "F":
                    raise ImageDecodeError(f"{path}: floating-point images are not supported; save it as 8-bit RGB.")
                if mode.startswith("I;16") or mode == "I":
                    rgb = to_rgb(np.asarray(im), path)
                elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
                    rgb = to_rgb(np.asarray(im.convert("RGBA")), path)
                else:
                    rgb = np.asarray(im.convert("RGB"))
    except (ImageTooLargeError, ImageDecodeError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{path}: more pixels than is safe to decode; {too_large_hint}") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImageError(f"{path}: not an image this program can read (is the file damaged or of another "
                              "type?).") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's truncated/corrupt-data errors
        raise ImageDecodeError(f"{path}: the image is damaged or truncated ({exc}).") from exc
    props = {"image.format": kind, "image.mode": mode, "image.width": str(rgb.shape[1]),
             "image.height": str(rgb.shape[0])}
    return DecodedImage(np.ascontiguousarray(rgb), kind, props, None)


def to_uint8(arr: np.ndarray, path: Path | str = "image") -> np.ndarray:
    """Samples to 8 bits: 16-bit by 257 (65535 -> 255); floats and wider integers are refused."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind in "ui":
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise ImageDecodeError(f"{path}: 32-bit integer pixels cannot be shown as brightness; save it as 8- or "
                                   "16-bit RGB.")
        out: np.ndarray = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return out
    if arr.dtype.kind == "f":
        raise ImageDecodeError(f"{path}: floating-point images are not supported; save it as 8-bit RGB.")
    raise ImageDecodeError(f"{path}: unsupported sample type {arr.dtype}.")


def to_rgb(arr: np.ndarray, path: Path | str = "image") -> np.ndarray:
    """Gray, gray+alpha, RGB or RGBA samples of 8 or 16 bits -> RGB ``uint8`` over white."""
    arr = to_uint8(arr, path)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ImageDecodeError(f"{path}: unsupported layout (array shape {arr.shape}).")
    channels = arr.shape[2]
    if channels in (1, 2):
        color, alpha = np.repeat(arr[..., :1], 3, axis=2), (arr[..., 1] if channels == 2 else None)
    else:
        color, alpha = arr[..., :3], (arr[..., 3] if channels >= 4 else None)
    if alpha is not None and alpha.min() < 255:
        a = alpha[..., None].astype(np.uint32)
        color = ((color.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(color)


def _tag(tags: Any, name: str) -> Any:
    tag = tags.get(name)
    return None if tag is None else tag.value


def _rational(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        num, den = value[:2]
        return num / den if den else None
    return float(value)


def plausible_mpp(mpp: float | None) -> float | None:
    lo, hi = MPP_PLAUSIBLE
    return mpp if mpp is not None and lo <= mpp <= hi else None


def mpp_from_resolution(x_res: float | None, y_res: float | None, unit: str) -> float | None:
    """um/px from TIFF resolution (pixels per unit); None without a physical unit."""
    um_per_unit = {"centimeter": 1e4, "inch": 25_400.0}.get(unit)
    known = [r for r in (x_res, y_res) if r is not None and r > 0]
    if um_per_unit is None or not known:
        return None
    return plausible_mpp(sum(um_per_unit / r for r in known) / len(known))


def decode_image(path: str | os.PathLike[str], max_pixels: int = MAX_PATCH_PIXELS) -> np.ndarray:
    """Read a patch file into an (H, W, 3) uint8 RGB array, or raise with a reason."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"{p}: cannot be read ({exc.strerror}).") from exc
    if size == 0:
        raise ImageDecodeError(f"{p}: the file is empty (0 bytes).")
    try:
        return decode_file(p, max_pixels, "too large to classify as one patch; analyse it as a slide with "
                                          "`chaoyang-desktop analyze`.").rgb
    except OSError as exc:
        raise ImageDecodeError(f"{p}: cannot be read ({exc.strerror or exc}).") from exc


def is_image_file(path: Path) -> bool:
    """An image by its suffix (any case); hidden files (``._x.png`` from macOS) are not."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_or_error(path: Path) -> np.ndarray | str:
    """The RGB pixels of ``path``, or the reason they cannot be read (never raises)."""
    try:
        return decode_image(path)
    except ChaoyangError as exc:
        return str(exc)
    except Exception as exc:  # a decoder bug on one odd file must not end a long run
        return f"{path}: cannot be decoded ({type(exc).__name__}: {exc})"
