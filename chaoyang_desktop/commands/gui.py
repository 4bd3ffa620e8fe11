"""``chaoyang-desktop [gui] [PATH]`` and ``chaoyang-desktop view``: the desktop app and its scriptable form."""

from __future__ import annotations

import argparse
from typing import Any

from chaoyang_desktop.commands.common import add_engine_options


def cmd_gui(args: argparse.Namespace) -> int:
    from chaoyang_desktop.app import run_gui

    return run_gui(list(args.paths), model=getattr(args, "model", None))


def cmd_view(args: argparse.Namespace) -> int:
    from chaoyang_desktop.app import run_view

    return run_view(args)


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("gui", help="start the desktop app (the default)")
    p.add_argument("paths", nargs="*", help="slide, image or folder to open")
    p.add_argument("--model", "-m", default=None)
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("view", help="open a slide, image or folder in the viewer; optionally analyse it and save a screenshot")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--analyze", action="store_true", help="run the analysis once the slide is open")
    p.add_argument("--screenshot", default=None, metavar="FILE.png",
                   help="save a PNG of the main window once the analysis (if any) has finished and the view is painted, "
                        "then exit. A screenshot run uses the defaults and this command line only, never the app's "
                        "saved settings")
    p.add_argument("--mpp", type=float, default=None, help="pixel size in um/px, overriding the file's metadata")
    p.add_argument("--tissue-threshold", type=float, default=None, metavar="F")
    p.add_argument("--tile-um", type=float, default=None)
    p.add_argument("--stride-um", type=float, default=None)
    p.add_argument("--allow-out-of-domain", action="store_true",
                   help="analyse a slide the input check finds outside the model's domain; the view and exports say so")
    p.add_argument("--size", default="1400x900", metavar="WxH", help="window size for the screenshot (default 1400x900)")
    add_engine_options(p)
    p.set_defaults(func=cmd_view)
