"""One reader interface over whole-slide images and plain images.

:func:`open_slide` returns a :class:`Slide`. Whole-slide formats go to OpenSlide (the only module
that imports it); plain PNG/JPEG/TIFF/BMP/WEBP images are decoded once into memory and served
as a one-level slide. Both backends return RGB ``uint8`` arrays with glass-white (255) wherever
there is no opaque pixel, and both are safe to read from several threads at once.

Pixel size (``mpp``, micrometres per level-0 pixel) comes from, in order: the caller's override,
the file's metadata (OpenSlide's ``openslide.mpp-x/y``, else TIFF resolution tags in centimetres
or inches), and for plain images only, the model's nominal resolution passed as ``assumed_mpp``.
Screen DPI values of JPEG/PNG files (72, 96, 300...) are not pixel sizes and are ignored.
"""

from __future__ import annotations

import abc
import logging
import hashlib
import math
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import openslide
import tifffile
from PIL import Image

from chaoyang_desktop.core.errors import (
    ImageDecodeError,
    ImageTooLargeError,
    MissingPixelSizeError,
    SettingsError,
    SlideOpenError,
)
from chaoyang_desktop.core.slide.imageio import (
    TIFF_MAGIC,
    DamagedFileError,
    NotAnImageError,
    decode_file,
    mpp_from_resolution,
    plausible_mpp,
)
from chaoyang_desktop.core.slide.tiling import choose_level

log = logging.getLogger(__name__)

SLIDE_SUFFIXES: tuple[str, ...] = (
    ".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm",
)
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

#: Largest plain image decoded into memory, in bytes of 8-bit RGB. Bigger images must be pyramids.
#: Pillow's own decompression-bomb guard (2 x ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 Mpx by
#: default) is left in place and may refuse a Pillow-decoded image first; both become
#: :class:`ImageTooLargeError`.
MAX_IMAGE_BYTES = 1_500_000_000

#: Pixel sizes a user may give (um/px): from beyond any optical scanner to a low-power overview.
MPP_ACCEPTED = (0.01, 100.0)

#: Suffixes only whole-slide images use: a file with one that OpenSlide cannot open is damaged,
#: never a plain image with an assumed pixel size.
WSI_ONLY_SUFFIXES: tuple[str, ...] = (".svs", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm")
_TIFF_BASED_SUFFIXES = (".svs", ".ndpi", ".scn", ".svslide", ".bif")

#: Microscopy formats we cannot read, by suffix: say so instead of "damaged".
UNSUPPORTED_FORMATS = {
    ".lif": "Leica LIF",
    ".vsi": "Olympus VSI",
    ".nd2": "Nikon ND2",
    ".oib": "Olympus OIB",
    ".oir": "Olympus OIR",
    ".qptiff": "Akoya QPTIFF",
    ".isyntax": "Philips iSyntax",
    ".kfb": "KFBio KFB",
    ".sdpc": "SQRAY SDPC",
}
#: DICOM transfer syntaxes (compressions) by UID, to name one OpenSlide refuses.
DICOM_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.80": "JPEG-LS lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K lossless",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
    "1.2.840.10008.1.2.4.110": "JPEG XL lossless",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
    "1.2.840.10008.1.2.5": "RLE lossless",
}
_CONVERT_HINT = "Convert it to a pyramidal (OME-)TIFF, for example with QuPath or bfconvert, and open that."


def check_mpp(mpp: float | None, name: str = "The pixel size") -> None:
    """Refuse a user's pixel size that no slide can have (None: none given)."""
    low, high = MPP_ACCEPTED
    if mpp is not None and not (math.isfinite(mpp) and low <= mpp <= high):
        raise SettingsError(f"{name} must be between {low:g} and {high:g} micrometres per pixel (got {mpp:g}); "
                            "20x scans are about 0.5, 40x about 0.25.")


def unsupported_message(path: Path, detail: str) -> str | None:
    """A sentence naming the unsupported format or compression behind ``detail``, or None."""
    for uid, name in DICOM_TRANSFER_SYNTAXES.items():
        if uid in detail:
            return (f"{path.name} uses {name} compression (DICOM transfer syntax {uid}), which this version cannot "
                    f"decode. {_CONVERT_HINT}")
    if "nsupported" in detail or "not supported" in detail:
        return f"{path.name}: its format or compression is not supported ({detail}). {_CONVERT_HINT}"
    return None

