"""Preprocessing matches the training pipeline (OpenCV linear resize, BGR, 0.5/0.5).

The references come from ``tests/reference.py`` (OpenCV and NumPy as training used them) or from
PIL for the model card's path, never from the code under test.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from chaoyang_desktop.core.model.preprocess import preprocess_uint8, resize_tile
from chaoyang_desktop.core.model.profile import ModelProfile, VitArch
from tests.reference import training_input


def _profile(**kw: object) -> ModelProfile:
    arch = VitArch(384, 16, 3, 768, 12, 12, 3072, 1e-12, True, "gelu")
    base = ModelProfile("m", "local", "/m", "/m/w", "0" * 64, arch, ("A", "B"), ("#000000", "#ffffff"))
    return base.with_overrides(**kw)  # type: ignore[arg-type]


def _h_and_e_like(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([200, 120, 180], dtype=np.float64)
    noise = rng.normal(0, 35, (512, 512, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(512, 512), (517, 500), (384, 384), (150, 150)])
@pytest.mark.parametrize("channel_order", ["bgr", "rgb"])
def test_input_is_exactly_the_training_input(test_data: Path, shape: tuple[int, int], channel_order: str) -> None:
    from chaoyang_desktop.core.slide.imageio import decode_image

    real = decode_image(next((test_data / "images").glob("*.jpg")))[700 : 700 + shape[0], 900 : 900 + shape[1]]
    for img in (_h_and_e_like()[: shape[0], : shape[1]], real):
        ours = preprocess_uint8(torch.from_numpy(np.ascontiguousarray(img)[None]), _profile(channel_order=channel_order))
        ref = training_input([img], channel_order)
        assert torch.abs(ours - ref).max() < 1e-6  # bit-identical pixels; float rounding only


def test_bgr_is_what_cv2_imread_gives(tmp_path: Path) -> None:
    img = _h_and_e_like(1)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), img[..., ::-1])  # cv2 writes BGR arrays: the file holds `img` as RGB
    train = cv2.resize(cv2.imread(str(path)), (384, 384), interpolation=cv2.INTER_LINEAR)
    train_x = (train.astype(np.float32) / 255.0 - 0.5) / 0.5
    ours = preprocess_uint8(torch.from_numpy(img[None]), _profile(channel_order="bgr"))[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - train_x).max() < 1e-6


def test_antialias_method_is_the_model_card_path() -> None:
    img = _h_and_e_like(2)
    ref = np.asarray(Image.fromarray(img).resize((384, 384), Image.Resampling.BILINEAR))
    assert np.array_equal(resize_tile(img, _profile(resize="antialias")), ref)
    assert not np.array_equal(resize_tile(img, _profile(resize="linear")), ref)


def test_normalisation_range_and_shape() -> None:
    batch = torch.stack([torch.zeros(100, 80, 3, dtype=torch.uint8), torch.full((100, 80, 3), 255, dtype=torch.uint8)])
    x = preprocess_uint8(batch, _profile())
    assert x.shape == (2, 3, 384, 384)
    assert torch.allclose(x[0], torch.tensor(-1.0)) and torch.allclose(x[1], torch.tensor(1.0))


def test_large_tiles_are_reduced_with_antialiasing_first() -> None:
    # A fine checkerboard averages to grey when reduced properly; skipping pixels would alias.
    board = (np.indices((1536, 1536)).sum(axis=0) % 2 * 255).astype(np.uint8)
    img = np.repeat(board[..., None], 3, axis=2)
    x = preprocess_uint8(torch.from_numpy(img[None]), _profile())
    assert float(x.std()) < 0.05
