"""``chaoyang-desktop models download|info``: fetch a model into the Hugging Face cache, show its profile."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chaoyang_desktop.commands.common import Progress


def cmd_models_download(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.model.model_source import LICENCE_NOTE, download_model

    print(LICENCE_NOTE, file=sys.stderr)
    bar = Progress(0, "download", args.quiet, unit="B")
    try:
        folder = download_model(args.repo_id, progress=bar.update_to)
    finally:
        bar.close()
    print(folder)
    return 0


def cmd_models_info(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.model.model_source import load_profile, resolve_model

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


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    models = sub.add_parser("models", help="download or inspect models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID

    p = msub.add_parser("download", help="download a model into the Hugging Face cache")
    p.add_argument("repo_id", nargs="?", default=DEFAULT_MODEL_ID)
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_models_download)
    p = msub.add_parser("info", help="print a model's profile and weights hash")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL_ID, metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print the profile as JSON")
    p.set_defaults(func=cmd_models_info)
