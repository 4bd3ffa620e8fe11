"""Load a Hugging Face ViT checkpoint into a timm VisionTransformer.

timm cannot read transformers' ViT checkpoints directly: the keys are renamed and the separate
query/key/value projections are fused into one ``qkv`` tensor (``shared/MODEL.md``). Both the
transformers 4.x names (what the published ``pytorch_model.bin`` uses) and the 5.x names (what
``save_pretrained`` writes today) are accepted. Pickles are read with ``weights_only=True`` so a
malicious checkpoint cannot run code, and the state dict is loaded with ``strict=True`` after our
own check, which names every missing, extra and mis-shaped tensor.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import torch
from timm.models.vision_transformer import VisionTransformer

from chaoyang_desktop.core.errors import CheckpointError
from chaoyang_desktop.core.model.profile import VitArch

WEIGHT_FILES: tuple[str, ...] = ("model.safetensors", "pytorch_model.bin")

# (transformers 4.x suffix after "vit.encoder.layer.{i}.", 5.x suffix after "vit.layers.{i}.", timm suffix after "blocks.{i}.")
_BLOCK_KEYS: tuple[tuple[str, str, str], ...] = (
    ("layernorm_before", "layernorm_before", "norm1"),
    ("layernorm_after", "layernorm_after", "norm2"),
    ("attention.output.dense", "attention.o_proj", "attn.proj"),
    ("intermediate.dense", "mlp.fc1", "mlp.fc1"),
    ("output.dense", "mlp.fc2", "mlp.fc2"),
)
_QKV_V4 = ("attention.attention.query", "attention.attention.key", "attention.attention.value")
_QKV_V5 = ("attention.q_proj", "attention.k_proj", "attention.v_proj")
_TOP_KEYS: dict[str, str] = {
    "vit.embeddings.cls_token": "cls_token",
    "vit.embeddings.position_embeddings": "pos_embed",
    "vit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "vit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "vit.layernorm.weight": "norm.weight",
    "vit.layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}

_ACTIVATIONS: dict[str, Callable[[], torch.nn.Module]] = {
    "gelu": torch.nn.GELU,
    "gelu_new": functools.partial(torch.nn.GELU, approximate="tanh"),
    "gelu_pytorch_tanh": functools.partial(torch.nn.GELU, approximate="tanh"),
    "gelu_fast": functools.partial(torch.nn.GELU, approximate="tanh"),
}


def find_weights(model_dir: Path) -> Path:
    for name in WEIGHT_FILES:
        candidate = model_dir / name
        if candidate.is_file():
            return candidate
    if (model_dir / "pytorch_model.bin.index.json").is_file() or (model_dir / "model.safetensors.index.json").is_file():
        raise CheckpointError(f"{model_dir} holds a sharded checkpoint; save it as one file (model.safetensors).")
    raise CheckpointError(f"{model_dir} has no weights: expected model.safetensors or pytorch_model.bin beside config.json.")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    """Read tensors from a safetensors file or a pickle, never running code from the file."""
    try:
        if weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights), device="cpu")
        else:
            state = torch.load(weights, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The weights-only unpickler stops at the first thing that is not a plain tensor
        # container: an object reference (loading would call code) or an unknown opcode.
        raise CheckpointError(
            f"{weights} was refused: it is not a plain tensor checkpoint. It is damaged, or it holds "
            "objects whose loading would run code from the file. Download the model again, or use a "
            "model.safetensors file."
        ) from exc
    except Exception as exc:  # corrupt zip, truncated file, safetensors header errors
        raise CheckpointError(f"{weights} cannot be read as a checkpoint ({type(exc).__name__}: {exc}). Download it again.") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{weights} does not hold a dictionary of tensors.")
    return {str(k): v for k, v in state.items()}


def _layout(state: dict[str, torch.Tensor]) -> str:
    if any(k.startswith("vit.encoder.layer.") for k in state):
        return "v4"
    if any(k.startswith("vit.layers.") for k in state):
        return "v5"
    if any(k.startswith("blocks.") for k in state):
        return "timm"
    raise CheckpointError(
        "The checkpoint's tensor names are not those of a transformers ViTForImageClassification "
        f"(first names: {', '.join(sorted(state)[:5])})."
    )


def hf_to_timm(state: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Rename a transformers ViT state dict to timm's names and fuse q/k/v.

    Tensors whose names are not recognised are kept under their own names, so the shape/key
    check that follows can report them as extra instead of silently dropping them.
    """
    layout = _layout(state)
    if layout == "timm":
        return dict(state)
    prefix = "vit.encoder.layer." if layout == "v4" else "vit.layers."
    qkv_names = _QKV_V4 if layout == "v4" else _QKV_V5
    src = dict(state)
    out: dict[str, torch.Tensor] = {}
    for hf, timm_name in _TOP_KEYS.items():
        if hf in src:
            out[timm_name] = src.pop(hf)
    for i in range(depth):
        p = f"{prefix}{i}."
        for v4, v5, timm_suffix in _BLOCK_KEYS:
            hf_suffix = v4 if layout == "v4" else v5
            for param in ("weight", "bias"):
                key = f"{p}{hf_suffix}.{param}"
                if key in src:
                    out[f"blocks.{i}.{timm_suffix}.{param}"] = src.pop(key)
        for param in ("weight", "bias"):
            parts = [f"{p}{name}.{param}" for name in qkv_names]
            if all(k in src for k in parts):
                out[f"blocks.{i}.attn.qkv.{param}"] = torch.cat([src.pop(k) for k in parts], dim=0)
    out.update(src)  # leftovers: reported as unexpected by check_state_dict
    return out


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    bad_shape = sorted(
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []

    def _some(items: list[str]) -> str:
        shown = ", ".join(items[:8])
        return shown + (f" and {len(items) - 8} more" if len(items) > 8 else "")

    if missing:
        problems.append(f"missing tensors: {_some(missing)}")
    if extra:
        problems.append(f"unexpected tensors: {_some(extra)}")
    if bad_shape:
        problems.append(f"mis-shaped tensors: {_some(bad_shape)}")
    if problems:
        raise CheckpointError(
            f"{where} does not match its config.json ({'; '.join(problems)}). "
            "The weights and config.json must come from the same model; download it again."
        )


def build_vit(arch: VitArch, num_classes: int) -> VisionTransformer:
    """An uninitialised timm ViT with the checkpoint's hyper-parameters (no download)."""
    act = _ACTIVATIONS.get(arch.hidden_act)
    if act is None:
        raise CheckpointError(f"hidden_act {arch.hidden_act!r} is not supported (known: {', '.join(_ACTIVATIONS)}).")
    return VisionTransformer(
        img_size=arch.image_size,
        patch_size=arch.patch_size,
        in_chans=arch.num_channels,
        num_classes=num_classes,
        global_pool="token",
        embed_dim=arch.hidden_size,
        depth=arch.depth,
        num_heads=arch.num_heads,
        mlp_ratio=arch.mlp_dim / arch.hidden_size,
        qkv_bias=arch.qkv_bias,
        class_token=True,
        norm_layer=functools.partial(torch.nn.LayerNorm, eps=arch.layer_norm_eps),
        act_layer=act,
    )


def load_vit(weights: Path, arch: VitArch, num_classes: int) -> VisionTransformer:
    """Build the timm model and load the checkpoint strictly, in fp32, in eval mode."""
    state = hf_to_timm(read_state_dict(weights), arch.depth)
    model = build_vit(arch, num_classes)
    check_state_dict(model, state, str(weights))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


_V4_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


def timm_to_hf_v4(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`hf_to_timm` with transformers 4.x names (used to save fine-tuned models)."""
    top = {v: k for k, v in _TOP_KEYS.items()}
    block = {timm_suffix: v4 for v4, _, timm_suffix in _BLOCK_KEYS}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key in top:
            out[top[key]] = tensor
            continue
        m = _V4_BLOCK_RE.match(key)
        if not m:
            raise CheckpointError(f"Cannot map timm tensor {key} to a transformers name.")
        i, rest = m.group(1), m.group(2)
        module, _, param = rest.rpartition(".")
        if module == "attn.qkv":
            for name, part in zip(_QKV_V4, torch.chunk(tensor, 3, dim=0)):
                out[f"vit.encoder.layer.{i}.{name}.{param}"] = part.contiguous()
        elif module in block:
            out[f"vit.encoder.layer.{i}.{block[module]}.{param}"] = tensor
        else:
            raise CheckpointError(f"Cannot map timm tensor {key} to a transformers name.")
    return out
