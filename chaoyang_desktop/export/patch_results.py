"""The patch classification table: what ``classify`` prints or writes, and the gallery exports.

One function, so the command line and the viewer's *Export CSV/JSON* give the same bytes.

Besides the probabilities, each classified patch carries how unsure the model was, as slide
tiles do in ``tiles.csv``: ``entropy`` (normalised, 0-1), ``margin`` (top-1 minus top-2) and,
with test-time augmentation, ``tta_spread`` (the top class's standard deviation across the
views). A patch left out by quality control has no probabilities at all, rather than numbers a
reader could take for a diagnosis, and ``qc`` names why (``glass``, ``pen``, ``blur``, ``dark``,
``;``-separated; empty when it passed). New columns come after the existing ones, so readers
that index the old columns keep working.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # core.patches loads the model code; formatting needs none of it
    from chaoyang_desktop.core.analysis.patches import PatchResult

FORMATS = ("table", "json", "csv")
#: CSV columns after ``error``: uncertainty, TTA spread and quality control.
EXTRA_COLUMNS: tuple[str, ...] = ("entropy", "margin", "tta_spread", "qc")


def _num(x: float | None) -> str:
    """Six decimals, or empty: a missing value must not read as a zero."""
    return "" if x is None else f"{x:.6f}"


def _cell(x: float | None, width: int) -> str:
    """A right-aligned table cell of three decimals, blank when there is no value."""
    return f"{'':>{width}}" if x is None else f"{x:{width}.3f}"


def format_patch_results(records: Sequence[PatchResult], names: Sequence[str], fmt: str) -> str:
    """``records`` as ``json`` (a list of ``{path, label, confidence, probabilities, entropy,
    margin, tta_spread, qc}``, or ``{path, error}``), ``csv``
    (``path,label,confidence,prob_<class>...,error,entropy,margin,tta_spread,qc``) or an aligned
    text ``table``, where a patch left out by quality control reads ``not classified: <reasons>``."""
    if fmt == "json":
        return json.dumps([r.to_dict() for r in records], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "label", "confidence", *[f"prob_{n}" for n in names], "error", *EXTRA_COLUMNS])
        for r in records:
            if r.probabilities is not None:
                w.writerow([r.path, r.label, _num(r.confidence), *[_num(p) for p in r.probabilities], "",
                            _num(r.entropy), _num(r.margin), _num(r.tta_spread), ";".join(r.qc_names)])
            else:
                w.writerow([r.path, "", "", *[""] * len(names), r.error or "", "", "", "", ";".join(r.qc_names)])
        return buf.getvalue()
    width = max([len("path"), *(len(r.path) for r in records)])
    short = [n[:8] for n in names]
    with_spread = any(r.tta_spread is not None for r in records)
    header = (f"{'path':<{width}}  {'label':<15} {'conf':>6}  " + " ".join(f"{s:>8}" for s in short)
              + f"  {'entropy':>7} {'margin':>6}" + (f" {'spread':>6}" if with_spread else ""))
    lines = [header]
    for r in records:
        if r.probabilities is not None:
            spread = f" {_cell(r.tta_spread, 6)}" if with_spread else ""
            lines.append(f"{r.path:<{width}}  {r.label:<15} {r.confidence:6.3f}  "
                         + " ".join(f"{p:8.3f}" for p in r.probabilities)
                         + f"  {_cell(r.entropy, 7)} {_cell(r.margin, 6)}{spread}")
        elif r.error is not None:
            lines.append(f"{r.path:<{width}}  ERROR: {r.error}")
        else:
            lines.append(f"{r.path:<{width}}  not classified: {r.qc_words}")
    return "\n".join(lines) + "\n"
