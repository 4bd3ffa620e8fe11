"""Decoding image files (patches and plain images) into RGB uint8 arrays with Pillow.

Every image mode a patch may come in is converted the same way: transparency composited over
white (the colour of glass), grayscale repeated, 16-bit scaled (not clipped) to 8 bits. Modes
that carry no brightness we can trust (float, 32-bit integer) are refused with a reason.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from chaoyang_desktop.core.errors import ChaoyangError, ImageDecodeError, ImageTooLargeError

# A patch is small; a larger plain image belongs in `analyze`, which tiles it.
MAX_PATCH_PIXELS = 64_000_000
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

# Truncated files must fail, not be padded with grey silently.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def to_rgb_array(img: Image.Image, where: str = "image") -> np.ndarray:
    """Convert a loaded Pillow image of any supported mode to an (H, W, 3) uint8 RGB array."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img).astype(np.uint32)
        return np.repeat(((arr + 128) // 257).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "I":
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ImageDecodeError(f"{where}: 32-bit integer pixels cannot be shown as brightness; save it as 8- or 16-bit RGB.")
        return np.repeat(((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)[..., None], 3, axis=2)
    if mode == "F":
        raise ImageDecodeError(f"{where}: floating-point images are not supported; save it as 8-bit RGB.")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if mode != "RGB":
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageDecodeError(f"{where}: image mode {mode} cannot be converted to RGB.") from exc
    return np.asarray(img)


def decode_image(path: str | os.PathLike[str], max_pixels: int = MAX_PATCH_PIXELS) -> np.ndarray:
    """Read an image file into an (H, W, 3) uint8 RGB array, or raise with a reason."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise ImageDecodeError(f"{p}: cannot be read ({exc.strerror}).") from exc
    if size == 0:
        raise ImageDecodeError(f"{p}: the file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageTooLargeError(
                        f"{p}: {w} x {h} pixels is too large to classify as one patch; "
                        "analyse it as a slide with `chaoyang-desktop analyze`."
                    )
                img.load()
                return to_rgb_array(img, str(p))
    except (ImageTooLargeError, ImageDecodeError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{p}: too large to decode safely; analyse it as a slide with `chaoyang-desktop analyze`.") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(f"{p}: not an image Pillow can read (is the file damaged or of another type?).") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageDecodeError(f"{p}: the image is damaged or truncated ({exc}).") from exc


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
