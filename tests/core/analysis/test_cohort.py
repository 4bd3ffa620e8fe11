"""The cohort's pieces without Ray or Qt: pace and time left, slide reports, finding slides, the cache's complete keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoyang_desktop.core.analysis.cache import ResultCache
from chaoyang_desktop.core.analysis.cohort import (
    SLIDE_DONE,
    SLIDE_FAILED,
    SLIDE_NO_TILES,
    SLIDE_OUT_OF_DOMAIN,
    CohortClock,
    SlideReport,
    find_slides,
    format_duration,
    output_names,
    pace_line,
)
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
from chaoyang_desktop.core.analysis.run import analyze_cohort_slide
from chaoyang_desktop.core.model.inference import Classifier
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_rate_counts_analysed_slides_and_running_shares_not_cache_hits_or_pauses() -> None:
    now = FakeClock()
    clock = CohortClock(now=now)
    assert clock.slides_per_hour() is None and clock.eta_s(10) is None
    clock.start()
    now.t += 60
    clock.finished("cached", analysed=False)  # instant: it must not make the estimate hopeful
    clock.running("a", 0.5)
    assert clock.slides_per_hour() is None  # half a slide's work: too early for a figure
    now.t += 60
    clock.finished("a", analysed=True)
    clock.running("b", 0.5)
    # 1.5 slides of work in 120 s: 45 slides per hour; 4 left of which half a slide is under way.
    assert clock.slides_per_hour() == pytest.approx(45.0)
    assert clock.eta_s(4) == pytest.approx(3.5 / 45.0 * 3600.0)
    clock.pause()
    now.t += 3600  # an hour paused changes nothing
    assert clock.slides_per_hour() == pytest.approx(45.0)
    clock.resume()
    assert clock.elapsed_s() == pytest.approx(120.0)
    now.t += 120
    clock.finished("b", analysed=True)
    assert clock.slides_per_hour() == pytest.approx(2 / 240 * 3600)


def test_pace_line_and_durations() -> None:
    now = FakeClock()
    clock = CohortClock(now=now)
    assert pace_line(0, 1, clock) == "0 of 1 slide"
    clock.start()
    now.t += 600
    for k in range(2):
        clock.finished(k, analysed=True)
    assert pace_line(2, 12, clock) == "2 of 12 slides \u00b7 12 slides/h \u00b7 about 50 min left"
    assert pace_line(12, 12, clock) == "12 of 12 slides \u00b7 12 slides/h"
    assert [format_duration(s) for s in (4, 89, 90, 3599, 3600, 3 * 3600 + 20 * 60)] == \
        ["4 s", "89 s", "2 min", "60 min", "1 h", "3 h 20 min"]


def test_a_report_has_a_final_status_and_its_composition() -> None:
    with pytest.raises(ValueError):
        SlideReport("a.svs", "running")
    summary = {"classes": [{"name": "Normal", "percent": 75.0}, {"name": "Adenoma", "percent": 25.0}]}
    assert SlideReport("a.svs", SLIDE_DONE, summary=summary).composition() == {"Normal": 75.0, "Adenoma": 25.0}
    assert SlideReport("b.svs", SLIDE_FAILED, "unreadable").composition() == {}


def test_slides_are_found_in_folders_outside_the_output_and_named_uniquely(tmp_path: Path) -> None:
    for rel in ("a/x.svs", "b/x.svs", "b/y.tiff", "b/.hidden.svs", "notes.txt", "out/z.svs", "dicom/1.dcm",
                "dicom/2.dcm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found, problems = find_slides([tmp_path, tmp_path / "missing"], out_root=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/x.svs", "b/x.svs", "b/y.tiff", "dicom/1.dcm"]
    assert problems == [(str(tmp_path / "missing"), "no such file or folder")]
    assert output_names(found) == ["x_a", "x_b", "y", "1"]


def test_errors_become_reports_and_the_cache_lists_complete_results(tmp_path: Path) -> None:
    model, _ = write_checkpoint(tmp_path / "model", TINY_CONFIG, seed=6)
    clf = Classifier.load(str(model))
    good = write_pyramid_tiff(tmp_path / "good.tiff", tissue_image(768, 1024, [(32, 32, 900, 700)]), mpp=0.5)
    blank = write_pyramid_tiff(tmp_path / "blank.tiff", tissue_image(768, 768), mpp=0.5)
    # Four times coarser than the model's pixel size: the domain check refuses it.
    coarse = write_pyramid_tiff(tmp_path / "coarse.tiff", tissue_image(1536, 2048, [(0, 0, 2048, 1536)], seed=3),
                                mpp=2.0, levels=1)
    broken = tmp_path / "broken.svs"
    broken.write_text("no slide")
    cache = ResultCache(tmp_path / "cache")
    settings = AnalysisSettings()
    report, outcome = analyze_cohort_slide(good, clf, settings, cache=cache)
    assert report.status == SLIDE_DONE and outcome is not None and not report.from_cache and report.seconds > 0
    assert report.summary == outcome.result.summary() and cache.complete_keys() == {report.cache_key}
    again, _ = analyze_cohort_slide(good, clf, settings, cache=cache)
    assert again.from_cache and again.seconds == 0.0 and again.summary == report.summary
    assert analyze_cohort_slide(blank, clf, settings)[0].status == SLIDE_NO_TILES
    refused, none = analyze_cohort_slide(coarse, clf, settings)
    assert refused.status == SLIDE_OUT_OF_DOMAIN and none is None and refused.domain is not None and refused.error
    failed, _ = analyze_cohort_slide(broken, clf, settings)
    assert failed.status == SLIDE_FAILED and "broken.svs" in failed.error
    (cache.entry("partial")).mkdir()
    (cache.entry("partial") / "summary.json").write_text('{"analysis": {"tiles": {"pending": 3, "failed": 0}}}')
    (cache.entry("junk")).mkdir()
    (cache.entry("junk") / "summary.json").write_text("{not json")
    assert cache.complete_keys() == {report.cache_key}