#: Level pixels read at once when making a thumbnail, so a huge single-level slide is streamed.
_THUMB_READ_PIXELS = 1 << 25

_VENDOR_NAMES = {
    "aperio": "Aperio",
    "dicom": "DICOM",
    "generic-tiff": "Generic TIFF",
    "hamamatsu": "Hamamatsu",
    "leica": "Leica",
    "mirax": "3DHISTECH MIRAX",
    "philips": "Philips",
    "sakura": "Sakura",
    "synthetic": "OpenSlide synthetic",
    "trestle": "Trestle",
    "ventana": "Ventana",
    "zeiss": "Zeiss",
}

_SUPPORTED_HINT = (
    "Supported are whole-slide formats that OpenSlide reads (Aperio .svs, Hamamatsu .ndpi/.vms, "
    "Leica .scn, MIRAX .mrxs, Philips and generic tiled TIFF, Ventana .bif, DICOM .dcm, ...) "
    "and plain PNG, JPEG, TIFF, BMP and WEBP images."
)
_FINGERPRINT_CHUNK = 1 << 20


class Slide(abc.ABC):
    """An open slide or image: pyramid geometry, pixel size and thread-safe region reads.

    Attributes:
        path: The file that was opened.
        format: OpenSlide's vendor id (``"aperio"``, ``"hamamatsu"``, ``"generic-tiff"``...) or
            ``"image"`` for a plain image.
        vendor: Human-readable format, e.g. ``"Aperio"`` or ``"Image (JPEG)"``.
        dimensions: Level-0 ``(width, height)``.
        level_count: Number of pyramid levels.
        level_dimensions: ``(width, height)`` of every level.
        level_downsamples: Downsample of every level relative to level 0.
        mpp: Micrometres per level-0 pixel, or None when unknown.
        mpp_assumed: True when ``mpp`` is the model's nominal resolution, not a measurement.
        mpp_source: ``"metadata"``, ``"override"``, ``"assumed"`` or ``"none"``.
        objective_power: Scanner objective magnification, when the file says.
        properties: OpenSlide properties, or a few facts about a plain image.
    """

    path: Path
    format: str
    vendor: str
    dimensions: tuple[int, int]
    level_count: int
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: float | None
    mpp_assumed: bool
    mpp_source: str
    objective_power: float | None
    properties: dict[str, str]

    def __init__(
        self,
        path: Path,
        format: str,
        vendor: str,
        level_dimensions: tuple[tuple[int, int], ...],
        level_downsamples: tuple[float, ...],
        properties: dict[str, str],
        metadata_mpp: float | None,
        mpp: float | None,
        assumed_mpp: float | None,
        objective_power: float | None,
    ) -> None:
        self.path = path
        self.format = format
        self.vendor = vendor
        self.level_dimensions = level_dimensions
        self.level_downsamples = level_downsamples
        self.dimensions = level_dimensions[0]
        self.level_count = len(level_dimensions)
        self.properties = properties
        self.objective_power = objective_power
        self.mpp_assumed = False
        if mpp is not None:
            self.mpp, self.mpp_source = mpp, "override"
        elif metadata_mpp is not None:
            self.mpp, self.mpp_source = metadata_mpp, "metadata"
        elif assumed_mpp is not None:
            self.mpp, self.mpp_source, self.mpp_assumed = assumed_mpp, "assumed", True
        else:
            self.mpp, self.mpp_source = None, "none"
        self._fingerprint: str | None = None

    # -- pixels -------------------------------------------------------------------------------

    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        """Read a rectangle of one pyramid level.

        Args:
            l0_x: Left edge in level-0 pixels (may be negative).
            l0_y: Top edge in level-0 pixels (may be negative).
            level: Pyramid level to read from.
            lv_w: Width in pixels of that level.
            lv_h: Height in pixels of that level.

        Returns:
            ``(lv_h, lv_w, 3)`` RGB ``uint8``; outside the slide and transparent pixels are white.

        Raises:
            ImageDecodeError: The file's data for this region cannot be decoded.
            ValueError: Bad level or negative size.
        """
        if not 0 <= level < self.level_count:
            raise ValueError(f"Level {level} does not exist; {self.path.name} has {self.level_count} level(s).")
        if lv_w < 0 or lv_h < 0:
            raise ValueError(f"Region size must not be negative (got {lv_w} x {lv_h}).")
        if lv_w == 0 or lv_h == 0:
            return np.full((lv_h, lv_w, 3), 255, dtype=np.uint8)
        return self._read(int(l0_x), int(l0_y), level, int(lv_w), int(lv_h))

    @abc.abstractmethod
    def _read(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        """Backend read; arguments already validated and non-empty."""

    def thumbnail(self, max_side: int) -> np.ndarray:
        """The whole slide as RGB ``uint8`` whose longer side is at most ``max_side``.

        The pixels come from the coarsest level that is still at least as fine as the thumbnail,
        read in bands, so full resolution of a pyramid is never decoded. A slide smaller than
        ``max_side`` is returned at level 0 without upscaling. Level-0 pixels per thumbnail pixel
        are given by :meth:`l0_per_px`.
        """
        if max_side < 1:
            raise ValueError(f"max_side must be at least 1 (got {max_side}).")
        l0_w, l0_h = self.dimensions
        scale = min(1.0, max_side / max(l0_w, l0_h))
        th_w = max(1, min(max_side, round(l0_w * scale)))
        th_h = max(1, min(max_side, round(l0_h * scale)))
        level = choose_level(self.level_downsamples, 1.0 / scale)
        lv_w, lv_h = self.level_dimensions[level]
        ds = self.level_downsamples[level]
        if (lv_w, lv_h) == (th_w, th_h):
            return self._read_damaged_as_glass(0, 0, level, lv_w, lv_h)
        # Rows per band: enough that each band maps to at least one thumbnail row.
        band = max(1, _THUMB_READ_PIXELS // lv_w, math.ceil(lv_h / th_h))
        parts: list[np.ndarray] = []
        for lv_y in range(0, lv_h, band):
            lv_y1 = min(lv_h, lv_y + band)
            th_y0 = round(lv_y * th_h / lv_h)
            th_y1 = round(lv_y1 * th_h / lv_h)
            if th_y1 <= th_y0:
                continue
            region = self._read_damaged_as_glass(0, round(lv_y * ds), level, lv_w, lv_y1 - lv_y)
            small = Image.fromarray(region).resize((th_w, th_y1 - th_y0), Image.Resampling.BOX)
            parts.append(np.asarray(small))
        return np.ascontiguousarray(np.concatenate(parts, axis=0))

    def _read_damaged_as_glass(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int,
                               block: int = 512) -> np.ndarray:
        """Like :meth:`read_region`, but damaged tiles come back white instead of failing.

        An overview must show the rest of a slide with one corrupt tile; the analysis reads
        those tiles itself and records them as failed.
        """
        try:
            return self.read_region(l0_x, l0_y, level, lv_w, lv_h)
        except ImageDecodeError:
            pass
        ds = self.level_downsamples[level]
        out = np.full((lv_h, lv_w, 3), 255, dtype=np.uint8)
        for by in range(0, lv_h, block):
            for bx in range(0, lv_w, block):
                bw, bh = min(block, lv_w - bx), min(block, lv_h - by)
                try:
                    out[by : by + bh, bx : bx + bw] = self.read_region(
                        l0_x + round(bx * ds), l0_y + round(by * ds), level, bw, bh)
                except ImageDecodeError as exc:
                    log.warning("%s", exc)
        return out

    # -- associated images (label, macro, the scanner's thumbnail) ---------------------------

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        """Names of the pictures stored beside the pyramid (``"label"``, ``"macro"``, ``"thumbnail"``...).

        Listing them reads no pixels. Plain images have none.
        """
        return ()

    def read_associated_image(self, name: str) -> np.ndarray:
        """One associated image as RGB ``uint8`` (transparent pixels over white), read now.

        Raises:
            KeyError: The slide has no associated image of that name.
            ImageDecodeError: Its data cannot be decoded.
            ValueError: The slide is closed.
        """
        raise KeyError(f"{self.path.name} has no associated image {name!r}.")

    def l0_per_px(self, thumb: np.ndarray) -> tuple[float, float]:
        """Level-0 pixels per pixel of ``thumb`` (an image of the whole slide), as ``(x, y)``."""
        return self.dimensions[0] / thumb.shape[1], self.dimensions[1] / thumb.shape[0]

    # -- metadata -----------------------------------------------------------------------------

    def require_mpp(self) -> float:
        """The pixel size, or a :class:`MissingPixelSizeError` that says how to give one."""
        if self.mpp is None:
            raise MissingPixelSizeError(
                f"{self.path.name} has no pixel size in its metadata. Give it with --mpp 0.5 "
                "(micrometres per pixel; use your scanner's value, e.g. about 0.25 at 40x and 0.5 at 20x), "
                "or set it in the slide's properties in the viewer."
            )
        return self.mpp

    def fingerprint(self) -> str:
        """A stable identity of the file content; see :func:`file_fingerprint`."""
        if self._fingerprint is None:
            self._fingerprint = file_fingerprint(self.path)
        return self._fingerprint

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the file; reads after this raise ``ValueError``."""

    def __enter__(self) -> Slide:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path.name!r} {self.vendor} {self.dimensions} mpp={self.mpp}>"


# ---------------------------------------------------------------------------------------------
# OpenSlide backend


class _Handle:
    """One OpenSlide handle and how many reads are using it right now."""

    __slots__ = ("osr", "users", "retired")

    def __init__(self, osr: openslide.OpenSlide) -> None:
        self.osr = osr
        self.users = 0
        self.retired = False


class _OpenSlideSlide(Slide):
    """A whole-slide image read through OpenSlide.

    OpenSlide handles are thread-safe, but after any decode error a handle stays in an error
    state and every later call on it fails, from every thread. So a failed read replaces the
    shared handle (closing the old one once no thread still reads through it) and retries once
    on a private handle; only if that fails too is the region reported as damaged.

    Aperio and generic tiled TIFF levels stored as JPEG tiles are read by :class:`_TiffTiles`
    instead, when the region starts on a whole pixel of the level: the same pixels, four times
    faster (see there). Everything else, and any tile that path cannot decode, goes to OpenSlide.
    """

    def __init__(self, path: Path, vendor_id: str, mpp: float | None) -> None:
        osr = _open_osr(path)
        props = dict(osr.properties)
        super().__init__(
            path=path,
            format=vendor_id,
            vendor=_VENDOR_NAMES.get(vendor_id, vendor_id.title()),
            level_dimensions=tuple((int(w), int(h)) for w, h in osr.level_dimensions),
            level_downsamples=tuple(float(d) for d in osr.level_downsamples),
            properties=props,
            metadata_mpp=_mpp_from_properties(props),
            mpp=mpp,
            assumed_mpp=None,
            objective_power=_positive_float(props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)),
        )
        # The names only: openslide-python's mapping reads an image's pixels when it is looked up.
        self._associated_names: tuple[str, ...] = tuple(osr.associated_images.keys())
        self._lock = threading.Lock()
        self._current: _Handle | None = _Handle(osr)
        self._tiles = _TiffTiles.open(path, self.level_dimensions) if vendor_id in _TIFF_TILE_VENDORS else None

    def _acquire(self) -> _Handle:
        with self._lock:
            if self._current is None:
                raise ValueError(f"{self.path.name} is closed.")
            self._current.users += 1
            return self._current

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.users -= 1
            if handle.retired and handle.users == 0:
                handle.osr.close()

    def _renew(self, bad: _Handle) -> None:
        """Replace ``bad`` with a fresh handle unless another thread already did."""
        with self._lock:
            if self._current is not bad:
                return
            try:
                self._current = _Handle(_open_osr(self.path))
            except SlideOpenError:
                return  # the file went away: keep the broken handle, so reads keep reporting errors
            bad.retired = True
            if bad.users == 0:
                bad.osr.close()

    def _read(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        tiles = self._tiles
        if tiles is not None:
            region = tiles.read(l0_x, l0_y, level, lv_w, lv_h, self.level_downsamples[level])
            if region is not None:
                return region
        handle = self._acquire()
        try:
            return _rgb_over_white(handle.osr.read_region((l0_x, l0_y), level, (lv_w, lv_h)))
        except openslide.OpenSlideError:
            pass  # this tile may be fine: another thread's bad tile also breaks the shared handle
        finally:
            self._release(handle)
        self._renew(handle)
        # Retry on a private handle, so the answer depends on this region alone.
        try:
            private = _open_osr(self.path)
        except SlideOpenError as exc:
            raise ImageDecodeError(f"Cannot read {self.path.name} again after a decoding error: {exc}") from exc
        try:
            return _rgb_over_white(private.read_region((l0_x, l0_y), level, (lv_w, lv_h)))
        except openslide.OpenSlideError as exc:
            raise ImageDecodeError(
                f"Cannot decode {self.path.name} at level {level}, level-0 x={l0_x} y={l0_y}, "
                f"size {lv_w} x {lv_h} px: {exc}. This part of the file is damaged; "
                "other regions can still be read."
            ) from exc
        finally:
            private.close()

    @property
    def associated_image_names(self) -> tuple[str, ...]:
        return self._associated_names

    def read_associated_image(self, name: str) -> np.ndarray:
        if name not in self._associated_names:
            raise KeyError(f"{self.path.name} has no associated image {name!r}; it has "
                           f"{', '.join(self._associated_names) or 'none'}.")
        handle = self._acquire()
        try:
            return _rgb_over_white(handle.osr.associated_images[name])
        except openslide.OpenSlideError as exc:
            error = exc
        finally:
            self._release(handle)
        self._renew(handle)  # a handle in OpenSlide's error state would fail every later read
        raise ImageDecodeError(f"Cannot decode the {name} image of {self.path.name}: {error}. "
                               "The slide itself may still be readable.") from error

    def close(self) -> None:
        with self._lock:
            handle, self._current = self._current, None
            tiles, self._tiles = self._tiles, None
            if handle is not None:
                handle.retired = True
                if handle.users == 0:
                    handle.osr.close()
        if tiles is not None:
            tiles.close()


#: OpenSlide formats whose pyramid levels are plain tiled TIFF pages.
_TIFF_TILE_VENDORS = frozenset({"aperio", "generic-tiff"})
_TIFF_JPEG = 7
_TIFF_PHOTOMETRIC_RGB_OR_YCBCR = (2, 6)


class _TiffLevel:
    """Where one pyramid level's JPEG tiles lie in the file, and how to decode them."""

    __slots__ = ("width", "height", "tile_w", "tile_h", "cols", "offsets", "counts", "decode", "tables", "header")

    def __init__(self, page: Any) -> None:
        self.width, self.height = int(page.imagewidth), int(page.imagelength)
        self.tile_w, self.tile_h = int(page.tilewidth), int(page.tilelength)
        self.cols = -(-self.width // self.tile_w)
        self.offsets = tuple(int(o) for o in page.dataoffsets)
        self.counts = tuple(int(c) for c in page.databytecounts)
        self.decode = page.decode  # a closure over the page's fixed facts: safe from any thread
        self.tables = page.jpegtables
        self.header = page.jpegheader


class _TiffTiles:
    """Reads regions of JPEG-tiled TIFF pyramid levels straight from the file.

    OpenSlide decodes these tiles with libjpeg-turbo too, but paints them through cairo into
    premultiplied ARGB, which openslide-python converts to RGBA, which we turn into RGB: four
    times the work of decoding alone (5.4 vs 1.4 ms CPU for a 512 px tile). Here each tile's
    bytes are read with ``os.pread`` and decoded by tifffile's own decoder for the page
    (imagecodecs' libjpeg-turbo, JPEG tables and colour space as the TIFF says); both release
    the GIL, so reader threads scale.

    Only regions whose origin is a whole pixel of the level are served: OpenSlide resamples
    regions that start between pixels (non-integer ``l0 / downsample``), and those stay with it,
    so every pixel returned equals OpenSlide's (checked in the tests). ``read`` returns None for
    those, for levels without a matching tiled JPEG page, and for any tile it cannot decode:
    the caller then asks OpenSlide, which also owns the error reporting for damaged tiles.
    """

    def __init__(self, fd: int, levels: dict[int, _TiffLevel]) -> None:
        self._fd: int | None = fd
        self._levels = levels
        # The descriptor is closed only once no read uses it: a number closed under a running
        # pread could be reused by another file at once.
        self._lock = threading.Lock()
        self._users = 0
        self._closing: int | None = None

    @classmethod
    def open(cls, path: Path, level_dimensions: tuple[tuple[int, int], ...]) -> _TiffTiles | None:
        try:
            with tifffile.TiffFile(path) as tf:
                by_size: dict[tuple[int, int], _TiffLevel] = {}
                for page in tf.pages:
                    if not isinstance(page, tifffile.TiffPage):
                        continue
                    if not (page.is_tiled and page.compression == _TIFF_JPEG
                            and page.photometric in _TIFF_PHOTOMETRIC_RGB_OR_YCBCR and page.bitspersample == 8
                            and page.samplesperpixel == 3 and page.planarconfig == 1 and page.imagedepth == 1):
                        continue
                    by_size.setdefault((int(page.imagewidth), int(page.imagelength)), _TiffLevel(page))
            levels = {lv: by_size[dims] for lv, dims in enumerate(level_dimensions) if dims in by_size}
        except Exception as exc:  # any surprise in the file: OpenSlide alone reads it, as before
            log.debug("No direct tile reading for %s: %s", path.name, exc)
            return None
        if not levels:
            return None
        return cls(os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0)), levels)

    def read(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int, downsample: float) -> np.ndarray | None:
        lvl = self._levels.get(level)
        if lvl is None:
            return None
        fx, fy = l0_x / downsample, l0_y / downsample
        lv_x, lv_y = round(fx), round(fy)
        if abs(fx - lv_x) > 1e-6 or abs(fy - lv_y) > 1e-6:
            return None
        with self._lock:
            fd = self._fd
            if fd is None:
                return None
            self._users += 1
        try:
            return self._read(fd, lvl, lv_x, lv_y, lv_w, lv_h)
        finally:
            with self._lock:
                self._users -= 1
                if self._fd is None and self._users == 0 and self._closing is not None:
                    os.close(self._closing)
                    self._closing = None

    def _read(self, fd: int, lvl: _TiffLevel, lv_x: int, lv_y: int, lv_w: int, lv_h: int) -> np.ndarray | None:
        out = np.full((lv_h, lv_w, 3), 255, dtype=np.uint8)
        x0, y0 = max(0, lv_x), max(0, lv_y)
        x1, y1 = min(lvl.width, lv_x + lv_w), min(lvl.height, lv_y + lv_h)
        if x1 <= x0 or y1 <= y0:
            return out
        try:
            for ty in range(y0 // lvl.tile_h, (y1 - 1) // lvl.tile_h + 1):
                for tx in range(x0 // lvl.tile_w, (x1 - 1) // lvl.tile_w + 1):
                    index = ty * lvl.cols + tx
                    count = lvl.counts[index]
                    if count == 0:
                        continue  # a tile the scanner never wrote: glass, as OpenSlide shows it
                    data = os.pread(fd, count, lvl.offsets[index])
                    tile = lvl.decode(data, index, jpegtables=lvl.tables, jpegheader=lvl.header)[0]
                    tile = tile.reshape(tile.shape[-3:])
                    # The part of this tile inside both the region and the level.
                    tx0, ty0 = tx * lvl.tile_w, ty * lvl.tile_h
                    ax0, ay0 = max(x0, tx0), max(y0, ty0)
                    ax1, ay1 = min(x1, tx0 + lvl.tile_w), min(y1, ty0 + lvl.tile_h)
                    out[ay0 - lv_y : ay1 - lv_y, ax0 - lv_x : ax1 - lv_x] = \
                        tile[ay0 - ty0 : ay1 - ty0, ax0 - tx0 : ax1 - tx0, :3]
        except Exception:  # damaged or unusual tile: OpenSlide decides and reports
            return None
        return out

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if self._users:
                self._closing = fd  # the last read closes it
            else:
                os.close(fd)


def _open_osr(path: Path) -> openslide.OpenSlide:
    try:
        return openslide.OpenSlide(path)
    except openslide.OpenSlideError as exc:
        unsupported = unsupported_message(path, str(exc))
        raise SlideOpenError(unsupported or (
            f"Cannot open {path.name} as a whole-slide image: {exc}. The file may be damaged or incomplete."
        )) from exc


def _rgb_over_white(image: Image.Image) -> np.ndarray:
    """RGB over white from the RGBA image OpenSlide returns.

    Most regions are fully opaque: then Pillow drops alpha in C, three times faster than
    slicing the RGBA array in numpy (which made this a sixth of a tile read's cost).
    """
    alpha_min, _ = image.getchannel("A").getextrema()
    if alpha_min == 255:
        return np.array(image.convert("RGB"))  # np.array, not asarray: callers may write into it
    return _composite_over_white(np.asarray(image))


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """RGB over white from OpenSlide's RGBA (openslide-python has already un-premultiplied it)."""
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    a = alpha[..., None].astype(np.uint32)
    out = (rgba[..., :3].astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def _mpp_from_properties(props: dict[str, str]) -> float | None:
    values = [_positive_float(props.get(k)) for k in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y)]
    known = [v for v in values if v is not None]
    if known:
        return plausible_mpp(sum(known) / len(known))
    unit = props.get("tiff.ResolutionUnit", "").lower()
    res = [_positive_float(props.get(k)) for k in ("tiff.XResolution", "tiff.YResolution")]
    return mpp_from_resolution(res[0], res[1], unit)


# ---------------------------------------------------------------------------------------------
# Plain-image backend


class _ImageSlide(Slide):
    """A plain image decoded once into an RGB array; reads are slices of it (thread-safe)."""

    def __init__(self, path: Path, mpp: float | None, assumed_mpp: float | None) -> None:
        # The decoder of patches too: an image gives the model the same pixels either way.
        try:
            image = decode_file(path, MAX_IMAGE_BYTES // 3, "too big to decode into memory as a plain image. "
                                + _CONVERT_TO_PYRAMID.format(name=path.name))
        except NotAnImageError as exc:
            raise SlideOpenError(f"{path.name} is neither a whole-slide image OpenSlide recognises nor a plain "
                                 "image. " + _SUPPORTED_HINT) from exc
        except DamagedFileError as exc:
            raise SlideOpenError(str(exc)) from exc
        rgb, kind, props, metadata_mpp = image.rgb, image.kind, image.properties, image.mpp
        rgb.setflags(write=False)
        self._rgb: np.ndarray | None = rgb
        h, w = rgb.shape[:2]
        super().__init__(
            path=path,
            format="image",
            vendor=f"Image ({kind})",
            level_dimensions=((w, h),),
            level_downsamples=(1.0,),
            properties=props,
            metadata_mpp=metadata_mpp,
            mpp=mpp,
            assumed_mpp=assumed_mpp,
            objective_power=None,
        )

    def _read(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
        rgb = self._rgb
        if rgb is None:
            raise ValueError(f"{self.path.name} is closed.")
        out = np.full((lv_h, lv_w, 3), 255, dtype=np.uint8)
        h, w = rgb.shape[:2]
        x0, y0 = max(0, l0_x), max(0, l0_y)
        x1, y1 = min(w, l0_x + lv_w), min(h, l0_y + lv_h)
        if x1 > x0 and y1 > y0:
            out[y0 - l0_y : y1 - l0_y, x0 - l0_x : x1 - l0_x] = rgb[y0:y1, x0:x1]
        return out

    def close(self) -> None:
        self._rgb = None


_CONVERT_TO_PYRAMID = ("Convert it to a tiled pyramidal TIFF and open that instead, e.g. "
                       "`vips tiffsave \"{name}\" out.tif --tile --pyramid --compression jpeg --Q 90`.")


def _claimed_wsi_format(path: Path) -> str | None:
    """The whole-slide format a file claims by its suffix or TIFF tags, or None for a plain image."""
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        is_tiff = fh.read(4) in TIFF_MAGIC
    if suffix in WSI_ONLY_SUFFIXES and (is_tiff or suffix not in _TIFF_BASED_SUFFIXES):
        return f"{suffix[1:].upper()}"
    if not is_tiff:
        return None  # not even a TIFF: the plain-image path says what it is not
    try:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first if tf.pages else None
            description = str(getattr(page, "description", "") or "")
            for flag, name in (("is_svs", "Aperio"), ("is_ndpi", "Hamamatsu NDPI"), ("is_scn", "Leica SCN"),
                               ("is_philips", "Philips TIFF"), ("is_bif", "Ventana BIF")):
                if getattr(tf, flag, False):
                    return name
    except Exception:  # unreadable enough that tifffile cannot tell: the plain-image path reports it
        return None
    return "Aperio" if description.startswith("Aperio") else None


def _positive_float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """A stable identity of a slide's content, cheap for huge files (32 hex characters).

    Hashes the size and the first and last MiB of the file and of each companion file
    (MIRAX data folder, sibling DICOM instances), with companion names relative to their
    folder. It ignores the path and the modification time, so a copy keeps its identity.
    """
    p = Path(path)
    digest = hashlib.sha256()
    _hash_file(digest, p)
    for companion in _companion_files(p):
        digest.update(b"\0" + companion.name.encode("utf-8", "surrogateescape") + b"\0")
        _hash_file(digest, companion)
    return digest.hexdigest()[:32]


def _hash_file(digest: Any, path: Path) -> None:
    size = path.stat().st_size
    digest.update(size.to_bytes(8, "little"))
    with open(path, "rb") as fh:
        digest.update(fh.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            fh.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
            digest.update(fh.read(_FINGERPRINT_CHUNK))


def _companion_files(path: Path) -> list[Path]:
    """Files that hold the rest of a multi-file slide, in a stable order."""
    suffix = path.suffix.lower()
    if suffix == ".mrxs":
        folder = path.with_suffix("")
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if suffix == ".dcm":
        return sorted(p for p in path.parent.glob("*") if p.suffix.lower() == ".dcm" and p != path and p.is_file())
    return []


def is_probably_slide(path: str | os.PathLike[str]) -> bool:
    """Whether a folder listing should offer ``path`` as something :func:`open_slide` can open.

    Judged by name only (no file is read): a visible file with a slide or image suffix.
    """
    p = Path(path)
    return not p.name.startswith(".") and p.suffix.lower() in SLIDE_SUFFIXES + IMAGE_SUFFIXES


def open_slide(
    path: str | os.PathLike[str],
    mpp: float | None = None,
    assumed_mpp: float | None = None,
) -> Slide:
    """Open a whole-slide image or a plain image.

    Args:
        path: The file (for DICOM, a ``.dcm`` file of the slide or the folder holding it).
        mpp: The user's pixel size in um/px; overrides the metadata.
        assumed_mpp: Used for plain images without a pixel size (the model's nominal
            resolution); the slide then reports ``mpp_assumed=True``.

    Raises:
        SlideOpenError: Missing, unreadable or unsupported file.
        ImageTooLargeError: A plain image too big to decode into memory.
        ImageDecodeError: A plain image whose data is damaged.
        SettingsError: ``mpp`` or ``assumed_mpp`` is not a positive number.
    """
    check_mpp(mpp)
    check_mpp(assumed_mpp, "The assumed pixel size")
    p = Path(path)
    if p.is_dir():
        dicoms = sorted(q for q in p.iterdir() if q.suffix.lower() == ".dcm")
        if not dicoms:
            raise SlideOpenError(
                f"{p} is a folder without DICOM (.dcm) files. Open a slide file instead. " + _SUPPORTED_HINT
            )
        p = dicoms[0]
    if not p.is_file():
        raise SlideOpenError(f"{p} does not exist. Check the path.")
    try:
        if p.stat().st_size == 0:
            raise SlideOpenError(f"{p.name} is empty (0 bytes); it may not have finished copying.")
        vendor_id = openslide.OpenSlide.detect_format(p)
        if vendor_id is not None:
            return _OpenSlideSlide(p, vendor_id, mpp)
        if p.suffix.lower() in UNSUPPORTED_FORMATS:
            raise SlideOpenError(f"{p.name} is a {UNSUPPORTED_FORMATS[p.suffix.lower()]} file, a format this "
                                 f"version cannot read. {_CONVERT_HINT}")
        claimed = _claimed_wsi_format(p)
        if claimed is not None:
            # Never downgrade a whole-slide image to a plain image with an assumed pixel size.
            raise SlideOpenError(
                f"{p.name} is a whole-slide image ({claimed}) that cannot be read: the file is damaged or incomplete "
                "(for example a copy that did not finish). Copy it again from the scanner or archive.")
        return _ImageSlide(p, mpp, assumed_mpp)
    except PermissionError as exc:
        raise SlideOpenError(f"Cannot read {p}: permission denied.") from exc
    except (SlideOpenError, ImageTooLargeError, ImageDecodeError):
        raise
    except OSError as exc:
        raise SlideOpenError(f"Cannot read {p}: {exc.strerror or exc}.") from exc
