"""Run WSInfer on one folder of slides and print its timings as JSON (runs inside WSInfer's venv).

This does what ``wsinfer run --config C --model-path M`` does (tissue segmentation and patching,
then ``run_inference``), through WSInfer's own functions, and skips only the GeoJSON and QuPath
writing that ``analyze`` has no counterpart for in the benchmark. The CLI itself cannot be used
offline: WSInfer 0.6.1 downloads its model-zoo registry from the Hugging Face hub when the
``run`` command is imported, even when a local model is given.

It imports nothing from this repository, so it runs under WSInfer's interpreter:

    /tmp/wsinfer-venv/bin/python benchmarks/wsinfer_driver.py --wsi-dir D --results-dir R \\
        --config model/config.json --model-path model/model.pt --batch-size 16 --num-workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--wsi-dir", type=Path, required=True)
    p.add_argument("--results-dir", type=Path, required=True)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--model-path", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=min(os.cpu_count() or 1, 8))  # WSInfer's default
    p.add_argument("--backend", choices=("openslide", "tiffslide"), default=None)
    args = p.parse_args()

    t_start = time.perf_counter()
    import torch

    from wsinfer.wsi import set_backend

    if args.backend:
        set_backend(args.backend)
    from wsinfer.modellib import models
    from wsinfer.modellib.run_inference import run_inference
    from wsinfer.patchlib import segment_and_patch_directory_of_slides
    from wsinfer_zoo.client import ModelConfiguration

    t_imported = time.perf_counter()
    config = ModelConfiguration.from_dict(json.loads(args.config.read_text()))
    model_obj = models.LocalModelTorchScript(config=config, model_path=str(args.model_path))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    segment_and_patch_directory_of_slides(
        wsi_dir=args.wsi_dir,
        save_dir=args.results_dir,
        patch_size_px=config.patch_size_pixels,
        patch_spacing_um_px=config.spacing_um_px,
    )
    t_patched = time.perf_counter()
    failed_patching, failed_inference = run_inference(
        wsi_dir=args.wsi_dir,
        results_dir=args.results_dir,
        model_info=model_obj,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        speedup=False,
    )
    t_done = time.perf_counter()
    n_tiles = 0
    for csv in (args.results_dir / "model-outputs-csv").glob("*.csv"):
        with open(csv) as fh:
            n_tiles += sum(1 for _ in fh) - 1
    json.dump({
        "wsinfer_version": __import__("wsinfer").__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "num_workers": args.num_workers,
        "batch_size": args.batch_size,
        "n_tiles": n_tiles,
        "import_s": t_imported - t_start,
        "patch_s": t_patched - t_imported,
        "inference_s": t_done - t_patched,
        "total_s": t_done - t_imported,
        "failed": failed_patching + failed_inference,
        # Peak of this process and of its finished DataLoader workers together.
        "maxrss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                      + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024,
    }, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
