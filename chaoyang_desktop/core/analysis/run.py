"""One call that analyses a slide file: open, plan, reuse the cache, run, checkpoint.

Both front ends call :func:`analyze_slide`: the CLI for each slide of a batch, the GUI on its
worker thread. The partial result is saved to the cache every few seconds and when the run ends
for any reason, so a cancelled or crashed analysis resumes where it stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from chaoyang_desktop.core.analysis.cache import ResultCache, cache_key, name_for_this_run
from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE, SlideReport, failure_status
from chaoyang_desktop.core.errors import ChaoyangError, NoTilesError, OutOfDomainError
from chaoyang_desktop.core.model.inference import Classifier
from chaoyang_desktop.core.analysis.pipeline import AnalysisPlan, AnalysisSettings, BatchUpdate, TileScheduler, plan_analysis, run_analysis
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.core.slide.reader import Slide, open_slide


def engine_facts(classifier: Classifier) -> dict[str, Any]:
    """What the classifier does to probabilities, as :func:`plan_analysis` records it."""
    return {"tta": classifier.tta, "temperature": classifier.temperature,
            "calibration": classifier.calibration.path if classifier.calibration is not None else None}


@dataclass(frozen=True)
class AnalysisOutcome:
    result: AnalysisResult
    plan: AnalysisPlan
    cache_key: str
    from_cache: bool
    cancelled: bool


def analyze_open_slide(
    slide: Slide,
    classifier: Classifier,
    settings: AnalysisSettings,
    *,
    cache: ResultCache | None = None,
    cancel: threading.Event | None = None,
    on_plan: Callable[[AnalysisPlan, AnalysisResult], None] | None = None,
    on_batch: Callable[[BatchUpdate], None] | None = None,
    scheduler_ready: Callable[[TileScheduler], None] | None = None,
    checkpoint_every_s: float = 15.0,
    fresh: bool = False,
) -> AnalysisOutcome:
    """Analyse an already open slide; see :func:`analyze_slide`."""
    cancel = cancel or threading.Event()
    plan = plan_analysis(slide, classifier.profile, settings, **engine_facts(classifier))
    if plan.n_tiles == 0:
        raise NoTilesError(plan.empty_reason)
    if not plan.domain.passed and not settings.allow_out_of_domain:
        raise OutOfDomainError(plan.domain.reason, plan.domain)
    key = cache_key(plan.provenance)
    cached = cache.load(key) if cache is not None and not fresh else None
    if cached is not None and (cached.n_tiles != plan.n_tiles):
        cached = None  # same key, other tiles: a bug or a foreign entry; start afresh
    if cached is not None:
        name_for_this_run(cached, plan.provenance)
    result = cached if cached is not None else plan.empty_result()
    if on_plan is not None:
        on_plan(plan, result)
    if cached is not None and cached.complete and cached.n_failed == 0:
        return AnalysisOutcome(result, plan, key, from_cache=True, cancelled=False)

    last_save = time.monotonic()

    def batch_done(update: BatchUpdate) -> None:
        nonlocal last_save
        if on_batch is not None:
            on_batch(update)
        if cache is not None and time.monotonic() - last_save > checkpoint_every_s:
            cache.save(key, result)
            last_save = time.monotonic()

    scheduler = TileScheduler(result.to_classify())
    if scheduler_ready is not None:
        scheduler_ready(scheduler)
    try:
        run_analysis(slide, classifier, result, workers=settings.workers, cancel=cancel, on_batch=batch_done,
                     scheduler=scheduler)
    finally:
        if cache is not None:
            cache.save(key, result)
    return AnalysisOutcome(result, plan, key, from_cache=False,
                           cancelled=cancel.is_set() and not result.complete)


def analyze_slide(
    path: str | Path,
    classifier: Classifier,
    settings: AnalysisSettings,
    *,
    mpp: float | None = None,
    cache: ResultCache | None = None,
    cancel: threading.Event | None = None,
    on_plan: Callable[[AnalysisPlan, AnalysisResult], None] | None = None,
    on_batch: Callable[[BatchUpdate], None] | None = None,
    fresh: bool = False,
) -> AnalysisOutcome:
    """Open ``path`` and analyse it with ``classifier``.

    Args:
        path: A whole-slide image or a plain image (then the model's nominal pixel size is
            assumed unless ``mpp`` is given, and the outputs say so).
        classifier: The loaded model.
        settings: Tile size, stride, tissue threshold, ROI, reader threads.
        mpp: Pixel size override in micrometres per pixel.
        cache: Where results are reused and checkpoints kept (None: no cache).
        cancel: Set to stop between batches; the partial result is returned and cached.
        on_plan: Called once the tiles are known (with the result, maybe from the cache).
        on_batch: Called after each classified batch.
        fresh: Ignore a cached result and classify every tile again.
    """
    with open_slide(path, mpp=mpp, assumed_mpp=classifier.profile.nominal_mpp) as slide:
        return analyze_open_slide(slide, classifier, settings, cache=cache, cancel=cancel, on_plan=on_plan,
                                  on_batch=on_batch, fresh=fresh)


def analyze_cohort_slide(
    path: str | Path,
    classifier: Classifier,
    settings: AnalysisSettings,
    *,
    mpp: float | None = None,
    cache: ResultCache | None = None,
    fresh: bool = False,
    worker: str = "this computer",
    cancel: threading.Event | None = None,
    on_plan: Callable[[AnalysisPlan, AnalysisResult], None] | None = None,
    on_batch: Callable[[BatchUpdate], None] | None = None,
) -> tuple[SlideReport, AnalysisOutcome | None]:
    """Analyse one slide of a cohort; its errors become the report's status and reason.

    Arguments are :func:`analyze_slide`'s; ``worker`` says where it ran, in words. Returns the
    report and, when the model ran (or the cache answered), the outcome with the result and its
    plan. A cancelled slide's outcome says so (its report is not final: check
    ``outcome.cancelled``). Errors that are bugs (not :class:`ChaoyangError`) propagate.
    """
    t0 = time.perf_counter()
    try:
        outcome = analyze_slide(path, classifier, settings, mpp=mpp, cache=cache, fresh=fresh, cancel=cancel,
                                on_plan=on_plan, on_batch=on_batch)
    except ChaoyangError as exc:
        check = getattr(exc, "check", None)
        return SlideReport(str(path), failure_status(exc), str(exc), domain=check.to_dict() if check is not None else None,
                           seconds=time.perf_counter() - t0, worker=worker), None
    result = outcome.result
    return SlideReport(str(path), SLIDE_DONE, summary=result.summary(), domain=result.provenance.domain_check,
                       seconds=0.0 if outcome.from_cache else time.perf_counter() - t0, from_cache=outcome.from_cache,
                       cache_key=outcome.cache_key, worker=worker), outcome
