"""Tiny test slides and images written at test time.

``write_pyramid_tiff`` writes a tiled pyramidal TIFF that OpenSlide opens as ``generic-tiff``:
every level is a tiled top-level page (OpenSlide ignores stripped pages and SubIFDs for this
format), reduced levels are marked ``NewSubfileType = 1``, and the pixel size goes in the
resolution tags in centimetres, which OpenSlide reports as ``openslide.mpp-x/y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile

#: H&E-like colours: eosin pink and haematoxylin purple.
_EOSIN = np.array([225, 140, 185], dtype=np.float32)
_HAEMATOXYLIN = np.array([110, 60, 150], dtype=np.float32)


def _halve(rgb: np.ndarray) -> np.ndarray:
    """2x2 box reduction (odd last row/column dropped, as pyramid writers usually do)."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    if h == 0 or w == 0:
        return rgb[:1, :1]
    blocks = rgb[:h, :w].astype(np.uint16)
    out = (blocks[0::2, 0::2] + blocks[1::2, 0::2] + blocks[0::2, 1::2] + blocks[1::2, 1::2] + 2) // 4
    return out.astype(rgb.dtype)


def write_pyramid_tiff(
    path: str | Path,
    rgb: np.ndarray,
    mpp: float | None = 0.5,
    levels: int = 3,
    tile: int = 256,
    compression: str | None = "jpeg",
    corrupt_tile: int | None = None,
) -> Path:
    """Write ``rgb`` as a tiled pyramidal TIFF that OpenSlide detects as ``generic-tiff``.

    Args:
        path: Output file.
        rgb: Level 0, ``(H, W, 3)`` ``uint8`` (or ``(H, W)`` gray, or ``uint16``).
        mpp: Pixel size written as resolution in centimetres; None writes no unit.
        levels: Pyramid levels, each half the size of the one before.
        tile: Tile side (a multiple of 16).
        compression: ``"jpeg"``, ``"zlib"``, or None for raw tiles.
        corrupt_tile: Index (row-major) of a level-0 tile whose bytes are overwritten with
            garbage, so decoding it fails. Needs a compression: raw tiles cannot fail to decode.

    Returns:
        The path written.
    """
    path = Path(path)
    if corrupt_tile is not None and compression is None:
        raise ValueError("corrupt_tile needs a compressed TIFF; raw tiles always decode")
    resolution = (1e4 / mpp, 1e4 / mpp) if mpp else None
    unit = "CENTIMETER" if mpp else "NONE"
    photometric = "rgb" if rgb.ndim == 3 else "minisblack"
    with tifffile.TiffWriter(path) as tw:
        level = rgb
        for i in range(levels):
            tw.write(
                level,
                tile=(tile, tile),
                photometric=photometric,
                compression=compression,
                resolution=resolution,
                resolutionunit=unit,
                subfiletype=0 if i == 0 else 1,
            )
            level = _halve(level)
    if corrupt_tile is not None:
        with tifffile.TiffFile(path) as tf:
            page = tf.pages.first
            offset = page.dataoffsets[corrupt_tile]
            nbytes = page.databytecounts[corrupt_tile]
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(b"\xab" * nbytes)
    return path


def tile_rect(index: int, width: int, tile: int = 256) -> tuple[int, int, int, int]:
    """Level-0 ``(x, y, w, h)`` of tile ``index`` (row-major) in a level ``width`` pixels wide."""
    cols = -(-width // tile)
    return (index % cols) * tile, (index // cols) * tile, tile, tile


def tissue_image(
    h: int,
    w: int,
    blocks: Sequence[tuple[int, int, int, int]] = (),
    seed: int = 0,
) -> np.ndarray:
    """White glass with H&E-like tissue texture inside ``blocks`` of ``(x, y, w, h)``.

    The glass has a little grey noise (as real glass does) but almost no saturation; the
    tissue is a random mix of eosin pink and haematoxylin purple, so a saturation threshold
    finds exactly the blocks.
    """
    rng = np.random.default_rng(seed)
    out = np.clip(rng.normal(242, 3, size=(h, w, 1)), 0, 255).repeat(3, axis=2)
    for bx, by, bw, bh in blocks:
        region = out[by : by + bh, bx : bx + bw]
        rh, rw = region.shape[:2]
        mix = rng.random((rh, rw, 1)).astype(np.float32) ** 2
        texture = _EOSIN * (1 - mix) + _HAEMATOXYLIN * mix + rng.normal(0, 8, size=(rh, rw, 3))
        region[...] = texture
    return np.clip(out, 0, 255).astype(np.uint8)
