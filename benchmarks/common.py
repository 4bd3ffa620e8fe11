"""Helpers shared by the benchmarks: machine facts, peak-memory sampling, tables, test models.

Benchmarks print figures; they never assert times (``shared/ARCHITECTURE.md``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The real test data in the repository (tests/data/README.md has provenance and licences).
TEST_DATA = REPO / "tests" / "data"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Where generated slides and random model folders go unless told otherwise.
WORK = Path(os.environ.get("CHAOYANG_BENCH_DIR", "/tmp/chaoyang-bench"))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, load, library versions, GPU."""
    import torch

    facts: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "memory_gb": round(_total_memory_bytes() / 2**30, 1),
    }
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    try:
        from chaoyang_desktop.core.model.inference import cpu_has_native_bf16

        facts["cpu_native_bf16"] = cpu_has_native_bf16()
    except ImportError:
        pass
    return facts


def _total_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's resident memory in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self, every_s: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self._every = every_s
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)
            self._stop.wait(self._every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)


def ensure_model(kind: str) -> Path:
    """A random-weight model folder in the published Hugging Face layout (made once, then reused).

    ``base`` is the real architecture (ViT-B/16 at 384 px); ``tiny`` has the same input and
    layout with a fraction of the compute, which leaves reading and preprocessing exposed.
    """
    from tests.model_factory import BASE_CONFIG, TINY_CONFIG, write_checkpoint

    configs = {"base": BASE_CONFIG, "tiny": TINY_CONFIG}
    if kind not in configs:
        path = Path(kind)
        if (path / "config.json").is_file():
            return path
        raise SystemExit(f"--model is base, tiny or a model folder (got {kind!r}).")
    folder = WORK / "models" / kind
    if not (folder / "config.json").is_file():
        write_checkpoint(folder, configs[kind], seed=0)
    return folder


def ensure_slide(size: int, height: int | None = None) -> Path:
    """A generated H&E slide of ``size`` x ``height`` px at 0.5 um/px (made once, then reused)."""
    from benchmarks.make_slide import write_slide

    height = height or size
    path = WORK / f"slide-{size}x{height}.tiff"
    if not path.is_file():
        tmp = path.with_suffix(".partial.tiff")
        write_slide(tmp, size, height)
        tmp.rename(path)
    return path


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Markdown table, ready to paste into docs/performance.md."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def save_json(path: Path | None, doc: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
