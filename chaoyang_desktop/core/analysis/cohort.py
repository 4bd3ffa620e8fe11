"""A cohort: many slides analysed with one model and one set of settings.

Both front ends (``analyze FOLDER``, in-process or over Ray, and the app's cohort window) find
their slides, name their output folders, analyse each slide and pace the whole run with what is
here. One slide's outcome is a :class:`SlideReport`: its status, its numbers (the
:meth:`AnalysisResult.summary` dict) or the reason it has none. A failing slide never stops the
others: :func:`~chaoyang_desktop.core.analysis.run.analyze_cohort_slide` turns the errors a person
can act on into a report. This module imports neither torch nor Qt, so the app's cohort window
uses it at start-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoyang_desktop.core.errors import ChaoyangError, NoTilesError, OutOfDomainError

# ----- a slide's place in a cohort ----------------------------------------------------------------------------
SLIDE_NEW = "new"
SLIDE_QUEUED = "queued"
SLIDE_RUNNING = "running"
SLIDE_DONE = "done"
SLIDE_NO_TILES = "no tiles"
SLIDE_FAILED = "failed"
SLIDE_OUT_OF_DOMAIN = "out of domain"
#: Every status a slide of a cohort can have, in the order a cohort table sorts them.
SLIDE_STATUSES: tuple[str, ...] = (SLIDE_NEW, SLIDE_QUEUED, SLIDE_RUNNING, SLIDE_DONE, SLIDE_NO_TILES,
                                   SLIDE_OUT_OF_DOMAIN, SLIDE_FAILED)
#: The statuses a slide ends in (it is not run again unless forced).
FINAL_STATUSES: tuple[str, ...] = (SLIDE_DONE, SLIDE_NO_TILES, SLIDE_OUT_OF_DOMAIN, SLIDE_FAILED)


def failure_status(exc: ChaoyangError) -> str:
    """The status of a slide the model did not run on, by the error that stopped it."""
    if isinstance(exc, OutOfDomainError):
        return SLIDE_OUT_OF_DOMAIN
    if isinstance(exc, NoTilesError):
        return SLIDE_NO_TILES
    return SLIDE_FAILED


@dataclass(frozen=True)
class SlideReport:
    """How one slide of a cohort ended (plain values: it crosses threads and Ray's object store).

    Attributes:
        path: The slide file.
        status: One of :data:`FINAL_STATUSES`.
        error: Why it has no numbers (empty when done). Out-of-domain reports hold the findings.
        summary: :meth:`AnalysisResult.summary` when done.
        domain: :meth:`DomainCheck.to_dict` when the check ran.
        seconds: Wall time spent on it (0 for a result read from the cache).
        from_cache: Its result was stored already; nothing was classified.
        cache_key: The results-cache key of its result ("" when it has none).
        attempts: How many workers it took (over Ray a dead worker's slide is tried again).
        worker: Where it ran, in words ("this computer", "worker 2 on node 10.0.0.3").
    """

    path: str
    status: str
    error: str = ""
    summary: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    seconds: float = 0.0
    from_cache: bool = False
    cache_key: str = ""
    attempts: int = 1
    worker: str = ""

    def __post_init__(self) -> None:
        if self.status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES} (got {self.status!r}).")

    def composition(self) -> dict[str, float]:
        """Percent of the analysed area per class name (empty without numbers)."""
        return {c["name"]: float(c["percent"]) for c in (self.summary or {}).get("classes", [])}


# ----- inputs and output folders --------------------------------------------------------------------------------
def find_slides(inputs: Sequence[str | Path], out_root: Path | None = None) -> tuple[list[Path], list[tuple[str, str]]]:
    """Slides and images named directly or found in folders (recursively), and inputs that are not.

    Files inside ``out_root`` are never inputs: a results folder inside the slide folder would
    otherwise have its own heatmaps analysed as slides on the next run. One DICOM series is one
    slide, so a folder's ``.dcm`` files count once.
    """
    from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES
    from chaoyang_desktop.core.slide.reader import SLIDE_SUFFIXES

    suffixes = set(SLIDE_SUFFIXES) | set(IMAGE_SUFFIXES)
    outputs = out_root.resolve() if out_root is not None else None
    found: list[Path] = []
    problems: list[tuple[str, str]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            hits = []
            dicom_dirs: set[Path] = set()
            for q in sorted(p.rglob("*"), key=lambda q: str(q).lower()):
                if not q.is_file() or q.name.startswith(".") or q.suffix.lower() not in suffixes:
                    continue
                if outputs is not None and q.resolve().is_relative_to(outputs):
                    continue
                if q.suffix.lower() == ".dcm":
                    if q.parent in dicom_dirs:
                        continue
                    dicom_dirs.add(q.parent)
                hits.append(q)
            if not hits:
                problems.append((str(p), "no slides or images found in this folder"))
            found.extend(hits)
        else:
            problems.append((str(p), "no such file or folder"))
    return found, problems


def output_names(slides: Sequence[Path]) -> list[str]:
    """``<stem>`` per slide; stems shared by several slides get their folder name appended."""
    stems = [s.stem for s in slides]
    counts = {st: stems.count(st) for st in stems}
    names = [st if counts[st] == 1 else f"{st}_{s.parent.name}" for st, s in zip(stems, slides)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def is_finished(folder: Path) -> bool:
    """Whether ``folder`` holds a complete analysis (``summary.json`` says so, ``tiles.csv`` is there)."""
    try:
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(doc.get("analysis", {}).get("complete")) and (folder / "tiles.csv").is_file()


# ----- pace -----------------------------------------------------------------------------------------------------
@dataclass
class CohortClock:
    """Slides per hour and the time left, from the slides finished so far.

    Only slides the model ran on count towards the rate (a result read from the cache takes no
    time and would make the estimate far too hopeful). Running slides count by the share of their
    tiles done, so one slow slide moves the estimate as it goes. Paused time is not counted.
    ``now`` is the clock (seconds); tests pass their own.
    """

    now: Callable[[], float] = time.monotonic
    _started: float | None = None
    _paused_at: float | None = None
    _paused_s: float = 0.0
    _finished: int = 0
    _running: dict[object, float] = field(default_factory=dict)

    def start(self) -> None:
        if self._started is None:
            self._started = self.now()
        self.resume()

    def pause(self) -> None:
        if self._started is not None and self._paused_at is None:
            self._paused_at = self.now()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_s += self.now() - self._paused_at
            self._paused_at = None

    def elapsed_s(self) -> float:
        """Seconds of work so far (paused time left out)."""
        if self._started is None:
            return 0.0
        end = self._paused_at if self._paused_at is not None else self.now()
        return max(0.0, end - self._started - self._paused_s)

    def running(self, slide: object, fraction: float) -> None:
        """``slide`` has ``fraction`` (0..1) of its tiles done."""
        self._running[slide] = min(1.0, max(0.0, fraction))

    def finished(self, slide: object, analysed: bool) -> None:
        """``slide`` ended; ``analysed`` when the model ran on it (not a cache hit, not refused)."""
        self._running.pop(slide, None)
        if analysed:
            self._finished += 1

    def work_done(self) -> float:
        """Slides' worth of model work so far (finished ones plus the running ones' shares)."""
        return self._finished + sum(self._running.values())

    def slides_per_hour(self) -> float | None:
        """None until a slide's worth of work is done (any earlier figure would be noise)."""
        elapsed = self.elapsed_s()
        done = self.work_done()
        if done < 1.0 or elapsed <= 0:
            return None
        return done / elapsed * 3600.0

    def eta_s(self, slides_left: int) -> float | None:
        """Seconds until ``slides_left`` more slides (the running ones included) are done."""
        rate = self.slides_per_hour()
        if rate is None:
            return None
        remaining = max(0.0, slides_left - sum(self._running.values()))
        return remaining / rate * 3600.0


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``: as long as a progress line needs."""
    s = int(round(seconds))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m} min" if m else f"{h} h"


def pace_line(done: int, total: int, clock: CohortClock) -> str:
    """``4 of 12 slides · 30 slides/h · about 16 min left``, for a progress line or a status bar."""
    parts = [f"{done} of {total} slide{'s' if total != 1 else ''}"]
    rate = clock.slides_per_hour()
    if rate is not None:
        parts.append(f"{rate:,.0f} slides/h" if rate >= 10 else f"{rate:.1f} slides/h")
        eta = clock.eta_s(total - done)
        if eta is not None and done < total:
            parts.append(f"about {format_duration(eta)} left")
    return " \u00b7 ".join(parts)
