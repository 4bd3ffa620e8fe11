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

    p = sub.add_parser("classify", help="classify image patches (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write results here instead of stdout")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_engine_options(p)
    p.set_defaults(func=cmd_classify)

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
