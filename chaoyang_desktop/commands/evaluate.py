"""``chaoyang-desktop evaluate``: the model's accuracy, precision/recall/F1 and calibration on labelled patches.

``--fit-temperature`` also fits a temperature on the same patches and saves it: into the
``--out`` folder as ``calibration.json`` (beside the report that shows its effect), else to
``--save-calibration FILE``, else beside a local model (``<model>/chaoyang-calibration.json``) or,
for a hub model whose folder belongs to the Hugging Face cache, in the user data folder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from chaoyang_desktop.commands.common import Progress, add_engine_options, load_classifier
from chaoyang_desktop.core.errors import ChaoyangError, OutputError, SettingsError


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


#: The temperature file's name beside a local model (``--fit-temperature`` without ``--out``).
MODEL_CALIBRATION_NAME = "chaoyang-calibration.json"


def default_calibration_path(args: argparse.Namespace, profile: Any) -> Path:
    """Where ``--fit-temperature`` saves when ``--save-calibration`` is not given.

    With ``--out``, inside it (with the report that shows the fit). Else beside a local model.
    A hub model's folder is a Hugging Face cache snapshot, which the hub client owns (and may
    share read-only between users), so its temperature goes to the user data folder, named
    after the model and the first 12 hex digits of its weights.
    """
    from chaoyang_desktop.export.evaluation_report import CALIBRATION_FILE

    if args.out:
        return Path(args.out) / CALIBRATION_FILE
    if profile.source == "local":
        return Path(profile.model_dir) / MODEL_CALIBRATION_NAME
    from chaoyang_desktop.core.paths import user_data_dir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(profile.model_id))
    return user_data_dir() / "calibration" / f"{safe}-{str(profile.weights_sha256)[:12]}.json"


def _check_fit_options(args: argparse.Namespace) -> None:
    if args.save_calibration and not args.fit_temperature:
        raise ChaoyangError("--save-calibration names where a fitted temperature goes; add --fit-temperature.")
    if args.fit_temperature and args.compare_channel_orders:
        raise ChaoyangError("--fit-temperature fits the channel order the model uses; run it without "
                            "--compare-channel-orders (add --channel-order to choose one).")


def run(args: argparse.Namespace) -> int:
    from chaoyang_desktop.core.learn.evaluate import compare_channel_orders, evaluate_dataset

    _check_fit_options(args)
    clf = load_classifier(args)
    dataset = load_data(args, clf.profile.class_names)
    if args.fit_temperature:
        from chaoyang_desktop.core.learn.calibration import check_fit_possible

        check_fit_possible(dataset.labels)  # before the images are classified: minutes saved
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
    fit_error: str | None = None
    calibration_file: Any = None
    if args.fit_temperature:
        from chaoyang_desktop.core.learn.evaluate import fit_report_temperature

        try:
            calibration_file, report = fit_report_temperature(report, clf)
        except SettingsError as exc:  # images left out may leave too few: the evaluation still stands
            fit_error = str(exc)
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
            write_evaluation(report, out)  # with a fit, this writes out/calibration.json too
        if not args.quiet:
            print(f"Wrote the evaluation to {out}", file=sys.stderr)
    if args.compare_channel_orders and not args.quiet:
        print(comparison.verdict, file=sys.stderr)
    if fit_error is not None:
        print(f"error: no temperature fitted: {fit_error}", file=sys.stderr)
        return 1
    if calibration_file is not None:
        _save_calibration(args, clf, report, calibration_file)
    return 1 if reports[0].failures else 0


def _save_calibration(args: argparse.Namespace, clf: Any, report: Any, calibration_file: Any) -> None:
    """Save the fitted temperature (atomically) and say how to use it."""
    fit = report.calibration_fit
    target = Path(args.save_calibration) if args.save_calibration else default_calibration_path(args, clf.profile)
    written_with_report = bool(args.out) and target == default_calibration_path(args, clf.profile)
    if not written_with_report:
        if target.is_dir():
            raise OutputError(f"{target} is a folder; give --save-calibration a file name such as {target / 'calibration.json'}.")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Cannot create {target.parent}: {exc.strerror}; choose another place with "
                              "--save-calibration FILE.") from exc
        calibration_file.save(target)
    # stderr like the other messages: stdout stays the markdown report, safe to redirect.
    print(fit.summary(), file=sys.stderr)
    if fit.note:
        print(f"note: {fit.note}", file=sys.stderr)
    print(f"Saved the calibration to {target}; use it with --calibration {shlex.quote(str(target))}", file=sys.stderr)


def add_parser(sub: Any) -> None:
    """Register this subcommand on the top-level parser's subparsers."""
    p = sub.add_parser("evaluate", help="measure the model on labelled patches (accuracy, precision/recall/F1, calibration)",
                       description="Classify labelled patches and report accuracy, per-class and macro precision/recall/F1, "
                                   "the confusion matrix and the expected calibration error. The markdown table goes to "
                                   "stdout; --out writes metrics.json, metrics.md, confusion_matrix.csv/.png, "
                                   "reliability.png, misclassified.csv and predictions.csv. --fit-temperature fits a "
                                   "temperature that calibrates the confidences on these patches and saves it for "
                                   "--calibration.")
    add_data_options(p)
    p.add_argument("--out", "-o", default=None, metavar="DIR", help="write the report files into DIR")
    p.add_argument("--compare-channel-orders", action="store_true",
                   help="evaluate with BGR and with RGB input and say which fits (reports in DIR/bgr and DIR/rgb)")
    p.add_argument("--fit-temperature", action="store_true",
                   help="fit a temperature (temperature scaling) on these labelled patches, print the log loss and "
                        "calibration error before and after, and save it (at least 20 patches of two classes or more)")
    p.add_argument("--save-calibration", default=None, metavar="FILE",
                   help="with --fit-temperature: where to save the temperature (default: DIR/calibration.json with "
                        f"--out, else {MODEL_CALIBRATION_NAME} in a local model's folder, or the user data folder for "
                        "a hub model)")
    p.add_argument("--workers", type=int, default=4, metavar="N", help="decoding threads (default: 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    add_engine_options(p)
    p.set_defaults(func=run)
