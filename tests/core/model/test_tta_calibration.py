"""Test-time augmentation and temperature scaling in the classifier, and both in the cache key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from chaoyang_desktop.core.analysis.cache import cache_key
from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.model.temperature import TemperatureFile
from tests.export.helpers import make_provenance
from tests.model_factory import TINY_CONFIG, write_checkpoint


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("m"), TINY_CONFIG, seed=11)
    return folder


def _images(n: int, side: int) -> list[np.ndarray]:
    return [np.random.default_rng(40 + i).integers(0, 256, (side, side, 3), dtype=np.uint8) for i in range(n)]


def _orientations(img: np.ndarray) -> list[np.ndarray]:
    """The eight orientations of a square image, built with numpy (not the code under test)."""
    flipped = img[:, ::-1]
    return [np.ascontiguousarray(np.rot90(v, k)) for v in (img, flipped) for k in range(4)]


def test_tta_is_the_mean_and_spread_over_the_eight_orientations(model_dir: Path) -> None:
    plain = Classifier.load(str(model_dir), EngineSettings(device="cpu"))
    tta = Classifier.load(str(model_dir), EngineSettings(device="cpu", tta=True, batch_size=16))
    side = plain.profile.input_size  # at the input size no resize happens, so orientations commute exactly
    images = _images(3, side)
    probs, spread = tta.predict_with_spread(images)
    assert spread is not None and probs.shape == spread.shape == (3, plain.profile.num_classes)
    for img, p, s in zip(images, probs, spread):
        views = plain.predict(_orientations(img))
        np.testing.assert_allclose(p, views.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(s, views.std(axis=0), atol=1e-5)
        assert float(s.max()) > 0  # random weights are not orientation invariant
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_tta_answer_is_the_same_for_any_orientation_of_the_tile(model_dir: Path) -> None:
    tta = Classifier.load(str(model_dir), EngineSettings(device="cpu", tta=True))
    img = _images(1, tta.profile.input_size)[0]
    # The eight views of a rotated or flipped tile are the same eight views, in another order.
    probs = tta.predict(_orientations(img))
    np.testing.assert_allclose(probs, np.repeat(probs[:1], 8, axis=0), atol=1e-5)


def test_without_tta_there_is_no_spread(model_dir: Path) -> None:
    clf = Classifier.load(str(model_dir), EngineSettings(device="cpu"))
    probs, spread = clf.predict_with_spread(_images(2, 64))
    assert spread is None and probs.shape == (2, clf.profile.num_classes)


def test_temperature_divides_the_logits(model_dir: Path, tmp_path: Path) -> None:
    plain = Classifier.load(str(model_dir), EngineSettings(device="cpu"))
    images = _images(4, 96)
    p1 = plain.predict(images).astype(np.float64)
    file = TemperatureFile(temperature=2.5, model_id=plain.profile.model_id, weights_sha256=plain.profile.weights_sha256)
    file.save(tmp_path / "calibration.json")
    calibrated = Classifier.load(str(model_dir), EngineSettings(device="cpu", calibration=str(tmp_path / "calibration.json")))
    assert calibrated.temperature == 2.5 and calibrated.calibration is not None
    # Reference: softmax(log p / T), since log p differs from the logits by a per-row constant.
    z = np.log(p1) / 2.5
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = calibrated.predict(images)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert (got.argmax(axis=1) == p1.argmax(axis=1)).all()  # calibration never changes the class


def test_a_temperature_for_other_weights_is_refused(model_dir: Path, tmp_path: Path) -> None:
    TemperatureFile(temperature=1.5, model_id="other", weights_sha256="0" * 64).save(tmp_path / "other.json")
    with pytest.raises(SettingsError, match="fitted for other weights"):
        Classifier.load(str(model_dir), EngineSettings(device="cpu", calibration=str(tmp_path / "other.json")))
    with pytest.raises(SettingsError, match="No calibration file"):
        Classifier.load(str(model_dir), EngineSettings(device="cpu", calibration=str(tmp_path / "missing.json")))
    (tmp_path / "bad.json").write_text('{"kind": "something else"}', encoding="utf-8")
    with pytest.raises(SettingsError, match="not a Chaoyang Desktop calibration file"):
        TemperatureFile.load(tmp_path / "bad.json")


def test_quality_control_tta_and_temperature_are_in_the_cache_key() -> None:
    base = dataclasses.replace(make_provenance(256.0), qc=True, qc_version=1)
    keys = {cache_key(base),
            cache_key(dataclasses.replace(base, qc=False, qc_version=None)),
            cache_key(dataclasses.replace(base, tta=True)),
            cache_key(dataclasses.replace(base, temperature=1.7))}
    assert len(keys) == 4
    # The calibration file's name is not: the same temperature from another file is the same result.
    assert cache_key(dataclasses.replace(base, calibration="/a/cal.json")) == cache_key(base)
