"""Fine-tuning a ViT on labelled patches with the recipe that produced the Chaoyang model.

The recipe (``shared/MODEL.md``): minority classes oversampled by duplication to the majority
count; resize to the input size, horizontal flip, vertical flip and a random multiple of 90
degrees (each with p=0.5), random resized crop back to the input size with scale 0.5-1.0
(p=0.5); AdamW (lr 1e-4, weight decay 0.01), cross-entropy, batch 16, up to 50 epochs, the
model with the lowest validation loss kept.

One flaw of the original is fixed: its validation split was taken after oversampling, so
duplicates of training images were validated on. Here the split is seeded, stratified and taken
first, so validation keeps the data's own class distribution and shares no image with training.

Pixels go through the inference preprocessing (:func:`~chaoyang_desktop.core.model.preprocess.resize_tiles`
then :func:`~chaoyang_desktop.core.model.preprocess.normalise`, BGR by default) with the augmentations
in between, so a fine-tuned model sees in training exactly what the classifier feeds it later.
The augmentations are a few lines of torch on the batch (on the GPU when there is one) rather than
torchvision transforms: they then run on the same tensors, in the same rounding, as preprocessing.

Each epoch leaves ``checkpoint-last.pt`` (model, optimizer, scaler, counters, history, RNG
state; tensors and plain containers only, read back with ``weights_only=True``), so a stopped run
resumes at the next epoch and gives the same result as an uninterrupted one. The best model is
written in Hugging Face layout (``model/config.json`` with the training classes as ``id2label``,
``model/model.safetensors`` with transformers 4.x tensor names), which ``--model`` and the GUI
load like the published checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chaoyang_desktop import __version__
from chaoyang_desktop.core import atomic
from chaoyang_desktop.core.model.checkpoint import build_vit, load_vit, sha256_file, timm_to_hf_v4
from chaoyang_desktop.core.learn.datasets import LabelledDataset
from chaoyang_desktop.core.errors import CancelledError, SettingsError
from chaoyang_desktop.core.slide.imageio import decode_or_error
from chaoyang_desktop.core.model.inference import describe_device, select_device, select_precision
from chaoyang_desktop.core.learn.metrics import classification_metrics
from chaoyang_desktop.core.model.model_source import load_profile, resolve_model
from chaoyang_desktop.core.model.preprocess import normalise, resize_tiles, to_float_nchw
from chaoyang_desktop.core.model.profile import ModelProfile, arch_from_config, profile_from_config, read_model_config

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint-last.pt"
MODEL_DIR_NAME = "model"
CHECKPOINT_FORMAT = "chaoyang-desktop training checkpoint"
CHECKPOINT_VERSION = 1

#: The augmentations of the original recipe, in order, as recorded in ``training.json``.
AUGMENTATIONS: tuple[str, ...] = (
    "resize to the input size (bilinear, no antialias, rounded to 8 bits)",
    "horizontal flip p=0.5",
    "vertical flip p=0.5",
    "rotation by a random multiple of 90 degrees p=0.5",
    "random resized crop to the input size, scale 0.5-1.0, ratio 3/4-4/3, p=0.5",
)
CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)

_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
# The default preprocessor of google/vit-base-patch16-384, for bases that ship none.
_DEFAULT_PREPROCESSOR = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
                         "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 1 / 255}


@dataclass(frozen=True)
class TrainSettings:
    """How to train. The first block is the recipe (fixed for a run); the rest may change on resume.

    Attributes:
        batch_size: Images per optimisation step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        val_fraction: Share of each class held out for validation (0 for none).
        seed: Seeds the split, oversampling, shuffling, augmentation and a new head.
        oversample: Duplicate minority-class images up to the majority count.
        augment: Apply the recipe's augmentations.
        epochs: Train up to this many epochs in total (a resumed run continues to it).
        patience: Stop after this many epochs without a lower validation loss (``None``: never).
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        precision: ``auto`` (bf16 autocast on CUDA, fp16 with a grad scaler where bf16 is
            unsupported), ``fp32``, ``bf16`` or ``fp16``; autocast is only used on CUDA.
        threads: PyTorch CPU threads.
        workers: Image decoding threads.
    """

    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    seed: int = 0
    oversample: bool = True
    augment: bool = True
    epochs: int = 50
    patience: int | None = None
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    workers: int = 4

    RECIPE_KEYS = ("batch_size", "lr", "weight_decay", "val_fraction", "seed", "oversample", "augment")

    def validated(self) -> TrainSettings:
        if self.epochs < 1:
            raise SettingsError(f"--epochs must be at least 1 (got {self.epochs}).")
        if self.batch_size < 1:
            raise SettingsError(f"--batch-size must be at least 1 (got {self.batch_size}).")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise SettingsError(f"--lr must be a positive number (got {self.lr}).")
        if not self.weight_decay >= 0:
            raise SettingsError(f"--weight-decay must not be negative (got {self.weight_decay}).")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SettingsError(f"--val-fraction must be in [0, 1) (got {self.val_fraction}).")
        if self.patience is not None and self.patience < 1:
            raise SettingsError(f"--patience must be at least 1 (got {self.patience}).")
        if self.workers < 1:
            raise SettingsError(f"--workers must be at least 1 (got {self.workers}).")
        return self

    def recipe(self) -> dict[str, Any]:
        """The settings a resumed run must share with the run it continues."""
        return {k: getattr(self, k) for k in self.RECIPE_KEYS}


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did. Validation values are ``None`` when nothing is held out."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    val_macro_f1: float | None
    lr: float
    seconds: float
    best: bool
    n_train_samples: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        def opt(key: str) -> float | None:
            v = d.get(key)
            return None if v is None else float(v)

        return cls(int(d["epoch"]), float(d["train_loss"]), float(d["train_accuracy"]), opt("val_loss"), opt("val_accuracy"),
                   opt("val_macro_f1"), float(d["lr"]), float(d["seconds"]), bool(d["best"]), int(d["n_train_samples"]))

    def describe(self, total_epochs: int) -> str:
        """One line for the terminal."""
        text = f"epoch {self.epoch}/{total_epochs}: train loss {self.train_loss:.4f} acc {self.train_accuracy:.3f}"
        if self.val_loss is not None:
            text += f" | val loss {self.val_loss:.4f} acc {self.val_accuracy:.3f} macro F1 {self.val_macro_f1:.3f}"
        text += f" | {self.seconds:.1f} s"
        return text + (" [best, saved]" if self.best else "")


@dataclass(frozen=True)
class DataSplit:
    """Dataset indices for training and validation (disjoint, in dataset order)."""

    train: tuple[int, ...]
    val: tuple[int, ...]


@dataclass(frozen=True)
class TrainingResult:
    """The outcome of :func:`train_model`.

    Attributes:
        out_dir: The run folder.
        model_dir: The saved model (Hugging Face layout), the epoch with the lowest validation loss.
        history: One record per epoch run so far (resumed runs include the earlier epochs).
        best_epoch: The epoch saved in ``model_dir``.
        best_val_loss: Its validation loss (``inf`` without validation).
        stopped_early: Training stopped because the validation loss stopped improving.
        split: The training/validation split.
        class_names: The trained classes.
        head_replaced: The base model's classes differed, so the head was trained from scratch.
        skipped: ``path -> reason`` for images that could not be read (left out of training).
    """

    out_dir: Path
    model_dir: Path
    history: tuple[EpochRecord, ...]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    split: DataSplit
    class_names: tuple[str, ...]
    head_replaced: bool
    skipped: dict[str, str]


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def split_train_val(labels: Sequence[int] | np.ndarray, num_classes: int, fraction: float, seed: int) -> DataSplit:
    """A seeded, stratified validation split taken before any oversampling.

    ``round(fraction * N)`` images are held out, shared between the classes in proportion to
    their size (largest remainders, ties broken by the seed); a class always keeps at least one
    image for training. The result depends only on the labels, the fraction and the seed.
    """
    y = np.asarray(labels, dtype=np.int64)
    n = y.size
    if fraction <= 0 or n == 0:
        return DataSplit(tuple(range(n)), ())
    rng = _rng(seed, 1)
    counts = np.bincount(y, minlength=num_classes)
    target = int(round(fraction * n))
    quota = fraction * counts
    take = np.floor(quota).astype(np.int64)
    cap = np.maximum(counts - 1, 0)
    take = np.minimum(take, cap)
    remainder = quota - np.floor(quota)
    tiebreak = rng.random(num_classes)
    order = sorted(range(num_classes), key=lambda c: (-remainder[c], tiebreak[c]))
    while take.sum() < target:
        grown = False
        for c in order:
            if take.sum() >= target:
                break
            if take[c] < cap[c]:
                take[c] += 1
                grown = True
        if not grown:
            break
    val: list[int] = []
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        if take[c]:
            val.extend(int(i) for i in rng.choice(members, size=int(take[c]), replace=False))
    val_set = set(val)
    return DataSplit(tuple(i for i in range(n) if i not in val_set), tuple(sorted(val_set)))


def oversample(indices: Sequence[int], labels: Sequence[int] | np.ndarray, seed: int) -> list[int]:
    """Duplicate minority-class images until every class present has the majority's count.

    Every image appears at least once; a class is filled with whole copies of itself and then a
    seeded sample (without replacement) for the rest, so no image is repeated more than needed.
    """
    y = np.asarray(labels, dtype=np.int64)
    by_class: dict[int, list[int]] = {}
    for i in indices:
        by_class.setdefault(int(y[i]), []).append(int(i))
    if not by_class:
        return []
    top = max(len(v) for v in by_class.values())
    rng = _rng(seed, 2)
    out: list[int] = []
    for c in sorted(by_class):
        members = by_class[c]
        copies, rest = divmod(top, len(members))
        out.extend(members * copies)
        out.extend(int(i) for i in rng.choice(members, size=rest, replace=False))
    return out


def _uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def crop_box(h: int, w: int, gen: torch.Generator, scale: tuple[float, float] = CROP_SCALE,
             ratio: tuple[float, float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a random resized crop (the torchvision/albumentations rule)."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(gen, *scale)
        aspect = math.exp(_uniform(gen, *log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (), generator=gen))
            return top, left, ch, cw
    return 0, 0, h, w  # as the references do after ten misses: the whole image


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The recipe's augmentations on an (N, 3, S, S) batch of 0..255 values (after resizing).

    Flips and rotations move pixels without changing them; the crop is resized back with the
    same bilinear, no-antialias, rounded resize as preprocessing, as ``cv2.resize`` did in
    the original pipeline. The draws come from ``gen`` (on the CPU), so a seeded generator gives
    the same augmentations on any device.
    """
    out = []
    size = (int(x.shape[-2]), int(x.shape[-1]))
    for img in x:
        if _uniform(gen) < 0.5:
            img = img.flip(-1)
        if _uniform(gen) < 0.5:
            img = img.flip(-2)
        if _uniform(gen) < 0.5:
            k = int(torch.randint(0, 4, (), generator=gen))
            img = torch.rot90(img, k, dims=(-2, -1))
        if _uniform(gen) < 0.5:
            top, left, ch, cw = crop_box(size[0], size[1], gen)
            crop = img[:, top : top + ch, left : left + cw].unsqueeze(0)
            img = F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=False)[0]
            img = img.round_().clamp_(0.0, 255.0)
        out.append(img)
    return torch.stack(out)


