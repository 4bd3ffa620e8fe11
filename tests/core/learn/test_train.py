"""The fine-tuning recipe: split before oversampling, balanced sampling, augmentations, resume, early stopping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from chaoyang_desktop.core.learn import train as train_mod
from chaoyang_desktop.core.learn.datasets import load_labelled_dataset
from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.inference import Classifier, EngineSettings
from chaoyang_desktop.core.model.preprocess import normalise, preprocess_uint8
from chaoyang_desktop.core.learn.train import (
    TrainSettings,
    augment_batch,
    crop_box,
    oversample,
    split_train_val,
    train_model,
)
from tests.model_factory import TINY_CONFIG, write_checkpoint
from tests.reference import training_input

ABC = {"0": "a", "1": "b", "2": "c"}
# 64 px input, 4 patches: a whole epoch takes milliseconds on a CPU.
MINI_CONFIG: dict[str, Any] = {**TINY_CONFIG, "image_size": 64, "id2label": ABC, "label2id": {v: int(k) for k, v in ABC.items()}}


def test_split_is_stratified_seeded_and_disjoint() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    s = split_train_val(labels, 3, 0.1, seed=0)
    assert set(s.train).isdisjoint(s.val) and sorted(s.train + s.val) == list(range(100))
    assert np.bincount(labels[list(s.val)], minlength=3).tolist() == [5, 3, 2]  # the data's own distribution
    assert split_train_val(labels, 3, 0.1, seed=0) == s
    assert split_train_val(labels, 3, 0.1, seed=1) != s
    # Small classes: round(0.1 * 28) = 3 held out, never a class's only image.
    small = np.array([0] * 3 + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3 + [6] * 3 + [7] * 3 + [8] * 3 + [9])
    s2 = split_train_val(small, 10, 0.1, seed=0)
    assert len(s2.val) == 3 and 27 in s2.train
    assert max(np.bincount(small[list(s2.val)], minlength=10)) == 1
    assert split_train_val(labels, 3, 0.0, seed=0).val == ()


def test_oversampling_balances_after_the_split() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    s = split_train_val(labels, 3, 0.1, seed=0)
    pool = oversample(s.train, labels, seed=0)
    assert np.bincount(labels[pool], minlength=3).tolist() == [45, 45, 45]
    assert set(pool) == set(s.train) and not set(pool) & set(s.val)  # every image used, none from validation
    counts = np.bincount(pool, minlength=100)[list(s.train)]
    assert counts.max() - counts[labels[list(s.train)] == 2].min() <= 1 + 45 // 18  # copies spread evenly


def test_crop_box_stays_inside_with_the_recipe_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        top, left, h, w = crop_box(384, 384, gen)
        assert 0 <= top and 0 <= left and top + h <= 384 and left + w <= 384
        assert 0.5 * 384 * 384 * 0.97 <= h * w <= 384 * 384


def test_augmentations_keep_pixels_or_crop_and_are_seeded() -> None:
    x = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(1, 3, 8, 8).repeat(64, 1, 1, 1)
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert torch.equal(a, a.round()) and a.min() >= 0 and a.max() <= 255
    img = x[0]
    dihedral = [torch.rot90(f, k, dims=(-2, -1)) for f in (img, img.flip(-1)) for k in range(4)]
    moved = sum(any(torch.equal(out, d) for d in dihedral) for out in a)
    assert 16 <= moved < 64  # about half the samples are only flipped/rotated, the rest cropped too


def test_training_input_is_the_inference_input(tmp_path: Path) -> None:
    """Without augmentation, training feeds the network exactly what the classifier would."""
    folder, _ = write_checkpoint(tmp_path / "m", TINY_CONFIG)
    clf = Classifier.load(str(folder), EngineSettings(device="cpu"))
    img = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    ours = normalise(train_mod._resized([img], clf.profile, torch.device("cpu")), clf.profile)
    assert torch.equal(ours, preprocess_uint8(torch.from_numpy(img[None]), clf.profile))
    assert torch.abs(ours - training_input([img])).max() < 1e-6


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3-class base model and 10 labelled synthetic patches (5 a, 3 b, 2 c)."""
    root = tmp_path_factory.mktemp("mini")
    base, _ = write_checkpoint(root / "base", MINI_CONFIG, seed=4)
    rng = np.random.default_rng(0)
    for cls, n, tint in (("a", 5, (200, 90, 160)), ("b", 3, (120, 60, 170)), ("c", 2, (230, 200, 220))):
        for i in range(n):
            arr = np.clip(np.array(tint) + rng.normal(0, 25, (40, 40, 3)), 0, 255).astype(np.uint8)
            (root / "data" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / "data" / cls / f"{i}.png")
    return base, root / "data"


