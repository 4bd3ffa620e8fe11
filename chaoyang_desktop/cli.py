"""The command line: ``chaoyang-desktop [PATH] | classify | analyze | models | view``.

With no subcommand (optionally with a file or folder path) it starts the desktop app, which is
what a double-click or a file association runs. Every subcommand calls the same core functions
as the GUI. Errors a person can fix are printed as one message (exit 1), usage errors exit 2.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from chaoyang_desktop import __version__
from chaoyang_desktop.core.errors import CancelledError, ChaoyangError

SUBCOMMANDS = ("classify", "analyze", "models", "view", "report", "evaluate", "train", "gui")


class Progress:
    """A progress bar on stderr; silent when stderr is not a terminal or with ``--quiet``."""

    def __init__(self, total: int, desc: str, quiet: bool = False, unit: str = "img") -> None:
        self._bar: Any = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)

    def update_to(self, done: int, total: int | None = None) -> None:
        if self._bar is not None:
            if total is not None and self._bar.total != total:
                self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    from chaoyang_desktop.core.inference import DEVICES, PRECISIONS
    from chaoyang_desktop.core.profile import CHANNEL_ORDERS, DEFAULT_MODEL_ID, RESIZE_METHODS

    g = p.add_argument_group("model and inference")
    g.add_argument("--model", "-m", default=None, metavar="M",
                   help=f"model folder (Hugging Face layout) or hub repository id (default: {DEFAULT_MODEL_ID})")
    g.add_argument("--device", choices=DEVICES, default="auto", help="inference device (default: auto = CUDA > MPS > CPU)")
    g.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto = bf16/fp16 autocast on CUDA, fp32 elsewhere")
    g.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per forward pass (default: 16)")
    g.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for PyTorch (default: PyTorch's)")
    g.add_argument("--channel-order", choices=CHANNEL_ORDERS, default=None,
                   help="channel order fed to the network (default: the profile's, bgr as in training)")
    g.add_argument("--resize", choices=RESIZE_METHODS, default=None,
                   help="resize method (default: linear, OpenCV-like without antialiasing, as in training)")
    g.add_argument("--offline", action="store_true", help="never download the model, use the local cache only")


def _engine_settings(args: argparse.Namespace) -> Any:
    from chaoyang_desktop.core.inference import EngineSettings

    if args.batch_size < 1:
        raise ChaoyangError("--batch-size must be at least 1.")
    return EngineSettings(device=args.device, precision=args.precision, batch_size=args.batch_size,
                          threads=args.threads, channel_order=args.channel_order, resize=args.resize)


def _load_classifier(args: argparse.Namespace) -> Any:
    from chaoyang_desktop.core.inference import Classifier

    bar: Progress | None = None

    def on_bytes(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            print("Downloading the model (once) into the Hugging Face cache ...", file=sys.stderr)
            bar = Progress(total, "model", args.quiet, unit="B")
        bar.update_to(done, total)

    try:
        return Classifier.load(args.model, _engine_settings(args), allow_download=not args.offline, progress=on_bytes)
    finally:
        if bar is not None:
            bar.close()


# ----- classify ---------------------------------------------------------------------------------

def _format_results(records: list[Any], names: tuple[str, ...], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.to_dict() for r in records], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "label", "confidence", *[f"prob_{n}" for n in names], "error"])
        for r in records:
            if r.ok:
                w.writerow([r.path, r.label, f"{r.confidence:.6f}", *[f"{p:.6f}" for p in r.probabilities], ""])
            else:
                w.writerow([r.path, "", "", *[""] * len(names), r.error])
        return buf.getvalue()
    width = max([len("path"), *(len(r.path) for r in records)])
    short = [n[:8] for n in names]
    lines = [f"{'path':<{width}}  {'label':<15} {'conf':>6}  " + " ".join(f"{s:>8}" for s in short)]
    for r in records:
        if r.ok:
            lines.append(f"{r.path:<{width}}  {r.label:<15} {r.confidence:6.3f}  " + " ".join(f"{p:8.3f}" for p in r.probabilities))
        else:
            lines.append(f"{r.path:<{width}}  ERROR: {r.error}")
    return "\n".join(lines) + "\n"


def cmd_classify(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core import atomic
    from chaoyang_desktop.core.patches import classify_files, find_images

    images, problems = find_images(args.paths)
    for p in problems:
        print(f"error: {p.path}: {p.error}", file=sys.stderr)
    records: list[Any] = list(problems)
    names: tuple[str, ...] = ()
    if images:
        clf = _load_classifier(args)
        names = clf.profile.class_names
        bar = Progress(len(images), "classify", args.quiet)
        try:
            for r in classify_files(clf, images, batch_size=args.batch_size, workers=args.workers,
                                    on_progress=bar.update_to):
                if not r.ok:
                    print(f"error: {r.error}", file=sys.stderr)
                records.append(r)
        finally:
            bar.close()
    text = _format_results(records, names, args.format)
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0 if all(r.ok for r in records) and records else 1


# ----- analyze ----------------------------------------------------------------------------------

def _slide_inputs(inputs: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Slides and images named directly or found in folders (recursively), and inputs that are not."""
    from chaoyang_desktop.core.imageio import IMAGE_SUFFIXES
    from chaoyang_desktop.core.slide import SLIDE_SUFFIXES

    suffixes = set(SLIDE_SUFFIXES) | set(IMAGE_SUFFIXES)
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