def _prefetch(paths: Sequence[Path], batches: Sequence[Sequence[int]], pool: ThreadPoolExecutor,
              depth: int = 2) -> Iterator[tuple[list[int], list[np.ndarray | str]]]:
    """Decode the images of upcoming batches in threads while the current one trains."""
    pending: deque[tuple[list[int], list[Future[np.ndarray | str]]]] = deque()
    it = iter(batches)

    def submit(batch: Sequence[int]) -> None:
        pending.append((list(batch), [pool.submit(decode_or_error, paths[i]) for i in batch]))

    for _ in range(depth):
        nxt = next(it, None)
        if nxt is None:
            break
        submit(nxt)
    while pending:
        batch, futures = pending.popleft()
        nxt = next(it, None)
        if nxt is not None:
            submit(nxt)
        yield batch, [f.result() for f in futures]


def _resized(images: Sequence[np.ndarray], profile: ModelProfile, device: torch.device) -> torch.Tensor:
    """Images of any sizes to one (N, 3, S, S) 0..255 batch on ``device``, as inference resizes them."""
    return to_float_nchw(torch.from_numpy(resize_tiles(images, profile)).to(device))


def _model_config(base_config: dict[str, Any], class_names: Sequence[str]) -> dict[str, Any]:
    cfg = dict(base_config)
    cfg["id2label"] = {str(i): n for i, n in enumerate(class_names)}
    cfg["label2id"] = {n: i for i, n in enumerate(class_names)}
    return cfg


