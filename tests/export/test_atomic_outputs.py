"""Every exporter writes atomically: errors are OutputError and leave no partial or temporary file."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.errors import OutputError
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.export.bundle import HEATMAP_PNG, TILES_CSV, TILES_GEOJSON, write_all
from chaoyang_desktop.export.csv_tiles import write_tiles_csv
from chaoyang_desktop.export.geojson_tiles import write_tiles_geojson
from chaoyang_desktop.export.heatmap_image import write_heatmap_png
from chaoyang_desktop.core.analysis.result_files import (
    PREDICTIONS_NPZ,
    SUMMARY_JSON,
    load_result_dir,
    write_predictions_npz,
    write_summary_json,
)
from tests.export.helpers import L0_H, L0_W

THUMB = np.full((L0_H // 10, L0_W // 10, 3), 230, dtype=np.uint8)

Writer = Callable[[AnalysisResult, Path], None]
WRITERS: dict[str, Writer] = {
    TILES_CSV: write_tiles_csv,
    TILES_GEOJSON: write_tiles_geojson,
    HEATMAP_PNG: lambda r, p: write_heatmap_png(THUMB, r, p),
    PREDICTIONS_NPZ: write_predictions_npz,
    SUMMARY_JSON: write_summary_json,
}
ALL = pytest.mark.parametrize("name", list(WRITERS))


@ALL
def test_missing_folder(name: str, result: AnalysisResult, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        WRITERS[name](result, tmp_path / "missing" / name)
    assert list(tmp_path.iterdir()) == []


@ALL
def test_parent_is_a_file(name: str, result: AnalysisResult, tmp_path: Path) -> None:
    # Tests run as root, which chmod cannot stop; a file where the folder should be can.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        WRITERS[name](result, blocker / name)
    assert list(tmp_path.iterdir()) == [blocker]
    assert blocker.read_text() == "x"


@ALL
def test_full_disk_keeps_the_old_file(
    name: str, result: AnalysisResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / name
    target.write_bytes(b"old content")

    def no_space(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OutputError, match="disk is full"):
        WRITERS[name](result, target)
    assert target.read_bytes() == b"old content"
    assert list(tmp_path.iterdir()) == [target]


def test_failure_in_the_middle_of_a_write(
    result: AnalysisResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / HEATMAP_PNG
    target.write_bytes(b"old png")

    def half_save(self: Image.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", half_save)
    with pytest.raises(OutputError, match="disk is full"):
        write_heatmap_png(THUMB, result, target)
    assert target.read_bytes() == b"old png"
    assert list(tmp_path.iterdir()) == [target]


def test_write_all_creates_the_folder_and_every_file(result: AnalysisResult, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    written = write_all(result, out, THUMB, slide_facts={"level_count": 1})
    names = {PREDICTIONS_NPZ, SUMMARY_JSON, TILES_CSV, TILES_GEOJSON, HEATMAP_PNG}
    assert set(written) == names
    assert {p.name for p in out.iterdir()} == names
    assert load_result_dir(out).summary() == result.summary()


def test_write_all_passes_annotations_to_the_summary(result: AnalysisResult, tmp_path: Path) -> None:
    a = Annotation.rectangle(600, 600, 900, 900, name="Spot")
    write_all(result, tmp_path / "with", None, annotations=[a])
    write_all(result, tmp_path / "without", None)
    with_doc = json.loads((tmp_path / "with" / SUMMARY_JSON).read_text(encoding="utf-8"))
    without_doc = json.loads((tmp_path / "without" / SUMMARY_JSON).read_text(encoding="utf-8"))
    assert [(e["uid"], e["name"], e["tiles"]) for e in with_doc["annotations"]] == [(a.uid, "Spot", 1)]
    assert without_doc["annotations"] == []


def test_write_all_without_thumbnail_skips_the_heatmap(result: AnalysisResult, tmp_path: Path) -> None:
    write_all(result, tmp_path, None)
    assert HEATMAP_PNG not in {p.name for p in tmp_path.iterdir()}


def test_write_all_into_a_file_path(result: AnalysisResult, tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="Cannot create the output folder"):
        write_all(result, blocker, THUMB)
    with pytest.raises(OutputError):
        write_all(result, blocker / "sub", THUMB)


def test_write_all_failure_leaves_no_partial_file(result: AnalysisResult, tmp_path: Path) -> None:
    # A thumbnail the renderer refuses fails the last step; earlier files are complete.
    with pytest.raises(ValueError):
        write_all(result, tmp_path, np.zeros((10, 10, 3), dtype=np.float32))
    assert {p.name for p in tmp_path.iterdir()} == {PREDICTIONS_NPZ, SUMMARY_JSON, TILES_CSV, TILES_GEOJSON}
    assert load_result_dir(tmp_path).summary() == result.summary()


def test_outputs_get_normal_permissions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    from chaoyang_desktop.core.atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
