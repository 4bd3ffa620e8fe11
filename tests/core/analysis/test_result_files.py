"""predictions.npz + summary.json: complete enough to rebuild the result without the model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.slide.annotations import Annotation, PathClass
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.core.analysis.result_files import (
    PREDICTIONS_NPZ,
    predictions_arrays,
    SUMMARY_JSON,
    SavedResultError,
    load_result_dir,
    summary_document,
    write_predictions_npz,
    write_summary_json,
)
from tests.export.helpers import FAILED, SURE_NORMAL, build_result, tile_index


@pytest.fixture
def result() -> AnalysisResult:
    return build_result()


def _save(result: AnalysisResult, folder: Path) -> None:
    write_predictions_npz(result, folder / PREDICTIONS_NPZ)
    write_summary_json(result, folder / SUMMARY_JSON)


def _assert_same(a: AnalysisResult, b: AnalysisResult) -> None:
    assert a.provenance == b.provenance
    assert a.grid == b.grid
    for key, arr in a.grid_arrays().items():
        other = b.grid_arrays()[key]
        assert arr.dtype == other.dtype, key
        np.testing.assert_array_equal(arr, other, err_msg=key)
    assert a.errors == b.errors
    assert a.summary() == b.summary()


@pytest.mark.parametrize(
    "result",
    [build_result(), build_result(stride_um=128.0), build_result(pending=3)],
    ids=["tiles", "overlap", "partial"],
)
def test_load_result_dir_round_trip(result: AnalysisResult, tmp_path: Path) -> None:
    _save(result, tmp_path)
    _assert_same(result, load_result_dir(tmp_path))
    # Only the two files: the temporary names never outlive a write.
    assert sorted(p.name for p in tmp_path.iterdir()) == [PREDICTIONS_NPZ, SUMMARY_JSON]


def test_npz_keys(result: AnalysisResult, tmp_path: Path) -> None:
    write_predictions_npz(result, tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as npz:
        keys = set(npz.files)
        assert int(npz["grid_l0_stride"]) == result.grid.l0_stride
        assert str(npz["slide_fingerprint"]) == result.provenance.slide_fingerprint
    assert set(result.grid_arrays()) <= keys
    assert {
        "grid_l0_width", "grid_l0_height", "grid_l0_stride", "grid_k", "grid_level", "grid_lv_downsample",
        "grid_lv_tile", "format_version", "slide_fingerprint", "created",
    } <= keys


def test_npz_name_without_suffix_is_kept(result: AnalysisResult, tmp_path: Path) -> None:
    # numpy would append ".npz" to a bare name; the writer must produce exactly the given path.
    write_predictions_npz(result, tmp_path / "predictions.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.bin"]


def test_summary_document(result: AnalysisResult, tmp_path: Path) -> None:
    doc = summary_document(result, {"level_count": np.int64(3), "mpp": 99.0, "scanner": "GT450"})
    assert set(doc) == {
        "format_version", "slide", "analysis", "classes", "analysed_area_mm2", "domain_check", "provenance", "failed_tiles",
        "annotations", "quality_control", "uncertainty",
    }
    assert doc["annotations"] == []  # present, and empty, when no annotation is given
    slide = doc["slide"]
    assert slide["file_name"] == "case 01.svs"
    assert slide["dimensions"] == [2000, 1500]
    assert slide["mpp"] == 0.5  # the provenance wins over slide_facts
    assert slide["scanner"] == "GT450"
    analysis = doc["analysis"]
    assert analysis["tiles"] == {"total": 10, "done": 9, "failed": 1, "pending": 0, "qc": 0}
    assert doc["quality_control"] == {"enabled": False, "tiles_flagged": 0,
                                      "by_reason": {"glass": 0, "pen": 0, "blur": 0, "dark": 0}}
    assert doc["uncertainty"]["margin_threshold"] == 0.2
    assert analysis["complete"] is True
    assert analysis["tile_um"] == 256.0 and analysis["roi"] is None
    summary = result.summary()
    assert doc["classes"] == summary["classes"]
    assert doc["analysed_area_mm2"] == summary["analysed_area_mm2"]
    assert doc["provenance"] == result.provenance.to_dict()
    i = tile_index(result, *FAILED)
    assert doc["failed_tiles"] == [
        {
            "index": i,
            "t_col": FAILED[0],
            "t_row": FAILED[1],
            "l0_rect": result.rects()[i].tolist(),
            "error": "OpenSlideError: read error at (1024, 1024)",
        }
    ]
    write_summary_json(result, tmp_path / "s.json", {"level_count": np.int64(3), "path_obj": tmp_path})
    on_disk = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert on_disk["slide"]["level_count"] == 3
    assert on_disk["classes"] == summary["classes"]


def test_summary_states_each_annotations_composition(result: AnalysisResult, tmp_path: Path) -> None:
    # Tiles are 512 px (256 um at 0.5 um/px); this square lies in the sure-Normal tile (1, 1) and
    # holds its centre (768, 768) and all 4 x 4 sample points of its cell (at 576, 704, 832, 960):
    # the cell counts wholly, 0.065536 mm², all Normal.
    assert SURE_NORMAL == (1, 1)
    tumour = Annotation.rectangle(520, 520, 1000, 1000, name="Tumour", path_class=PathClass("Tumor", (200, 0, 0)))
    outside = Annotation.ellipse(-500, -500, -100, -100)
    write_summary_json(result, tmp_path / "s.json", annotations=[tumour, outside])
    entries = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))["annotations"]
    first, second = entries
    assert (first["uid"], first["name"], first["class_name"]) == (tumour.uid, "Tumour", "Tumor")
    assert first["area_mm2"] == pytest.approx(480 * 480 * 0.5**2 / 1e6)
    assert first["analysed_area_mm2"] == pytest.approx(0.065536) and first["tiles"] == 1
    normal = first["classes"][0]
    assert (normal["name"], normal["tiles"], normal["percent"], normal["mean_confidence"]) == ("Normal", 1, 100.0, 1.0)
    assert normal["area_mm2"] == pytest.approx(0.065536)
    assert [c["percent"] for c in first["classes"][1:]] == [0.0, 0.0, 0.0]
    assert (second["name"], second["tiles"], second["analysed_area_mm2"]) == ("Ellipse 2", 0, 0.0)
    # The rest of the summary is unchanged by annotations.
    doc = summary_document(result, annotations=[tumour])
    assert {k: v for k, v in doc.items() if k != "annotations"} == {
        k: v for k, v in summary_document(result).items() if k != "annotations"
    }


def test_missing_files_are_reported(result: AnalysisResult, tmp_path: Path) -> None:
    with pytest.raises(SavedResultError, match="predictions.npz is missing"):
        load_result_dir(tmp_path)
    write_predictions_npz(result, tmp_path / PREDICTIONS_NPZ)
    with pytest.raises(SavedResultError, match="summary.json is missing"):
        load_result_dir(tmp_path)


def test_files_from_different_analyses_are_refused(tmp_path: Path) -> None:
    a, b = build_result(), build_result()
    b.provenance = dataclasses.replace(b.provenance, created="2025-01-01T00:00:00+00:00")
    write_predictions_npz(a, tmp_path / PREDICTIONS_NPZ)
    write_summary_json(b, tmp_path / SUMMARY_JSON)
    with pytest.raises(SavedResultError, match="different analyses"):
        load_result_dir(tmp_path)


def test_corrupt_files_are_reported(result: AnalysisResult, tmp_path: Path) -> None:
    _save(result, tmp_path)
    (tmp_path / SUMMARY_JSON).write_text("{not json", encoding="utf-8")
    with pytest.raises(SavedResultError, match="summary"):
        load_result_dir(tmp_path)
    _save(result, tmp_path)
    (tmp_path / PREDICTIONS_NPZ).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SavedResultError, match="prediction file"):
        load_result_dir(tmp_path)


def test_quality_control_round_trips_and_version_1_files_still_load(tmp_path: Path) -> None:
    result = build_result(with_qc=True)
    write_predictions_npz(result, tmp_path / PREDICTIONS_NPZ)
    write_summary_json(result, tmp_path / SUMMARY_JSON)
    back = load_result_dir(tmp_path)
    np.testing.assert_array_equal(back.qc, result.qc)
    assert back.n_qc == 1 and back.summary()["qc_by_reason"]["pen"] == 1
    # A folder written before quality control existed: format 1, no qc array, no new keys.
    old = tmp_path / "old"
    old.mkdir()
    plain = build_result()
    arrays = {k: v for k, v in predictions_arrays(plain).items() if k not in ("qc", "entropy", "margin")}
    arrays["format_version"] = np.asarray(1)
    np.savez_compressed(old / PREDICTIONS_NPZ, **arrays)
    doc = summary_document(plain)
    doc["format_version"] = 1
    for key in ("qc", "qc_version", "tta", "temperature", "calibration"):
        doc["provenance"].pop(key)
    (old / SUMMARY_JSON).write_text(json.dumps(doc), encoding="utf-8")
    loaded = load_result_dir(old)
    assert loaded.n_qc == 0 and not loaded.provenance.qc and loaded.provenance.temperature == 1.0
    np.testing.assert_array_equal(loaded.probs, plain.probs)
