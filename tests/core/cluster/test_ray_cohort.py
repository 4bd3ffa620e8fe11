"""A cohort on a local Ray cluster (2 CPUs): the same results as in-process, dead workers replaced, the cache used."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.analysis.cache import ResultCache
from chaoyang_desktop.core.analysis.cohort import SLIDE_DONE, SLIDE_FAILED, SLIDE_NO_TILES
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings
from chaoyang_desktop.core.analysis.run import analyze_slide
from chaoyang_desktop.core.cluster.events import (
    ClusterReady,
    ClusterSettings,
    CohortSlide,
    SlideDone,
    SlideStarted,
    WorkerLost,
)
from chaoyang_desktop.core.model.engine_settings import EngineSettings
from chaoyang_desktop.core.model.inference import Classifier
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff

ENGINE = EngineSettings(device="cpu", threads=1)
SETTINGS = AnalysisSettings(workers=2)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=6)
    return folder


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small tissue slides, one blank slide (no tissue) and one file that is no slide."""
    root = tmp_path_factory.mktemp("cohort")
    paths = []
    for i in range(3):
        rgb = tissue_image(1024, 1536, [(64, 64, 1300, 900)], seed=i)
        paths.append(write_pyramid_tiff(root / f"slide{i}.tiff", rgb, mpp=0.5))
    paths.append(write_pyramid_tiff(root / "blank.tiff", tissue_image(768, 768), mpp=0.5))
    (root / "broken.svs").write_text("not a slide")
    paths.append(root / "broken.svs")
    return paths


def _run(paths: list[Path], model_dir: Path, **kwargs: object) -> tuple[list[object], dict[int, SlideDone]]:
    from chaoyang_desktop.core.cluster.ray_cohort import run_cohort_on_ray

    events: list[object] = []
    on_event = kwargs.pop("on_event", None)

    def record(event: object) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)  # type: ignore[operator]

    cluster = kwargs.pop("cluster", ClusterSettings(workers=2))
    run_cohort_on_ray([CohortSlide(i, str(p)) for i, p in enumerate(paths)], str(model_dir), ENGINE, SETTINGS,
                      cluster, on_event=record, **kwargs)  # type: ignore[arg-type]
    done = {e.index: e for e in events if isinstance(e, SlideDone)}
    return events, done


def test_results_equal_an_in_process_run_and_every_slide_ends(local_ray: object, model_dir: Path,
                                                                 cohort: list[Path]) -> None:
    events, done = _run(cohort, model_dir)
    assert isinstance(events[0], ClusterReady) and events[0].workers == 2
    assert sorted(done) == list(range(len(cohort)))  # one SlideDone per slide
    assert sum(isinstance(e, SlideDone) for e in events) == len(cohort)
    assert done[3].report.status == SLIDE_NO_TILES and done[3].result is None
    assert done[4].report.status == SLIDE_FAILED and "broken.svs" in done[4].report.error
    clf = Classifier.load(str(model_dir), ENGINE)
    for i in range(3):
        report = done[i].report
        assert report.status == SLIDE_DONE and report.attempts == 1 and report.worker.startswith("worker ")
        local = analyze_slide(cohort[i], clf, SETTINGS).result
        remote = done[i].result
        np.testing.assert_array_equal(remote.t_col, local.t_col)
        np.testing.assert_array_equal(remote.t_row, local.t_row)
        assert remote.grid == local.grid
        np.testing.assert_array_equal(remote.status, local.status)
        np.testing.assert_allclose(remote.probs, local.probs, atol=1e-6, rtol=0)
        assert remote.provenance.slide_path == str(cohort[i])
        assert report.summary == local.summary()
        assert done[i].thumbnail is not None and done[i].thumbnail.ndim == 3


def test_a_killed_worker_has_its_slide_retried_on_a_fresh_one(local_ray: object, model_dir: Path,
                                                              cohort: list[Path]) -> None:
    killed: list[int] = []

    def kill_first_worker(event: object) -> None:
        # The real thing: the worker process of slide 0 dies (as on out of memory), not a Python error.
        if isinstance(event, SlideStarted) and event.index == 0 and not killed:
            killed.append(event.pid)
            os.kill(event.pid, signal.SIGKILL)

    events, done = _run(cohort[:3], model_dir, on_event=kill_first_worker)
    assert killed and killed[0] > 0
    lost = [e for e in events if isinstance(e, WorkerLost)]
    assert [e.index for e in lost] == [0] and f"pid {killed[0]}" in lost[0].message
    starts = [e for e in events if isinstance(e, SlideStarted) and e.index == 0]
    assert [e.attempt for e in starts] == [1, 2] and starts[1].pid != killed[0]
    assert done[0].report.status == SLIDE_DONE and done[0].report.attempts == 2
    assert all(done[i].report.status == SLIDE_DONE for i in range(3))
    clf = Classifier.load(str(model_dir), ENGINE)
    np.testing.assert_allclose(done[0].result.probs, analyze_slide(cohort[0], clf, SETTINGS).result.probs, atol=1e-6)


