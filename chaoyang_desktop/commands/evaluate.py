"""``chaoyang-desktop evaluate``: the model's accuracy, precision/recall/F1 and calibration on labelled patches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA and the options that say how its labels map to classes (shared with ``train``)."""
    p.add_argument("data", metavar="DATA",
                   help="a folder with one sub-folder per class, or a Chaoyang-style JSON label list "
                        '([{"label": 0, "name": "test/x.JPG"}, ...])')
    p.add_argument("--class-map", default=None, metavar="FILE.json",
                   help='JSON object from data labels (folder names, JSON labels) to class names; null leaves a label '
                        'out, e.g. {"TUM": "Adenocarcinoma", "ADI": null}. Without it, folder names must match the '
                        "classes (case is ignored)")
    p.add_argument("--image-root", default=None, metavar="DIR",
                   help="for a JSON label list: the folder its names are relative to (default: the JSON file's folder)")


def load_data(args: argparse.Namespace, class_names: tuple[str, ...] | None) -> Any:
    from chaoyang_desktop.core.learn.datasets import load_class_map, load_labelled_dataset

    class_map = load_class_map(args.class_map) if args.class_map else None
    return load_labelled_dataset(args.data, class_names, class_map=class_map, image_root=args.image_root)


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.learn.evaluate import compare_channel_orders, evaluate_dataset

    clf = load_classifier(args)
    dataset = load_data(args, clf.profile.class_names)
    if not args.quiet:
        print(f"{dataset.describe()}; model {clf.profile.model_id} on {clf.device_description}", file=sys.stderr)
        for note in dataset.notes:
            print(f"note: {note}", file=sys.stderr)
    bar = Progress(len(dataset), "evaluate", args.quiet)
    try:
        if args.compare_channel_orders:
            comparison = compare_channel_orders(clf, dataset, batch_size=args.batch_size, workers=args.workers,
                                                on_progress=bar.update_to)
            reports = list(comparison.reports.values())
        else:
            report = evaluate_dataset(clf, dataset, batch_size=args.batch_size, workers=args.workers, on_progress=bar.update_to)
            reports = [report]
    finally:
        bar.close()
    for path, error in reports[0].failures:
        print(f"error: {path}: {error}", file=sys.stderr)
    if args.compare_channel_orders:
        text = "\n".join(r.to_markdown(f"Evaluation with {o.upper()} input") for o, r in comparison.reports.items())
        text += "\n" + comparison.to_markdown()
    else:
        text = report.to_markdown()
    sys.stdout.write(text)
    if args.out:
        from chaoyang_desktop.export.evaluation_report import write_channel_comparison, write_evaluation

        out = Path(args.out)
        if args.compare_channel_orders:
            write_channel_comparison(comparison, out)
        else:
            write_evaluation(report, out)
        if not args.quiet:
            print(f"Wrote the evaluation to {out}", file=sys.stderr)
    if args.compare_channel_orders and not args.quiet:
        print(comparison.verdict, file=sys.stderr)
    return 1 if reports[0].failures else 0


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("evaluate", help="measure the model on labelled patches (accuracy, precision/recall/F1, calibration)",
                       description="Classify labelled patches and report accuracy, per-class and macro precision/recall/F1, "
                                   "the confusion matrix and the expected calibration error. The markdown table goes to "
                                   "stdout; --out writes metrics.json, metrics.md, confusion_matrix.csv/.png, "
                                   "reliability.png, misclassified.csv and predictions.csv.")
    add_data_options(p)
    p.add_argument("--out", "-o", default=None, metavar="DIR", help="write the report files into DIR")
    p.add_argument("--compare-channel-orders", action="store_true",
                   help="evaluate with BGR and with RGB input and say which fits (reports in DIR/bgr and DIR/rgb)")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_engine_options(p)
    p.set_defaults(func=run)
