"""CPU inference modes: speed and top-class agreement with fp32 on real H&E patches.

Every mode runs the same ViT on the same preprocessed real patches (``tests/data/patches``, 41
colorectal H&E patches) in the same process, one after the other, at the same batch size:

- ``fp32``: the reference (eager PyTorch).
- ``bf16``: the app's ``--precision bf16`` on the CPU (weights and activations in bfloat16).
- ``bf16 autocast``: fp32 weights under ``torch.autocast("cpu", bfloat16)``.
- ``int8``: the app's ``--precision int8`` (dynamic int8 quantisation of the Linear layers).
- ``compile fp32`` / ``compile bf16``: ``torch.compile`` (Inductor) of the above.
- ``onnxruntime fp32`` / ``onnxruntime int8``: the model exported to ONNX, run by ONNX Runtime
  (int8: ``onnxruntime.quantization.quantize_dynamic``), when ``onnxruntime`` is installed.
- ``openvino`` fp32 / bf16 hint, when ``openvino`` is installed.

Agreement is the share of patches whose top class equals fp32's; with random weights it only
shows how much a mode perturbs the network (the real weights cannot be downloaded here), so the
fp32 class histogram is printed too: agreement means little if fp32 puts everything in one class.

Examples::

    python benchmarks/bench_cpu_modes.py --model base
    python benchmarks/bench_cpu_modes.py --model base --modes fp32,bf16,int8 --batch-size 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from benchmarks.common import (
        TEST_DATA, command_line, ensure_model, fmt, load_avg, machine_facts, print_table, save_json,
    )
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import (
        TEST_DATA, command_line, ensure_model, fmt, load_avg, machine_facts, print_table, save_json,
    )

import chaoyang_desktop.core  # noqa: F401  - before torch, as in the app (sets OMP_WAIT_POLICY)
import numpy as np
import torch

from chaoyang_desktop.core.slide.imageio import decode_image
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings, prepare_model
from chaoyang_desktop.core.model.preprocess import preprocess_uint8

ALL_MODES = ("fp32", "bf16", "bf16-autocast", "int8", "compile-fp32", "compile-bf16", "onnxruntime-fp32",
             "onnxruntime-int8", "openvino-fp32", "openvino-bf16")

Forward = Callable[[torch.Tensor], torch.Tensor]


def real_patches(batch: int, profile: Any) -> tuple[torch.Tensor, int, list[str]]:
    """All real patches preprocessed as the app does, padded to whole batches (static shapes)."""
    paths = sorted(p for p in (TEST_DATA / "patches").rglob("*") if p.is_file())
    xs = torch.cat([preprocess_uint8(torch.from_numpy(np.array(decode_image(p))[None]), profile)
                    for p in paths])
    n = len(paths)
    pad = (-n) % batch
    if pad:
        xs = torch.cat([xs, xs[:pad]])
    return xs, n, [p.parent.name for p in paths]


def fresh_model(model_dir: Path) -> torch.nn.Module:
    from chaoyang_desktop.core.model.checkpoint import load_vit
    from chaoyang_desktop.core.model.model_source import load_profile, resolve_model

    prof = load_profile(resolve_model(str(model_dir)))
    return load_vit(Path(prof.weights_file), prof.arch, prof.num_classes).eval()


def build(mode: str, model_dir: Path, example: torch.Tensor, workdir: Path) -> Forward:
    """A function from preprocessed fp32 input to logits, for ``mode``."""
    cpu = torch.device("cpu")
    if mode in ("fp32", "bf16", "int8"):
        net = prepare_model(fresh_model(model_dir), cpu, mode)
        if mode == "bf16":
            return lambda x: net(x.to(torch.bfloat16)).float()
        return net
    if mode == "bf16-autocast":
        net = fresh_model(model_dir)

        def autocast(x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x).float()

        return autocast
    if mode.startswith("compile-"):
        precision = mode.split("-", 1)[1]
        net = prepare_model(fresh_model(model_dir), cpu, precision)
        compiled = torch.compile(net)
        if precision == "bf16":
            return lambda x: compiled(x.to(torch.bfloat16)).float()
        return compiled
    if mode.startswith("onnxruntime-"):
        import onnxruntime as ort

        path = export_onnx(fresh_model(model_dir), example, workdir)
        if mode.endswith("int8"):
            from onnxruntime.quantization import QuantType, quantize_dynamic

            q = workdir / "model-int8.onnx"
            quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
            path = q
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda x: torch.from_numpy(sess.run(None, {name: x.numpy()})[0])
    if mode.startswith("openvino-"):
        import openvino as ov

        core = ov.Core()
        ov_model = ov.convert_model(fresh_model(model_dir), example_input=example)
        hint = "bf16" if mode.endswith("bf16") else "f32"
        compiled_ov = core.compile_model(ov_model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        return lambda x: torch.from_numpy(compiled_ov(x.numpy())[0])
    raise SystemExit(f"Unknown mode {mode!r}; known: {', '.join(ALL_MODES)}.")


def export_onnx(net: torch.nn.Module, example: torch.Tensor, workdir: Path) -> Path:
    path = workdir / "model.onnx"
    if path.is_file():
        return path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["logits"],
                              opset_version=17, dynamo=False)
        except Exception:  # the TorchScript exporter may be gone: use the dynamo one
            torch.onnx.export(net, (example,), str(path), input_names=["x"], output_names=["logits"], dynamo=True)
    return path


def run_mode(forward: Forward, xs: torch.Tensor, batch: int) -> tuple[torch.Tensor, float, float]:
    """Probabilities for every row of ``xs``; first-batch time and steady time per tile."""
    out = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        out.append(torch.softmax(forward(xs[:batch]).float(), 1))
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        for i in range(batch, len(xs), batch):
            out.append(torch.softmax(forward(xs[i : i + batch]).float(), 1))
        steady = (time.perf_counter() - t1) / max(1, len(xs) - batch)
    return torch.cat(out), first, steady


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base", help="base (ViT-B/16 384, random weights), tiny, or a model folder")
    p.add_argument("--modes", default=",".join(ALL_MODES), help="comma-separated, fp32 first")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = ensure_model(args.model)
    clf = Classifier.load(str(model_dir), EngineSettings(device="cpu", precision="fp32"))
    xs, n, labels = real_patches(args.batch_size, clf.profile)
    del clf
    modes = args.modes.split(",")
    if modes[0] != "fp32":
        modes.insert(0, "fp32")
    facts = machine_facts()
    print(f"# {command_line()}\n# {facts}", flush=True)
    rows: list[dict[str, Any]] = []
    ref: torch.Tensor | None = None
    with tempfile.TemporaryDirectory(prefix="cpu-modes-") as tmp:
        for mode in modes:
            t0 = time.perf_counter()
            try:
                forward = build(mode, model_dir, xs[: args.batch_size], Path(tmp))
            except ImportError as exc:
                print(f"# {mode}: skipped ({exc.name} is not installed)", flush=True)
                continue
            except Exception as exc:  # a mode that cannot be built is reported, not fatal
                print(f"# {mode}: failed to build: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                continue
            setup = time.perf_counter() - t0
            try:
                probs, first, steady = run_mode(forward, xs, args.batch_size)
            except Exception as exc:
                print(f"# {mode}: failed to run: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
                continue
            probs = probs[:n]
            if ref is None:
                ref = probs
                print(f"# fp32 top classes on {n} real patches: {torch.bincount(ref.argmax(1), minlength=ref.shape[1]).tolist()}",
                      flush=True)
            agree = float((probs.argmax(1) == ref.argmax(1)).float().mean())
            row = {"mode": mode, "setup_s": setup, "first_batch_s": first, "s_per_tile": steady,
                   "tiles_per_s": 1.0 / steady, "agreement": agree,
                   "max_abs_prob_diff": float((probs - ref).abs().max()), "load": load_avg()}
            rows.append(row)
            print(f"  {row}", file=sys.stderr, flush=True)
            del forward
    base_rate = rows[0]["tiles_per_s"] if rows else 1.0
    table = [[r["mode"], fmt(r["tiles_per_s"]), f"{r['tiles_per_s'] / base_rate:.2f}x", f"{100 * r['agreement']:.1f}%",
              f"{r['max_abs_prob_diff']:.4f}", fmt(r["setup_s"], 1), fmt(r["first_batch_s"], 1), str(r["load"])]
             for r in rows]
    print()
    print(f"Model: {args.model}; {n} real patches; batch {args.batch_size}; {facts['cpu']}, {facts['cores']} cores, "
          f"{facts['torch_threads']} torch threads, native bf16: {facts.get('cpu_native_bf16')}")
    print_table(["mode", "tiles/s", "vs fp32", "top-1 agreement", "max |dp|", "setup s", "first batch s", "load"], table)
    print(f"reproduce: {command_line()}")
    save_json(args.json, {"command": command_line(), "machine": facts, "model": args.model, "patches": n,
                          "labels": labels, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
