"""The patch classification table: what ``classify`` prints or writes, and the gallery exports.

One function, so the command line and the viewer's *Export CSV/JSON* give the same bytes.
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


def format_patch_results(records: Sequence[PatchResult], names: Sequence[str], fmt: str) -> str:
    """``records`` as ``json`` (a list of ``{path, label, confidence, probabilities}``), ``csv``
    (``path,label,confidence,prob_<class>...,error``) or an aligned text ``table``."""
    if fmt == "json":
        return json.dumps([r.to_dict() for r in records], indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "label", "confidence", *[f"prob_{n}" for n in names], "error"])
        for r in records:
            if r.probabilities is not None:
                w.writerow([r.path, r.label, f"{r.confidence:.6f}", *[f"{p:.6f}" for p in r.probabilities], ""])
            else:
                w.writerow([r.path, "", "", *[""] * len(names), r.error])
        return buf.getvalue()
    width = max([len("path"), *(len(r.path) for r in records)])
    short = [n[:8] for n in names]
    lines = [f"{'path':<{width}}  {'label':<15} {'conf':>6}  " + " ".join(f"{s:>8}" for s in short)]
    for r in records:
        if r.probabilities is not None:
            lines.append(f"{r.path:<{width}}  {r.label:<15} {r.confidence:6.3f}  " + " ".join(f"{p:8.3f}" for p in r.probabilities))
        else:
            lines.append(f"{r.path:<{width}}  ERROR: {r.error}")
    return "\n".join(lines) + "\n"
