"""The inference engine: device choice, precision, batching and the loaded classifier.

One :class:`Classifier` holds a timm ViT on a device. It takes RGB uint8 pixels (numpy arrays or
a tensor), resizes them on the CPU as training did (OpenCV), normalises them on the device and
returns class probabilities. On CUDA it runs under bf16 autocast (fp16 where bf16 is
unsupported) unless fp32 is asked for, and when the GPU runs out of memory it halves the batch
and goes on.

Two opt-in fast CPU modes (``docs/performance.md`` has the measurements):

- ``bf16``: weights and activations in bfloat16, on CPUs with native bf16 matrix instructions
  (AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower than fp32, so fp32 runs instead).
- ``int8``: dynamic int8 quantisation of the transformer's Linear layers (weights int8,
  activations quantised per batch); portable, a smaller speed-up and a larger deviation.

On CUDA, :meth:`Classifier.submit` returns before the GPU finishes, so the caller can prepare the
next batch while this one computes.

Two options change the probabilities themselves, so they are recorded in every output and are
part of the cache key:

- ``temperature``: the logits are divided by it before the softmax (temperature scaling, from a
  :class:`~chaoyang_desktop.core.model.temperature.TemperatureFile`); 1 leaves them alone.
- ``tta``: test-time augmentation. Each tile is classified in the eight orientations training
  showed the model (the dihedral group: four 90-degree rotations, each with and without a
  horizontal flip); the result is their mean probability, and the per-class standard deviation
  across them is the *spread*, a measure of how much the answer depends on orientation.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from chaoyang_desktop.core.model.checkpoint import load_vit
from chaoyang_desktop.core.model.engine_settings import DEVICES, PRECISIONS, EngineSettings
from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.model.model_source import ProgressFn, load_profile, resolve_model
from chaoyang_desktop.core.model.preprocess import preprocess_uint8, resize_tiles
from chaoyang_desktop.core.model.profile import ModelProfile
from chaoyang_desktop.core.model.temperature import TemperatureFile

log = logging.getLogger(__name__)

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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX).

    Without it oneDNN emulates bf16 and a bf16 forward is slower than fp32, so ``bf16`` is only
    honoured where this is true.
    """
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):
        return False


def cpu_has_int8() -> bool:
    """Whether PyTorch has a quantised CPU backend (fbgemm/x86 on x86, qnnpack on ARM)."""
    return any(e != "none" for e in torch.backends.quantized.supported_engines)


def select_precision(device: torch.device, preference: str = "auto") -> str:
    """The precision actually used on ``device``.

    ``auto`` is bf16 autocast on CUDA (fp16 where bf16 is unsupported) and fp32 elsewhere: the
    CPU modes change the numbers slightly, so they are opt-in. ``bf16`` on a CPU without native
    bf16, ``int8`` on CUDA or MPS, and ``fp16`` off CUDA fall back with a log message.
    """
    pref = (preference or "auto").lower()
    if pref not in PRECISIONS:
        raise SettingsError(f"Unknown precision {preference!r}; choose one of {', '.join(PRECISIONS)}.")
    if device.type == "cuda":
        if pref == "int8":
            log.info("Precision int8 is a CPU mode; CUDA runs bf16/fp16 autocast instead.")
        if pref in ("auto", "int8") or (pref == "bf16" and not torch.cuda.is_bf16_supported()):
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return pref
    if device.type == "cpu":
        if pref == "bf16":
            if cpu_has_native_bf16():
                return "bf16"
            log.info("This CPU has no native bf16 (AVX512-BF16 or AMX); running fp32. --precision int8 is "
                     "the fast mode for it.")
        elif pref == "int8":
            if cpu_has_int8():
                return "int8"
            log.info("This PyTorch build has no quantised CPU backend; running fp32.")
        elif pref == "fp16":
            log.info("Precision fp16 is only used on CUDA; running fp32 on the CPU (bf16 is the fast CPU mode).")
        return "fp32"
    if pref not in ("auto", "fp32"):
        log.info("Precision %s is not used on %s; running fp32.", pref, device.type)
    return "fp32"


