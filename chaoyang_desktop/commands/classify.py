"""``chaoyang-desktop classify``: image patches to class probabilities (table, JSON or CSV)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier


def format_results(records: list[Any], names: tuple[str, ...], fmt: str) -> str:
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


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core import atomic
    from chaoyang_desktop.core.patches import classify_files, find_images

    images, problems = find_images(args.paths)
    for p in problems:
        print(f"error: {p.path}: {p.error}", file=sys.stderr)
    records: list[Any] = list(problems)
    names: tuple[str, ...] = ()
    if images:
        clf = load_classifier(args)
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
    text = format_results(records, names, args.format)
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0 if all(r.ok for r in records) and records else 1


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("classify", help="classify image patches (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write results here instead of stdout")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_engine_options(p)
    p.set_defaults(func=run)
