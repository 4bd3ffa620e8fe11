"""Preprocessing matches the training pipeline (OpenCV linear resize, BGR, 0.5/0.5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chaoyang_desktop.core.preprocess import preprocess_uint8
from chaoyang_desktop.core.profile import ModelProfile, VitArch

cv2 = pytest.importorskip("cv2")


def _profile(**kw: object) -> ModelProfile:
    arch = VitArch(384, 16, 3, 768, 12, 12, 3072, 1e-12, True, "gelu")
    base = ModelProfile("m", "local", "/m", "/m/w", "0" * 64, arch, ("A", "B"), ("#000000", "#ffffff"))
    return base.with_overrides(**kw)  # type: ignore[arg-type]


def _h_and_e_like(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([200, 120, 180], dtype=np.float64)
    noise = rng.normal(0, 35, (512, 512, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def test_resize_matches_opencv_inter_linear(test_data: Path) -> None:
    from chaoyang_desktop.core.imageio import decode_image

    real = decode_image(next((test_data / "images").glob("*.jpg")))[:512, :512]
    for img in (_h_and_e_like(), real):
        prof = _profile(channel_order="rgb")
        ours = preprocess_uint8(torch.from_numpy(img[None]), prof)[0]
        ours_u8 = (ours * 127.5 + 127.5).permute(1, 2, 0).numpy()
        ref = cv2.resize(img, (384, 384), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        assert np.abs(ours_u8 - ref).max() <= 1.0 + 1e-3  # within 1/255 per pixel


def test_bgr_is_what_cv2_imread_gives(tmp_path: Path) -> None:
    img = _h_and_e_like(1)
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), img[..., ::-1])  # cv2 writes BGR arrays: the file holds `img` as RGB
    train = cv2.resize(cv2.imread(str(path)), (384, 384), interpolation=cv2.INTER_LINEAR)
    train_x = (train.astype(np.float32) / 255.0 - 0.5) / 0.5
    ours = preprocess_uint8(torch.from_numpy(img[None]), _profile(channel_order="bgr"))[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - train_x).max() <= 2.0 / 255 + 1e-5


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
