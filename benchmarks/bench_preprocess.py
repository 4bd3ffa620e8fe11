"""The tile resize, before and after it became OpenCV's: speed per tile and distance from training's pixels.

Before: PyTorch's bilinear ``F.interpolate`` on the uint8 batch (channels-last, CPU), the way
``core/model/preprocess.py`` resized until it called ``cv2.resize`` itself. After: ``resize_tile``,
``cv2.resize(INTER_LINEAR)`` on each uint8 tile in a reader thread (with an ``INTER_AREA``
pre-reduction for tiles much larger than 512 px). The reference for "exact" is ``cv2.resize``
itself, the function the model's training code called.

Tiles are real tissue, cut from ``tests/data/slides/CMU-1-Small-Region.svs``. Prints one table;
asserts nothing.

    python benchmarks/bench_preprocess.py [--tiles 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from benchmarks.common import TEST_DATA, command_line, load_avg, machine_facts, print_table
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import TEST_DATA, command_line, load_avg, machine_facts, print_table

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from chaoyang_desktop.core.model.preprocess import resize_tile
from chaoyang_desktop.core.model.profile import ModelProfile, VitArch
from chaoyang_desktop.core.slide.reader import open_slide


def _profile() -> ModelProfile:
    arch = VitArch(384, 16, 3, 768, 12, 12, 3072, 1e-12, True, "gelu")
    return ModelProfile("m", "local", "/m", "/m/w", "0" * 64, arch, ("A", "B"), ("#000000", "#ffffff"))


def _tiles(n: int, size: int) -> np.ndarray:
    with open_slide(TEST_DATA / "slides" / "CMU-1-Small-Region.svs") as slide:
        w, h = slide.dimensions
        rng = np.random.default_rng(0)
        out = []
        for _ in range(n):
            x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
            out.append(slide.read_region(x, y, 0, size, size))
    return np.stack(out)


def _torch_before(batch: np.ndarray) -> np.ndarray:
    """The previous way: one bilinear interpolate of the uint8 batch (NHWC memory), no antialias."""
    x = torch.from_numpy(batch).permute(0, 3, 1, 2)
    y = F.interpolate(x, size=(384, 384), mode="bilinear", align_corners=False, antialias=False)
    return y.permute(0, 2, 3, 1).contiguous().numpy()


def _cv2_after(batch: np.ndarray, workers: int) -> np.ndarray:
    profile = _profile()
    out = np.empty((len(batch), 384, 384, 3), dtype=np.uint8)

    def one(i: int) -> None:
        out[i] = resize_tile(batch[i], profile)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(len(batch))))
    return out


def _best_ms_per_tile(fn: object, batch: np.ndarray, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(batch)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best / len(batch) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(command_line())
    print(machine_facts())
    rows = []
    for size in (512, 500):
        batch = _tiles(args.tiles, size)
        exact = np.stack([cv2.resize(t, (384, 384), interpolation=cv2.INTER_LINEAR) for t in batch])
        before = _torch_before(batch)
        after = _cv2_after(batch, 1)
        diff_before = np.abs(before.astype(np.int16) - exact)
        diff_after = np.abs(after.astype(np.int16) - exact)
        torch.set_num_threads(1)
        ms_before_1 = _best_ms_per_tile(_torch_before, batch, args.repeat)
        torch.set_num_threads(2)
        ms_before_2 = _best_ms_per_tile(_torch_before, batch, args.repeat)
        ms_after_1 = _best_ms_per_tile(lambda b: _cv2_after(b, 1), batch, args.repeat)
        ms_after_2 = _best_ms_per_tile(lambda b: _cv2_after(b, 2), batch, args.repeat)
        rows.append([f"{size} -> 384", "torch interpolate (before)", f"{ms_before_1:.2f}", f"{ms_before_2:.2f}",
                     f"{np.mean(diff_before > 0):.1%}", str(int(diff_before.max())), f"{load_avg():.1f}"])
        rows.append([f"{size} -> 384", "cv2.resize in readers (now)", f"{ms_after_1:.2f}", f"{ms_after_2:.2f}",
                     f"{np.mean(diff_after > 0):.1%}", str(int(diff_after.max())), f"{load_avg():.1f}"])
    print_table(["tile", "resize", "ms/tile, 1 thread", "ms/tile, 2 threads", "pixels off training's",
                 "largest difference (levels)", "load"], rows)


if __name__ == "__main__":
    main()
