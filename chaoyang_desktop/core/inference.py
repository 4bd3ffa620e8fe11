"""The inference engine: device choice, precision, batching and the loaded classifier.

One :class:`Classifier` holds a timm ViT on a device. It takes RGB uint8 pixels (numpy arrays or
a tensor), preprocesses them on the same device and returns class probabilities. On CUDA it runs
under bf16 autocast (fp16 where bf16 is unsupported) unless fp32 is asked for, and when the GPU
runs out of memory it halves the batch and goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chaoyang_desktop.core.checkpoint import load_vit
from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model_source import ProgressFn, load_profile, resolve_model
from chaoyang_desktop.core.preprocess import preprocess_uint8, stack_images
from chaoyang_desktop.core.profile import ModelProfile

log = logging.getLogger(__name__)

DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(preference: str = "auto") -> torch.device:
    """CUDA > MPS > CPU for ``auto``; a forced device that is absent is an error, not a fallback."""
    pref = (preference or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SettingsError("--device cuda was asked for, but no CUDA GPU is available to PyTorch; use --device cpu or auto.")
        return torch.device(pref)
    if pref == "mps":
        if not _mps_available():
            raise SettingsError("--device mps was asked for, but Apple's Metal backend is not available; use --device cpu or auto.")
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    raise SettingsError(f"Unknown device {preference!r}; choose one of {', '.join(DEVICES)}.")


def select_precision(device: torch.device, preference: str = "auto") -> str:
    """The precision actually used on ``device``: autocast only where it pays off (CUDA)."""
    pref = (preference or "auto").lower()
    if pref not in PRECISIONS:
        raise SettingsError(f"Unknown precision {preference!r}; choose one of {', '.join(PRECISIONS)}.")
    if device.type != "cuda":
        if pref in ("bf16", "fp16"):
            log.info("Precision %s is only used on CUDA; running fp32 on %s.", pref, device.type)
        return "fp32"
    if pref == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if pref == "bf16" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return pref


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple Metal"
    return f"CPU ({torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class EngineSettings:
    """Inference settings shared by the CLI, the GUI and the pipeline."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 16
    threads: int | None = None
    channel_order: str | None = None
    resize: str | None = None


class Classifier:
    """A loaded model on a device, ready to turn pixels into class probabilities."""

    def __init__(self, model: torch.nn.Module, profile: ModelProfile, device: torch.device, precision: str,
                 batch_size: int = 16) -> None:
        if batch_size < 1:
            raise SettingsError(f"The batch size must be at least 1 (got {batch_size}).")
        self.profile = profile
        self.device = device
        self.precision = precision
        self.batch_size = int(batch_size)
        self.model = model.to(device).eval()
        # One forward at a time: the GUI may share a classifier between a patch job and a slide job.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str | None = None, settings: EngineSettings | None = None, *, allow_download: bool = False,
             progress: ProgressFn | None = None) -> Classifier:
        """Resolve, read and place a model according to ``settings``."""
        settings = settings or EngineSettings()
        if settings.threads:
            torch.set_num_threads(int(settings.threads))
        device = select_device(settings.device)
        precision = select_precision(device, settings.precision)
        location = resolve_model(model, allow_download=allow_download, progress=progress)
        profile = load_profile(location).with_overrides(channel_order=settings.channel_order, resize=settings.resize)
        net = load_vit(Path(profile.weights_file), profile.arch, profile.num_classes)
        return cls(net, profile, device, precision, settings.batch_size)

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=dtype):
                logits = self.model(x)
        else:
            logits = self.model(x)
        return torch.softmax(logits.float(), dim=1)

    def predict_tensor(self, batch_uint8: torch.Tensor) -> np.ndarray:
        """Probabilities (N, C) for an (N, H, W, 3) uint8 RGB tensor on any device."""
        n = int(batch_uint8.shape[0])
        out = np.empty((n, self.profile.num_classes), dtype=np.float32)
        start = 0
        with self._lock, torch.inference_mode():
            while start < n:
                size = min(self.batch_size, n - start)
                chunk = batch_uint8[start : start + size]
                try:
                    x = preprocess_uint8(chunk.to(self.device, non_blocking=True), self.profile)
                    out[start : start + size] = self._forward(x).cpu().numpy()
                except torch.cuda.OutOfMemoryError:
                    if self.batch_size == 1:
                        raise
                    torch.cuda.empty_cache()
                    self.batch_size = max(1, self.batch_size // 2)
                    log.warning("GPU out of memory; batch size lowered to %d.", self.batch_size)
                    continue
                start += size
        return out

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities (N, C) for RGB uint8 images of any sizes (grouped by size internally)."""
        out = np.empty((len(images), self.profile.num_classes), dtype=np.float32)
        for indices, stacked in stack_images(images):
            tensor = torch.from_numpy(stacked)
            if self.device.type == "cuda":
                tensor = tensor.pin_memory()
            out[indices] = self.predict_tensor(tensor)
        return out


class ClassifierCache:
    """Keeps the last loaded classifier, so jobs that share a model and settings share one copy.

    The GUI's slide worker and patch worker both ask it; a ViT-B holds ~350 MB and loading it
    takes seconds, so it is loaded once per (model, settings) and reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, EngineSettings] | None = None
        self._classifier: Classifier | None = None

    def get(self, model: str | None, settings: EngineSettings, *, allow_download: bool = False,
            progress: ProgressFn | None = None) -> Classifier:
        key = (model or "", settings)
        with self._lock:
            if self._key != key or self._classifier is None:
                self._classifier = None  # free the old model before loading the next
                self._classifier = Classifier.load(model, settings, allow_download=allow_download, progress=progress)
                self._key = key
            return self._classifier

    def clear(self) -> None:
        with self._lock:
            self._key = None
            self._classifier = None
