"""The network input built the way the model's training code built it, with none of our code.

Training (``shared/MODEL.md``) read each patch with ``cv2.imread`` (BGR), resized it with
``cv2.resize(..., INTER_LINEAR)`` to 384 px, then the Hugging Face processor scaled by 1/255 and
normalised with mean 0.5, std 0.5. Tests compare our preprocessing against this.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def training_input(rgb_images: list[np.ndarray], channel_order: str = "bgr", size: int = 384) -> torch.Tensor:
    """(N, 3, size, size) float32 pixel values for transformers' ``ViTForImageClassification``."""
    out = []
    for rgb in rgb_images:
        img = rgb[..., ::-1] if channel_order == "bgr" else rgb  # cv2.imread gives BGR
        img = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_LINEAR)
        x = (img.astype(np.float32) / 255.0 - 0.5) / 0.5
        out.append(x.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))
