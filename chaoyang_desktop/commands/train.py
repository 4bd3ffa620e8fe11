"""``chaoyang-desktop train``: fine-tune the model on labelled patches with the recipe that produced it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaoyang_desktop.commands.common import Progress
from chaoyang_desktop.commands.evaluate import add_data_options, load_data
from chaoyang_desktop.core.errors import CancelledError, SettingsError

# Recipe options: None means "not given", so a resumed run can tell them from defaults.
_RECIPE_DEFAULTS: dict[str, Any] = {"batch_size": 16, "lr": 1e-4, "weight_decay": 0.01, "val_fraction": 0.1, "seed": 0,
                                    "oversample": True, "augment": True}
_DEFAULT_EPOCHS = 50


def _settings(args: argparse.Namespace, stored: dict[str, Any] | None) -> Any:
    """TrainSettings from the options; on resume, recipe options default to the stored run's."""
    from chaoyang_desktop.core.learn.train import TrainSettings

    recipe: dict[str, Any] = {}
    for key, default in _RECIPE_DEFAULTS.items():
        given = getattr(args, key)
        if stored is not None:
            if given is not None and given != stored.get(key):
                opt = {"oversample": "--no-oversample", "augment": "--no-augment"}.get(key, "--" + key.replace("_", "-"))
                raise SettingsError(f"{opt} differs from the run being resumed ({stored.get(key)}); leave it out with --resume.")
            recipe[key] = stored.get(key, default)
        else:
            recipe[key] = default if given is None else given
    epochs = args.epochs if args.epochs is not None else int(stored.get("epochs", _DEFAULT_EPOCHS) if stored else _DEFAULT_EPOCHS)
    patience = args.patience if args.patience is not None else (stored.get("patience") if stored else None)
    return TrainSettings(epochs=epochs, patience=patience, device=args.device, precision=args.precision,
                         threads=args.threads, workers=args.workers, **recipe).validated()


def _base_classes(args: argparse.Namespace) -> tuple[str, ...]:
    from chaoyang_desktop.core.model.model_source import resolve_model
    from chaoyang_desktop.core.model.profile import class_names_from_config, read_model_config

    location = resolve_model(args.base, allow_download=not args.offline)
    return class_names_from_config(read_model_config(location.model_dir), str(location.model_dir / "config.json"))


