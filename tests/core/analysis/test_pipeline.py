"""The streamed whole-slide analysis on synthetic and real slides."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.analysis.run import analyze_open_slide, analyze_slide
from chaoyang_desktop.core.analysis.cache import ResultCache
from chaoyang_desktop.core.errors import ChaoyangError, MissingPixelSizeError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.analysis.pipeline import AnalysisSettings, BatchUpdate, TileScheduler, plan_analysis, run_analysis
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_FAILED
from chaoyang_desktop.core.slide.reader import open_slide
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff

# 2048 x 1536 at 0.5 um/px: 256 um tiles are 512 px, a 4 x 3 grid.
BLOCKS = [(0, 0, 1024, 512), (1536, 1024, 512, 512)]  # three grid tiles of tissue
TILE_AREA_MM2 = (512 * 0.5 / 1000) ** 2


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=7)
    return Classifier.load(str(folder), EngineSettings(device="cpu", batch_size=2))


@pytest.fixture(scope="module")
def blocks_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rgb = tissue_image(1536, 2048, BLOCKS, seed=1)
    return write_pyramid_tiff(tmp_path_factory.mktemp("s") / "blocks.tiff", rgb, mpp=0.5, levels=3)


def test_areas_match_known_tissue(classifier: Classifier, blocks_slide: Path) -> None:
    out = analyze_slide(blocks_slide, classifier, AnalysisSettings())
    result = out.result
    assert result.complete and result.n_done == 3 and result.n_failed == 0
    assert sorted(map(tuple, result.rects()[:, :2].tolist())) == [(0, 0), (512, 0), (1536, 1024)]
    summary = result.summary()
    assert summary["analysed_area_mm2"] == pytest.approx(3 * TILE_AREA_MM2)
    assert sum(c["area_mm2"] for c in summary["classes"]) == pytest.approx(3 * TILE_AREA_MM2)
    assert sum(c["tiles"] for c in summary["classes"]) == 3
    assert sum(c["percent"] for c in summary["classes"]) == pytest.approx(100.0)


def test_threshold_zero_keeps_every_tile(classifier: Classifier, blocks_slide: Path) -> None:
    result = analyze_slide(blocks_slide, classifier, AnalysisSettings(tissue_threshold=0, qc=False)).result
    assert result.n_done == 12
    assert result.summary()["analysed_area_mm2"] == pytest.approx(2048 * 1536 * 0.25 / 1e6)


def test_roi_restricts_tiles(classifier: Classifier, blocks_slide: Path) -> None:
    roi = Roi.from_polygon_points([(1400, 900), (2048, 900), (2048, 1536), (1400, 1536)])
    result = analyze_slide(blocks_slide, classifier, AnalysisSettings(roi=roi)).result
    assert result.rects()[:, :2].tolist() == [[1536, 1024]]


def test_overlap_is_averaged_into_cells(classifier: Classifier, blocks_slide: Path) -> None:
    result = analyze_slide(blocks_slide, classifier, AnalysisSettings(stride_um=128, tissue_threshold=0, qc=False)).result
    assert result.grid.k == 2
    hm, count = result.heatmap()
    # Cell (1, 1) is covered by the tiles whose origins are cells (0..1, 0..1).
    covering = [i for i in range(result.n_tiles) if result.t_col[i] in (0, 1) and result.t_row[i] in (0, 1)]
    assert count[1, 1] == 4
    np.testing.assert_allclose(hm[1, 1], result.probs[covering].mean(axis=0), rtol=1e-5)
    # Areas count each cell once, whatever the overlap.
    assert result.summary()["analysed_area_mm2"] == pytest.approx(2048 * 1536 * 0.25 / 1e6)


def test_corrupt_tile_is_recorded_and_skipped(classifier: Classifier, tmp_path: Path) -> None:
    rgb = tissue_image(1536, 2048, [(0, 0, 2048, 1536)], seed=2)
    path = write_pyramid_tiff(tmp_path / "corrupt.tiff", rgb, mpp=0.5, levels=2, corrupt_tile=9)  # TIFF tile (1, 1)
    # The overview shows the damaged tile as glass, so keep every tile to make the model read it.
    result = analyze_slide(path, classifier, AnalysisSettings(tissue_threshold=0)).result
    assert result.n_failed == 1 and result.n_done == 11 and result.complete
    failed = int(np.flatnonzero(result.status == TILE_FAILED)[0])
    assert result.rects()[failed, :2].tolist() == [0, 0]  # TIFF tile (256, 256) lies in our tile (0, 0)
    assert "x=0 y=0" in result.errors[failed]
    assert result.summary()["tiles_failed"] == 1


def test_missing_pixel_size_is_refused(classifier: Classifier, tmp_path: Path) -> None:
    path = write_pyramid_tiff(tmp_path / "nompp.tiff", tissue_image(600, 600, [(0, 0, 600, 600)]), mpp=None, levels=1)
    with pytest.raises(MissingPixelSizeError, match="--mpp"):
        analyze_slide(path, classifier, AnalysisSettings())
    result = analyze_slide(path, classifier, AnalysisSettings(), mpp=0.5).result
    assert result.provenance.mpp == 0.5 and not result.provenance.mpp_assumed


def test_plain_image_pixel_size_is_assumed(classifier: Classifier, test_data: Path) -> None:
    result = analyze_slide(test_data / "images" / "CMU-1-Small-Region_full.jpg", classifier, AnalysisSettings()).result
    assert result.provenance.mpp_assumed and result.provenance.mpp == pytest.approx(0.5)


def test_real_pyramid_reads_from_the_right_level(classifier: Classifier, test_data: Path) -> None:
    with open_slide(test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi") as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0, qc=False))
    # 0.228 um/px: 256 um is 1122 px at level 0; level 1 (0.456 um/px) is the nearest not coarser than 0.5.
    assert plan.grid.level == 1 and plan.grid.l0_tile == 1122 and plan.grid.lv_tile == 561


def test_cache_makes_the_second_run_instant(classifier: Classifier, blocks_slide: Path, tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    first = analyze_slide(blocks_slide, classifier, AnalysisSettings(), cache=cache)
    batches: list[BatchUpdate] = []
    second = analyze_slide(blocks_slide, classifier, AnalysisSettings(), cache=cache, on_batch=batches.append)
    assert second.from_cache and not batches
    np.testing.assert_array_equal(first.result.probs, second.result.probs)
    other = analyze_slide(blocks_slide, classifier, AnalysisSettings(tissue_threshold=0.5), cache=cache)
    assert not other.from_cache


def test_cancelled_run_resumes_where_it_stopped(classifier: Classifier, blocks_slide: Path, tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    settings = AnalysisSettings(tissue_threshold=0, workers=1, qc=False)
    cancel = threading.Event()

    def stop_after_first(update: BatchUpdate) -> None:
        cancel.set()

    first = analyze_slide(blocks_slide, classifier, settings, cache=cache, cancel=cancel, on_batch=stop_after_first)
    assert first.cancelled and 0 < first.result.n_done < 12
    done_before = set(np.flatnonzero(first.result.status == TILE_DONE).tolist())
    seen: list[int] = []
    second = analyze_slide(blocks_slide, classifier, settings, cache=cache, on_batch=lambda u: seen.extend(u.indices.tolist()))
    assert second.result.complete and second.result.n_done == 12
    assert done_before.isdisjoint(seen) and len(seen) == 12 - len(done_before)
    full = analyze_slide(blocks_slide, classifier, settings, fresh=True)
    np.testing.assert_allclose(second.result.probs, full.result.probs, atol=1e-6)


def test_scheduler_prioritises_tiles_in_view() -> None:
    s = TileScheduler(range(10))
    assert s.take(2) == [0, 1]
    s.prioritise([7, 1, 8])
    assert s.take(3) == [7, 8, 2]
    assert len(s) == 5


def test_priority_order_reaches_the_model(classifier: Classifier, blocks_slide: Path) -> None:
    with open_slide(blocks_slide) as slide:
        plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=0, qc=False))
        result = plan.empty_result()
        sched = TileScheduler(range(result.n_tiles))
        sched.prioritise([11, 10])
        order: list[int] = []
        run_analysis(slide, classifier, result, workers=1, scheduler=sched, on_batch=lambda u: order.extend(u.indices.tolist()))
    assert order[:2] == [11, 10]


def test_summary_json_numbers_are_the_results(classifier: Classifier, blocks_slide: Path, tmp_path: Path) -> None:
    from chaoyang_desktop.export.bundle import write_all

    out = analyze_slide(blocks_slide, classifier, AnalysisSettings())
    write_all(out.result, tmp_path / "o", out.plan.thumbnail)
    doc = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert doc["classes"] == out.result.summary()["classes"]
    assert doc["provenance"]["weights_sha256"] == classifier.profile.weights_sha256


def test_open_slide_variant_matches(classifier: Classifier, blocks_slide: Path) -> None:
    with open_slide(blocks_slide) as slide:
        a = analyze_open_slide(slide, classifier, AnalysisSettings())
    b = analyze_slide(blocks_slide, classifier, AnalysisSettings())
    np.testing.assert_allclose(a.result.probs, b.result.probs)


@pytest.mark.parametrize(
    ("name", "mpp", "level"),
    [
        ("CMU-1-Small-Region.svs", 0.499, 0),
        ("CMU-1-Small-Region_generic-pyramid.tiff", 0.499, 0),
        # Fluorescence: out of the model's domain, analysed here only because the test asks to.
        ("Hamamatsu-test3-DAPI-2-387.ndpi", 0.22818, 1),
    ],
)
def test_real_slides_analyse_end_to_end(classifier: Classifier, test_data: Path, name: str, mpp: float,
                                        level: int) -> None:
    fluorescence = "DAPI" in name
    # Quality control would leave every tile of the fluorescence slide out (test_tile_qc checks that).
    out = analyze_slide(test_data / "slides" / name, classifier,
                        AnalysisSettings(allow_out_of_domain=fluorescence, qc=not fluorescence))
    assert out.result.provenance.domain_check["status"] == ("analysed anyway" if fluorescence else "passed")
    result = out.result
    assert result.complete and result.n_failed == 0 and result.n_done > 0
    assert result.provenance.mpp == pytest.approx(mpp, rel=1e-3) and not result.provenance.mpp_assumed
    assert result.grid.level == level
    rects = result.rects()
    w, h = result.provenance.l0_width, result.provenance.l0_height
    assert (rects[:, 0] + rects[:, 2] <= w).all() and (rects[:, 1] + rects[:, 3] <= h).all()
    summary = result.summary()
    assert sum(c["tiles"] for c in summary["classes"]) == result.n_done
    tile_mm2 = (result.grid.l0_tile * mpp / 1000) ** 2
    assert 0 < summary["analysed_area_mm2"] <= result.n_done * tile_mm2 * 1.0001


def test_tissue_threshold_is_the_fraction_a_tile_must_cover(classifier: Classifier, tmp_path: Path) -> None:
    # Tiles of 512 px: tile (0, 0) all tissue, tile (1, 0) 40 % (a 205 px wide band), tile (2, 0) 15 %.
    rgb = tissue_image(512, 2048, [(0, 0, 512, 512), (512, 0, 205, 512), (1024, 0, 77, 512)], seed=4)
    path = write_pyramid_tiff(tmp_path / "partial.tiff", rgb, mpp=0.5, levels=2)
    kept = {}
    with open_slide(path) as slide:
        for threshold in (0.05, 0.25, 0.6):
            plan = plan_analysis(slide, classifier.profile, AnalysisSettings(tissue_threshold=threshold))
            kept[threshold] = sorted(plan.empty_result().rects()[:, 0].tolist())
    assert kept == {0.05: [0, 512, 1024], 0.25: [0, 512], 0.6: [0]}


def test_region_alone_or_channel_order_alone_is_another_cache_entry(classifier: Classifier, blocks_slide: Path,
                                                                    tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    # Two regions that each hold exactly one tissue tile, not the same one.
    left = Roi.from_polygon_points([(0, 0), (500, 0), (500, 500), (0, 500)])
    right = Roi.from_polygon_points([(1540, 1030), (2040, 1030), (2040, 1530), (1540, 1530)])
    first = analyze_slide(blocks_slide, classifier, AnalysisSettings(roi=left), cache=cache)
    second = analyze_slide(blocks_slide, classifier, AnalysisSettings(roi=right), cache=cache)
    assert first.result.n_tiles == second.result.n_tiles == 1
    assert not second.from_cache and first.cache_key != second.cache_key
    assert second.result.rects()[:, :2].tolist() == [[1536, 1024]]
    assert analyze_slide(blocks_slide, classifier, AnalysisSettings(roi=left), cache=cache).from_cache

    rgb = Classifier(classifier.model, classifier.profile.with_overrides(channel_order="rgb"), classifier.device,
                     classifier.precision, classifier.batch_size)
    again = analyze_slide(blocks_slide, rgb, AnalysisSettings(roi=left), cache=cache)
    assert not again.from_cache and again.cache_key != first.cache_key
    assert np.abs(again.result.probs - first.result.probs).max() > 1e-4


def test_failed_tiles_are_tried_again_on_the_next_run(classifier: Classifier, blocks_slide: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ResultCache(tmp_path / "cache")
    settings = AnalysisSettings(workers=1)
    with open_slide(blocks_slide) as slide:
        real_read = slide.read_region

        def flaky(l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray:
            if (l0_x, l0_y) == (512, 0):  # a network share that hiccups once
                raise ChaoyangError("tile at x=512 y=0 could not be read (simulated I/O error)")
            return real_read(l0_x, l0_y, level, lv_w, lv_h)

        monkeypatch.setattr(slide, "read_region", flaky)
        first = analyze_open_slide(slide, classifier, settings, cache=cache)
    assert first.result.complete and first.result.n_failed == 1 and first.result.n_done == 2
    seen: list[int] = []
    second = analyze_slide(blocks_slide, classifier, settings, cache=cache, on_batch=lambda u: seen.extend(u.indices.tolist()))
    assert not second.from_cache and second.result.n_failed == 0 and second.result.n_done == 3
    retried = int(np.flatnonzero(first.result.status == TILE_FAILED)[0])
    assert seen == [retried]  # only the failed tile ran again
    full = analyze_slide(blocks_slide, classifier, settings, fresh=True)
    np.testing.assert_allclose(second.result.probs, full.result.probs, atol=1e-6)


def test_fluorescence_slide_is_flagged_dark(classifier: Classifier, test_data: Path) -> None:
    out = analyze_slide(test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi", classifier,
                        AnalysisSettings(allow_out_of_domain=True))
    result = out.result
    assert result.n_tiles > 0 and result.n_done == 0 and result.n_qc == result.n_tiles
    assert result.summary()["qc_by_reason"]["dark"] >= result.n_tiles // 2


def test_tta_spread_and_uncertainty_reach_the_saved_result(classifier: Classifier, test_data: Path,
                                                          tmp_path: Path) -> None:
    from chaoyang_desktop.core.analysis.result_files import load_result_dir, write_predictions_npz, write_summary_json

    tta = Classifier(classifier.model, classifier.profile, classifier.device, classifier.precision, 16, tta=True)
    result = analyze_slide(test_data / "slides" / "CMU-1-Small-Region.svs", tta, AnalysisSettings()).result
    assert result.provenance.tta and result.n_done > 0 and result.spread is not None
    done = result.status == 1
    assert np.isfinite(result.spread[done]).all() and (result.spread[done] >= 0).all()
    write_predictions_npz(result, tmp_path / "predictions.npz")
    write_summary_json(result, tmp_path / "summary.json")
    back = load_result_dir(tmp_path)
    assert back.spread is not None
    np.testing.assert_array_equal(back.spread, result.spread)
    np.testing.assert_array_equal(back.qc, result.qc)
    summary = back.summary()["uncertainty"]
    assert summary["mean_top_spread"] == pytest.approx(float(np.mean(result.top_spread()[done])), abs=1e-6)
    assert 0 <= summary["unsure_percent"] <= 100
    npz = np.load(tmp_path / "predictions.npz")
    assert {"qc", "entropy", "margin", "spread"} <= set(npz.files)