def test_a_slide_whose_worker_dies_every_time_is_listed_and_the_others_finish(local_ray: object, model_dir: Path,
                                                                             cohort: list[Path]) -> None:
    def kill_slide_1(event: object) -> None:
        if isinstance(event, SlideStarted) and event.index == 1:
            os.kill(event.pid, signal.SIGKILL)

    events, done = _run(cohort[:3], model_dir, on_event=kill_slide_1,
                        cluster=ClusterSettings(workers=2, max_attempts=2))
    assert done[1].report.status == SLIDE_FAILED and done[1].report.attempts == 2
    assert "died on each of 2 tries" in done[1].report.error
    assert sum(isinstance(e, WorkerLost) for e in events) == 2
    assert done[0].report.status == SLIDE_DONE and done[2].report.status == SLIDE_DONE


def test_results_stream_into_the_cache_and_a_second_run_classifies_nothing(local_ray: object, model_dir: Path,
                                                                          cohort: list[Path], tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    _, first = _run(cohort[:2], model_dir, cache=cache)
    keys = {first[i].report.cache_key for i in range(2)}
    assert keys == cache.complete_keys()
    assert all(cache.load(k) is not None for k in keys)
    _, second = _run(cohort[:2], model_dir, cache=cache)
    for i in range(2):
        assert second[i].report.from_cache and second[i].report.status == SLIDE_DONE
        np.testing.assert_array_equal(second[i].result.probs, first[i].result.probs)
        assert second[i].report.summary == first[i].report.summary
        assert second[i].result.provenance.slide_path == str(cohort[i])  # the cache holds no names
    _, forced = _run(cohort[:1], model_dir, cache=cache, fresh=True)
    assert not forced[0].report.from_cache


def test_cancel_stops_the_run_without_ending_the_slides(local_ray: object, model_dir: Path,
                                                        cohort: list[Path]) -> None:
    cancel = threading.Event()

    def stop_at_first_start(event: object) -> None:
        if isinstance(event, SlideStarted):
            cancel.set()

    events, done = _run(cohort[:3], model_dir, on_event=stop_at_first_start, cancel=cancel,
                        cluster=ClusterSettings(workers=1))
    assert len(done) < 3


def test_a_model_with_other_weights_on_a_worker_is_refused(local_ray: object, model_dir: Path, cohort: list[Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.cluster import ray_cohort
    from chaoyang_desktop.core.errors import ChaoyangError
    from chaoyang_desktop.core.model import model_source

    real = model_source.load_profile

    def other_weights(location: object) -> object:  # the driver sees a different checkpoint
        import dataclasses

        return dataclasses.replace(real(location), weights_sha256="0" * 64)

    monkeypatch.setattr(model_source, "load_profile", other_weights)
    with pytest.raises(ChaoyangError, match="other weights than the driver"):
        _run(cohort[:1], model_dir)
    assert ray_cohort.ray.is_initialized()  # the session's cluster is left as it was


def test_workers_report_tile_progress_while_a_slide_runs(local_ray: object, model_dir: Path, tmp_path: Path) -> None:
    from chaoyang_desktop.core.cluster.events import SlideProgress
    from chaoyang_desktop.core.cluster.ray_cohort import run_cohort_on_ray

    big = write_pyramid_tiff(tmp_path / "big.tiff", tissue_image(3072, 4096, [(0, 0, 4096, 3072)], seed=5), mpp=0.5)
    events: list[object] = []
    # Batches of 1 tile: the slide takes a few seconds, long enough for the posts to come through.
    run_cohort_on_ray([CohortSlide(0, str(big))], str(model_dir), EngineSettings(device="cpu", batch_size=1),
                      SETTINGS, ClusterSettings(workers=1), on_event=events.append)
    done = [e for e in events if isinstance(e, SlideDone)]
    progress = [e for e in events if isinstance(e, SlideProgress)]
    total = done[0].report.summary["tiles_total"]
    assert progress and all(p.index == 0 and p.total == total and 0 <= p.done <= total for p in progress)
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert events.index(progress[-1]) < events.index(done[0])  # never after the slide ended


def test_workers_per_gpu_take_their_share_of_cpus_and_cpu_clusters_split_by_cpus(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.cluster import ray_cohort

    resources = {"CPU": 32.0, "GPU": 2.0, "node:10.0.0.1": 1.0, "node:10.0.0.2": 1.0, "node:__internal_head__": 1.0}
    monkeypatch.setattr(ray_cohort.ray, "cluster_resources", lambda: resources)
    n, options, words = ray_cohort._worker_options(ClusterSettings(address="head:6379"), EngineSettings())  # noqa: SLF001
    assert (n, options) == (2, {"num_gpus": 1, "num_cpus": 16}) and words == "2 workers, 1 GPU and 16 CPUs each, on 2 nodes"
    n, options, _ = ray_cohort._worker_options(ClusterSettings(address="head:6379", cpus_per_worker=4),  # noqa: SLF001
                                               EngineSettings(device="cpu"))
    assert (n, options) == (8, {"num_gpus": 0, "num_cpus": 4})
    n, _, words = ray_cohort._worker_options(ClusterSettings(address="head:6379", workers=50),  # noqa: SLF001
                                             EngineSettings(device="cpu"))
    assert n == 32 and "(50 asked for; the cluster has room for 32)" in words