def _evaluate_validation(args: argparse.Namespace, result: Any, dataset: Any) -> None:
    """Evaluate the kept model on the held-out images into OUT/validation/."""
    from chaoyang_desktop.core.learn.evaluate import evaluate_dataset
    from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
    from chaoyang_desktop.export.evaluation_report import write_evaluation

    clf = Classifier.load(str(result.model_dir), EngineSettings(device=args.device, precision=args.precision,
                                                                batch_size=args.batch_size or 16, threads=args.threads))
    report = evaluate_dataset(clf, dataset.subset(result.split.val), workers=args.workers)
    write_evaluation(report, result.out_dir / "validation", title=f"Validation split, best epoch {result.best_epoch}")
    if not args.quiet:
        print(f"validation ({report.n} held-out images, epoch {result.best_epoch}): accuracy {report.accuracy:.3f}, "
              f"macro F1 {report.metrics.macro.f1:.3f}, ECE {report.calibration.ece:.3f} -> "
              f"{result.out_dir / 'validation' / 'metrics.md'}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.learn.train import read_training_info, train_model
    from chaoyang_desktop.export.evaluation_report import write_training_outputs

    out = Path(args.out)
    stored_info = read_training_info(out) if args.resume else None
    if args.resume and stored_info is None:
        raise SettingsError(f"{out} holds no training run to resume (no training.json); start without --resume.")
    if stored_info is not None:
        stored = {**stored_info.get("recipe", {})}
        classes: tuple[str, ...] | None = tuple(stored_info["classes"])
    else:
        stored = None
        classes = None if args.new_classes else _base_classes(args)
    settings = _settings(args, stored)
    dataset = load_data(args, classes)
    if not args.quiet:
        print(dataset.describe(), file=sys.stderr)
        for note in dataset.notes:
            print(f"note: {note}", file=sys.stderr)
        missing = [n for n, c in zip(dataset.class_names, dataset.class_counts()) if c == 0]
        if missing:
            print(f"warning: no training images for {', '.join(missing)}; the model keeps these classes but does not "
                  "learn them further.", file=sys.stderr)

    bar: Progress | None = None

    def on_batch(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(total, "train", args.quiet, unit="batch")
        bar.update_to(done, total)
        if done >= total:
            bar.close()
            bar = None

    def on_epoch(record: Any, history: tuple[Any, ...]) -> None:
        write_training_outputs(out, history)
        if not args.quiet:
            print(record.describe(settings.epochs), file=sys.stderr)

    def on_message(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    try:
        result = train_model(dataset, out, base=args.base, settings=settings, resume=args.resume,
                             allow_download=not args.offline, on_epoch=on_epoch, on_batch=on_batch, on_message=on_message)
    except KeyboardInterrupt as exc:
        raise CancelledError(f"training interrupted; continue it with the same command and --resume (output: {out})") from exc
    finally:
        if bar is not None:
            bar.close()
    for path, error in sorted(result.skipped.items()):
        print(f"warning: skipped unreadable image {path}: {error}", file=sys.stderr)
    if result.history:
        write_training_outputs(out, result.history)
    if result.best_epoch and result.split.val:
        _evaluate_validation(args, result, dataset)
    if not args.quiet and result.best_epoch:
        print(f"Model (epoch {result.best_epoch}) saved in {result.model_dir}; use it with --model {result.model_dir}",
              file=sys.stderr)
    return 0


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    from chaoyang_desktop.core.model.engine_settings import DEVICES
    from chaoyang_desktop.core.model.profile import DEFAULT_MODEL_ID

    p = sub.add_parser("train", help="fine-tune the model on labelled patches (the original recipe)",
                       description="Fine-tune a ViT on labelled patches with the recipe of the Chaoyang model: a seeded, "
                                   "stratified 10% validation split taken first, minority classes oversampled, flips, "
                                   "90-degree rotations and random resized crops, AdamW lr 1e-4, cross-entropy, batch 16, "
                                   "up to 50 epochs, the epoch with the lowest validation loss kept in OUT/model.")
    add_data_options(p)
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="run folder: model/, checkpoint-last.pt, logs")
    p.add_argument("--base", "-m", default=None, metavar="M",
                   help=f"model to start from: folder (Hugging Face layout) or hub id (default: {DEFAULT_MODEL_ID})")
    p.add_argument("--new-classes", action="store_true",
                   help="train the data's own classes (sorted folder names or class-map targets) with a new head, "
                        "instead of the base model's classes")
    r = p.add_argument_group("recipe (defaults: the original's)")
    r.add_argument("--epochs", type=int, default=None, metavar="N", help="train up to N epochs in all (default: 50)")
    r.add_argument("--patience", type=int, default=None, metavar="N",
                   help="stop after N epochs without a lower validation loss (default: never)")
    r.add_argument("--batch-size", type=int, default=None, metavar="N", help="images per step (default: 16)")
    r.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default: 1e-4)")
    r.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default: 0.01)")
    r.add_argument("--val-fraction", type=float, default=None, metavar="F",
                   help="share of each class held out for validation (default: 0.1; 0 keeps the last epoch)")
    r.add_argument("--seed", type=int, default=None, help="seed of the split, sampling and augmentation (default: 0)")
    r.add_argument("--no-oversample", dest="oversample", action="store_const", const=False, default=None,
                   help="do not duplicate minority-class images")
    r.add_argument("--no-augment", dest="augment", action="store_const", const=False, default=None,
                   help="no flips, rotations or crops")
    r.add_argument("--resume", action="store_true", help="continue the run in --out after its last finished epoch")
    g = p.add_argument_group("device")
    g.add_argument("--device", choices=DEVICES, default="auto", help="auto = CUDA > MPS > CPU")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="auto = bf16 autocast on CUDA (fp16 with loss scaling where bf16 is unsupported), fp32 elsewhere")
    g.add_argument("--threads", type=int, default=None, metavar="N", help="CPU threads for PyTorch")
    g.add_argument("--workers", type=int, default=4, metavar="N", help="image decoding threads (default: 4)")
    g.add_argument("--offline", action="store_true", help="never download the base model")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run)
