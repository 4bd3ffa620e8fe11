"""Patch classification on the real patches of tests/data: quality control and uncertainty per patch.

The references come from outside the code under test: the folders the patches were published
in (BACK and 08_EMPTY hold background), PIL for decoding, numpy for entropy and margin, and
the eight orientations built with numpy for the TTA spread.
"""

from __future__ import annotations

import dataclasses
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.analysis.patches import PatchResult, classify_files, find_images
from chaoyang_desktop.core.errors import CancelledError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.slide.tile_qc import QC_GLASS, describe
from tests.model_factory import TINY_CONFIG, write_checkpoint

#: Published as background: no tissue at all.
BACKGROUND = {"BACK", "08_EMPTY"}
#: Fat: mostly white, which quality control may take for glass (tile_qc documents it).
FAT = {"ADI", "07_ADIPOSE"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("m"), TINY_CONFIG, seed=3)
    return folder


@pytest.fixture(scope="module")
def clf(model_dir: Path) -> Classifier:
    return Classifier.load(str(model_dir), EngineSettings(device="cpu", batch_size=8))


@pytest.fixture(scope="module")
def patches(test_data: Path) -> list[Path]:
    images, problems = find_images([test_data / "patches"])
    assert not problems and len(images) == 41
    return images


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _entropy(p: np.ndarray) -> float:
    q = p[p > 0].astype(np.float64)
    return float(-(q * np.log(q)).sum() / np.log(len(p)))


def _margin(p: np.ndarray) -> float:
    top = np.sort(p)[::-1]
    return float(top[0] - top[1])


def test_background_is_left_out_and_tissue_classified(clf: Classifier, patches: list[Path]) -> None:
    records = list(classify_files(clf, patches, workers=2))
    assert [r.path for r in records] == [str(p) for p in patches]
    by_folder: dict[str, list[PatchResult]] = {}
    for p, r in zip(patches, records):
        by_folder.setdefault(p.parent.name, []).append(r)
        assert r.ok  # QC is not an error
    background = [r for f in BACKGROUND for r in by_folder[f]]
    assert len(background) == 3
    for r in background:
        assert r.qc & QC_GLASS and r.qc_flagged and not r.classified
        assert r.probabilities is None and r.label is None and r.confidence is None
        assert r.entropy is None and r.margin is None and r.tta_spread is None
        assert r.qc_names == ["glass"] and r.qc_words == describe(QC_GLASS) == "glass or background"
    tissue = [r for f, rs in by_folder.items() if f not in BACKGROUND | FAT for r in rs]
    assert len(tissue) == 33
    # tile_qc's own figure on these patches: one pale mucin patch is flagged, no more.
    assert sum(r.qc_flagged for r in tissue) <= 1
    for p, r in zip(patches, records):
        if r.classified:
            assert r.qc == 0
            probs = np.asarray(r.probabilities)
            assert r.entropy == pytest.approx(_entropy(probs), abs=1e-5)
            assert r.margin == pytest.approx(_margin(probs), abs=1e-6)
            assert r.unsure == (r.margin < 0.2)
            assert r.tta_spread is None  # no TTA
    # The model saw each classified patch as it is: the same probabilities as one at a time.
    first = next(p for p, r in zip(patches, records) if r.classified)
    np.testing.assert_allclose(records[patches.index(first)].probabilities or (), clf.predict([_rgb(first)])[0],
                               atol=1e-5)


def test_qc_off_classifies_every_patch(clf: Classifier, patches: list[Path]) -> None:
    records = list(classify_files(clf, patches, workers=2, qc=False))
    assert all(r.classified and r.qc == 0 for r in records)
    back = [(p, r) for p, r in zip(patches, records) if p.parent.name in BACKGROUND]
    assert len(back) == 3
    np.testing.assert_allclose([r.probabilities for _, r in back], clf.predict([_rgb(p) for p, _ in back]), atol=1e-5)


def test_tta_spread_is_the_top_class_std_over_the_eight_orientations(model_dir: Path, test_data: Path,
                                                                      tmp_path: Path) -> None:
    plain = Classifier.load(str(model_dir), EngineSettings(device="cpu"))
    tta = Classifier.load(str(model_dir), EngineSettings(device="cpu", tta=True, batch_size=16))
    side = plain.profile.input_size
    # At the model's input size no resize happens, so the orientations commute with it exactly.
    source = Image.open(next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))).convert("RGB")
    tissue = np.asarray(source.resize((side, side), Image.Resampling.BICUBIC))
    path = tmp_path / "tum.png"
    Image.fromarray(tissue).save(path)
    [r] = list(classify_files(tta, [path], workers=1))
    assert r.classified and r.tta_spread is not None
    flipped = tissue[:, ::-1]
    views = plain.predict([np.ascontiguousarray(np.rot90(v, k)) for v in (tissue, flipped) for k in range(4)])
    top = int(np.argmax(views.mean(axis=0)))
    assert r.label_index == top
    assert r.tta_spread == pytest.approx(float(views[:, top].std()), abs=1e-5)
    assert r.to_dict()["tta_spread"] == pytest.approx(r.tta_spread, abs=1e-6)


def test_unreadable_files_stay_errors_beside_flagged_and_classified(clf: Classifier, test_data: Path,
                                                                     tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    back = next((test_data / "patches" / "crc9" / "BACK").iterdir())
    tum = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    records = list(classify_files(clf, [bad, back, tum], workers=2))
    assert [r.ok for r in records] == [False, True, True]
    assert records[0].error and records[0].qc == 0 and records[0].to_dict().keys() == {"path", "error"}
    assert records[1].qc_flagged and not records[1].classified
    assert records[2].classified
    flagged, classified = records[1].to_dict(), records[2].to_dict()
    assert list(flagged) == list(classified) == ["path", "label", "confidence", "probabilities", "entropy",
                                                 "margin", "tta_spread", "qc"]
    assert flagged["qc"] == "glass" and flagged["probabilities"] is None and flagged["label"] is None
    assert classified["qc"] == "" and classified["entropy"] is not None and classified["tta_spread"] is None


def test_records_are_frozen_plain_values(clf: Classifier, test_data: Path) -> None:
    back = next((test_data / "patches" / "crc9" / "BACK").iterdir())
    tum = next((test_data / "patches" / "crc9" / "TUM").glob("*.png"))
    records = list(classify_files(clf, [back, tum], workers=1))
    for r in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.qc = 0  # type: ignore[misc]
        for f in dataclasses.fields(r):
            value = getattr(r, f.name)
            assert value is None or type(value) in (str, int, float, tuple), (f.name, type(value))
        assert pickle.loads(pickle.dumps(r)) == r  # nothing that belongs to one thread or array
    assert all(type(x) is float for x in records[1].probabilities or ())
    assert type(records[0].qc) is int


def test_cancel_still_stops_between_batches(clf: Classifier, patches: list[Path]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        list(classify_files(clf, patches, workers=1, cancel=cancel))
