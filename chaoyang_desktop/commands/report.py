"""``chaoyang-desktop report RESULT_DIR [--out FILE]``: the PDF report of saved results, without the model.

The result is rebuilt from ``predictions.npz`` and ``summary.json``. The slide named in the
provenance is opened again, if it is still there and still the same file (same content
fingerprint), for the thumbnail and the gallery pictures; otherwise the saved ``heatmap.png`` is
the overview and the galleries list positions and probabilities only, and the report says so.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from chaoyang_desktop.core.errors import ChaoyangError, SlideOpenError


def _open_analysed_slide(result: Any, override: str | None) -> tuple[Any, str | None]:
    """The analysed slide, open, or None and a note saying why it is not used.

    Raises:
        SlideOpenError: ``override`` was given but cannot be opened or is another slide; a
            person who named a file wants to hear that it is wrong.
    """
    from chaoyang_desktop.core.slide.reader import file_fingerprint, open_slide

    path = Path(override) if override else Path(result.provenance.slide_path)
    if not override and not path.exists():
        return None, (f"The slide file {path} was not found (if it moved, give its new place with --slide); "
                      "the overview is the heatmap saved with the results.")
    try:
        if file_fingerprint(path) != result.provenance.slide_fingerprint:
            raise SlideOpenError(f"{path} is not the slide these results were made from (its content differs).")
        slide = open_slide(path)
    except (ChaoyangError, OSError) as exc:
        if override:
            if isinstance(exc, ChaoyangError):
                raise
            raise SlideOpenError(f"Cannot read {path}: {exc}.") from exc
        return None, f"The slide file could not be used: {exc}"
    return slide, None


def _saved_heatmap(folder: Path) -> np.ndarray | None:
    from PIL import Image, UnidentifiedImageError

    from chaoyang_desktop.export.bundle import HEATMAP_PNG

    png = folder / HEATMAP_PNG
    if not png.is_file():
        return None
    try:
        with Image.open(png) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def report_from_result_dir(result_dir: str | Path, out: str | Path | None = None, *, slide: str | None = None,
                           options: Any = None) -> Path:
    """Write the PDF report of the analysis saved in ``result_dir``.

    Args:
        result_dir: A folder written by ``analyze`` (or the GUI's export).
        out: The PDF; default ``result_dir/report.pdf``.
        slide: Where the slide is now, when it moved; default the path in the provenance.
        options: :class:`~chaoyang_desktop.export.report_data.ReportOptions`.

    Returns:
        The written PDF.

    Raises:
        SavedResultError: ``result_dir`` holds no readable results.
        SlideOpenError: ``slide`` was given and is not the analysed slide.
        OutputError: The PDF cannot be written.
    """
    from chaoyang_desktop.core.errors import SavedResultError
    from chaoyang_desktop.core.analysis.result_files import load_result_dir
    from chaoyang_desktop.export.bundle import REPORT_PDF
    from chaoyang_desktop.export.pdf_report import write_report
    from chaoyang_desktop.export.report_data import ReportOptions

    folder = Path(result_dir)
    try:
        result = load_result_dir(folder)
    except SavedResultError as exc:
        # A batch's --out root holds one results folder per slide: name them.
        inner = sorted(p.parent.name for p in folder.glob("*/summary.json"))
        if inner and not (folder / "summary.json").exists():
            shown = ", ".join(inner[:3]) + (", ..." if len(inner) > 3 else "")
            raise SavedResultError(f"{folder} holds one results folder per slide ({shown}), not the results "
                                   f"of one slide; give one slide's folder, e.g. {folder / inner[0]}.") from exc
        raise
    opts = options or ReportOptions()
    target = Path(out) if out is not None else folder / REPORT_PDF
    opened, note = _open_analysed_slide(result, slide)
    notes = [note] if note else []
    with contextlib.ExitStack() as stack:
        if opened is not None:
            stack.enter_context(opened)
            thumb = opened.thumbnail(opts.overview_max_side)
            return write_report(result, thumb, opened, target, opts, notes=notes)
        return write_report(result, None, None, target, opts, overview_rgb=_saved_heatmap(folder), notes=notes)


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.export.report_data import ReportOptions

    if args.top < 0 or args.review < 0:
        raise ChaoyangError("--top and --review must not be negative.")
    options = ReportOptions(top_per_class=args.top, least_confident=args.review)
    path = report_from_result_dir(args.result_dir, args.out, slide=args.slide, options=options)
    if not args.quiet:
        print(f"report: {path}", file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("report", help="write the PDF report of saved analysis results (no model needed)",
                       description="Write the PDF report of an analysis saved by 'analyze' "
                                   "(predictions.npz + summary.json) without running the model again.")
    p.add_argument("result_dir", metavar="RESULT_DIR", help="a slide's results folder, e.g. OUT/<slide name>")
    p.add_argument("--out", "-o", default=None, metavar="FILE", help="the PDF to write (default: RESULT_DIR/report.pdf)")
    p.add_argument("--slide", default=None, metavar="FILE",
                   help="the slide file, when it moved since the analysis (default: the path in summary.json)")
    p.add_argument("--top", type=int, default=4, metavar="N", help="most confident tiles shown per class (default 4)")
    p.add_argument("--review", type=int, default=8, metavar="N",
                   help="least confident tiles shown for review (default 8)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)
