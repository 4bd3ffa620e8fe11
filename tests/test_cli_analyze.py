"""``chaoyang-desktop analyze`` end to end on real and synthetic slides."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.cli import main
from chaoyang_desktop.core.slide.reader import open_slide
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


# ----- input the model cannot judge, and slides with nothing to analyse ---------------------------------
def test_out_of_domain_and_empty_slides_stop_alone(test_data: Path, model_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", batch / "a-cmu.svs")
    shutil.copy(test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi", batch / "b-dapi.ndpi")
    Image.new("RGB", (1, 1), (200, 100, 160)).save(batch / "c-dot.png")
    out = tmp_path / "out"
    code = main(["analyze", str(batch), "-m", str(model_dir), "--out", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 2 and "Traceback" not in err
    assert "b-dapi.ndpi" in lines[0] and "fluorescence" in lines[0] and "--allow-out-of-domain" in lines[0]
    assert "c-dot.png" in lines[1] and "smaller than one 256 um tile" in lines[1]
    rows = {Path(r["slide"]).name: r for r in csv.DictReader((out / "cohort.csv").open(encoding="utf-8"))}
    assert [(n, r["status"], r["input_check"]) for n, r in rows.items()] == [
        ("a-cmu.svs", "ok", "passed"), ("b-dapi.ndpi", "out of domain", "out of domain"), ("c-dot.png", "no tiles", "")]
    assert "fluorescence" in rows["b-dapi.ndpi"]["input_findings"] and rows["b-dapi.ndpi"]["tiles_done"] == ""
    assert sorted(p.name for p in out.iterdir()) == ["a-cmu", "cohort.csv"]  # nothing written for the others
    doc = json.loads((out / "a-cmu" / "summary.json").read_text())
    assert doc["domain_check"]["status"] == "passed" and doc["domain_check"]["findings"] == []


def test_analysed_anyway_is_recorded_in_every_output(test_data: Path, model_dir: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    slide = test_data / "slides" / "Hamamatsu-test3-DAPI-2-387.ndpi"
    code = main(["analyze", str(slide), "-m", str(model_dir), "--out", str(tmp_path), "--allow-out-of-domain",
                 "--report", "-q"])
    assert code == 0
    folder = tmp_path / slide.stem
    doc = json.loads((folder / "summary.json").read_text())
    assert doc["domain_check"]["status"] == "analysed anyway" and doc["domain_check"]["overridden"] is True
    assert doc["domain_check"]["findings"][0]["kind"] == "fluorescence"
    row = next(csv.DictReader((tmp_path / "cohort.csv").open(encoding="utf-8")))
    assert row["status"] == "ok" and row["input_check"] == "analysed anyway" and "fluorescence" in row["input_findings"]
    first_page = " ".join(PdfReader(folder / "report.pdf").pages[0].extract_text().split())
    assert "outside what the model can judge" in first_page and "fluorescence" in first_page


# ----- reliability --------------------------------------------------------------------------------------
def test_a_cached_result_names_the_file_analysed_now(test_data: Path, model_dir: Path, tmp_path: Path) -> None:
    from pypdf import PdfReader

    slides = tmp_path / "slides"
    slides.mkdir()
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", slides / "PATIENT-DOE.svs")
    assert main(["analyze", str(slides / "PATIENT-DOE.svs"), "-m", str(model_dir), "--out", str(tmp_path / "a"), "-q"]) == 0
    (slides / "PATIENT-DOE.svs").rename(slides / "case001.svs")
    assert main(["analyze", str(slides / "case001.svs"), "-m", str(model_dir), "--out", str(tmp_path / "b"), "-q",
                 "--report"]) == 0
    folder = tmp_path / "b" / "case001"
    assert b"PATIENT-DOE" not in (folder / "summary.json").read_bytes()
    assert json.loads((folder / "summary.json").read_text())["slide"]["file_name"] == "case001.svs"
    assert "PATIENT-DOE" not in PdfReader(folder / "report.pdf").pages[0].extract_text()
    # The cache itself holds no file names.
    cache = Path(os.environ["CHAOYANG_DATA_DIR"])
    cached = [p for p in cache.rglob("*") if p.is_file() and p.suffix in (".json", ".npz")]
    assert cached and not any(b"PATIENT-DOE" in p.read_bytes() for p in cached)


def test_an_unreadable_cache_entry_is_dropped_and_recomputed(test_data: Path, model_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", batch / "one.svs")
    shutil.copy(test_data / "images" / "CMU-1-Small-Region_full.jpg", batch / "two.jpg")
    assert main(["analyze", str(batch), "-m", str(model_dir), "--out", str(tmp_path / "a"), "-q"]) == 0
    entries = list(Path(os.environ["CHAOYANG_DATA_DIR"]).rglob("predictions.npz"))
    assert len(entries) == 2
    for npz in entries:
        npz.write_bytes(b"")  # a full disk, or a copy that stopped
    capsys.readouterr()
    assert main(["analyze", str(batch), "-m", str(model_dir), "--out", str(tmp_path / "b"), "-q"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "b" / "cohort.csv").open(encoding="utf-8")))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(p.stat().st_size > 0 for p in entries)  # recomputed and stored again
    # An unreadable results folder given to `report` is a one-line error.
    (tmp_path / "b" / "one" / "predictions.npz").write_bytes(b"")
    assert main(["report", str(tmp_path / "b" / "one")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and "predictions.npz" in err


def test_a_result_folder_is_whole_or_absent(test_data: Path, model_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from chaoyang_desktop.core.errors import OutputError
    from chaoyang_desktop.export import bundle

    slide = test_data / "slides" / "CMU-1-Small-Region.svs"
    out = tmp_path / "out"
    real = bundle.write_heatmap_png

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OutputError("Cannot write heatmap.png: the disk is full; free some space or choose another folder.")

    monkeypatch.setattr(bundle, "write_heatmap_png", full_disk)
    assert main(["analyze", str(slide), "-m", str(model_dir), "--out", str(out), "-q"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["cohort.csv"]  # no folder that looks finished
    monkeypatch.setattr(bundle, "write_heatmap_png", real)
    assert main(["analyze", str(slide), "-m", str(model_dir), "--out", str(out), "-q"]) == 0  # not "skip"
    assert {p.name for p in (out / "CMU-1-Small-Region").iterdir()} == OUTPUTS
    # --force with new settings replaces the folder as a whole: nothing of the old run stays.
    (out / "CMU-1-Small-Region" / "old-note.txt").write_text("from the first run")
    assert main(["analyze", str(slide), "-m", str(model_dir), "--out", str(out), "-q", "--force",
                 "--tissue-threshold", "0.5"]) == 0
    assert {p.name for p in (out / "CMU-1-Small-Region").iterdir()} == OUTPUTS
    doc = json.loads((out / "CMU-1-Small-Region" / "summary.json").read_text())
    assert doc["analysis"]["tissue_threshold"] == 0.5
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_the_output_folder_inside_the_input_folder_is_not_analysed(test_data: Path, model_dir: Path,
                                                                   tmp_path: Path) -> None:
    slides = tmp_path / "slides"
    slides.mkdir()
    shutil.copy(test_data / "slides" / "CMU-1-Small-Region.svs", slides / "cmu.svs")
    for _ in range(2):
        assert main(["analyze", str(slides), "-m", str(model_dir), "--out", str(slides / "results"), "-q"]) == 0
    rows = list(csv.DictReader((slides / "results" / "cohort.csv").open(encoding="utf-8")))
    assert [Path(r["slide"]).name for r in rows] == ["cmu.svs"]


@pytest.mark.parametrize("option", [["--tile-um", "nan"], ["--tile-um", "1e9"], ["--tile-um", "0"],
                                    ["--tile-um", "0.001"], ["--mpp", "1e6"], ["--mpp", "1e-9"], ["--mpp", "50"],
                                    ["--threads", "-1"], ["--workers", "0"], ["--stride-um", "inf"]])
def test_options_out_of_range_are_one_line_errors(test_data: Path, model_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str], option: list[str]) -> None:
    slide = str(test_data / "slides" / "CMU-1-Small-Region.svs")
    assert main(["analyze", slide, "-m", str(model_dir), "--out", str(tmp_path), "-q", *option]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: " in err
    assert not (tmp_path / "CMU-1-Small-Region").exists()


def test_a_clean_run_prints_nothing_but_its_own_lines(test_data: Path, model_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = (test_data / "slides" / "CMU-1-Small-Region.svs").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.99)])
    code = main(["analyze", str(tmp_path / "cut.tif"), str(test_data / "slides" / "CMU-1-Small-Region.svs"),
                 "-m", str(model_dir), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 1
    assert [line for line in err.splitlines() if line and not line.startswith(("error: ", "  "))] == \
        ["1 input(s) failed:"]
    assert "damaged or incomplete" in err and "WARNING" not in err and "Warning" not in err


def test_library_warnings_go_to_the_log_not_to_stderr(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import logging, warnings\n"
        "from chaoyang_desktop.cli import _configure_logging\n"
        "_configure_logging(False, to_file=True)\n"
        "warnings.warn('a torch-like UserWarning', UserWarning)\n"
        "logging.getLogger('tifffile').warning('a tifffile-like WARNING')\n"
        "logging.getLogger('chaoyang_desktop.core.slide.reader').warning('our own warning')\n"
    )
    env = {**os.environ, "CHAOYANG_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "WARNING: our own warning\n"
    log = (tmp_path / "logs" / "chaoyang-desktop.log").read_text()
    for text in ("a torch-like UserWarning", "a tifffile-like WARNING", "our own warning"):
        assert text in log


def test_annotations_composition_goes_into_summary_json(test_data: Path, model_dir: Path, tmp_path: Path) -> None:
    slide = test_data / "slides" / "CMU-1-Small-Region.svs"
    box = [[700.0, 900.0], [1900.0, 900.0], [1900.0, 2300.0], [700.0, 2300.0], [700.0, 900.0]]
    qupath = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "3f0b6c1e-9c1f-4b7a-8f52-5a0d2c7e9b10",
         "geometry": {"type": "Polygon", "coordinates": [box]},
         "properties": {"objectType": "annotation", "name": "Mucosa",
                        "classification": {"name": "Tumor", "color": [200, 0, 0]}}}]}
    ann = tmp_path / "annotations.geojson"
    ann.write_text(json.dumps(qupath), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["analyze", str(slide), "-m", str(model_dir), "--out", str(out), "--annotations", str(ann),
                 "--tile-um", "64", "-q", "--no-cache"])
    assert code == 0
    folder = out / slide.stem
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    (entry,) = summary["annotations"]
    assert entry["name"] == "Mucosa" and entry["class_name"] == "Tumor"
    mpp = summary["slide"]["mpp"]
    assert entry["area_mm2"] == pytest.approx(1200 * 1400 * (mpp / 1000) ** 2)
    # Reference from predictions.npz: done tiles whose centre is inside the box, per top class.
    npz = np.load(folder / "predictions.npz")
    cx = npz["l0_x"] + npz["l0_w"] / 2
    cy = npz["l0_y"] + npz["l0_h"] / 2
    inside = (cx >= 700) & (cx < 1900) & (cy >= 900) & (cy < 2300) & (npz["status"] == 1)
    assert entry["tiles"] == int(inside.sum()) > 0
    labels = np.argmax(npz["probs"][inside], axis=1)
    assert [c["tiles"] for c in entry["classes"]] == [int(np.sum(labels == k)) for k in range(len(entry["classes"]))]
