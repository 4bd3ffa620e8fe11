"""``chaoyang-desktop analyze``: whole-slide images (files or folders) to tiles, heatmaps and summaries.

Every run also writes ``cohort.csv`` at the ``--out`` root, one row per input of the run (also for a
single slide, so scripts find it in one place): analysed, skipped because finished earlier (its
numbers read back from its ``summary.json``), or failed with the reason. ``--report`` adds
``report.pdf`` to each slide's folder, also for finished slides that lack one.

``--ray ADDRESS`` spreads the slides over a Ray cluster (:mod:`chaoyang_desktop.core.cluster`);
the workers send each slide's per-tile result back and this process writes the same outputs as an
in-process run. Either way a progress line after each slide gives slides per hour and the time left.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier
from chaoyang_desktop.core.analysis.cohort import pace_line
from chaoyang_desktop.core.errors import ChaoyangError


def _saved_entry(slide_path: Path, folder: Path) -> Any:
    """The cohort row of a slide finished in an earlier run, from its ``summary.json``."""
    from chaoyang_desktop.export.cohort_csv import CohortEntry, summary_from_document

    try:
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        summary = summary_from_document(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CohortEntry(str(slide_path), str(folder), "failed", f"cannot read its summary.json ({exc})")
    return CohortEntry(str(slide_path), str(folder), "skipped", summary=summary, domain=doc.get("domain_check"))


def _write_outputs(result: Any, thumbnail: Any, slide_path: Path, folder: Path, report: bool, mpp: float | None,
                   annotations: Sequence[Any] = ()) -> None:
    """Every output of one slide, written into a temporary folder that then takes ``folder``'s place.

    A slide's folder is therefore whole or absent: a full disk or a crash leaves no folder that
    looks finished with its heatmap missing, and ``--force`` never mixes new files with old ones.
    """
    from chaoyang_desktop.core.atomic import atomic_folder
    from chaoyang_desktop.core.slide.reader import open_slide
    from chaoyang_desktop.export.bundle import REPORT_PDF, write_all
    from chaoyang_desktop.export.pdf_report import write_report

    with atomic_folder(folder) as tmp:
        write_all(result, tmp, thumbnail, slide_facts={"properties_vendor": result.provenance.vendor},
                  annotations=annotations)
        if report:  # gallery pictures are read from the slide again
            with open_slide(slide_path, mpp=mpp) as slide:
                write_report(result, thumbnail, slide, tmp / REPORT_PDF, annotations=annotations)


def _failure_message(exc: ChaoyangError) -> str:
    from chaoyang_desktop.core.errors import OutOfDomainError

    if isinstance(exc, OutOfDomainError):
        return f"{exc} To analyse it anyway, run again with --allow-out-of-domain."
    return str(exc)


def _failure_text(report: Any) -> str:
    from chaoyang_desktop.core.analysis.cohort import SLIDE_OUT_OF_DOMAIN

    if report.status == SLIDE_OUT_OF_DOMAIN:
        return f"{report.error} To analyse it anyway, run again with --allow-out-of-domain."
    return str(report.error)


class _CohortRun:
    """One ``analyze`` run's bookkeeping: cohort rows, failures, outputs and the pace line."""

    def __init__(self, args: argparse.Namespace, out_root: Path, todo: list[tuple[Path, str]],
                 annotations: Sequence[Any]) -> None:
        from chaoyang_desktop.core.analysis.cohort import CohortClock

        self.args = args
        self.out_root = out_root
        self.todo = todo
        self.annotations = annotations
        self.entries: dict[int, Any] = {}
        self.failures: list[tuple[str, str]] = []
        self.clock = CohortClock()  # started once the model is loaded (or the cluster is up)
        self.ended = 0

    def say(self, text: str) -> None:
        if not self.args.quiet:
            print(text, file=sys.stderr)

    def slide_ended(self, j: int, k: int, report: Any, result: Any, thumbnail: Any) -> None:
        """Write slide ``k`` of ``todo`` (cohort row ``j``): its outputs, or its failure."""
        from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE
        from chaoyang_desktop.export.cohort_csv import report_entry

        slide_path, name = self.todo[k]
        folder = self.out_root / name
        prefix = f"[{k + 1}/{len(self.todo)}] {slide_path.name}"
        self.ended += 1
        self.clock.finished(k, analysed=report.status == SLIDE_DONE and not report.from_cache)
        if report.status == SLIDE_DONE:
            try:
                _write_outputs(result, thumbnail, slide_path, folder, self.args.report, self.args.mpp,
                               self.annotations)
            except ChaoyangError as exc:
                report = dataclasses.replace(report, status="failed", error=str(exc))
        self.entries[j] = report_entry(report, report.path, str(folder) if folder.is_dir() else "",
                                       _failure_text(report))
        if report.status != SLIDE_DONE:
            message = _failure_text(report)
            self.failures.append((str(slide_path), message))
            print(f"error: {slide_path}: {message}", file=sys.stderr)
        else:
            for i, msg in sorted(result.errors.items()):
                print(f"warning: {slide_path.name}: tile {i} failed: {msg}", file=sys.stderr)
            src = "from cache" if report.from_cache else f"{report.seconds:.1f} s"
            where = f" on {report.worker}" if report.worker and report.worker != "this computer" else ""
            retried = f" after {report.attempts} tries" if report.attempts > 1 else ""
            top = max(report.summary["classes"], key=lambda c: c["area_mm2"])
            qc = f", {result.n_qc} left out by QC" if result.n_qc else ""
            self.say(f"{prefix}: done ({src}{where}{retried}), {result.n_done} tiles, {result.n_failed} failed{qc}; "
                     f"largest class {top['name']} {top['percent']:.1f}% -> {folder}")
        if len(self.todo) > 1:
            self.say(f"cohort: {pace_line(self.ended, len(self.todo), self.clock)}")


