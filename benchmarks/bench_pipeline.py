"""End-to-end ``analyze`` throughput beside model-only, the seed's way and WSInfer, in one run.

Rows, all on the same slide, device and machine, one after the other in this process (WSInfer
in a subprocess of its own virtualenv):

- **model only**: the classifier's forward on random preprocessed tensors, same device, batch and
  precision. The ceiling for the pipeline; ``ours / model only`` is the pipeline efficiency.
- **ours**: ``analyze_slide`` (plan: thumbnail, tissue mask, grid; then the streamed run), timed
  from the call to the result, with the time to the first finished batch and peak RSS.
- **seed's way**: the model card's recipe, one tile at a time: OpenSlide ``read_region`` at
  level 0, transformers' ``ViTImageProcessor`` and ``ViTForImageClassification`` in fp32.
- **WSInfer**: the same timm ViT exported to TorchScript (wrapped to take WSInfer's RGB input and
  flip it to the model's BGR) with a WSInfer model config (0.5 um/px, 512 px patches, Resize 384,
  ToTensor, Normalize 0.5/0.5), run by ``benchmarks/wsinfer_driver.py`` (what ``wsinfer run``
  does) on the same slide. Needs WSInfer in its own venv: see ``benchmarks/README.md``.

Tiles differ between tools (each finds tissue its own way), so rows compare tiles per second.

Examples::

    python benchmarks/bench_pipeline.py --model tiny --size 10000
    python benchmarks/bench_pipeline.py --model base --size 4096 --precisions fp32,bf16 --seed-tiles 16
    python benchmarks/bench_pipeline.py --model base --slide /tmp/chaoyang-bench/slide-100000x100000.tiff \\
        --only ours --max-tiles 32 --precisions bf16
"""

from __future__ import annotations

import os

# Importing chaoyang_desktop.core sets OMP_WAIT_POLICY=PASSIVE for this process; WSInfer must run
# with the environment a user would give it, so remember what it was before.
_USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:
    from benchmarks.common import (
        RssSampler, Stopwatch, command_line, ensure_model, ensure_slide, fmt, load_avg, machine_facts, maxrss_mb,
        print_table, save_json,
    )
except ImportError:  # run as a script: python benchmarks/bench_pipeline.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import (
        RssSampler, Stopwatch, command_line, ensure_model, ensure_slide, fmt, load_avg, machine_facts, maxrss_mb,
        print_table, save_json,
    )

import chaoyang_desktop.core  # noqa: F401  - before torch, as in the app (sets OMP_WAIT_POLICY)
import torch

from chaoyang_desktop.core.analysis.run import analyze_slide
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings, BatchUpdate, TileScheduler, plan_analysis, run_analysis
from chaoyang_desktop.core.slide.reader import open_slide

