"""tiles.csv: WSInfer layout, one row per done tile, level-0 geometry."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult
from chaoyang_desktop.export.csv_tiles import tiles_csv_header, write_tiles_csv
from tests.export.helpers import CLASS_NAMES, FAILED, L0_H, L0_W, QC_TILE, build_result, tile_index


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_header_is_exact(result: AnalysisResult, tmp_path: Path) -> None:
    write_tiles_csv(result, tmp_path / "tiles.csv")
    first_line = (tmp_path / "tiles.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == (
        "minx,miny,width,height,prob_Normal,prob_Serrated,prob_Adenocarcinoma,prob_Adenoma,label,confidence,"
        "entropy,margin,tta_spread,qc"
    )


def test_uncertainty_and_quality_control_columns(tmp_path: Path) -> None:
    result = build_result(with_qc=True)
    write_tiles_csv(result, tmp_path / "tiles.csv")
    rows = list(csv.DictReader((tmp_path / "tiles.csv").open(encoding="utf-8")))
    flagged = [r for r in rows if r["qc"]]
    assert len(flagged) == 1 and flagged[0]["qc"] == "pen;blur"
    l0_x, l0_y = result.rects()[tile_index(result, *QC_TILE)][:2]
    assert (int(flagged[0]["minx"]), int(flagged[0]["miny"])) == (l0_x, l0_y)
    assert flagged[0]["label"] == flagged[0]["confidence"] == flagged[0]["prob_Normal"] == ""
    for r in rows:
        if r["qc"]:
            continue
        probs = np.array([float(r[f"prob_{n}"]) for n in CLASS_NAMES])
        top2 = np.sort(probs)[-2:]
        assert float(r["margin"]) == pytest.approx(top2[1] - top2[0], abs=2e-6)
        # Reference: Shannon entropy in nats over ln 4, from the written probabilities.
        p = probs[probs > 0]
        assert float(r["entropy"]) == pytest.approx(-(p * np.log(p)).sum() / np.log(4), abs=1e-5)
        assert r["tta_spread"] == ""  # no TTA in this result


def test_rows_match_done_tiles(result: AnalysisResult, tmp_path: Path) -> None:
    path = tmp_path / "tiles.csv"
    write_tiles_csv(result, path)
    header, *rows = _read(path)
    done = np.flatnonzero(result.status == TILE_DONE)
    assert len(rows) == len(done) == result.n_tiles - 1
    rects = result.rects()
    for row, i in zip(rows, done):
        rec = dict(zip(header, row))
        assert [int(rec[k]) for k in ("minx", "miny", "width", "height")] == rects[i].tolist()
        probs = [float(rec[f"prob_{n}"]) for n in result.class_names]
        np.testing.assert_allclose(probs, result.probs[i], atol=5e-7)
        assert rec["label"] == result.class_names[int(np.argmax(result.probs[i]))]
        assert abs(float(rec["confidence"]) - float(np.max(result.probs[i]))) <= 5e-7
        # Six decimals, as documented.
        assert all(len(rec[f"prob_{n}"].split(".")[1]) == 6 for n in result.class_names)


def test_failed_tile_is_not_a_row_and_edges_are_clipped(result: AnalysisResult, tmp_path: Path) -> None:
    path = tmp_path / "tiles.csv"
    write_tiles_csv(result, path)
    _, *rows = _read(path)
    origins = {(int(r[0]), int(r[1])) for r in rows}
    failed_rect = result.rects()[tile_index(result, *FAILED)]
    assert (int(failed_rect[0]), int(failed_rect[1])) not in origins
    # The right-most column and bottom row are clipped to the slide, never beyond it.
    assert max(int(r[0]) + int(r[2]) for r in rows) == L0_W
    assert max(int(r[1]) + int(r[3]) for r in rows) == L0_H


def test_pending_tiles_are_not_rows(tmp_path: Path) -> None:
    result = build_result(pending=3)
    write_tiles_csv(result, tmp_path / "tiles.csv")
    assert len(_read(tmp_path / "tiles.csv")) - 1 == result.n_done


def test_class_names_needing_quotes_survive(result: AnalysisResult, tmp_path: Path) -> None:
    names = ("Normal", "Serrated", "Adenoma, low grade", 'Adeno "carcinoma"')
    result.provenance = dataclasses.replace(result.provenance, class_names=names)
    write_tiles_csv(result, tmp_path / "tiles.csv")
    header, *rows = _read(tmp_path / "tiles.csv")
    assert header == tiles_csv_header(names)
    assert {r[header.index("label")] for r in rows} <= set(names)