def save_model(net: torch.nn.Module, model_dir: Path) -> str:
    """Write the timm model's weights as ``model.safetensors`` with transformers 4.x names; returns the sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    target = model_dir / "model.safetensors"
    with atomic.atomic_path(target, suffix=".safetensors") as tmp:
        save_file(timm_to_hf_v4(state), str(tmp), metadata={"format": "pt"})
    return sha256_file(target)


def _write_json(path: Path, data: Any) -> None:
    atomic.write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_training_info(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``training.json`` of a run folder (classes, recipe, progress), or ``None`` if there is none."""
    path = Path(out_dir) / "training.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path} cannot be read ({exc}); start a new run in another folder.") from exc
    return data if isinstance(data, dict) else None


def _training_profile(model_dir: Path, config: dict[str, Any], base: dict[str, Any]) -> ModelProfile:
    """The profile preprocessing uses during training: the base's, with the trained classes."""
    return profile_from_config(config, model_dir, model_id=str(base.get("model_id", "")),
                               source=str(base.get("source", "local")), weights_file="",
                               weights_sha256=str(base.get("weights_sha256", "")))


def _check_out_dir(out: Path, resume: bool) -> None:
    ckpt = out / CHECKPOINT_NAME
    if resume:
        if not ckpt.is_file():
            raise SettingsError(f"{out} has no {CHECKPOINT_NAME} to resume from; start without --resume.")
        return
    model_dir = out / MODEL_DIR_NAME
    if ckpt.exists() or any((model_dir / n).exists() for n in ("model.safetensors", "pytorch_model.bin")):
        raise SettingsError(f"{out} already holds a training run; continue it with --resume, or choose another --out folder.")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say so instead of a pickle traceback
        raise SettingsError(f"{path} cannot be read as a training checkpoint ({type(exc).__name__}); "
                            "start a new run in another folder.") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise SettingsError(f"{path} is not a Chaoyang Desktop training checkpoint.")
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise SettingsError(f"{path} was written by a newer Chaoyang Desktop; update it to resume this run.")
    return state


