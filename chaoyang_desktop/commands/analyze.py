"""``chaoyang-desktop analyze``: whole-slide images (files or folders) to tiles, heatmaps and summaries.

Every run also writes ``cohort.csv`` at the ``--out`` root, one row per input of the run (also for a
single slide, so scripts find it in one place): analysed, skipped because finished earlier (its
numbers read back from its ``summary.json``), or failed with the reason. ``--report`` adds
``report.pdf`` to each slide's folder, also for finished slides that lack one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier
from chaoyang_desktop.core.errors import ChaoyangError


def _slide_inputs(inputs: Sequence[str], out_root: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Slides and images named directly or found in folders (recursively), and inputs that are not.

    Files inside ``out_root`` are never inputs: a results folder inside the slide folder would
    otherwise have its own heatmaps analysed as slides on the next run.
    """
    from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES
    from chaoyang_desktop.core.slide.reader import SLIDE_SUFFIXES

    suffixes = set(SLIDE_SUFFIXES) | set(IMAGE_SUFFIXES)
    outputs = out_root.resolve() if out_root is not None else None
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = []
            dicom_dirs: set[Path] = set()
            for q in sorted(p.rglob("*"), key=lambda q: str(q).lower()):
                if not q.is_file() or q.name.startswith(".") or q.suffix.lower() not in suffixes:
                    continue
                if outputs is not None and q.resolve().is_relative_to(outputs):
                    continue
                if q.suffix.lower() == ".dcm":  # one DICOM series per folder: open it once
                    if q.parent in dicom_dirs:
                        continue
                    dicom_dirs.add(q.parent)
                hits.append(q)
            if not hits:
                problems.append((str(p), "no slides or images found in this folder"))
            found.extend(hits)
        else:
            problems.append((str(p), "no such file or folder"))
    return found, problems


