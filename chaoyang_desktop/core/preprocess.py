"""Batch preprocessing in torch, on the inference device.

The default reproduces what the model saw in training (``shared/MODEL.md``): BGR channel order,
OpenCV-style bilinear resize without antialiasing to the input size, values rounded to 8 bits
as ``cv2.resize`` returns them, then /255 and normalisation with mean 0.5, std 0.5.

Tiles read from a pyramid level much finer than the training resolution are first reduced to the
training patch size with an antialiased resize, so the final no-antialias step sees the same
scale ratio as in training instead of skipping pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from chaoyang_desktop.core.profile import ModelProfile

# Tiles up to this much larger than the training patch go straight to the final resize.
_PREREDUCE_RATIO = 1.05


def _resize(x: torch.Tensor, size: int, method: str) -> torch.Tensor:
    if x.shape[-2:] == (size, size):
        return x
    antialias = method == "antialias" and (x.shape[-1] > size or x.shape[-2] > size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias)


def resize_to_input(batch: torch.Tensor, profile: ModelProfile, tile_px: int | None = None) -> torch.Tensor:
    """The geometric half of :func:`preprocess_uint8`: (N, H, W, 3) uint8 RGB to (N, 3, S, S) float RGB.

    Values stay on the 0..255 scale, rounded as ``cv2.resize`` on uint8 data returns them. Training
    calls this, augments, then :func:`normalise`, so a fine-tuned model sees exactly the pixels
    inference gives it.

    Args:
        batch: RGB pixels, already on the target device.
        profile: Supplies input size and resize method.
        tile_px: Training patch size; tiles much larger are reduced to it first. ``None``: the
            profile's.
    """
    tile_px = profile.tile_px if tile_px is None else tile_px
    if _uint8_resize_applies(batch, tile_px):
        return _resize(batch.permute(0, 3, 1, 2), profile.input_size, profile.resize).float()
    x = batch.permute(0, 3, 1, 2).float()
    if max(x.shape[-2:]) > tile_px * _PREREDUCE_RATIO:
        x = F.interpolate(x, size=(tile_px, tile_px), mode="bilinear", align_corners=False, antialias=True)
    x = _resize(x, profile.input_size, profile.resize)
    # cv2.resize on uint8 data returns uint8: keep that quantisation so we match training.
    return x.round_().clamp_(0.0, 255.0)


def normalise(x: torch.Tensor, profile: ModelProfile) -> torch.Tensor:
    """The photometric half of :func:`preprocess_uint8`: channel order, then mean/std.

    Args:
        x: (N, 3, S, S) float RGB on the 0..255 scale (from :func:`resize_to_input`).
        profile: Supplies channel order, mean and std.
    """
    if profile.channel_order == "bgr":
        return _scale_shift_(x.flip(1), profile)  # flip made a copy: normalise it in place
    return _scale_shift_(x.clone(), profile)


def _scale_shift_(x: torch.Tensor, profile: ModelProfile) -> torch.Tensor:
    """``(x - 255 mean) / (255 std)`` in place, as one multiply and one add."""
    mean = torch.tensor(profile.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(profile.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.mul_(1.0 / (255.0 * std)).add_(-mean / std)


def _uint8_resize_applies(batch: torch.Tensor, tile_px: int) -> bool:
    """Whether the uint8 CPU resize serves this batch.

    PyTorch resizes uint8 channels-last images on the CPU with fixed-point SIMD kernels that round
    to uint8 as cv2.resize does: about 10x faster than resizing floats, and as close to OpenCV (at
    most one level apart on real H&E, like the float path). CUDA has no uint8 kernel, and tiles
    that need the antialiased pre-reduction keep float precision between the two resizes.
    """
    return (batch.dtype == torch.uint8 and batch.device.type == "cpu"
            and max(batch.shape[1], batch.shape[2]) <= tile_px * _PREREDUCE_RATIO)


def preprocess_uint8(batch: torch.Tensor, profile: ModelProfile, tile_px: int | None = None) -> torch.Tensor:
    """Turn an (N, H, W, 3) uint8 RGB tensor into the network's normalised (N, 3, S, S) float input.

    Args:
        batch: RGB pixels, already on the target device.
        profile: Supplies input size, resize method, channel order, mean and std.
        tile_px: Training patch size; tiles much larger are reduced to it first. ``None``: the
            profile's.
    """
    tile_px = profile.tile_px if tile_px is None else tile_px
    if _uint8_resize_applies(batch, tile_px):
        # The CPU path keeps uint8 as long as it can: channel order is picked on bytes, and the
        # one float tensor is laid out as the model reads it (NCHW) and normalised in place.
        # The result equals normalise(resize_to_input(...)) up to float rounding.
        x8 = _resize(batch.permute(0, 3, 1, 2), profile.input_size, profile.resize)
        if profile.channel_order == "bgr":
            x8 = x8[:, [2, 1, 0]]
        return _scale_shift_(x8.contiguous().float(), profile)
    return normalise(resize_to_input(batch, profile, tile_px), profile)


def stack_images(images: Sequence[np.ndarray]) -> list[tuple[list[int], np.ndarray]]:
    """Group images of equal shape into stacked arrays: ``[(indices, (n, H, W, 3) array), ...]``."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(tuple(img.shape), []).append(i)
    return [(idx, np.stack([images[i] for i in idx])) for idx in groups.values()]