def _run_in_process(args: argparse.Namespace, run: _CohortRun, settings: Any, index_of: dict[Any, int]) -> None:
    from chaoyang_desktop.core.analysis.cache import ResultCache
    from chaoyang_desktop.core.analysis.run import analyze_cohort_slide

    clf = load_classifier(args)
    cache = None if args.no_cache else ResultCache()
    run.clock.start()
    for k, (slide_path, name) in enumerate(run.todo):
        prefix = f"[{k + 1}/{len(run.todo)}] {slide_path.name}"
        bar: Progress | None = None

        def on_plan(plan: Any, result: Any, prefix: str = prefix, k: int = k) -> None:
            nonlocal bar
            assumed = " (pixel size assumed)" if plan.provenance.mpp_assumed else ""
            run.say(f"{prefix}: {plan.n_tiles} tissue tiles of {plan.grid.t_cols * plan.grid.t_rows}, "
                    f"{plan.provenance.tile_um:.0f} um at level {plan.grid.level}{assumed}")
            bar = Progress(plan.n_tiles, slide_path.name[:20], args.quiet, unit="tile")
            bar.update_to(result.n_done + result.n_failed + result.n_qc)

        def on_batch(update: Any, k: int = k) -> None:
            if bar is not None:
                bar.update_to(update.done)
            run.clock.running(k, update.done / max(1, update.total))

        report, outcome = analyze_cohort_slide(slide_path, clf, settings, mpp=args.mpp, cache=cache, fresh=args.force,
                                               on_plan=on_plan, on_batch=on_batch)
        if bar is not None:
            bar.close()
        run.slide_ended(index_of[(slide_path, name)], k, report,
                        outcome.result if outcome is not None else None,
                        outcome.plan.thumbnail if outcome is not None else None)