def _settings(**kw: Any) -> TrainSettings:
    return TrainSettings(**{"batch_size": 4, "val_fraction": 0.2, "device": "cpu", "workers": 2, **kw})


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def test_resume_gives_the_same_model_as_an_uninterrupted_run(mini: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = mini
    ds = load_labelled_dataset(data, ("a", "b", "c"))
    straight = train_model(ds, tmp_path / "straight", base=str(base), settings=_settings(epochs=2))
    first = train_model(ds, tmp_path / "resumed", base=str(base), settings=_settings(epochs=1))
    assert len(first.history) == 1
    state = torch.load(tmp_path / "resumed" / "checkpoint-last.pt", weights_only=True)  # plain tensors and containers
    assert state["epoch"] == 1 and state["classes"] == ["a", "b", "c"]
    with pytest.raises(SettingsError, match="--resume"):
        train_model(ds, tmp_path / "resumed", base=str(base), settings=_settings(epochs=2))
    with pytest.raises(SettingsError, match="lr"):
        train_model(ds, tmp_path / "resumed", settings=_settings(epochs=2, lr=1e-3), resume=True)
    resumed = train_model(ds, tmp_path / "resumed", settings=_settings(epochs=2), resume=True)
    assert [r.epoch for r in resumed.history] == [1, 2]
    for a, b in zip(straight.history, resumed.history):
        assert (a.train_loss, a.val_loss, a.best) == (b.train_loss, b.val_loss, b.best)
    wa, wb = _weights(straight.model_dir), _weights(resumed.model_dir)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not straight.head_replaced
    info = json.loads((tmp_path / "resumed" / "training.json").read_text())
    assert info["status"] == "finished" and info["epochs_run"] == 2
    assert info["split"]["val_counts"] == {"a": 1, "b": 1, "c": 0} and info["split"]["train_per_epoch_after_oversampling"] == {
        "a": 4, "b": 4, "c": 4}
    split = json.loads((tmp_path / "resumed" / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"])


def test_early_stopping_keeps_the_best_epoch(mini: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, data = mini
    losses = iter([1.0, 0.8, 0.9, 0.85, 0.7])
    monkeypatch.setattr(train_mod._Trainer, "validate", lambda self, pool, cancel: (next(losses), 0.5, 0.5))
    saved: list[int] = []
    real_save = train_mod.save_model
    monkeypatch.setattr(train_mod, "save_model", lambda net, d: saved.append(1) or real_save(net, d))
    seen: list[int] = []
    result = train_model(load_labelled_dataset(data, ("a", "b", "c")), tmp_path / "run", base=str(base),
                         settings=_settings(epochs=10, patience=2), on_epoch=lambda r, h: seen.append(r.epoch))
    assert result.stopped_early and seen == [1, 2, 3, 4]
    assert result.best_epoch == 2 and result.best_val_loss == 0.8 and len(saved) == 2
    assert [r.best for r in result.history] == [True, True, False, False]
    assert json.loads((tmp_path / "run" / "training.json").read_text())["status"] == "stopped early"


def test_new_classes_get_a_new_head(mini: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = mini
    ds = load_labelled_dataset(data, class_map={"a": "x", "b": "y", "c": "y"})
    messages: list[str] = []
    result = train_model(ds, tmp_path / "run", base=str(base), settings=_settings(epochs=1, val_fraction=0.0),
                         on_message=messages.append)
    assert result.head_replaced and any("from scratch" in m for m in messages)
    assert result.best_epoch == 1 and result.split.val == ()
    cfg = json.loads((result.model_dir / "config.json").read_text())
    assert cfg["id2label"] == {"0": "x", "1": "y"} and cfg["label2id"] == {"x": 0, "y": 1}
    assert cfg["image_size"] == 64 and cfg["layer_norm_eps"] == 1e-12
    clf = Classifier.load(str(result.model_dir), EngineSettings(device="cpu"))
    assert clf.profile.class_names == ("x", "y") and clf.profile.channel_order == "bgr"
    assert clf.predict([np.zeros((40, 40, 3), np.uint8)]).shape == (1, 2)


def test_training_precision_is_autocast_on_cuda_only() -> None:
    from chaoyang_desktop.core.learn.train import training_precision

    assert training_precision(torch.device("cpu"), "bf16") == "fp32"  # CPU inference modes do not train
    with pytest.raises(SettingsError, match="int8"):
        training_precision(torch.device("cpu"), "int8")
