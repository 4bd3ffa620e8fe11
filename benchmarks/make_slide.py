"""Write large pyramidal test slides made of real H&E tissue, streaming tile by tile.

The source is the real tissue of ``tests/data/slides/CMU-1-Small-Region.svs`` (2220 x 2967 px at
0.499 um/px). It is cropped to a size divisible by 2^levels and mirrored in both directions into
a seamless period of twice that size, which repeats over the whole slide. Because the period is
divisible by every downsample, each pyramid level is the same period box-reduced and repeated,
so a level is exactly the 2x2 reduction of the one above it without ever reading the level above:
generation needs memory for one period (about 100 MB), whatever the slide size.

Tiles are JPEG (quality 90), written by tifffile as a tiled pyramidal (Big)TIFF that OpenSlide
opens as ``generic-tiff`` (each level a top-level tiled page, reduced levels marked
``NewSubfileType = 1``, resolution in centimetres).

Usage::

    python benchmarks/make_slide.py /tmp/bench-10k.tiff --size 10000
    python benchmarks/make_slide.py /tmp/bench-100k.tiff --size 100000
    python benchmarks/make_slide.py /tmp/bench-4k.tiff --size 4096 --height 3072
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / "tests" / "data" / "slides" / "CMU-1-Small-Region.svs"


def load_source(path: Path) -> np.ndarray:
    """Level 0 of a slide or image as RGB uint8 (through the app's own reader)."""
    sys.path.insert(0, str(REPO))
    from chaoyang_desktop.core.slide.reader import open_slide

    with open_slide(path, assumed_mpp=0.5) as slide:
        w, h = slide.dimensions
        return slide.read_region(0, 0, 0, w, h)


def mirrored_period(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """Crop to a multiple of ``multiple`` per side and mirror into a seamless (2H, 2W) period."""
    h = rgb.shape[0] // multiple * multiple
    w = rgb.shape[1] // multiple * multiple
    if h == 0 or w == 0:
        raise SystemExit(f"The source ({rgb.shape[1]} x {rgb.shape[0]}) is smaller than {multiple} px; use fewer levels.")
    src = rgb[:h, :w]
    top = np.concatenate([src, src[:, ::-1]], axis=1)
    return np.ascontiguousarray(np.concatenate([top, top[::-1]], axis=0))


def halve(rgb: np.ndarray) -> np.ndarray:
    """Exact 2x2 box reduction (sides are even by construction)."""
    s = rgb.astype(np.uint16)
    out = (s[0::2, 0::2] + s[1::2, 0::2] + s[0::2, 1::2] + s[1::2, 1::2] + 2) // 4
    return out.astype(np.uint8)


def level_tiles(period: np.ndarray, width: int, height: int, tile: int) -> Iterator[np.ndarray]:
    """Tiles of a ``width`` x ``height`` level that repeats ``period``, row-major, padded to full tiles."""
    ph, pw = period.shape[:2]
    cols = np.arange(tile)
    for ty in range(math.ceil(height / tile)):
        rows = (ty * tile + cols) % ph
        band = period[rows]  # (tile, pw, 3): one band of the period serves a whole tile row
        for tx in range(math.ceil(width / tile)):
            xs = (tx * tile + cols) % pw
            yield np.ascontiguousarray(band[:, xs])


def write_slide(out: Path, width: int, height: int, *, mpp: float = 0.5, tile: int = 256, quality: int = 90,
                min_side: int = 1024, source: Path = DEFAULT_SOURCE, quiet: bool = False) -> Path:
    """Write the slide; returns its path. Levels halve until the longer side is below ``min_side``."""
    import tifffile

    levels = 1
    while max(width, height) / 2**levels >= min_side:
        levels += 1
    period = mirrored_period(load_source(source), 2 ** (levels - 1))
    resolution = (1e4 / mpp, 1e4 / mpp)
    # Level 0 alone is width*height*3 bytes raw; JPEG keeps it near a tenth, but classic TIFF
    # offsets stop at 4 GiB, so big slides need BigTIFF.
    bigtiff = width * height * 3 // 8 > 2**31
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tifffile.TiffWriter(out, bigtiff=bigtiff) as tw:
        for level in range(levels):
            lw, lh = math.ceil(width / 2**level), math.ceil(height / 2**level)
            tw.write(
                level_tiles(period, lw, lh, tile),
                shape=(lh, lw, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                resolution=resolution if level == 0 else (resolution[0] / 2**level, resolution[1] / 2**level),
                resolutionunit="CENTIMETER",
                subfiletype=0 if level == 0 else 1,
                software="chaoyang-desktop benchmarks/make_slide.py",
                maxworkers=os.cpu_count(),  # JPEG encoding in threads: most of the time on many cores
            )
            if not quiet:
                print(f"  level {level}: {lw} x {lh} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
            period = halve(period)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output .tiff")
    p.add_argument("--size", type=int, default=10_000, help="width in level-0 pixels (default 10000)")
    p.add_argument("--height", type=int, default=None, help="height (default: same as --size)")
    p.add_argument("--mpp", type=float, default=0.5, help="level-0 pixel size in um written to the file (default 0.5)")
    p.add_argument("--tile", type=int, default=256, help="TIFF tile side, a multiple of 16 (default 256)")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="tissue to repeat (default: CMU-1-Small-Region.svs)")
    args = p.parse_args(argv)
    height = args.height or args.size
    t0 = time.perf_counter()
    write_slide(args.out, args.size, height, mpp=args.mpp, tile=args.tile, quality=args.quality, source=args.source)
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out}: {args.size} x {height} px at {args.mpp} um/px, {size_mb:.0f} MB, "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
