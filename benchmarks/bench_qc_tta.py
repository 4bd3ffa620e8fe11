"""What tile quality control and test-time augmentation cost, per tile, on this machine.

Quality control: ``assess_tile`` (colour fractions at 128 px, focus at the nominal 512 px) on
real 512 px tiles of ``tests/data/slides/CMU-1-Small-Region.svs``, beside the read and the
resize every tile needs anyway; and an end-to-end run of the small model on a generated slide
with ``qc`` on and off.

Test-time augmentation: the classifier's model time per tile with and without ``tta`` (eight
orientations per tile, batched together) for the real ViT-B architecture (random weights) and
the small model.

Prints tables; asserts nothing.

    python benchmarks/bench_qc_tta.py [--tiles 64] [--vit-tiles 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    from benchmarks.common import TEST_DATA, command_line, ensure_model, ensure_slide, load_avg, machine_facts, print_table
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import TEST_DATA, command_line, ensure_model, ensure_slide, load_avg, machine_facts, print_table

import numpy as np
import torch

from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
from chaoyang_desktop.core.analysis.run import analyze_slide
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.model.preprocess import resize_tile
from chaoyang_desktop.core.slide.reader import open_slide
from chaoyang_desktop.core.slide.tile_qc import assess_tile


def _best_s(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def qc_per_tile(n: int, repeat: int) -> list[list[str]]:
    with open_slide(TEST_DATA / "slides" / "CMU-1-Small-Region.svs") as slide:
        w, h = slide.dimensions
        rng = np.random.default_rng(0)
        origins = [(int(rng.integers(0, w - 512)), int(rng.integers(0, h - 512))) for _ in range(n)]
        tiles = [slide.read_region(x, y, 0, 512, 512) for x, y in origins]
        read_s = _best_s(lambda: [slide.read_region(x, y, 0, 512, 512) for x, y in origins], repeat)
    profile = Classifier.load(str(ensure_model("tiny")), EngineSettings(device="cpu")).profile
    resize_s = _best_s(lambda: [resize_tile(t, profile) for t in tiles], repeat)
    qc_s = _best_s(lambda: [assess_tile(t, 512) for t in tiles], repeat)
    ms = 1000.0 / n
    return [["read 512 px (openslide, JPEG)", f"{read_s * ms:.2f}"],
            ["resize to 384 (cv2, training's)", f"{resize_s * ms:.2f}"],
            ["quality control (assess_tile)", f"{qc_s * ms:.2f}"]]


def qc_end_to_end(repeat: int) -> list[list[str]]:
    clf = Classifier.load(str(ensure_model("tiny")), EngineSettings(device="cpu", batch_size=32))
    slide = ensure_slide(8000)
    rows = []
    for qc in (False, True):
        settings = AnalysisSettings(qc=qc, workers=2)
        outcome = None

        def run() -> None:
            nonlocal outcome
            outcome = analyze_slide(slide, clf, settings)

        s = _best_s(run, repeat)
        assert outcome is not None
        r = outcome.result
        rows.append([f"small model, 8000 x 8000 px, qc {'on' if qc else 'off'}", f"{r.n_tiles}",
                     f"{r.n_done}", f"{r.n_qc}", f"{s:.2f}", f"{r.n_tiles / s:.0f}", f"{load_avg():.1f}"])
    return rows


def tta_cost(kind: str, n: int, repeat: int) -> list[str]:
    folder = str(ensure_model(kind))
    batch = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (n, 384, 384, 3), dtype=np.uint8))
    plain = Classifier.load(folder, EngineSettings(device="cpu", batch_size=max(n, 8)))
    tta = Classifier.load(folder, EngineSettings(device="cpu", batch_size=8 * max(n, 8), tta=True))
    plain.predict_tensor(batch[:1])  # warm-up: one-off allocations and kernel choice
    tta.predict_tensor(batch[:1])
    s_plain = _best_s(lambda: plain.predict_tensor(batch), repeat)
    s_tta = _best_s(lambda: tta.predict_tensor(batch), repeat)
    return [kind, str(n), f"{1000 * s_plain / n:.0f}", f"{1000 * s_tta / n:.0f}", f"{s_tta / s_plain:.2f}",
            f"{load_avg():.1f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=64, help="real tiles for the per-tile QC figures")
    ap.add_argument("--vit-tiles", type=int, default=4, help="tiles per ViT-B batch for the TTA figures")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(command_line())
    print(machine_facts())
    print_table(["step, one 512 px tile, 1 thread", "ms/tile"], qc_per_tile(args.tiles, args.repeat))
    print_table(["end to end", "tiles", "classified", "left out by QC", "s", "tiles/s", "load"],
                qc_end_to_end(args.repeat))
    print_table(["model", "tiles per batch", "ms/tile plain", "ms/tile TTA", "TTA / plain", "load"],
                [tta_cost("tiny", 32, args.repeat), tta_cost("base", args.vit_tiles, max(1, args.repeat - 1))])


if __name__ == "__main__":
    main()
