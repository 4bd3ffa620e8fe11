"""``chaoyang-desktop analyze`` end to end on real and synthetic slides."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.cli import main
from chaoyang_desktop.core.slide import open_slide
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.synthetic import tissue_image, write_pyramid_tiff

OUTPUTS = {"tiles.csv", "tiles.geojson", "heatmap.png", "predictions.npz", "summary.json"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("model"), TINY_CONFIG, seed=11)
    return folder


def test_tile_probabilities_match_classify_on_the_same_region(test_data: Path, model_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    slide_path = test_data / "slides" / "CMU-1-Small-Region.svs"
    assert main(["analyze", str(slide_path), "-m", str(model_dir), "--out", str(tmp_path / "out"), "-q", "--no-cache"]) == 0
    folder = tmp_path / "out" / "CMU-1-Small-Region"
    assert OUTPUTS <= {p.name for p in folder.iterdir()}
    rows = list(csv.DictReader((folder / "tiles.csv").open()))
    assert rows and list(rows[0])[:4] == ["minx", "miny", "width", "height"]
    row = next(r for r in rows if int(r["width"]) == 513 and int(r["height"]) == 513)  # an interior tile
    x, y = int(row["minx"]), int(row["miny"])
    with open_slide(slide_path) as slide:
        Image.fromarray(slide.read_region(x, y, 0, 513, 513)).save(tmp_path / "tile.png")
    capsys.readouterr()
    assert main(["classify", str(tmp_path / "tile.png"), "-m", str(model_dir), "--format", "json"]) == 0
    rec = json.loads(capsys.readouterr().out)[0]
    for name, p in rec["probabilities"].items():
        assert float(row[f"prob_{name}"]) == pytest.approx(p, abs=2e-6)
    assert row["label"] == rec["label"]
    geo = json.loads((folder / "tiles.geojson").read_text())
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == len(rows)
    feat = geo["features"][0]
    assert feat["properties"]["objectType"] == "tile" and feat["geometry"]["type"] == "Polygon"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["slide"]["mpp"] == pytest.approx(0.499) and summary["slide"]["mpp_assumed"] is False


def test_batch_folder_failures_skip_and_force(test_data: Path, model_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", batch / "good.svs")
    (batch / "broken.svs").write_text("this is not a slide")
    write_pyramid_tiff(batch / "nompp.tiff", tissue_image(600, 600, [(0, 0, 600, 600)]), mpp=None, levels=1)
    out = tmp_path / "out"
    code = main(["analyze", str(batch), "-m", str(model_dir), "--out", str(out), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "good" / "summary.json").is_file()
    assert "2 input(s) failed" in err and "broken.svs" in err and "--mpp" in err
    assert "Traceback" not in err
    # The finished slide is skipped the next time, analysed again with --force.
    code = main(["analyze", str(batch / "good.svs"), "-m", str(model_dir), "--out", str(out), "--no-cache"])
    assert code == 0 and "skip:" in capsys.readouterr().err
    before = (out / "good" / "summary.json").stat().st_mtime_ns
    code = main(["analyze", str(batch / "good.svs"), "-m", str(model_dir), "--out", str(out), "--force", "--no-cache", "-q"])
    assert code == 0 and (out / "good" / "summary.json").stat().st_mtime_ns != before
    # The pixel size can be given.
    code = main(["analyze", str(batch / "nompp.tiff"), "-m", str(model_dir), "--out", str(out), "--mpp", "0.5", "-q",
                 "--no-cache", "--tissue-threshold", "0"])
    assert code == 0
    doc = json.loads((out / "nompp" / "summary.json").read_text())
    assert doc["slide"]["mpp"] == 0.5


def test_plain_image_outputs_say_pixel_size_was_assumed(test_data: Path, model_dir: Path, tmp_path: Path) -> None:
    code = main(["analyze", str(test_data / "images" / "CMU-1-Small-Region_full.jpg"), "-m", str(model_dir),
                 "--out", str(tmp_path), "-q", "--no-cache"])
    assert code == 0
    doc = json.loads((tmp_path / "CMU-1-Small-Region_full" / "summary.json").read_text())
    assert doc["slide"]["mpp_assumed"] is True and doc["provenance"]["mpp_assumed"] is True


def test_roi_and_overlap_options(test_data: Path, model_dir: Path, tmp_path: Path) -> None:
    roi = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"objectType": "annotation"},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 1000], [2220, 1000], [2220, 2000], [0, 2000], [0, 1000]]]}}]}
    (tmp_path / "roi.geojson").write_text(json.dumps(roi))
    code = main(["analyze", str(test_data / "slides" / "CMU-1-Small-Region.svs"), "-m", str(model_dir), "--out",
                 str(tmp_path / "o"), "--roi", str(tmp_path / "roi.geojson"), "--stride-um", "128", "-q", "--no-cache"])
    assert code == 0
    doc = json.loads((tmp_path / "o" / "CMU-1-Small-Region" / "summary.json").read_text())
    assert doc["analysis"]["stride_um"] == pytest.approx(128, abs=0.5)
    rows = list(csv.DictReader((tmp_path / "o" / "CMU-1-Small-Region" / "tiles.csv").open()))
    ys = np.array([int(r["miny"]) for r in rows])
    hs = np.array([int(r["height"]) for r in rows])
    assert (ys + hs > 1000).all() and (ys < 2000).all()


def test_bad_options(model_dir: Path, tmp_path: Path, test_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slide = str(test_data / "slides" / "CMU-1-Small-Region.svs")
    assert main(["analyze", slide, "-m", str(model_dir), "--out", str(tmp_path), "--stride-um", "100"]) == 1
    assert "whole multiple" in capsys.readouterr().err
    assert main(["analyze", slide, "-m", str(model_dir), "--out", str(tmp_path), "--tissue-threshold", "2"]) == 1
    assert main(["analyze", slide, "-m", str(model_dir), "--out", str(tmp_path), "--roi", str(tmp_path / "none.json")]) == 1
    assert "Traceback" not in capsys.readouterr().err