def _output_names(slides: list[Path]) -> list[str]:
    """``<stem>`` per slide; stems shared by several slides get their folder name appended."""
    stems = [s.stem for s in slides]
    counts = {st: stems.count(st) for st in stems}
    names = [st if counts[st] == 1 else f"{st}_{s.parent.name}" for st, s in zip(stems, slides)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def _is_finished(folder: Path) -> bool:
    try:
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(doc.get("analysis", {}).get("complete")) and (folder / "tiles.csv").is_file()


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


# Cohort statuses of slides the model did not run on, by the error that stopped them.
def _failure_status(exc: ChaoyangError) -> str:
    from chaoyang_desktop.core.errors import NoTilesError, OutOfDomainError

    if isinstance(exc, OutOfDomainError):
        return "out of domain"
    if isinstance(exc, NoTilesError):
        return "no tiles"
    return "failed"


def _failure_message(exc: ChaoyangError) -> str:
    from chaoyang_desktop.core.errors import OutOfDomainError

    if isinstance(exc, OutOfDomainError):
        return f"{exc} To analyse it anyway, run again with --allow-out-of-domain."
    return str(exc)


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.commands.report import report_from_result_dir
    from chaoyang_desktop.core.analysis.run import analyze_slide
    from chaoyang_desktop.core.analysis.cache import ResultCache
    from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
    from chaoyang_desktop.core.slide.annotations import read_annotations_file
    from chaoyang_desktop.core.slide.roi import load_roi
    from chaoyang_desktop.core.slide.reader import check_mpp
    from chaoyang_desktop.export.bundle import REPORT_PDF
    from chaoyang_desktop.export.cohort_csv import COHORT_CSV, CohortEntry, write_cohort_csv

    check_mpp(args.mpp, "--mpp")
    roi = load_roi(args.roi) if args.roi else None
    annotations = read_annotations_file(args.annotations).annotations if args.annotations else []
    settings = AnalysisSettings(tile_um=args.tile_um, stride_um=args.stride_um, tissue_threshold=args.tissue_threshold,
                                roi=roi, roi_path=str(Path(args.roi).resolve()) if args.roi else None,
                                workers=args.workers, allow_out_of_domain=args.allow_out_of_domain,
                                qc=args.qc == "on").validated()
    out_root = Path(args.out)
    slides, problems = _slide_inputs(args.paths, out_root)
    for path, msg in problems:
        print(f"error: {path}: {msg}", file=sys.stderr)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChaoyangError(f"Cannot create the output folder {out_root}: {exc.strerror}.") from exc
    failures: list[tuple[str, str]] = list(problems)
    names = _output_names(slides)
    todo = [(s, n) for s, n in zip(slides, names) if args.force or not _is_finished(out_root / n)]
    # Cohort rows keyed by input order, so cohort.csv lists the slides as they were given.
    entries: dict[int, CohortEntry] = {}
    for j, (s, n) in enumerate(zip(slides, names)):
        if (s, n) in todo:
            continue
        if not args.quiet:
            print(f"skip: {s} (finished in {out_root / n}; --force to redo)", file=sys.stderr)
        entries[j] = _saved_entry(s, out_root / n)
        if args.report and not (out_root / n / REPORT_PDF).is_file():
            try:
                report_from_result_dir(out_root / n)
            except ChaoyangError as exc:
                failures.append((str(s), f"report: {exc}"))
                entries[j] = CohortEntry(str(s), str(out_root / n), "failed", f"report: {exc}")
                print(f"error: {s}: report: {exc}", file=sys.stderr)
    clf = load_classifier(args) if todo else None
    cache = None if args.no_cache else ResultCache()
    index_of = {(s, n): j for j, (s, n) in enumerate(zip(slides, names))}
    for k, (slide_path, name) in enumerate(todo, 1):
        j = index_of[(slide_path, name)]
        prefix = f"[{k}/{len(todo)}] {slide_path.name}"
        bar: Progress | None = None
        t0 = time.perf_counter()

        def on_plan(plan: Any, result: Any, prefix: str = prefix) -> None:
            nonlocal bar
            if not args.quiet:
                assumed = " (pixel size assumed)" if plan.provenance.mpp_assumed else ""
                print(f"{prefix}: {plan.n_tiles} tissue tiles of {plan.grid.t_cols * plan.grid.t_rows}, "
                      f"{plan.provenance.tile_um:.0f} um at level {plan.grid.level}{assumed}", file=sys.stderr)
            bar = Progress(plan.n_tiles, slide_path.name[:20], args.quiet, unit="tile")
            bar.update_to(result.n_done + result.n_failed + result.n_qc)

        try:
            outcome = analyze_slide(slide_path, clf, settings, mpp=args.mpp, cache=cache, on_plan=on_plan,
                                    on_batch=lambda u: bar.update_to(u.done) if bar else None, fresh=args.force)
            if bar is not None:
                bar.close()
            result = outcome.result
            _write_outputs(result, outcome.plan.thumbnail, slide_path, out_root / name, args.report, args.mpp,
                           annotations)
            entries[j] = CohortEntry(str(slide_path), str(out_root / name), "ok", summary=result.summary(),
                                     domain=result.provenance.domain_check)
            for i, msg in sorted(result.errors.items()):
                print(f"warning: {slide_path.name}: tile {i} failed: {msg}", file=sys.stderr)
            if not args.quiet:
                src = "from cache" if outcome.from_cache else f"{time.perf_counter() - t0:.1f} s"
                top = max(result.summary()["classes"], key=lambda c: c["area_mm2"])
                qc = f", {result.n_qc} left out by QC" if result.n_qc else ""
                print(f"{prefix}: done ({src}), {result.n_done} tiles, {result.n_failed} failed{qc}; "
                      f"largest class {top['name']} {top['percent']:.1f}% -> {out_root / name}", file=sys.stderr)
        except ChaoyangError as exc:
            if bar is not None:
                bar.close()
            message = _failure_message(exc)
            failures.append((str(slide_path), message))
            check = getattr(exc, "check", None)
            entries[j] = CohortEntry(str(slide_path), str(out_root / name) if (out_root / name).is_dir() else "",
                                     _failure_status(exc), message, domain=check.to_dict() if check is not None else None)
            print(f"error: {slide_path}: {message}", file=sys.stderr)
    cohort = [entries[j] for j in sorted(entries)] + [CohortEntry(path, "", "failed", msg) for path, msg in problems]
    write_cohort_csv(cohort, out_root / COHORT_CSV)
    if failures:
        print(f"\n{len(failures)} input(s) failed:", file=sys.stderr)
        for path, msg in failures:
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
    add_engine_options(p)
    p.set_defaults(func=run)
