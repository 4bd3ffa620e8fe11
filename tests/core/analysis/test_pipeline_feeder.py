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


class _SlowClassifier:
    """A classifier whose model takes ``per_tile_s`` per tile, as ViT-B does on a laptop CPU."""

    def __init__(self, real: Classifier, per_tile_s: float, batch_size: int) -> None:
        self.real, self.per_tile_s = real, per_tile_s
        self.profile, self.device, self.batch_size = real.profile, real.device, batch_size
        self.sizes: list[int] = []

    def submit(self, batch_uint8):  # type: ignore[no-untyped-def]
        import time

        self.sizes.append(int(batch_uint8.shape[0]))
        time.sleep(self.per_tile_s * int(batch_uint8.shape[0]))
        return self.real.submit(batch_uint8)


def test_on_the_cpu_a_batch_is_classified_in_slices_and_cancel_acts_within_one(classifier: Classifier,
                                                                              slide_path: Path) -> None:
    import time

    slow = _SlowClassifier(classifier, per_tile_s=0.25, batch_size=16)  # a whole batch: 4 s
    cancel = threading.Event()
    reports: list[float] = []
    cancelled_at: list[float] = []

    def on_batch(update: BatchUpdate) -> None:
        reports.append(time.perf_counter())
        if update.done >= 4 and not cancel.is_set():
            cancel.set()
            cancelled_at.append(time.perf_counter())

    with open_slide(slide_path) as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0, qc=False))
        result = plan.empty_result()
        run_analysis(slide, slow, result, workers=2, cancel=cancel, on_batch=on_batch,  # type: ignore[arg-type]
                     slice_s=0.5)
    returned = time.perf_counter()
    # Slices of about 0.5 s (2 tiles), not whole batches of 4 tiles (the first batch is a quarter
    # batch) or 16: the model was never asked for more than 3 tiles at once.
    assert max(slow.sizes) <= 3
    assert returned - cancelled_at[0] < 1.0
    assert 4 <= result.n_done < result.n_tiles and not result.complete
    # What was classified is kept; the rest is pending for a resumed run.
    assert int(np.count_nonzero(result.status == 0)) == result.n_tiles - result.n_done
