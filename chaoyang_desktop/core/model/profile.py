"""Model facts as data: the architecture, classes, colours and preprocessing of a checkpoint.

A :class:`ModelProfile` is built from a checkpoint's ``config.json`` (and the optional
``preprocessor_config.json``) plus the facts of ``shared/MODEL.md`` that no file states: the
training-time channel order (BGR, from ``cv2.imread``), the resize (OpenCV linear, no
antialiasing) and the patch field of view (512 px at 0.5 um/px, inferred). Preprocessing, tiling
and every output's provenance are derived from it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from chaoyang_desktop.core.errors import CheckpointError, SettingsError

DEFAULT_MODEL_ID = "Snarci/ViT-base-patch16-384-Chaoyang-finetuned"

ChannelOrder = Literal["bgr", "rgb"]
ResizeMethod = Literal["linear", "antialias"]
CHANNEL_ORDERS: tuple[str, ...] = ("bgr", "rgb")
RESIZE_METHODS: tuple[str, ...] = ("linear", "antialias")

# Okabe and Ito's colour-blind-safe palette (distinct under protan-, deutan- and tritanopia),
# keeping its members that stand out on H&E: no red (eosin), no blue-purple (haematoxylin), no
# pink. The previous red and blue blended into the stains at 40 % opacity (issue 15).
KNOWN_CLASS_COLORS: dict[str, str] = {
    "normal": "#009e73",  # bluish green
    "serrated": "#f0e442",  # yellow
    "adenocarcinoma": "#e69f00",  # orange
    "adenoma": "#56b4e9",  # sky blue
}
FALLBACK_COLORS: tuple[str, ...] = ("#0072b2", "#d55e00", "#000000", "#cc79a7", "#7f7f7f", "#bcbd22")

# MODEL.md: Chaoyang patches are 512 px; magnification unpublished, 0.5 um/px (20x) assumed.
NOMINAL_TILE_PX = 512
NOMINAL_TILE_UM = 256.0


@dataclass(frozen=True)
class VitArch:
    """The ViT hyper-parameters read from ``config.json``."""

    image_size: int
    patch_size: int
    num_channels: int
    hidden_size: int
    depth: int
    num_heads: int
    mlp_dim: int
    layer_norm_eps: float
    qkv_bias: bool
    hidden_act: str


@dataclass(frozen=True)
class ModelProfile:
    """Everything the engine needs to know about one checkpoint.

    Attributes:
        model_id: Hub repository id, or the local folder the user gave.
        source: ``"hub"`` (resolved through the Hugging Face cache) or ``"local"``.
        model_dir: Folder holding ``config.json`` and the weights.
        weights_file: The weights file that was loaded.
        weights_sha256: SHA-256 of that file, recorded in every output.
        arch: ViT hyper-parameters.
        class_names: From ``id2label``, in index order.
        class_colors: Display colours, ``#rrggbb``, one per class.
        tile_um: Field of view of one tile in micrometres.
        tile_px: Pixels across a training patch (the read resolution is ``tile_um / tile_px``).
        channel_order: Order of channels fed to the network (``bgr`` as in training).
        resize: ``linear`` (OpenCV INTER_LINEAR, no antialias, as in training) or ``antialias``
            (PIL-like bilinear, as the model card's snippet).
        mean: Per-channel mean after scaling to [0, 1], in the network's channel order.
        std: Per-channel std, same order.
    """

    model_id: str
    source: str
    model_dir: str
    weights_file: str
    weights_sha256: str
    arch: VitArch
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    tile_um: float = NOMINAL_TILE_UM
    tile_px: int = NOMINAL_TILE_PX
    channel_order: ChannelOrder = "bgr"
    resize: ResizeMethod = "linear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @property
    def input_size(self) -> int:
        return self.arch.image_size

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def nominal_mpp(self) -> float:
        """Micrometres per pixel of the training patches (the read resolution)."""
        return self.tile_um / self.tile_px

    def with_overrides(
        self,
        *,
        channel_order: str | None = None,
        resize: str | None = None,
        tile_um: float | None = None,
        class_colors: tuple[str, ...] | None = None,
    ) -> ModelProfile:
        """A copy with user settings applied, validated."""
        changes: dict[str, Any] = {}
        if channel_order is not None:
            if channel_order not in CHANNEL_ORDERS:
                raise SettingsError(f"Channel order must be one of {', '.join(CHANNEL_ORDERS)} (got {channel_order!r}).")
            changes["channel_order"] = channel_order
        if resize is not None:
            if resize not in RESIZE_METHODS:
                raise SettingsError(f"Resize method must be one of {', '.join(RESIZE_METHODS)} (got {resize!r}).")
            changes["resize"] = resize
        if tile_um is not None:
            if not tile_um > 0:
                raise SettingsError(f"The tile size must be positive (got {tile_um} um).")
            changes["tile_um"] = float(tile_um)
        if class_colors is not None:
            if len(class_colors) != self.num_classes:
                raise SettingsError("Give one colour per class.")
            changes["class_colors"] = tuple(class_colors)
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for ``models info`` and provenance."""
        d = dataclasses.asdict(self)
        d["class_names"] = list(self.class_names)
        d["class_colors"] = list(self.class_colors)
        d["input_size"] = self.input_size
        d["nominal_mpp"] = self.nominal_mpp
        return d


def default_colors(class_names: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    spare = iter(FALLBACK_COLORS * (1 + len(class_names) // len(FALLBACK_COLORS)))
    for name in class_names:
        out.append(KNOWN_CLASS_COLORS.get(name.strip().lower()) or next(spare))
    return tuple(out)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path.parent} has no {path.name}; a model folder needs config.json and the weights.") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); download the model again.") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object; download the model again.")
    return data


def arch_from_config(config: dict[str, Any], where: str = "config.json") -> VitArch:
    """Read the ViT hyper-parameters, with transformers' ``ViTConfig`` defaults for missing keys."""
    model_type = config.get("model_type", "vit")
    if model_type != "vit":
        raise CheckpointError(f"{where}: model_type is {model_type!r}; only ViT image classifiers (model_type 'vit') are supported.")
    try:
        arch = VitArch(
            image_size=int(config.get("image_size", 224)),
            patch_size=int(config.get("patch_size", 16)),
            num_channels=int(config.get("num_channels", 3)),
            hidden_size=int(config.get("hidden_size", 768)),
            depth=int(config.get("num_hidden_layers", 12)),
            num_heads=int(config.get("num_attention_heads", 12)),
            mlp_dim=int(config.get("intermediate_size", 3072)),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            qkv_bias=bool(config.get("qkv_bias", True)),
            hidden_act=str(config.get("hidden_act", "gelu")),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: a ViT hyper-parameter is not a number ({exc}).") from exc
    if arch.num_channels != 3:
        raise CheckpointError(f"{where}: num_channels is {arch.num_channels}; only RGB models are supported.")
    if arch.image_size % arch.patch_size or arch.hidden_size % arch.num_heads:
        raise CheckpointError(f"{where}: image_size must be a multiple of patch_size and hidden_size of num_attention_heads.")
    return arch


def class_names_from_config(config: dict[str, Any], where: str = "config.json") -> tuple[str, ...]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise CheckpointError(f"{where} has no id2label; the model's class names are unknown.")
    try:
        items = sorted((int(k), str(v)) for k, v in id2label.items())
    except ValueError as exc:
        raise CheckpointError(f"{where}: id2label keys must be class indices 0..N-1.") from exc
    if [i for i, _ in items] != list(range(len(items))):
        raise CheckpointError(f"{where}: id2label keys must be class indices 0..N-1.")
    return tuple(name for _, name in items)


def normalisation_from_preprocessor(model_dir: Path) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Mean/std from ``preprocessor_config.json`` when present, else the ViT default 0.5/0.5."""
    path = model_dir / "preprocessor_config.json"
    if not path.is_file():
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    cfg = _read_json(path)
    mean = cfg.get("image_mean", [0.5, 0.5, 0.5])
    std = cfg.get("image_std", [0.5, 0.5, 0.5])
    try:
        m = tuple(float(x) for x in mean)
        s = tuple(float(x) for x in std)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: image_mean/image_std must be lists of numbers.") from exc
    if len(m) != 3 or len(s) != 3 or any(x <= 0 for x in s):
        raise CheckpointError(f"{path}: image_mean/image_std must hold 3 values, std positive.")
    return (m[0], m[1], m[2]), (s[0], s[1], s[2])


def read_model_config(model_dir: Path) -> dict[str, Any]:
    return _read_json(model_dir / "config.json")


def profile_from_config(config: dict[str, Any], model_dir: Path, *, model_id: str, source: str, weights_file: str,
                        weights_sha256: str) -> ModelProfile:
    """A profile from a parsed ``config.json`` and the folder's optional preprocessor config."""
    where = str(model_dir / "config.json")
    names = class_names_from_config(config, where)
    mean, std = normalisation_from_preprocessor(model_dir)
    return ModelProfile(
        model_id=model_id,
        source=source,
        model_dir=str(model_dir),
        weights_file=weights_file,
        weights_sha256=weights_sha256,
        arch=arch_from_config(config, where),
        class_names=names,
        class_colors=default_colors(names),
        mean=mean,
        std=std,
    )
