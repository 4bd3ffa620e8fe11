"""The inference engine: device and precision choice, batching, out-of-memory recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings, select_device, select_precision
from tests.model_factory import TINY_CONFIG, write_checkpoint


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("m"), TINY_CONFIG, seed=3)
    return folder


def test_out_of_memory_halves_the_batch_and_goes_on(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = [np.random.default_rng(i).integers(0, 256, (200, 200, 3), dtype=np.uint8) for i in range(7)]
    expected = Classifier.load(str(model_dir), EngineSettings(device="cpu", batch_size=1)).predict(images)
    clf = Classifier.load(str(model_dir), EngineSettings(device="cpu", batch_size=8))
    real_forward = clf._forward
    sizes: list[int] = []

    def small_memory(x: torch.Tensor) -> torch.Tensor:
        sizes.append(int(x.shape[0]))
        if x.shape[0] > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(x)

    monkeypatch.setattr(clf, "_forward", small_memory)
    got = clf.predict(images)
    assert clf.batch_size == 2
    assert sizes[:3] == [7, 4, 2]
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.timeout(60)  # halving forever at batch size 1 would hang here
def test_out_of_memory_at_batch_one_is_raised(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clf = Classifier.load(str(model_dir), EngineSettings(device="cpu", batch_size=1))

    def no_memory(x: torch.Tensor) -> torch.Tensor:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(clf, "_forward", no_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        clf.predict([np.zeros((32, 32, 3), dtype=np.uint8)])


def test_device_and_precision_choice() -> None:
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        with pytest.raises(SettingsError, match="no CUDA GPU"):
            select_device("cuda")
    with pytest.raises(SettingsError):
        select_device("tpu")
    cpu = torch.device("cpu")
    assert select_precision(cpu, "auto") == "fp32"
    assert select_precision(cpu, "fp16") == "fp32"  # autocast pays off on CUDA only
    with pytest.raises(SettingsError):
        select_precision(cpu, "fp8")


def test_batch_size_must_be_positive(model_dir: Path) -> None:
    with pytest.raises(SettingsError):
        Classifier.load(str(model_dir), EngineSettings(device="cpu", batch_size=0))
