"""One table from the JSON files ``benchmarks/gpu.sh`` writes: ``python benchmarks/gpu_table.py OUT_DIR``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "/tmp/chaoyang-gpu")
    lines = ["| what | precision | batch | compile | tiles/s | notes |", "|---|---|---|---|---|---|"]
    gpu = "?"
    for name in ("model_eager.json", "model_compiled.json"):
        doc = _load(folder / name)
        if doc is None:
            continue
        gpu = doc["machine"].get("gpu", gpu)
        for r in doc["rows"]:
            lines.append(f"| model only | {r['precision']} | {r['batch']} | {'yes' if r['compile'] else 'no'} | "
                         f"{r['tiles_per_s']:,.0f} | first call {r['first_call_s']:.1f} s, "
                         f"{r['gpu_mem_gib'] or 0:.1f} GiB |")
    for name in ("e2e_bf16.json", "e2e_b128.json"):
        doc = _load(folder / name)
        if doc is None:
            continue
        gpu = doc["machine"].get("gpu", gpu)
        models = {r["precision"]: r for r in doc["rows"] if r["row"] == "model only"}
        for r in doc["rows"]:
            if not r["row"].startswith("ours"):
                continue
            eff = ""
            if r["precision"] in models:
                eff = f"{100 * r['rate'] / models[r['precision']]['rate']:.0f}% of model only; "
            batch = str(doc.get("batch_size", "?"))
            lines.append(f"| end to end | {r['precision']} | {batch} | no | {r['rate']:,.0f} | {eff}"
                         f"{r['tiles']} tiles, plan {r['plan_s']:.1f} s then {r['run_rate']:,.0f} tiles/s, first batch "
                         f"{r['first_batch_s']:.2f} s, peak RSS {r['peak_rss_mb']:,.0f} MB, {r['note']} |")
    print(f"GPU: {gpu}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
