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
from typing import Any

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


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (tests and front ends replace it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(verbose: bool, *, to_file: bool) -> None:
    """Our warnings on stderr; everything else (library warnings, Python warnings) in the log file.

    A clean run prints only our own lines: a torch ``UserWarning`` or tifffile's ``WARNING:`` about
    a file it then reads anyway means nothing to a user, but belongs in the log. ``--verbose``
    shows everything on stderr.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.filters.clear()
    if not verbose:  # the GUI reports its own errors (dialogs, the view command's error line)
        handler.addFilter(lambda record: record.name.split(".")[0] == "chaoyang_desktop"
                          and not record.name.startswith("chaoyang_desktop.gui"))
    if root.level == logging.NOTSET or root.level > handler.level:
        root.setLevel(handler.level)
    logging.captureWarnings(True)  # warnings.warn goes to the "py.warnings" logger, not to stderr
    if to_file:
        from chaoyang_desktop.app import setup_logging

        setup_logging()


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(args_list)
    _configure_logging(bool(args.verbose), to_file=args.smoke_test or hasattr(args, "func"))
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