def prepare_model(model: torch.nn.Module, device: torch.device, precision: str) -> torch.nn.Module:
    """Place ``model`` on ``device`` in the form ``precision`` needs (in place where PyTorch allows).

    CUDA's bf16/fp16 are autocast at run time and leave the weights alone. The CPU modes convert
    the weights once here, so every forward is cheap.
    """
    model = model.to(device).eval()
    if device.type != "cpu":
        return model
    if precision == "bf16":
        # Whole-model bf16 (LayerNorm included) was faster than bf16 autocast (10.7 vs 9.3 ViT-B
        # tiles/s on AMX) and agreed with fp32 on all real patches (benchmarks/bench_cpu_modes.py).
        return model.to(torch.bfloat16)
    if precision == "int8":
        linear = {name for name, m in model.named_modules() if type(m) is torch.nn.Linear}
        # The 4-way head is tiny: quantising it saves nothing and costs agreement.
        spec = {name for name in linear if name not in ("head", "classifier")}
        if spec:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's notice that the API moves to torchao
                from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

                model = quantize_dynamic(  # type: ignore[no-untyped-call]
                    model, {name: default_dynamic_qconfig for name in spec}, inplace=True)
    return model


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple Metal"
    return f"CPU ({torch.get_num_threads()} threads)"


#: Number of test-time views: the dihedral group of the square.
TTA_VIEWS = 8


def tta_views(x: torch.Tensor) -> torch.Tensor:
    """The eight orientations of an ``(N, C, H, W)`` batch, view-major: ``(8 * N, C, H, W)``.

    Rotations by 0, 90, 180 and 270 degrees, then the same of the horizontally flipped batch.
    Training's augmentations (horizontal flip, vertical flip, random 90-degree rotation) generate
    exactly this group, so every view is one the model saw.
    """
    flipped = x.flip(3)
    views = [torch.rot90(v, k, dims=(2, 3)) for v in (x, flipped) for k in range(4)]
    return torch.cat(views)


