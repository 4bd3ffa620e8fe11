"""A cohort in-process and on a local Ray cluster: what spreading slides over workers costs per slide.

The same cohort (``--slides`` copies of one generated slide, the ``tiny`` model by default) runs
three ways: in this process (the model loaded once, the slides one after another, as ``analyze``
runs them), on a local Ray with 1 worker of all ``--cpus`` CPUs, and with ``--cpus`` workers of
one CPU each. Startup (Ray and the workers loading the model) is timed apart from the run. The
overhead per slide is (Ray run with 1 worker - in-process run) / slides: the same CPUs doing
the same work, so the difference is Ray's (sending the slide, returning the per-tile result).
Every Ray run's probabilities are compared with the in-process ones.

Then a projection to N GPU nodes from a per-GPU rate that is *given*, not measured here
(``--gpu-tiles-per-s``), the measured per-slide overhead, and ``--tiles-per-slide``.

Usage::

    python benchmarks/bench_cluster.py --slides 6 --size 4096 --height 3072
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import WORK, command_line, ensure_model, ensure_slide, fmt, machine_facts, print_table  # noqa: E402


def _cohort(n: int, size: int, height: int) -> list[Path]:
    """``n`` copies of one generated slide (each its own file, as a cohort's slides are)."""
    source = ensure_slide(size, height)
    folder = WORK / f"cohort-{n}x{size}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"slide-{i + 1:02d}.tiff"
        if not p.is_file():
            shutil.copyfile(source, p)
        paths.append(p)
    return paths


def _in_process(paths: list[Path], model: Path, threads: int) -> dict[str, Any]:
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.analysis.run import analyze_cohort_slide
    from chaoyang_desktop.core.model.engine_settings import EngineSettings
    from chaoyang_desktop.core.model.inference import Classifier

    t0 = time.perf_counter()
    clf = Classifier.load(str(model), EngineSettings(device="cpu", threads=threads))
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs, tiles = [], 0
    for p in paths:
        report, outcome = analyze_cohort_slide(p, clf, AnalysisSettings())
        assert outcome is not None, report.error
        probs.append(outcome.result.probs)
        tiles += outcome.result.n_done
    return {"startup": startup, "run": time.perf_counter() - t0, "probs": probs, "tiles": tiles}


def _on_ray(paths: list[Path], model: Path, workers: int, cpus_per_worker: int, cpus: int) -> dict[str, Any]:
    import ray

    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.cluster.events import ClusterReady, ClusterSettings, CohortSlide, SlideDone
    from chaoyang_desktop.core.cluster.ray_cohort import run_cohort_on_ray
    from chaoyang_desktop.core.model.engine_settings import EngineSettings

    probs: dict[int, Any] = {}
    marks: dict[str, float] = {}

    def on_event(event: object) -> None:
        if isinstance(event, ClusterReady):
            marks["ready"] = time.perf_counter()
        elif isinstance(event, SlideDone):
            assert event.result is not None, event.report.error
            probs[event.index] = event.result.probs
            marks["last"] = time.perf_counter()

    t0 = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        run_cohort_on_ray([CohortSlide(i, str(p)) for i, p in enumerate(paths)], str(model),
                          EngineSettings(device="cpu"), AnalysisSettings(),
                          ClusterSettings(workers=workers, cpus_per_worker=cpus_per_worker), on_event=on_event,
                          cancel=threading.Event())
    finally:
        ray.shutdown()
    return {"startup": marks["ready"] - t0, "run": marks["last"] - marks["ready"],
            "probs": [probs[i] for i in range(len(paths))]}


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slides", type=int, default=6)
    ap.add_argument("--size", type=int, default=4096, help="slide width in px (0.5 um/px)")
    ap.add_argument("--height", type=int, default=3072)
    ap.add_argument("--model", default="tiny", help="tiny, base or a model folder")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs the runs may use (in-process threads, Ray's CPUs)")
    ap.add_argument("--gpu-tiles-per-s", type=float, default=1500.0,
                    help="per-GPU end-to-end rate for the projection (given, not measured here)")
    ap.add_argument("--tiles-per-slide", type=int, default=5000, help="tissue tiles of a slide, for the projection")
    args = ap.parse_args()

    model = ensure_model(args.model)
    paths = _cohort(args.slides, args.size, args.height)
    base = _in_process(paths, model, args.cpus)
    n = len(paths)
    rows = [["in-process", f"1 x {args.cpus} threads", fmt(base["startup"]), fmt(base["run"]), fmt(base["run"] / n),
             fmt(n / base["run"] * 3600, 0), "-", "-"]]
    overhead = None
    for workers, each in ((1, args.cpus), (args.cpus, 1)):
        r = _on_ray(paths, model, workers, each, args.cpus)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(r["probs"], base["probs"]))
        per_slide = (r["run"] - base["run"]) / n
        if workers == 1:
            overhead = per_slide
        rows.append([f"local Ray, {workers} worker{'s' if workers > 1 else ''}", f"{workers} x {each} CPU",
                     fmt(r["startup"]), fmt(r["run"]), fmt(r["run"] / n), fmt(n / r["run"] * 3600, 0),
                     f"{per_slide:+.2f}", f"{diff:.1e}"])
    facts = machine_facts()
    print(f"# {n} slides of {args.size} x {args.height} px, {base['tiles'] // n} tissue tiles each, model {args.model}, "
          f"on {facts.get('cpu', '?')} ({args.cpus} CPUs)\n")
    print_table(["run", "workers", "startup s", "run s", "s per slide", "slides/h", "vs in-process, s per slide",
                 "max |dp|"], rows)
    assert overhead is not None
    o = max(0.0, overhead)
    per_slide_s = args.tiles_per_slide / args.gpu_tiles_per_s + o
    print(f"\n# Projection (not measured): {args.tiles_per_slide:,} tiles per slide at {args.gpu_tiles_per_s:,.0f} "
          f"tiles/s per GPU, plus the measured {o:.2f} s overhead per slide\n")
    from chaoyang_desktop.core.analysis.cohort import format_duration

    print_table(["GPU nodes", "slides/h", "1,000 slides take"],
                [[str(k), fmt(k * 3600 / per_slide_s, 0), format_duration(1000 * per_slide_s / k)]
                 for k in (1, 4, 16, 64)])
    print(f"\n{command_line()}")


if __name__ == "__main__":
    main()