def _run_on_ray(args: argparse.Namespace, run: _CohortRun, settings: Any, index_of: dict[Any, int]) -> None:
    from chaoyang_desktop.core.analysis.cache import ResultCache
    from chaoyang_desktop.core.cluster.availability import require_ray
    from chaoyang_desktop.commands.common import engine_settings

    require_ray()
    from chaoyang_desktop.core.cluster.events import (
        ClusterReady, ClusterSettings, CohortSlide, SlideDone, SlideProgress, SlideStarted, WorkerLost)
    from chaoyang_desktop.core.cluster.ray_cohort import run_cohort_on_ray

    cluster = ClusterSettings(address=args.ray, workers=args.ray_workers, cpus_per_worker=args.ray_cpus_per_worker,
                              max_attempts=args.ray_attempts)
    slides = [CohortSlide(k, str(path), args.mpp) for k, (path, _name) in enumerate(run.todo)]

    def on_event(event: object) -> None:
        if isinstance(event, ClusterReady):
            run.clock.start()
            run.say(f"ray: {event.description}")
        elif isinstance(event, SlideStarted):
            again = f" (try {event.attempt})" if event.attempt > 1 else ""
            run.say(f"[{event.index + 1}/{len(run.todo)}] {Path(slides[event.index].path).name}: "
                    f"started on {event.worker}{again}")
        elif isinstance(event, SlideProgress):
            run.clock.running(event.index, event.done / max(1, event.total))
        elif isinstance(event, WorkerLost):
            print(f"warning: {Path(slides[event.index].path).name}: {event.message}", file=sys.stderr)
        elif isinstance(event, SlideDone):
            path, name = run.todo[event.index]
            run.slide_ended(index_of[(path, name)], event.index, event.report, event.result, event.thumbnail)

    run_cohort_on_ray(slides, args.model, engine_settings(args), settings, cluster, on_event=on_event,
                      cache=None if args.no_cache else ResultCache(), fresh=args.force,
                      allow_download=not args.offline)