class PendingPrediction:
    """Probabilities (and with TTA their spread) being computed; :meth:`result` waits for them.

    On CUDA the numbers are copied into pinned host memory without blocking and an event marks
    the end of the work, so the CPU is free until :meth:`result`. Elsewhere they are ready.
    The host tensor holds the probabilities in its first ``n_classes`` columns and, with TTA,
    the spread in the next ``n_classes``.
    """

    def __init__(self, host: torch.Tensor, n_classes: int, event: torch.cuda.Event | None = None) -> None:
        self._host = host
        self._n_classes = n_classes
        self._event = event

    @property
    def ready(self) -> bool:
        return self._event is None or bool(self._event.query())  # type: ignore[no-untyped-call]

    def _wait(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
            self._event = None
        return self._host.numpy()

    def result(self) -> np.ndarray:
        """``(N, C)`` probabilities."""
        return self._wait()[:, : self._n_classes]

    def spread(self) -> np.ndarray | None:
        """``(N, C)`` standard deviation of each class's probability across the TTA views; None without TTA."""
        host = self._wait()
        return host[:, self._n_classes :] if host.shape[1] > self._n_classes else None


class Classifier:
    """A loaded model on a device, ready to turn pixels into class probabilities.

    The classifier owns ``model``: it is moved to ``device`` and, for the CPU modes, converted in
    place (see :func:`prepare_model`).
    """

    def __init__(self, model: torch.nn.Module, profile: ModelProfile, device: torch.device, precision: str,
                 batch_size: int = 16, *, tta: bool = False, calibration: TemperatureFile | None = None) -> None:
        if batch_size < 1:
            raise SettingsError(f"The batch size must be at least 1 (got {batch_size}).")
        if calibration is not None:
            calibration.check_weights(profile.weights_sha256)
        self.profile = profile
        self.device = device
        self.precision = precision
        self.batch_size = int(batch_size)
        self.tta = bool(tta)
        self.calibration = calibration
        self.model = prepare_model(model, device, precision)
        # One forward at a time: the GUI may share a classifier between a patch job and a slide job.
        self._lock = threading.Lock()
        # Host-to-GPU copies run on a stream of their own, so the next batch's pixels cross the
        # bus while the current batch computes.
        self._copy_stream = torch.cuda.Stream(device) if device.type == "cuda" else None  # type: ignore[no-untyped-call]

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
        calibration = TemperatureFile.load(settings.calibration) if settings.calibration else None
        if calibration is not None:
            calibration.check_weights(profile.weights_sha256)  # before the weights are read: seconds saved
        net = load_vit(Path(profile.weights_file), profile.arch, profile.num_classes)
        return cls(net, profile, device, precision, settings.batch_size, tta=settings.tta, calibration=calibration)

    @property
    def temperature(self) -> float:
        """The logits' divisor: the calibration's temperature, or 1."""
        return self.calibration.temperature if self.calibration is not None else 1.0

    @property
    def device_description(self) -> str:
        return describe_device(self.device)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _AUTOCAST_DTYPES.get(self.precision)
        if self.device.type == "cpu" and self.precision == "bf16":
            logits = self.model(x.to(torch.bfloat16))
        elif dtype is not None and self.device.type == "cuda":
            with torch.autocast(device_type="cuda", dtype=dtype):
                logits = self.model(x)
        else:
            logits = self.model(x)
        scaled: torch.Tensor = logits.float() / self.temperature
        return scaled

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` probabilities, or with TTA ``(N, 2C)``: the mean over the views, then their spread."""
        if not self.tta:
            return torch.softmax(self._logits(x), dim=1)
        n = x.shape[0]
        views = torch.softmax(self._logits(tta_views(x)), dim=1).reshape(TTA_VIEWS, n, -1)
        return torch.cat([views.mean(dim=0), views.std(dim=0, correction=0)], dim=1)

    def submit(self, batch_uint8: torch.Tensor) -> PendingPrediction:
        """Start classifying an (N, H, W, 3) uint8 RGB tensor; returns before a GPU finishes.

        A pinned CPU tensor is copied to the GPU without blocking. On CPU and MPS the work is done
        when this returns.
        """
        n = int(batch_uint8.shape[0])
        parts: list[torch.Tensor] = []
        start = 0
        width = self.profile.num_classes * (2 if self.tta else 1)
        with self._lock, torch.inference_mode():
            while start < n:
                # With TTA each tile is eight forwards: the batch size counts forwards, so the
                # memory a batch needs stays what the user set (and the OOM halving still works).
                size = min(max(1, self.batch_size // TTA_VIEWS) if self.tta else self.batch_size, n - start)
                chunk = batch_uint8[start : start + size]
                try:
                    x = preprocess_uint8(self._to_device(chunk), self.profile)
                    parts.append(self._forward(x))
                except torch.cuda.OutOfMemoryError:
                    if self.batch_size == 1:
                        raise
                    torch.cuda.empty_cache()
                    self.batch_size = max(1, self.batch_size // 2)
                    log.warning("GPU out of memory; batch size lowered to %d.", self.batch_size)
                    continue
                start += size
            probs = torch.cat(parts) if len(parts) > 1 else parts[0] if parts else torch.empty(
                (0, width), device=self.device)
            if self.device.type != "cuda":
                return PendingPrediction(probs.float().cpu(), self.profile.num_classes)
            host = torch.empty(probs.shape, dtype=torch.float32, pin_memory=True)
            host.copy_(probs, non_blocking=True)
            event = torch.cuda.Event()  # type: ignore[no-untyped-call]
            event.record()
            return PendingPrediction(host, self.profile.num_classes, event)

    def _to_device(self, chunk: torch.Tensor) -> torch.Tensor:
        if self._copy_stream is None:
            return chunk.to(self.device, non_blocking=True)
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            on_device = chunk.to(self.device, non_blocking=True)
        compute.wait_stream(self._copy_stream)  # compute reads the pixels only once they arrived
        # Allocated on the copy stream, used on compute: keep the caching allocator from
        # handing the memory out again before compute has read it.
        on_device.record_stream(compute)
        return on_device

    def predict_tensor(self, batch_uint8: torch.Tensor) -> np.ndarray:
        """Probabilities (N, C) for an (N, H, W, 3) uint8 RGB tensor on any device."""
        return self.submit(batch_uint8).result().astype(np.float32, copy=False)

    def predict(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities (N, C) for RGB uint8 images of any sizes (resized as in training first)."""
        return self.predict_with_spread(images)[0]

    def predict_with_spread(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities (N, C) and, with TTA, their spread (N, C) across the views (else None)."""
        if not len(images):
            empty = np.empty((0, self.profile.num_classes), dtype=np.float32)
            return empty, (empty.copy() if self.tta else None)
        tensor = torch.from_numpy(resize_tiles(images, self.profile))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        pending = self.submit(tensor)
        probs = pending.result().astype(np.float32, copy=False)
        spread = pending.spread()
        return probs, (spread.astype(np.float32, copy=False) if spread is not None else None)


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
