"""Preprocessing: the geometric half on the CPU with OpenCV, the photometric half on the device.

The default reproduces what the model saw in training (``shared/MODEL.md``): ``cv2.resize`` with
``INTER_LINEAR`` on the uint8 tile, to the 384 px input size, BGR channel order, then /255 and
normalisation with mean 0.5, std 0.5. It calls the very function training called, so the
network sees bit-identical pixels; a float re-implementation of the resize differs from it by one
level on about a third of the pixels.

The resize runs where the tiles are read (the pipeline's reader threads; OpenCV releases the GIL),
so only input-sized uint8 tiles travel to the inference device.

Tiles read much finer than the training patch (more than 5 % larger than ``tile_px``) are first
reduced to the training patch size with ``INTER_AREA``, OpenCV's antialiased reduction, so the
final linear step sees the 512 -> 384 ratio of training instead of skipping pixels.

The ``antialias`` resize method is the model card's path instead: PIL's bilinear resize, which is
what the Hugging Face image processor runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from chaoyang_desktop.core.model.profile import ModelProfile

# Tiles up to this much larger than the training patch go straight to the final resize.
_PREREDUCE_RATIO = 1.05


def resize_tile(img: np.ndarray, profile: ModelProfile, tile_px: int | None = None) -> np.ndarray:
    """One (H, W, 3) uint8 RGB image to the (S, S, 3) uint8 network input size.

    Args:
        img: RGB pixels.
        profile: Supplies the input size and the resize method.
        tile_px: Training patch size; tiles much larger are reduced to it first. ``None``: the
            profile's.
    """
    size = profile.input_size
    if img.shape[0] == size and img.shape[1] == size:
        return np.ascontiguousarray(img)
    if profile.resize == "antialias":
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.Resampling.BILINEAR))
    tile_px = profile.tile_px if tile_px is None else tile_px
    if max(img.shape[0], img.shape[1]) > tile_px * _PREREDUCE_RATIO:
        img = cv2.resize(img, (tile_px, tile_px), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)


def resize_tiles(images: Sequence[np.ndarray], profile: ModelProfile, tile_px: int | None = None) -> np.ndarray:
    """Images of any sizes to one (N, S, S, 3) uint8 batch (see :func:`resize_tile`)."""
    size = profile.input_size
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = resize_tile(img, profile, tile_px)
    return out


def normalise(x: torch.Tensor, profile: ModelProfile) -> torch.Tensor:
    """Channel order, then mean/std, on an (N, 3, S, S) float RGB batch on the 0..255 scale.

    Training calls this after its augmentations, so a fine-tuned model sees exactly the pixels
    inference gives it.
    """
    if profile.channel_order == "bgr":
        return _scale_shift_(x.flip(1), profile)  # flip made a copy: normalise it in place
    return _scale_shift_(x.clone(), profile)


def _scale_shift_(x: torch.Tensor, profile: ModelProfile) -> torch.Tensor:
    """``(x - 255 mean) / (255 std)`` in place, as one multiply and one add."""
    mean = torch.tensor(profile.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(profile.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.mul_(1.0 / (255.0 * std)).add_(-mean / std)


def to_float_nchw(batch: torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) uint8 to (N, 3, S, S) float on the 0..255 scale, on the batch's device."""
    return batch.permute(0, 3, 1, 2).contiguous().float()


def preprocess_uint8(batch: torch.Tensor, profile: ModelProfile, tile_px: int | None = None) -> torch.Tensor:
    """Turn an (N, H, W, 3) uint8 RGB tensor into the network's normalised (N, 3, S, S) float input.

    A batch already at the input size (what the pipeline sends) is only normalised, on its device.
    Any other size is resized on the CPU first with :func:`resize_tile`.
    """
    size = profile.input_size
    if batch.shape[1] != size or batch.shape[2] != size:
        resized = resize_tiles(list(batch.cpu().numpy()), profile, tile_px)
        batch = torch.from_numpy(resized).to(batch.device)
    if profile.channel_order == "bgr":
        batch = batch.flip(3)  # on bytes: a quarter of the memory traffic of flipping floats
    return _scale_shift_(to_float_nchw(batch), profile)
