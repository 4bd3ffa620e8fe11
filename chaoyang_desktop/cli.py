"""The command line: ``chaoyang-desktop [PATH] | classify | analyze | models | view | ...``.

With no subcommand (optionally with a file or folder path) it starts the desktop app, which is
what a double-click or a file association runs. Each subcommand lives in its own module of
:mod:`chaoyang_desktop.commands`. Errors a person can fix are printed as one message (exit 1),
usage errors exit 2, a cancelled run exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from chaoyang_desktop import __version__
from chaoyang_desktop.core.errors import CancelledError, ChaoyangError

# Module per subcommand group, in help order; each has add_parser(subparsers).
COMMAND_MODULES = ("gui", "classify", "analyze", "report", "evaluate", "train", "models")
SUBCOMMANDS = ("gui", "view", "classify", "analyze", "models", "report", "evaluate", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chaoyang-desktop",
        description="Chaoyang Desktop: classify colon H&E tissue (Normal, Serrated, Adenocarcinoma, Adenoma) "
                    "in patches and whole-slide images. Without a subcommand, starts the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    parser.add_argument("--smoke-test", action="store_true",
                        help="start the app offscreen, open the bundled sample slide, check that it paints, and exit "
                             "(0 when it works; for installers and CI)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"chaoyang_desktop.commands.{name}").add_parser(sub)
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """``chaoyang-desktop slide.svs`` (a file association) means ``chaoyang-desktop gui slide.svs``."""
    if not argv:
        return ["gui"]
    first = argv[0]
    if first in SUBCOMMANDS or first.startswith("-"):
        return argv
    return ["gui", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if args.smoke_test:
        if args.command is not None:
            parser.error("--smoke-test takes no subcommand")
        from chaoyang_desktop.app import run_smoke_test

        return run_smoke_test()
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
