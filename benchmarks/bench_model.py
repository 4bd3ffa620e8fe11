"""Model-only throughput of the classifier: precisions x batch sizes x torch.compile, one table.

The forward is the app's own (``Classifier._forward``: autocast on CUDA, bf16 weights for the
CPU's bf16 mode, softmax included) on random preprocessed tensors already on the device, so the
figure is the ceiling the end-to-end pipeline is measured against. ``torch.compile`` runs the
same module compiled by Inductor (default mode, static shapes); its compile time is reported.

Examples::

    python benchmarks/bench_model.py --device cuda --precisions fp32,bf16,fp16 --batch-sizes 64,128,256 --compile both
    python benchmarks/bench_model.py --device cpu --model base --precisions fp32,bf16 --batch-sizes 1,4,16 --seconds 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks.common import command_line, ensure_model, fmt, load_avg, machine_facts, print_table, save_json
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import command_line, ensure_model, fmt, load_avg, machine_facts, print_table, save_json

import chaoyang_desktop.core  # noqa: F401  - before torch, as in the app (sets OMP_WAIT_POLICY)
import torch

from chaoyang_desktop.core.model.inference import Classifier, EngineSettings


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(clf: Classifier, batch: int, seconds: float, compiled: bool) -> dict[str, Any]:
    size = clf.profile.input_size
    x = torch.randn(batch, 3, size, size, device=clf.device)
    net = clf.model
    if compiled:
        clf.model = torch.compile(net, dynamic=False)
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            clf._forward(x)  # noqa: SLF001 - the pipeline's exact forward
            _sync(clf.device)
            first = time.perf_counter() - t0
            for _ in range(2):
                clf._forward(x)  # noqa: SLF001
            _sync(clf.device)
            n = 0
            t0 = time.perf_counter()
            while True:
                clf._forward(x)  # noqa: SLF001
                n += 1
                if n % 4 == 0 or clf.device.type != "cuda":
                    _sync(clf.device)
                    if time.perf_counter() - t0 >= seconds:
                        break
            elapsed = time.perf_counter() - t0
    finally:
        clf.model = net
    mem = torch.cuda.max_memory_allocated(clf.device) / 2**30 if clf.device.type == "cuda" else None
    return {"tiles_per_s": n * batch / elapsed, "first_call_s": first, "batches": n, "gpu_mem_gib": mem}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precisions", default="fp32,bf16,fp16")
    p.add_argument("--batch-sizes", default="64,128,256")
    p.add_argument("--compile", choices=("no", "yes", "both"), default="both")
    p.add_argument("--compile-batch", type=int, default=None, help="compile only at this batch size (saves time)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per cell (after warm-up)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here; TF32 is measured as its own row
    model_dir = ensure_model(args.model)
    facts = machine_facts()
    print(f"# {command_line()}\n# {facts}", flush=True)
    rows: list[dict[str, Any]] = []
    for precision in args.precisions.split(","):
        clf = Classifier.load(str(model_dir), EngineSettings(device=args.device, precision=precision))
        if clf.precision != precision:
            print(f"# {precision} runs as {clf.precision} on {args.device}; skipped", flush=True)
            continue
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            modes = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
            for compiled in modes:
                if compiled and args.compile_batch and batch != args.compile_batch:
                    continue
                if clf.device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(clf.device)
                try:
                    res = measure(clf, batch, args.seconds, compiled)
                except torch.cuda.OutOfMemoryError:
                    print(f"# {precision} batch {batch}: out of GPU memory", flush=True)
                    torch.cuda.empty_cache()
                    continue
                except Exception as exc:  # e.g. no C compiler for Inductor: report, go on
                    print(f"# {precision} batch {batch} compile={compiled}: {type(exc).__name__}: {str(exc)[:200]}",
                          flush=True)
                    continue
                row = {"precision": precision, "batch": batch, "compile": compiled, "load": load_avg(), **res}
                rows.append(row)
                print(f"  {row}", file=sys.stderr, flush=True)
        del clf
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    print()
    print(f"Model-only throughput: {args.model} on {facts.get('gpu') or facts['cpu']} (device {args.device})")
    print_table(["precision", "batch", "torch.compile", "tiles/s", "first call s", "GPU GiB", "load"],
                [[r["precision"], str(r["batch"]), "yes" if r["compile"] else "no", fmt(r["tiles_per_s"]),
                  fmt(r["first_call_s"], 1), fmt(r["gpu_mem_gib"], 1), str(r["load"])] for r in rows])
    print(f"reproduce: {command_line()}")
    save_json(args.json, {"command": command_line(), "machine": facts, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