def _write_cohort(run: _CohortRun, problems: list[tuple[str, str]], out_root: Path) -> None:
    from chaoyang_desktop.export.cohort_csv import COHORT_CSV, CohortEntry, write_cohort_csv

    cohort = [run.entries[j] for j in sorted(run.entries)] + [CohortEntry(path, "", "failed", msg)
                                                                for path, msg in problems]
    write_cohort_csv(cohort, out_root / COHORT_CSV)


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.commands.report import report_from_result_dir
    from chaoyang_desktop.core.analysis.cohort import find_slides, is_finished, output_names
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.slide.annotations import read_annotations_file
    from chaoyang_desktop.core.slide.roi import load_roi
    from chaoyang_desktop.core.slide.reader import check_mpp
    from chaoyang_desktop.export.bundle import REPORT_PDF
    from chaoyang_desktop.export.cohort_csv import CohortEntry

    check_mpp(args.mpp, "--mpp")
    if args.ray is not None:  # before any slide is read: a missing Ray is a one-line answer
        from chaoyang_desktop.core.cluster.availability import require_ray

        require_ray()
    roi = load_roi(args.roi) if args.roi else None
    annotations = read_annotations_file(args.annotations).annotations if args.annotations else []
    settings = AnalysisSettings(tile_um=args.tile_um, stride_um=args.stride_um, tissue_threshold=args.tissue_threshold,
                                roi=roi, roi_path=str(Path(args.roi).resolve()) if args.roi else None,
                                workers=args.workers, allow_out_of_domain=args.allow_out_of_domain,
                                qc=args.qc == "on").validated()
    out_root = Path(args.out)
    slides, problems = find_slides(args.paths, out_root)
    for path, msg in problems:
        print(f"error: {path}: {msg}", file=sys.stderr)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChaoyangError(f"Cannot create the output folder {out_root}: {exc.strerror}.") from exc
    names = output_names(slides)
    todo = [(s, n) for s, n in zip(slides, names) if args.force or not is_finished(out_root / n)]
    run = _CohortRun(args, out_root, todo, annotations)
    run.failures.extend(problems)
    # Cohort rows keyed by input order, so cohort.csv lists the slides as they were given.
    for j, (s, n) in enumerate(zip(slides, names)):
        if (s, n) in todo:
            continue
        run.say(f"skip: {s} (finished in {out_root / n}; --force to redo)")
        run.entries[j] = _saved_entry(s, out_root / n)
        if args.report and not (out_root / n / REPORT_PDF).is_file():
            try:
                report_from_result_dir(out_root / n)
            except ChaoyangError as exc:
                run.failures.append((str(s), f"report: {exc}"))
                run.entries[j] = CohortEntry(str(s), str(out_root / n), "failed", f"report: {exc}")
                print(f"error: {s}: report: {exc}", file=sys.stderr)
    index_of = {(s, n): j for j, (s, n) in enumerate(zip(slides, names))}
    try:
        if todo and args.ray is not None:
            _run_on_ray(args, run, settings, index_of)
        elif todo:
            _run_in_process(args, run, settings, index_of)
    except BaseException:
        if run.ended:  # interrupted, or the cluster failed mid-run: the rows of the slides that ended are kept
            _write_cohort(run, problems, out_root)
        raise
    _write_cohort(run, problems, out_root)
    if run.failures:
        print(f"\n{len(run.failures)} input(s) failed:", file=sys.stderr)
        for path, msg in run.failures:
            print(f"  {path}: {msg}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("analyze", help="analyse whole-slide images (files or folders) and write results")
    p.add_argument("paths", nargs="+", metavar="SLIDE_OR_FOLDER")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="results go into DIR/<slide name>/")
    g = p.add_argument_group("tiling")
    g.add_argument("--mpp", type=float, default=None, help="pixel size in um/px, overriding the file's metadata")
    g.add_argument("--tile-um", type=float, default=None, help="tile field of view in um (default: the model's, 256)")
    g.add_argument("--stride-um", type=float, default=None,
                   help="distance between tiles in um (default: the tile size; smaller overlaps, and must divide it)")
    g.add_argument("--tissue-threshold", type=float, default=0.25, metavar="F",
                   help="minimum tissue fraction for a tile to be classified (default 0.25; 0 keeps every tile)")
    g.add_argument("--qc", choices=("on", "off"), default="on",
                   help="tile quality control: on (default) leaves tiles of glass, pen ink, blur or dark artefacts "
                        "unclassified and counts them; off classifies every tissue tile")
    g.add_argument("--roi", default=None, metavar="FILE", help="GeoJSON polygon(s) in level-0 pixels (QuPath export)")
    g.add_argument("--annotations", default=None, metavar="FILE",
                   help="QuPath GeoJSON annotations: each one's class composition goes into summary.json "
                        "(and the report)")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="tile reader threads (default: 4)")
    p.add_argument("--force", action="store_true", help="analyse again slides already finished in --out (ignores the cache)")
    p.add_argument("--no-cache", action="store_true", help="neither reuse nor store results in the user cache")
    p.add_argument("--report", action="store_true",
                   help="also write report.pdf (the per-slide PDF report) into each slide's folder")
    p.add_argument("--allow-out-of-domain", action="store_true",
                   help="analyse slides the input check finds outside the model's domain (fluorescence, grayscale, "
                        "another stain, too coarse a pixel size); the outputs say so")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    r = p.add_argument_group("cluster (Ray; pip install \".[cluster]\")")
    r.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="spread the slides over a Ray cluster: its address (head:6379), auto (the cluster this "
                        "computer joined), or local (start Ray on this computer). Every node must read the slides "
                        "and the model at the same paths (docs/cluster.md)")
    r.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="workers (each loads the model once; default: one per GPU, else CPUs / --ray-cpus-per-worker)")
    r.add_argument("--ray-cpus-per-worker", type=int, default=1, metavar="N",
                   help="CPUs each worker reserves on CPU nodes, and its PyTorch threads (default: 1)")
    r.add_argument("--ray-attempts", type=int, default=3, metavar="N",
                   help="tries per slide when its worker dies (default: 3)")
    add_engine_options(p)
    p.set_defaults(func=run)