DEFAULT_WSINFER_PYTHON = Path(os.environ.get("WSINFER_PYTHON", "/tmp/wsinfer-venv/bin/python"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(clf: Classifier, n_batches: int, warmup: int = 1) -> dict[str, Any]:
    """Forward passes on random preprocessed tensors: the model's own ceiling on this device."""
    size = clf.profile.input_size
    x = torch.randn(clf.batch_size, 3, size, size, device=clf.device)
    with torch.inference_mode():
        for _ in range(warmup):
            clf._forward(x)  # noqa: SLF001 - the exact forward the pipeline runs, precision included
        _sync(clf.device)
        with Stopwatch() as sw:
            for _ in range(n_batches):
                probs = clf._forward(x)  # noqa: SLF001
            probs.cpu()
            _sync(clf.device)
    tiles = n_batches * clf.batch_size
    return {"tiles": tiles, "seconds": sw.seconds, "rate": tiles / sw.seconds}


def ours(slide_path: Path, clf: Classifier, workers: int, max_tiles: int | None,
         prefetch: int | None) -> dict[str, Any]:
    """``analyze_slide`` without cache (or plan + run on the first ``max_tiles`` tiles)."""
    first: list[float] = []
    planned: list[float] = []
    t0 = time.perf_counter()

    def on_batch(update: BatchUpdate) -> None:
        if not first:
            first.append(time.perf_counter() - t0)

    settings = AnalysisSettings(workers=workers)
    with RssSampler() as rss:
        t0 = time.perf_counter()
        if max_tiles is None and prefetch is None:
            outcome = analyze_slide(slide_path, clf, settings, cache=None, on_batch=on_batch,
                                    on_plan=lambda plan, result: planned.append(time.perf_counter() - t0))
            result, plan = outcome.result, outcome.plan
            plan_s = planned[0]
        else:
            # What analyze_open_slide does, with the tile list cut short.
            with open_slide(slide_path, assumed_mpp=clf.profile.nominal_mpp) as slide:
                plan = plan_analysis(slide, clf.profile, settings)
                plan_s = time.perf_counter() - t0
                result = plan.empty_result()
                pending = np.arange(result.n_tiles)[: max_tiles or None]
                run_analysis(slide, clf, result, workers=workers, on_batch=on_batch,
                             scheduler=TileScheduler(pending), prefetch=prefetch)
        seconds = time.perf_counter() - t0
    return {"tiles": int(result.n_done), "failed": int(result.n_failed), "tissue_tiles": int(plan.n_tiles),
            "grid_tiles": int(plan.grid.t_cols * plan.grid.t_rows), "read_level": int(plan.grid.level),
            "seconds": seconds, "rate": result.n_done / seconds, "first_batch_s": first[0] if first else None,
            "plan_s": plan_s, "run_rate": result.n_done / (seconds - plan_s), "peak_rss_mb": rss.peak_mb}


def seed_way(slide_path: Path, model_dir: Path, n_tiles: int, omp_passive: bool = False) -> dict[str, Any]:
    """The model card's recipe on our first ``n_tiles`` tissue tiles, in a process of its own."""
    # The same tissue tiles as ours, read the simple way: level 0, one region per tile.
    with open_slide(slide_path) as slide:
        plan = plan_analysis(slide, _profile_for(model_dir), AnalysisSettings())
    rects = plan.empty_result().rects()[:n_tiles]
    with tempfile.TemporaryDirectory(prefix="seed-way-") as tmp:
        tiles = Path(tmp) / "tiles.json"
        tiles.write_text(json.dumps({"size": int(plan.grid.l0_tile), "xy": rects[:, :2].tolist()}))
        cmd = [sys.executable, str(Path(__file__).with_name("seed_way.py")), "--slide", str(slide_path),
               "--model-dir", str(model_dir), "--tiles", str(tiles)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_user_env(omp_passive), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the seed's way failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return dict(json.loads(lines[-1]))


def _user_env(omp_passive: bool) -> dict[str, str]:
    """This process's environment as the user gave it, optionally with the app's OpenMP setting."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif _USER_OMP_WAIT_POLICY is not None:
        env["OMP_WAIT_POLICY"] = _USER_OMP_WAIT_POLICY
    return env


def _profile_for(model_dir: Path) -> Any:
    from chaoyang_desktop.core.model.model_source import load_profile, resolve_model

    return load_profile(resolve_model(str(model_dir)))


def export_for_wsinfer(clf: Classifier, folder: Path) -> tuple[Path, Path]:
    """TorchScript of the classifier's timm ViT taking WSInfer's RGB input, plus its WSInfer config."""

    class RgbToModel(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, bgr: bool) -> None:
            super().__init__()
            self.net = net
            self.bgr = bgr

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.flip(1) if self.bgr else x)

    from chaoyang_desktop.core.model.checkpoint import load_vit

    prof = clf.profile
    net = load_vit(Path(prof.weights_file), prof.arch, prof.num_classes).eval()
    wrapped = RgbToModel(net, prof.channel_order == "bgr").eval()
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, torch.randn(1, 3, prof.input_size, prof.input_size))
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.pt"
    traced.save(str(model_path))
    config = {
        "spec_version": "1.0",
        "architecture": "vit_base_patch16_384 (timm, Chaoyang)",
        "num_classes": prof.num_classes,
        "class_names": list(prof.class_names),
        "patch_size_pixels": prof.tile_px,
        "spacing_um_px": prof.tile_um / prof.tile_px,
        "transform": [
            {"name": "Resize", "arguments": {"size": prof.input_size}},
            {"name": "ToTensor"},
            {"name": "Normalize", "arguments": {"mean": list(prof.mean), "std": list(prof.std)}},
        ],
    }
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    return model_path, config_path


def wsinfer(slide_path: Path, clf: Classifier, python: Path, batch: int, workers: int | None,
            backend: str | None, omp_passive: bool = False) -> dict[str, Any]:
    if not python.is_file():
        return {"skipped": f"no WSInfer interpreter at {python} (see benchmarks/README.md)"}
    with tempfile.TemporaryDirectory(prefix="wsinfer-bench-") as tmp:
        tmp_path = Path(tmp)
        model_path, config_path = export_for_wsinfer(clf, tmp_path / "model")
        wsi_dir = tmp_path / "slides"
        wsi_dir.mkdir()
        (wsi_dir / slide_path.name).symlink_to(slide_path.resolve())
        cmd = [str(python), str(Path(__file__).with_name("wsinfer_driver.py")), "--wsi-dir", str(wsi_dir),
               "--results-dir", str(tmp_path / "results"), "--config", str(config_path),
               "--model-path", str(model_path), "--batch-size", str(batch)]
        if workers is not None:
            cmd += ["--num-workers", str(workers)]
        if backend:
            cmd += ["--backend", backend]
        env = _user_env(omp_passive)
        if clf.device.type == "cpu":
            env["WSINFER_FORCE_CPU"] = "1"
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"skipped": f"WSInfer failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"}
    doc = json.loads(lines[-1])
    doc.update({"process_wall_s": wall, "seconds": doc["total_s"], "tiles": doc["n_tiles"],
                "rate": doc["n_tiles"] / doc["total_s"]})
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny", help="base (ViT-B/16 384, random weights), tiny, or a model folder")
    p.add_argument("--slide", type=Path, default=None, help="slide to analyse (default: generated, see --size)")
    p.add_argument("--size", type=int, default=10_000, help="side of the generated slide in px (default 10000)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precisions", default="fp32", help="comma-separated, e.g. fp32,bf16 (ours and model only)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=4, help="our tile reader threads (default 4, as the CLI)")
    p.add_argument("--prefetch", type=int, default=None, help="batches read ahead (default: the pipeline's)")
    p.add_argument("--max-tiles", type=int, default=None, help="classify only the first N tissue tiles (ours)")
    p.add_argument("--model-batches", type=int, default=None, help="batches timed for model only (default: auto)")
    p.add_argument("--seed-tiles", type=int, default=None, help="tiles for the seed's way (default: 16 base, 200 tiny)")
    p.add_argument("--only", default="model,ours,seed,wsinfer", help="rows to run, comma-separated")
    p.add_argument("--wsinfer-python", type=Path, default=DEFAULT_WSINFER_PYTHON)
    p.add_argument("--wsinfer-workers", type=int, default=None, help="DataLoader workers (default: WSInfer's own)")
    p.add_argument("--wsinfer-backend", choices=("openslide", "tiffslide"), default=None,
                   help="WSInfer's slide reader (default: its own: OpenSlide when installed, else tiffslide)")
    p.add_argument("--passive-too", action="store_true",
                   help="also run the seed's way and WSInfer with OMP_WAIT_POLICY=PASSIVE, the app's setting")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: PyTorch's)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    model_dir = ensure_model(args.model)
    slide_path = args.slide or ensure_slide(args.size)
    is_base = args.model == "base"
    facts = machine_facts()
    doc: dict[str, Any] = {"command": command_line(), "machine": facts, "slide": str(slide_path),
                           "model": args.model, "device": args.device, "batch_size": args.batch_size,
                           "workers": args.workers, "rows": []}
    rows: list[dict[str, Any]] = []
    print(f"# {command_line()}", flush=True)
    print(f"# {facts}", flush=True)

    def add(name: str, precision: str, res: dict[str, Any], note: str = "") -> None:
        res = {"row": name, "precision": precision, "load": load_avg(), "note": note, **res}
        rows.append(res)
        shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}
        print(f"  {json.dumps(shown)}", file=sys.stderr, flush=True)

    base_clf: Classifier | None = None
    for precision in args.precisions.split(","):
        clf = Classifier.load(str(model_dir), EngineSettings(device=args.device, precision=precision,
                                                             batch_size=args.batch_size))
        if clf.precision != precision and precision != "auto":
            print(f"# precision {precision} ran as {clf.precision} on this machine", flush=True)
        base_clf = base_clf or clf
        n = args.model_batches or (3 if is_base and clf.device.type == "cpu" else 20)
        before = model_only(clf, n) if "model" in only else None
        if "ours" in only:
            res = ours(slide_path, clf, args.workers, args.max_tiles, args.prefetch)
        if before is not None:
            # Measured before and after the pipeline and averaged: on a shared machine the load
            # drifts, and one side of the ratio alone would carry all of it.
            after = model_only(clf, n)
            tiles = before["tiles"] + after["tiles"]
            seconds = before["seconds"] + after["seconds"]
            add("model only", clf.precision, {"tiles": tiles, "seconds": seconds, "rate": tiles / seconds,
                                               "rate_before": before["rate"], "rate_after": after["rate"]},
                f"2 x {n} batches of random tensors, before and after ours")
        if "ours" in only:
            cap = f", first {args.max_tiles} of {res['tissue_tiles']} tissue tiles" if args.max_tiles else ""
            add("ours (analyze)", clf.precision, res, f"{args.workers} readers{cap}")
        del clf
    assert base_clf is not None
    if "seed" in only:
        n = args.seed_tiles or (16 if is_base else 200)
        add("seed's way", "fp32", seed_way(slide_path, model_dir, n), f"first {n} tissue tiles, one at a time")
        if args.passive_too:
            add("seed's way, passive OpenMP", "fp32", seed_way(slide_path, model_dir, n, omp_passive=True),
                f"first {n} tissue tiles, OMP_WAIT_POLICY=PASSIVE as in the app")
    if "wsinfer" in only:
        res = wsinfer(slide_path, base_clf, args.wsinfer_python, args.batch_size, args.wsinfer_workers,
                      args.wsinfer_backend)
        if "skipped" in res:
            print(f"# WSInfer skipped: {res['skipped']}", flush=True)
        else:
            add("WSInfer", "fp32", res, f"{res['num_workers']} DataLoader workers, v{res['wsinfer_version']}")
        if args.passive_too and "skipped" not in res:
            res = wsinfer(slide_path, base_clf, args.wsinfer_python, args.batch_size, args.wsinfer_workers,
                          args.wsinfer_backend, omp_passive=True)
            add("WSInfer, passive OpenMP", "fp32", res,
                f"{res['num_workers']} DataLoader workers, OMP_WAIT_POLICY=PASSIVE as in the app")
    doc["rows"] = rows
    doc["maxrss_mb"] = maxrss_mb()

    ours_rows = {r["precision"]: r for r in rows if r["row"].startswith("ours")}
    model_rows = {r["precision"]: r for r in rows if r["row"] == "model only"}
    ref = ours_rows.get("fp32") or next(iter(ours_rows.values()), None)
    table = []
    for r in rows:
        vs = ""
        if ref is not None and r is not ref:
            vs = f"{ref['rate'] / r['rate']:.2f}x"
        extra = []
        if r["row"].startswith("ours"):
            if r["precision"] in model_rows:
                extra.append(f"efficiency {100 * r['rate'] / model_rows[r['precision']]['rate']:.0f}% of model only")
            extra.append(f"plan {fmt(r['plan_s'])} s, then {fmt(r['run_rate'])} tiles/s")
            extra.append(f"first batch {fmt(r['first_batch_s'])} s")
            extra.append(f"peak RSS {r['peak_rss_mb']:.0f} MB")
        if r["row"].startswith("WSInfer"):
            extra.append(f"patching {r['patch_s']:.1f} s, inference {r['inference_s']:.1f} s, peak RSS "
                         f"{r['maxrss_mb']:.0f} MB (main + workers)")
        table.append([r["row"], r["precision"], str(r["tiles"]), fmt(r["seconds"], 1), fmt(r["rate"]), vs,
                      str(r["load"]), "; ".join([r["note"], *extra]).strip("; ")])
    print()
    print(f"Slide: {slide_path.name}; model: {args.model}; device {args.device}; batch {args.batch_size}; "
          f"{facts['cpu']}, {facts['cores']} cores, {facts['torch_threads']} torch threads")
    print_table(["row", "precision", "tiles", "s", "tiles/s", "ours fp32 is", "load", "notes"], table)
    for prec, r in ours_rows.items():
        if prec in model_rows:
            print(f"pipeline efficiency ({prec}): {100 * r['rate'] / model_rows[prec]['rate']:.0f}% of model only")
    for other in ("seed's way", "seed's way, passive OpenMP", "WSInfer", "WSInfer, passive OpenMP"):
        for r in rows:
            if r["row"] == other:
                for prec, o in ours_rows.items():
                    print(f"ours ({prec}) / {other}: {o['rate'] / r['rate']:.2f}x")
    print(f"process peak RSS: {doc['maxrss_mb']:.0f} MB")
    print(f"reproduce: {command_line()}")
    save_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