def training_precision(device: torch.device, preference: str = "auto") -> str:
    """Autocast on CUDA as inference does (bf16, fp16 where bf16 is unsupported); fp32 elsewhere.

    The CPU inference modes (whole-model bf16, int8) convert weights for speed and do not train.
    """
    if (preference or "auto").lower() == "int8":
        raise SettingsError("--precision int8 is an inference mode; train with auto, fp32, bf16 or fp16.")
    if device.type != "cuda":
        return "fp32"
    return select_precision(device, preference)


class _Trainer:
    """One training run: state, one epoch, validation, saving. :func:`train_model` drives it."""

    def __init__(self, net: torch.nn.Module, profile: ModelProfile, settings: TrainSettings,
                 dataset: LabelledDataset, split: DataSplit) -> None:
        self.settings = settings
        self.profile = profile
        self.dataset = dataset
        self.split = split
        self.device = select_device(settings.device)
        self.precision = training_precision(self.device, settings.precision)
        self.net = net.to(self.device)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.paths = dataset.paths
        self.labels = dataset.labels
        self.skipped: dict[str, str] = {}
        # Duplication is decided once per run, as the original duplicated its file list once.
        self.train_pool = (oversample(split.train, self.labels, settings.seed) if settings.oversample
                           else list(split.train))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = _AUTOCAST.get(self.precision)
        if dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=dtype):
                logits: torch.Tensor = self.net(x)
        else:
            logits = self.net(x)
        return logits.float()

    def _good(self, batch: list[int], decoded: list[np.ndarray | str]) -> tuple[list[int], list[np.ndarray]]:
        keep_i: list[int] = []
        keep_img: list[np.ndarray] = []
        for i, d in zip(batch, decoded):
            if isinstance(d, np.ndarray):
                keep_i.append(i)
                keep_img.append(d)
            elif str(self.paths[i]) not in self.skipped:
                self.skipped[str(self.paths[i])] = d
                log.warning("Skipping an unreadable training image: %s", d)
        return keep_i, keep_img

    def train_epoch(self, epoch: int, pool: ThreadPoolExecutor, cancel: threading.Event | None,
                    on_batch: Callable[[int, int], None] | None) -> tuple[float, float, int]:
        """One pass over the (oversampled, shuffled) training images: ``(loss, accuracy, samples)``."""
        s = self.settings
        order_rng = _rng(s.seed, 3, epoch)
        order = [self.train_pool[i] for i in order_rng.permutation(len(self.train_pool))]
        batches = [order[i : i + s.batch_size] for i in range(0, len(order), s.batch_size)]
        gen = torch.Generator().manual_seed(int(_rng(s.seed, 4, epoch).integers(0, 2**62)))
        self.net.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for b, (batch, decoded) in enumerate(_prefetch(self.paths, batches, pool)):
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"Training cancelled during epoch {epoch}; the last finished epoch can be resumed with --resume.")
            idx, images = self._good(batch, decoded)
            if images:
                x = _resized(images, self.profile, self.device)
                if s.augment:
                    x = augment_batch(x, gen)
                x = normalise(x, self.profile)
                y = torch.as_tensor(self.labels[idx], device=self.device)
                logits = self._forward(x)
                loss = F.cross_entropy(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                self.scaler.step(self.optimizer)
                self.scaler.update()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += len(idx)
            if on_batch is not None:
                on_batch(b + 1, len(batches))
        if seen == 0:
            raise SettingsError("No training image could be read; check the data folder.")
        return loss_sum / seen, correct / seen, seen

    @torch.inference_mode()
    def validate(self, pool: ThreadPoolExecutor, cancel: threading.Event | None) -> tuple[float, float, float] | None:
        """``(loss, accuracy, macro F1)`` on the held-out images, without augmentation."""
        if not self.split.val:
            return None
        self.net.eval()
        s = self.settings
        val = list(self.split.val)
        batches = [val[i : i + s.batch_size] for i in range(0, len(val), s.batch_size)]
        loss_sum = 0.0
        y_true: list[int] = []
        y_pred: list[int] = []
        for batch, decoded in _prefetch(self.paths, batches, pool):
            if cancel is not None and cancel.is_set():
                raise CancelledError("Training cancelled during validation; the last finished epoch can be resumed with --resume.")
            idx, images = self._good(batch, decoded)
            if not images:
                continue
            x = normalise(_resized(images, self.profile, self.device), self.profile)
            y = torch.as_tensor(self.labels[idx], device=self.device)
            logits = self._forward(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            y_true.extend(int(v) for v in y.cpu())
            y_pred.extend(int(v) for v in logits.argmax(1).cpu())
        if not y_true:
            return None
        m = classification_metrics(y_true, y_pred, self.profile.class_names)
        return loss_sum / len(y_true), m.accuracy, m.macro.f1


def train_model(
    dataset: LabelledDataset,
    out_dir: str | Path,
    *,
    base: str | None = None,
    settings: TrainSettings | None = None,
    resume: bool = False,
    allow_download: bool = False,
    cancel: threading.Event | None = None,
    on_epoch: Callable[[EpochRecord, tuple[EpochRecord, ...]], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_message: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Fine-tune ``base`` on ``dataset`` into ``out_dir`` (see the module docstring for the files).

    Args:
        dataset: Labelled images; its class names become the model's. When they differ from the
            base model's, the head is replaced by a fresh linear layer of the right size.
        out_dir: The run folder; it must not hold another run unless ``resume``.
        base: The model to start from (folder or hub id; default: the Chaoyang model). Ignored on
            resume: the checkpoint holds the weights and the base's config.
        settings: Recipe and run settings; on resume the recipe must equal the stored one.
        resume: Continue the run in ``out_dir`` after its last finished epoch.
        allow_download: May download ``base`` into the Hugging Face cache.
        cancel: Set to stop between batches (raises :class:`CancelledError`; the last finished
            epoch stays resumable).
        on_epoch: ``on_epoch(record, history)`` after each finished epoch (history includes the
            epochs of the run this one resumes); front ends write ``training_log.csv`` and
            ``training_curves.png`` from it with
            :func:`chaoyang_desktop.export.evaluation_report.write_training_outputs`.
        on_batch: ``on_batch(done, total)`` after each training batch.
        on_message: One-line notes for the person (head replaced, resuming at epoch N, ...).

    Raises:
        SettingsError: Bad settings, an ``out_dir`` that holds another run, or a resume that
            does not match the stored run (other data, classes or recipe).
    """
    settings = (settings or TrainSettings()).validated()
    say = on_message or (lambda m: log.info("%s", m))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"Cannot create the output folder {out}: {exc.strerror}.") from exc
    _check_out_dir(out, resume)
    model_dir = out / MODEL_DIR_NAME
    model_dir.mkdir(exist_ok=True)
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    classes = tuple(dataset.class_names)
    split = split_train_val(dataset.labels, len(classes), settings.val_fraction, settings.seed)
    state: dict[str, Any] | None = None
    if resume:
        state = _load_checkpoint(out / CHECKPOINT_NAME)
        stored_recipe = dict(state["recipe"])
        if stored_recipe != settings.recipe():
            diff = ", ".join(f"{k} {stored_recipe.get(k)} -> {v}" for k, v in settings.recipe().items() if stored_recipe.get(k) != v)
            raise SettingsError(f"The run in {out} used another recipe ({diff}); resume with the same settings, or start a new run.")
        if tuple(state["classes"]) != classes:
            raise SettingsError(f"The run in {out} trained the classes {', '.join(state['classes'])}, not {', '.join(classes)}.")
        if state["data_fingerprint"] != dataset.fingerprint():
            raise SettingsError(f"The labelled images differ from those the run in {out} started with; "
                                "resume with the same data, or start a new run in another folder.")
        base_info = json.loads(state["base"])
        base_config = json.loads(state["base_config"])
        head_replaced = bool(state["head_replaced"])
        config = _model_config(base_config, classes)
        net = build_vit(arch_from_config(config), len(classes))
        net.load_state_dict(state["model"], strict=True)
        say(f"Resuming {out} after epoch {int(state['epoch'])}.")
    else:
        location = resolve_model(base, allow_download=allow_download)
        base_profile = load_profile(location)
        base_config = read_model_config(location.model_dir)
        base_info = {"model_id": base_profile.model_id, "source": base_profile.source,
                     "weights_sha256": base_profile.weights_sha256, "class_names": list(base_profile.class_names)}
        net = load_vit(Path(base_profile.weights_file), base_profile.arch, base_profile.num_classes)
        head_replaced = classes != base_profile.class_names
        if head_replaced:
            torch.manual_seed(settings.seed)
            net.reset_classifier(len(classes))
            say(f"The training classes ({', '.join(classes)}) differ from the base model's "
                f"({', '.join(base_profile.class_names)}): the classification head starts from scratch.")
        config = _model_config(base_config, classes)
        pre = location.model_dir / "preprocessor_config.json"
        pre_text = pre.read_text(encoding="utf-8") if pre.is_file() else json.dumps(_DEFAULT_PREPROCESSOR, indent=2) + "\n"
        atomic.write_text(model_dir / "preprocessor_config.json", pre_text)
        _write_json(model_dir / "config.json", config)
        _write_json(out / "split.json", {"seed": settings.seed, "val_fraction": settings.val_fraction,
                                          "train": [str(dataset.items[i].path) for i in split.train],
                                          "val": [str(dataset.items[i].path) for i in split.val]})
    profile = _training_profile(model_dir, config, base_info)
    trainer = _Trainer(net, profile, settings, dataset, split)
    history: list[EpochRecord] = []
    best_val_loss, best_epoch, stale, start_epoch, stopped_early = math.inf, 0, 0, 1, False
    started = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    if state is not None:
        trainer.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            trainer.scaler.load_state_dict(state["scaler"])
        history = [EpochRecord.from_dict(d) for d in state["history"]]
        best_val_loss, best_epoch = float(state["best_val_loss"]), int(state["best_epoch"])
        stale, start_epoch = int(state["epochs_without_improvement"]), int(state["epoch"]) + 1
        started = str(state["started"])
        trainer.skipped.update(dict(state.get("skipped", {})))
        torch.set_rng_state(state["rng_cpu"])
        if trainer.device.type == "cuda" and state.get("rng_cuda"):
            torch.cuda.set_rng_state_all(list(state["rng_cuda"]))
        if settings.patience is not None and stale >= settings.patience:
            stopped_early = True

    def provenance(status: str, model_sha: str | None) -> dict[str, Any]:
        train_counts = np.bincount(dataset.labels[list(split.train)], minlength=len(classes)) if split.train else np.zeros(len(classes), int)
        val_counts = np.bincount(dataset.labels[list(split.val)], minlength=len(classes)) if split.val else np.zeros(len(classes), int)
        pool_counts = np.bincount(dataset.labels[trainer.train_pool], minlength=len(classes)) if trainer.train_pool else np.zeros(len(classes), int)
        return {
            "format": "chaoyang-desktop training", "format_version": 1, "status": status,
            "started": started, "updated": _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
            "base_model": base_info, "classes": list(classes), "head_replaced": head_replaced,
            "data": dataset.summary(),
            "split": {"seed": settings.seed, "val_fraction": settings.val_fraction, "taken": "before oversampling, stratified",
                      "train_counts": dict(zip(classes, train_counts.tolist())), "val_counts": dict(zip(classes, val_counts.tolist())),
                      "train_per_epoch_after_oversampling": dict(zip(classes, pool_counts.tolist())), "list": "split.json"},
            "recipe": {**settings.recipe(), "epochs": settings.epochs, "patience": settings.patience, "optimizer": "AdamW",
                       "loss": "cross-entropy", "selection": "lowest validation loss (last epoch without validation)",
                       "augmentations": list(AUGMENTATIONS) if settings.augment else [],
                       "preprocessing": {"channel_order": profile.channel_order, "resize": profile.resize,
                                         "input_size": profile.input_size, "mean": list(profile.mean), "std": list(profile.std)}},
            "environment": {"device": describe_device(trainer.device), "precision": trainer.precision,
                            "torch": torch.__version__, "chaoyang_desktop": __version__},
            "epochs_run": len(history), "best_epoch": best_epoch or None,
            "best_val_loss": best_val_loss if math.isfinite(best_val_loss) else None,
            "stopped_early": stopped_early,
            "model": {"folder": MODEL_DIR_NAME, "weights_sha256": model_sha},
            "skipped_images": [{"path": p, "error": e} for p, e in sorted(trainer.skipped.items())],
        }

    model_sha = sha256_file(model_dir / "model.safetensors") if (model_dir / "model.safetensors").is_file() else None
    if start_epoch > settings.epochs or stopped_early:
        say(f"Nothing to do: the run in {out} already {'stopped early' if stopped_early else 'reached epoch ' + str(start_epoch - 1)}"
            f"{'' if stopped_early else '; raise --epochs to train further'}.")
    with ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="train-decode") as pool:
        for epoch in range(start_epoch, settings.epochs + 1):
            if stopped_early:
                break
            t0 = time.perf_counter()
            train_loss, train_acc, seen = trainer.train_epoch(epoch, pool, cancel, on_batch)
            val = trainer.validate(pool, cancel)
            improved = val is None or val[0] < best_val_loss
            if improved:
                best_val_loss = val[0] if val is not None else math.inf
                best_epoch, stale = epoch, 0
                model_sha = save_model(trainer.net, model_dir)
            else:
                stale += 1
            record = EpochRecord(epoch, train_loss, train_acc, val[0] if val else None, val[1] if val else None,
                                 val[2] if val else None, settings.lr, time.perf_counter() - t0, improved, seen)
            history.append(record)
            stopped_early = settings.patience is not None and stale >= settings.patience and epoch < settings.epochs
            checkpoint = {
                "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "epoch": epoch,
                "model": {k: v.detach().cpu() for k, v in trainer.net.state_dict().items()},
                "optimizer": trainer.optimizer.state_dict(), "scaler": trainer.scaler.state_dict(),
                "best_val_loss": best_val_loss, "best_epoch": best_epoch, "epochs_without_improvement": stale,
                "history": [r.to_dict() for r in history], "recipe": settings.recipe(), "classes": list(classes),
                "data_fingerprint": dataset.fingerprint(), "base": json.dumps(base_info), "base_config": json.dumps(base_config),
                "head_replaced": head_replaced, "started": started, "skipped": dict(trainer.skipped),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if trainer.device.type == "cuda" else [],
            }
            with atomic.atomic_path(out / CHECKPOINT_NAME, suffix=".pt") as tmp:
                torch.save(checkpoint, tmp)
            _write_json(out / "training.json", provenance("running", model_sha))
            if on_epoch is not None:
                on_epoch(record, tuple(history))
            if stopped_early:
                say(f"Stopping early: the validation loss has not improved for {stale} epoch(s).")
    status = "stopped early" if stopped_early else "finished"
    _write_json(out / "training.json", provenance(status, model_sha))
    return TrainingResult(out, model_dir, tuple(history), best_epoch, best_val_loss, stopped_early, split, classes,
                          head_replaced, dict(trainer.skipped))
