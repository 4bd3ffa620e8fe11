"""The model card's recipe, one tile at a time; prints its timing as JSON.

Runs in a process of its own so that it gets the environment a user's script would have (this
repository's packages are not imported, so nothing changes OpenMP's settings): OpenSlide's
``read_region`` at level 0, transformers' ``ViTImageProcessor`` (PIL resize, rescale, normalise)
and ``ViTForImageClassification`` in fp32, softmax. Called by ``bench_pipeline.py``::

    python benchmarks/seed_way.py --slide S --model-dir M --tiles tiles.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--slide", type=Path, required=True)
    p.add_argument("--model-dir", type=Path, required=True)
    p.add_argument("--tiles", type=Path, required=True, help="JSON: {'size': l0 side, 'xy': [[x, y], ...]}")
    args = p.parse_args()
    spec = json.loads(args.tiles.read_text())
    size = int(spec["size"])

    import openslide
    import torch
    from transformers import ViTForImageClassification, ViTImageProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    processor = ViTImageProcessor.from_pretrained(str(args.model_dir))
    model = ViTForImageClassification.from_pretrained(str(args.model_dir)).eval()
    osr = openslide.OpenSlide(str(args.slide))
    try:
        with torch.no_grad():  # warm-up: the first call allocates
            model(**processor(images=osr.read_region((0, 0), 0, (size, size)).convert("RGB"), return_tensors="pt"))
        t0 = time.perf_counter()
        for x, y in spec["xy"]:
            image = osr.read_region((int(x), int(y)), 0, (size, size)).convert("RGB")
            inputs = processor(images=image, return_tensors="pt")
            with torch.no_grad():
                model(**inputs).logits.softmax(-1)
        seconds = time.perf_counter() - t0
    finally:
        osr.close()
    n = len(spec["xy"])
    json.dump({"tiles": n, "seconds": seconds, "rate": n / seconds, "torch_threads": torch.get_num_threads()},
              sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