def cmd_analyze(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.analysis import analyze_slide
    from chaoyang_desktop.core.cache import ResultCache
    from chaoyang_desktop.core.pipeline import AnalysisSettings
    from chaoyang_desktop.core.roi import load_roi
    from chaoyang_desktop.export.bundle import write_all

    if args.mpp is not None and not args.mpp > 0:
        raise ChaoyangError("--mpp must be a positive number of micrometres per pixel.")
    slides, problems = _slide_inputs(args.paths)
    for path, msg in problems:
        print(f"error: {path}: {msg}", file=sys.stderr)
    roi = load_roi(args.roi) if args.roi else None
    settings = AnalysisSettings(tile_um=args.tile_um, stride_um=args.stride_um, tissue_threshold=args.tissue_threshold,
                                roi=roi, roi_path=str(Path(args.roi).resolve()) if args.roi else None,
                                workers=args.workers).validated()
    out_root = Path(args.out)
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChaoyangError(f"Cannot create the output folder {out_root}: {exc.strerror}.") from exc
    failures: list[tuple[str, str]] = list(problems)
    names = _output_names(slides)
    todo = [(s, n) for s, n in zip(slides, names) if args.force or not _is_finished(out_root / n)]
    for s, n in zip(slides, names):
        if (s, n) not in todo and not args.quiet:
            print(f"skip: {s} (finished in {out_root / n}; --force to redo)", file=sys.stderr)
    clf = _load_classifier(args) if todo else None
    cache = None if args.no_cache else ResultCache()
    for k, (slide_path, name) in enumerate(todo, 1):
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
            bar.update_to(result.n_done + result.n_failed)

        try:
            outcome = analyze_slide(slide_path, clf, settings, mpp=args.mpp, cache=cache, on_plan=on_plan,
                                    on_batch=lambda u: bar.update_to(u.done) if bar else None, fresh=args.force)
            if bar is not None:
                bar.close()
            result = outcome.result
            facts = {"properties_vendor": result.provenance.vendor}
            write_all(result, out_root / name, outcome.plan.thumbnail, slide_facts=facts)
            for i, msg in sorted(result.errors.items()):
                print(f"warning: {slide_path.name}: tile {i} failed: {msg}", file=sys.stderr)
            if not args.quiet:
                src = "from cache" if outcome.from_cache else f"{time.perf_counter() - t0:.1f} s"
                top = max(result.summary()["classes"], key=lambda c: c["area_mm2"])
                print(f"{prefix}: done ({src}), {result.n_done} tiles, {result.n_failed} failed; "
                      f"largest class {top['name']} {top['percent']:.1f}% -> {out_root / name}", file=sys.stderr)
        except ChaoyangError as exc:
            if bar is not None:
                bar.close()
            failures.append((str(slide_path), str(exc)))
            print(f"error: {slide_path}: {exc}", file=sys.stderr)
    if failures:
        print(f"\n{len(failures)} input(s) failed:", file=sys.stderr)
        for path, msg in failures:
            print(f"  {path}: {msg}", file=sys.stderr)
        return 1
    return 0


# ----- models -----------------------------------------------------------------------------------

def cmd_models_download(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.model_source import LICENCE_NOTE, download_model

    print(LICENCE_NOTE, file=sys.stderr)
    bar = Progress(0, "download", args.quiet, unit="B")
    try:
        folder = download_model(args.repo_id, progress=bar.update_to)
    finally:
        bar.close()
    print(folder)
    return 0


def cmd_models_info(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.model_source import load_profile, resolve_model

    profile = load_profile(resolve_model(args.model, allow_download=False))
    info = profile.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    arch = profile.arch
    rows = [
        ("model", profile.model_id),
        ("source", f"{profile.source} ({profile.model_dir})"),
        ("weights", profile.weights_file),
        ("sha256", profile.weights_sha256),
        ("architecture", f"ViT, {arch.depth} layers, width {arch.hidden_size}, {arch.num_heads} heads, "
                         f"patch {arch.patch_size}, input {arch.image_size} px, LayerNorm eps {arch.layer_norm_eps:g}"),
        ("classes", ", ".join(f"{n} ({c})" for n, c in zip(profile.class_names, profile.class_colors))),
        ("tile", f"{profile.tile_um:g} um = {profile.tile_px} px at {profile.nominal_mpp:g} um/px (inferred, see MODEL.md)"),
        ("preprocessing", f"channel order {profile.channel_order}, resize {profile.resize}, "
                          f"mean {list(profile.mean)}, std {list(profile.std)}"),
    ]
    for k, v in rows:
        print(f"{k:>14}: {v}")
    return 0


# ----- GUI --------------------------------------------------------------------------------------

def cmd_gui(args: argparse.Namespace) -> int:
    from chaoyang_desktop.app import run_gui

    return run_gui(list(args.paths), model=getattr(args, "model", None))


def cmd_view(args: argparse.Namespace) -> int:
    from chaoyang_desktop.app import run_view

    return run_view(args)


# ----- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaoyang-desktop",
        description="Chaoyang Desktop: classify colon H&E tissue (Normal, Serrated, Adenocarcinoma, Adenoma) "
                    "in patches and whole-slide images. Without a subcommand, starts the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="start the desktop app (the default)")
    p.add_argument("paths", nargs="*", help="slide, image or folder to open")
    p.add_argument("--model", "-m", default=None)
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("view", help="open a slide, image or folder in the viewer; optionally analyse it and save a screenshot")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--analyze", action="store_true", help="run the analysis once the slide is open")
    p.add_argument("--screenshot", default=None, metavar="FILE.png",
                   help="save a PNG of the main window once the analysis (if any) has finished and the view is painted, then exit")
    p.add_argument("--mpp", type=float, default=None, help="pixel size in um/px, overriding the file's metadata")
    p.add_argument("--tissue-threshold", type=float, default=None, metavar="F")
    p.add_argument("--tile-um", type=float, default=None)
    p.add_argument("--stride-um", type=float, default=None)
    p.add_argument("--size", default="1400x900", metavar="WxH", help="window size for the screenshot (default 1400x900)")
    _add_engine_options(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("classify", help="classify image patches (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write results here instead of stdout")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_engine_options(p)
    p.set_defaults(func=cmd_classify)

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
    g.add_argument("--roi", default=None, metavar="FILE", help="GeoJSON polygon(s) in level-0 pixels (QuPath export)")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="tile reader threads (default: 4)")
    p.add_argument("--force", action="store_true", help="analyse again slides already finished in --out (ignores the cache)")
    p.add_argument("--no-cache", action="store_true", help="neither reuse nor store results in the user cache")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    _add_engine_options(p)
    p.set_defaults(func=cmd_analyze)

    models = sub.add_parser("models", help="download or inspect models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    from chaoyang_desktop.core.profile import DEFAULT_MODEL_ID

    p = msub.add_parser("download", help="download a model into the Hugging Face cache")
    p.add_argument("repo_id", nargs="?", default=DEFAULT_MODEL_ID)
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_models_download)
    p = msub.add_parser("info", help="print a model's profile and weights hash")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL_ID, metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print the profile as JSON")
    p.set_defaults(func=cmd_models_info)
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """``chaoyang-desktop slide.svs`` (a file association) means ``chaoyang-desktop gui slide.svs``."""
    if not argv:
        return ["gui"]
    first = argv[0]
    if first in SUBCOMMANDS or first.startswith("-"):
        return argv
    return ["gui", *argv]


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CancelledError as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return 130
    except ChaoyangError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
