"""Helpers shared by the subcommands: progress bars and the model/inference options."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chaoyang_desktop.core.errors import ChaoyangError


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


def add_engine_options(p: argparse.ArgumentParser) -> None:
    from chaoyang_desktop.core.model.engine_settings import DEVICES, PRECISIONS
    from chaoyang_desktop.core.model.profile import CHANNEL_ORDERS, DEFAULT_MODEL_ID, RESIZE_METHODS

    g = p.add_argument_group("model and inference")
    g.add_argument("--model", "-m", default=None, metavar="M",
                   help=f"model folder (Hugging Face layout) or hub repository id (default: {DEFAULT_MODEL_ID})")
    g.add_argument("--device", choices=DEVICES, default="auto", help="inference device (default: auto = CUDA > MPS > CPU)")
    g.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto = bf16/fp16 autocast on CUDA, fp32 elsewhere. Fast CPU modes (opt-in, slightly "
                        "different numbers): bf16 on CPUs with AVX512-BF16/AMX (fp32 elsewhere), int8 = "
                        "dynamic int8 quantisation (any CPU)")
    g.add_argument("--batch-size", type=int, default=16, metavar="N", help="images per forward pass (default: 16)")
    g.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for PyTorch (default: PyTorch's)")
    g.add_argument("--channel-order", choices=CHANNEL_ORDERS, default=None,
                   help="channel order fed to the network (default: the profile's, bgr as in training)")
    g.add_argument("--resize", choices=RESIZE_METHODS, default=None,
                   help="resize method (default: linear, OpenCV-like without antialiasing, as in training)")
    g.add_argument("--offline", action="store_true", help="never download the model, use the local cache only")
    g.add_argument("--tta", action="store_true",
                   help="test-time augmentation: classify each tile in the 8 flips and 90-degree rotations training "
                        "used and average them; also gives the per-class spread across them (8x the model work)")
    g.add_argument("--calibration", default=None, metavar="FILE",
                   help="temperature file from `evaluate --fit-temperature`: calibrates the probabilities of the "
                        "model it was fitted for")


def engine_settings(args: argparse.Namespace) -> Any:
    from chaoyang_desktop.core.model.engine_settings import EngineSettings

    if args.batch_size < 1:
        raise ChaoyangError("--batch-size must be at least 1.")
    return EngineSettings(device=args.device, precision=args.precision, batch_size=args.batch_size,
                          threads=args.threads, channel_order=args.channel_order, resize=args.resize,
                          tta=bool(getattr(args, "tta", False)), calibration=getattr(args, "calibration", None))


def load_classifier(args: argparse.Namespace) -> Any:
    from chaoyang_desktop.core.model.inference import Classifier

    bar: Progress | None = None

    def on_bytes(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            print("Downloading the model (once) into the Hugging Face cache ...", file=sys.stderr)
            bar = Progress(total, "model", args.quiet, unit="B")
        bar.update_to(done, total)

    try:
        return Classifier.load(args.model, engine_settings(args), allow_download=not args.offline, progress=on_bytes)
    finally:
        if bar is not None:
            bar.close()
