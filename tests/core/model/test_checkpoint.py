"""Loading Hugging Face ViT checkpoints into timm: parity with transformers, and refusals."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from chaoyang_desktop.core.model.checkpoint import hf_to_timm, load_vit, read_state_dict, timm_to_hf_v4
from chaoyang_desktop.core.errors import CheckpointError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from tests.model_factory import BASE_CONFIG, TINY_CONFIG, write_checkpoint
from tests.reference import training_input


def _reference_probs(hf_model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(hf_model(pixel_values=x).logits, dim=1).numpy()


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    return write_checkpoint(tmp_path_factory.mktemp("base"), BASE_CONFIG, seed=1)


@pytest.mark.parametrize("channel_order", ["bgr", "rgb"])
def test_parity_with_transformers_full_vit_b(base_checkpoint: tuple[Path, torch.nn.Module], channel_order: str) -> None:
    folder, hf_model = base_checkpoint
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert len(state) == 200 and "vit.encoder.layer.0.attention.attention.query.weight" in state  # 4.x names
    clf = Classifier.load(str(folder), EngineSettings(device="cpu", channel_order=channel_order))
    rng = np.random.default_rng(3)
    # The sizes that occur: the input size (no resize), the training patch, and an odd tile.
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((384, 384), (512, 512), (517, 500))]
    ours = clf.predict(images)
    ref = _reference_probs(hf_model, training_input(images, channel_order))
    assert np.abs(ours - ref).max() < 1e-5
    assert ref.max() - ref.min() > 0.05  # the reference is not a flat 0.25 everywhere
    assert len(clf.model.state_dict()) == 152


def test_channel_order_changes_input(base_checkpoint: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = base_checkpoint
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[..., 0] = 200  # red only
    bgr = Classifier.load(str(folder), EngineSettings(device="cpu", channel_order="bgr")).predict([img])
    rgb = Classifier.load(str(folder), EngineSettings(device="cpu", channel_order="rgb")).predict([img])
    assert np.abs(bgr - rgb).max() > 1e-4


def test_transformers_5_names_and_safetensors_load(tmp_path: Path) -> None:
    folder, hf_model = write_checkpoint(tmp_path, TINY_CONFIG, layout="v5", fmt="safetensors", seed=2)
    assert (folder / "model.safetensors").is_file()
    clf = Classifier.load(str(folder), EngineSettings(device="cpu"))
    img = np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)
    assert np.abs(clf.predict([img]) - _reference_probs(hf_model, training_input([img]))).max() < 1e-5


def test_layer_norm_eps_and_sizes_come_from_config(tmp_path: Path) -> None:
    cfg = {**TINY_CONFIG, "layer_norm_eps": 1e-6, "num_hidden_layers": 3, "image_size": 224}
    folder, _ = write_checkpoint(tmp_path, cfg)
    clf = Classifier.load(str(folder), EngineSettings(device="cpu"))
    assert clf.model.norm.eps == 1e-6 and len(clf.model.blocks) == 3
    assert clf.profile.input_size == 224
    assert clf.profile.class_names == ("Normal", "Serrated", "Adenocarcinoma", "Adenoma")


def test_class_names_are_read_not_hard_coded(tmp_path: Path) -> None:
    cfg = {**TINY_CONFIG, "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2", "3": "LABEL_3"}}
    folder, _ = write_checkpoint(tmp_path, cfg)
    clf = Classifier.load(str(folder), EngineSettings(device="cpu"))
    assert clf.profile.class_names == ("LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3")


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    folder, _ = write_checkpoint(tmp_path, TINY_CONFIG)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["classifier.weight"] = torch.zeros(5, TINY_CONFIG["hidden_size"])
    del state["vit.layernorm.bias"]
    state["vit.pooler.dense.weight"] = torch.zeros(2, 2)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError) as err:
        Classifier.load(str(folder), EngineSettings(device="cpu"))
    msg = str(err.value)
    assert "head.weight (5, 48) (expected (4, 48))" in msg
    assert "missing tensors: norm.bias" in msg
    assert "vit.pooler.dense.weight" in msg


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED_MARKER",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = write_checkpoint(tmp_path / "m", TINY_CONFIG)
    monkeypatch.chdir(tmp_path)
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        torch.save({"weights": _Evil()}, folder / "pytorch_model.bin", pickle_protocol=protocol)
        with pytest.raises(CheckpointError, match="would run code"):
            Classifier.load(str(folder), EngineSettings(device="cpu"))
        assert not (tmp_path / "PWNED_MARKER").exists()


def test_garbage_weights_file(tmp_path: Path) -> None:
    folder, _ = write_checkpoint(tmp_path, TINY_CONFIG)
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="refused: it is not a plain tensor checkpoint"):
        Classifier.load(str(folder), EngineSettings(device="cpu"))


def test_timm_round_trip_names(tmp_path: Path) -> None:
    folder, _ = write_checkpoint(tmp_path, TINY_CONFIG)
    state = read_state_dict(folder / "pytorch_model.bin")
    timm_state = hf_to_timm(state, TINY_CONFIG["num_hidden_layers"])
    back = timm_to_hf_v4(timm_state)
    assert set(back) == set(state)
    for k in state:
        assert torch.equal(back[k], state[k])


def test_load_vit_is_eval_mode(tmp_path: Path) -> None:
    from chaoyang_desktop.core.model.profile import arch_from_config

    folder, _ = write_checkpoint(tmp_path, TINY_CONFIG)
    model = load_vit(folder / "pytorch_model.bin", arch_from_config(TINY_CONFIG), 4)
    assert not model.training
