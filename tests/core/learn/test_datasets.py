"""Labelled data discovery: class folders, class maps, Chaoyang JSON lists, and the errors a person can fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.learn.datasets import DatasetError, load_class_map, load_labelled_dataset

CLASSES = ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


def test_class_folders_match_case_insensitively(tmp_path: Path) -> None:
    _img(tmp_path / "normal" / "a.png")
    _img(tmp_path / "normal" / "sub" / "b.PNG")
    _img(tmp_path / "ADENOMA" / "c.jpg")
    (tmp_path / "ADENOMA" / "notes.txt").write_text("not an image")
    _img(tmp_path / "loose.png")
    ds = load_labelled_dataset(tmp_path, CLASSES)
    assert ds.class_names == CLASSES and ds.kind == "folders"
    assert ds.class_counts() == [2, 0, 0, 1]
    assert sorted((p.name, CLASSES[lab]) for p, lab in zip(ds.paths, ds.labels)) == [
        ("a.png", "Normal"), ("b.PNG", "Normal"), ("c.jpg", "Adenoma")]
    assert any("loose" in n or "directly in" in n for n in ds.notes)
    assert ds.label_sources[0] == ("normal",)


def test_unknown_folder_names_the_fix(tmp_path: Path) -> None:
    _img(tmp_path / "Normal" / "a.png")
    _img(tmp_path / "TUM" / "b.png")
    with pytest.raises(DatasetError, match=r"'TUM'.*--class-map"):
        load_labelled_dataset(tmp_path, CLASSES)


def test_class_map_maps_and_leaves_out(tmp_path: Path) -> None:
    _img(tmp_path / "TUM" / "a.png")
    _img(tmp_path / "NORM" / "b.png")
    _img(tmp_path / "NORM" / "c.png")
    _img(tmp_path / "ADI" / "d.png")
    cmap = tmp_path.parent / "map.json"
    cmap.write_text(json.dumps({"tum": "adenocarcinoma", "NORM": "Normal", "ADI": None}))
    ds = load_labelled_dataset(tmp_path, CLASSES, class_map=load_class_map(cmap))
    assert ds.class_counts() == [2, 0, 1, 0]
    assert dict(ds.left_out) == {"ADI": 1}
    assert "left out by the class map: ADI (1)" in ds.describe()


def test_class_map_target_must_be_a_model_class(tmp_path: Path) -> None:
    _img(tmp_path / "TUM" / "a.png")
    with pytest.raises(DatasetError, match="Cancer"):
        load_labelled_dataset(tmp_path, CLASSES, class_map={"TUM": "Cancer"})


def test_empty_class_folder_is_an_error(tmp_path: Path) -> None:
    _img(tmp_path / "Normal" / "a.png")
    (tmp_path / "Serrated").mkdir()
    with pytest.raises(DatasetError, match="'Serrated'.*hold no images"):
        load_labelled_dataset(tmp_path, CLASSES)


def test_data_defined_classes_are_sorted(tmp_path: Path) -> None:
    for name in ("TUM", "ADI", "norm"):
        _img(tmp_path / name / "x.png")
    ds = load_labelled_dataset(tmp_path)
    assert ds.class_names == ("ADI", "norm", "TUM")
    ds2 = load_labelled_dataset(tmp_path, class_map={"TUM": "Tumour", "ADI": "Other", "norm": "Other"})
    assert ds2.class_names == ("Other", "Tumour") and ds2.class_counts() == [2, 1]
    with pytest.raises(DatasetError, match="TUM"):
        load_labelled_dataset(tmp_path, class_map={"ADI": "Other", "norm": "Other"})  # with a map, all must be mapped


def test_chaoyang_json_list(tmp_path: Path) -> None:
    root = tmp_path / "chaoyang"
    _img(root / "test" / "s1-IMG1x1-0.JPG")
    _img(root / "test" / "s1-IMG1x2-3.JPG")
    _img(root / "test" / "s2-IMG4x4-2.JPG")
    records = [{"label": 0, "name": "test/s1-IMG1x1-0.JPG"}, {"label": 3, "name": "test/s1-IMG1x2-3.JPG"},
               {"label": 2, "name": "test/s2-IMG4x4-2.JPG"}]
    (root / "test.json").write_text(json.dumps(records))
    ds = load_labelled_dataset(root / "test.json", CLASSES)
    assert ds.kind == "json" and ds.labels.tolist() == [0, 3, 2]
    elsewhere = tmp_path / "labels.json"
    elsewhere.write_text(json.dumps(records))
    with pytest.raises(DatasetError, match="3 image.*--image-root"):
        load_labelled_dataset(elsewhere, CLASSES)
    ds2 = load_labelled_dataset(elsewhere, CLASSES, image_root=root)
    assert ds2.labels.tolist() == [0, 3, 2]
    # The same images given another way are the same data.
    assert ds.fingerprint() == ds2.fingerprint()


def test_json_labels_by_name_out_of_range_and_malformed(tmp_path: Path) -> None:
    _img(tmp_path / "a.png")
    (tmp_path / "l.json").write_text(json.dumps([{"label": "serrated", "name": "a.png"}]))
    assert load_labelled_dataset(tmp_path / "l.json", CLASSES).labels.tolist() == [1]
    (tmp_path / "l.json").write_text(json.dumps([{"label": 7, "name": "a.png"}]))
    with pytest.raises(DatasetError, match="'7'"):
        load_labelled_dataset(tmp_path / "l.json", CLASSES)
    (tmp_path / "l.json").write_text(json.dumps([{"name": "a.png"}]))
    with pytest.raises(DatasetError, match="record 0"):
        load_labelled_dataset(tmp_path / "l.json", CLASSES)
    (tmp_path / "l.json").write_text(json.dumps([{"label": 0, "name": "a.png"}]))
    with pytest.raises(DatasetError, match="--class-map"):
        load_labelled_dataset(tmp_path / "l.json")  # numbers without a model or a map name no class


def test_missing_data_and_bad_class_map(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_labelled_dataset(tmp_path / "absent", CLASSES)
    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="JSON object"):
        load_class_map(tmp_path / "m.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        load_labelled_dataset(tmp_path / "empty", CLASSES)


def test_real_patch_folders(test_data: Path) -> None:
    ds = load_labelled_dataset(test_data / "patches" / "crc9")
    assert len(ds) == 25 and len(ds.class_names) == 9
    assert ds.class_counts()[ds.class_names.index("TUM")] == 3
