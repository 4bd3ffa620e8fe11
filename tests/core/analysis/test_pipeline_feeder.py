"""The pipeline's reader side: bounded read-ahead, parallel reads of one batch, failures, cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.model.inference import Classifier, EngineSettings, PendingPrediction
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings, BatchUpdate, TileScheduler, plan_analysis, run_analysis
from chaoyang_desktop.core.slide.reader import open_slide
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=7)
    return Classifier.load(str(folder), EngineSettings(device="cpu", batch_size=2))


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2048 x 2048 at 0.5 um/px: a 4 x 4 grid of 512 px tiles, all tissue.
    rgb = tissue_image(2048, 2048, [(0, 0, 2048, 2048)], seed=2)
    return write_pyramid_tiff(tmp_path_factory.mktemp("s") / "full.tiff", rgb, mpp=0.5, levels=2)


@pytest.mark.parametrize("prefetch", [1, 2])
def test_read_ahead_is_bounded_so_priorities_apply_soon(classifier: Classifier, slide_path: Path,
                                                        prefetch: int) -> None:
    with open_slide(slide_path) as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0))
        result = plan.empty_result()
        sched = TileScheduler(range(result.n_tiles))
        handed_out: list[int] = []
        order: list[int] = []

        def on_batch(update: BatchUpdate) -> None:
            if not handed_out:
                handed_out.append(result.n_tiles - len(sched))
                sched.prioritise([15, 14])  # the "tiles in view" arrive after the first batch
            order.extend(update.indices.tolist())

        run_analysis(slide, classifier, result, workers=4, scheduler=sched, on_batch=on_batch, prefetch=prefetch)
    assert result.complete and result.n_done == 16
    batch = classifier.batch_size
    # The batch just classified, plus at most `prefetch` batches read ahead and one more being filled.
    assert handed_out[0] <= batch * (prefetch + 2)
    # Unless they were already taken, the prioritised tiles come within the read-ahead.
    first_new = order.index(15)
    assert first_new <= batch * (prefetch + 2)


def test_all_readers_fill_one_batch(classifier: Classifier, slide_path: Path) -> None:
    seen_threads: set[str] = set()
    with open_slide(slide_path) as slide:
        original = slide.read_region

        def spy(*args: object, **kwargs: object) -> np.ndarray:
            seen_threads.add(threading.current_thread().name)
            return original(*args, **kwargs)  # type: ignore[arg-type]

        slide.read_region = spy  # type: ignore[method-assign]
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0))
        result = plan.empty_result()
        big = Classifier(classifier.model, classifier.profile, classifier.device, classifier.precision, batch_size=16)
        run_analysis(slide, big, result, workers=3)
    assert result.n_done == 16
    # One batch of 16 tiles, read by more than one thread.
    assert len(seen_threads) >= 2


def test_probabilities_do_not_depend_on_readers_or_read_ahead(classifier: Classifier, slide_path: Path) -> None:
    runs = []
    for workers, prefetch in ((1, 1), (4, 3)):
        with open_slide(slide_path) as slide:
            plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0))
            result = plan.empty_result()
            run_analysis(slide, classifier, result, workers=workers, prefetch=prefetch)
        runs.append(result.probs)
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)


def test_cancel_stops_the_readers(classifier: Classifier, slide_path: Path) -> None:
    cancel = threading.Event()
    before = threading.active_count()
    with open_slide(slide_path) as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0))
        result = plan.empty_result()
        run_analysis(slide, classifier, result, workers=4, cancel=cancel, on_batch=lambda u: cancel.set())
    assert 0 < result.n_done < 16
    assert threading.active_count() == before


def test_reader_bug_reaches_the_caller(classifier: Classifier, slide_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.analysis import pipeline

    def broken(self: object, batch: object, j: int) -> None:
        raise RuntimeError("reader bug")

    monkeypatch.setattr(pipeline._TileFeeder, "_read_into", broken)
    with open_slide(slide_path) as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0))
        with pytest.raises(RuntimeError, match="reader bug"):
            run_analysis(slide, classifier, plan.empty_result(), workers=2)


def test_cpu_predictions_are_ready_at_once(classifier: Classifier) -> None:
    import torch

    pending = classifier.submit(torch.zeros((3, 512, 512, 3), dtype=torch.uint8))
    assert isinstance(pending, PendingPrediction) and pending.ready
    assert pending.result().shape == (3, classifier.profile.num_classes)
