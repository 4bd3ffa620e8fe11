"""``chaoyang-desktop classify``: image patches to class probabilities (table, JSON or CSV).

With ``--qc on`` (the default, as for ``analyze``) patches of glass, pen ink, blur or dark
artefacts are listed as not classified instead of being given a class. They are not failures:
the exit status is 1 only for inputs that could not be read (or when there was nothing to read).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier
from chaoyang_desktop.export.patch_results import FORMATS, format_patch_results


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core import atomic
    from chaoyang_desktop.core.analysis.patches import classify_files, find_images

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
                                    on_progress=bar.update_to, qc=args.qc == "on"):
                if not r.ok:
                    print(f"error: {r.error}", file=sys.stderr)
                records.append(r)
        finally:
            bar.close()
        flagged = [r for r in records if r.ok and r.qc]
        if flagged and not args.quiet:
            from chaoyang_desktop.core.slide.tile_qc import count_by_reason

            why = ", ".join(f"{name} {n}" for name, n in count_by_reason(r.qc for r in flagged).items() if n)
            print(f"{len(flagged)} of {len(images)} patch(es) not classified by quality control ({why}); "
                  "--qc off classifies them", file=sys.stderr)
    text = format_patch_results(records, names, args.format)
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return 0 if all(r.ok for r in records) and records else 1


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("classify", help="classify image patches (files or folders)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--output", "-o", default=None, metavar="FILE", help="write results here instead of stdout")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--qc", choices=("on", "off"), default="on",
                   help="patch quality control: on (default) leaves patches of glass, pen ink, blur or dark "
                        "artefacts unclassified and says why (not an error); off classifies every patch")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or notes")
    add_engine_options(p)
    p.set_defaults(func=run)
