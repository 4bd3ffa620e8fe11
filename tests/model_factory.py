"""Checkpoints made at test time in the exact Hugging Face layout of the real model.

No test reaches the hub: these folders hold a ``config.json`` like the published one and random
weights, saved as ``pytorch_model.bin`` with the transformers 4.x tensor names the real file has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

CHAOYANG_ID2LABEL = {"0": "Normal", "1": "Serrated", "2": "Adenocarcinoma", "3": "Adenoma"}

BASE_CONFIG: dict[str, Any] = {
    "architectures": ["ViTForImageClassification"],
    "model_type": "vit",
    "image_size": 384,
    "patch_size": 16,
    "num_channels": 3,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "qkv_bias": True,
    "encoder_stride": 16,
    "id2label": CHAOYANG_ID2LABEL,
    "label2id": {v: int(k) for k, v in CHAOYANG_ID2LABEL.items()},
    "problem_type": "single_label_classification",
}

# Same input size and layout, a fraction of the compute: for tests that only need a real model.
TINY_CONFIG: dict[str, Any] = {**BASE_CONFIG, "patch_size": 32, "hidden_size": 48, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "intermediate_size": 96}

PREPROCESSOR_CONFIG: dict[str, Any] = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "size": {"height": 384, "width": 384},
}


def v5_to_v4_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers 5.x ViT state dict to the 4.x names of the published checkpoint."""
    pairs = [
        (".attention.q_proj.", ".attention.attention.query."),
        (".attention.k_proj.", ".attention.attention.key."),
        (".attention.v_proj.", ".attention.attention.value."),
        (".attention.o_proj.", ".attention.output.dense."),
        (".mlp.fc1.", ".intermediate.dense."),
        (".mlp.fc2.", ".output.dense."),
    ]
    out = {}
    for key, value in state.items():
        new = key.replace("vit.layers.", "vit.encoder.layer.")
        for a, b in pairs:
            new = new.replace(a, b)
        out[new] = value
    return out


def make_hf_model(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A random-init transformers ViTForImageClassification (the parity reference)."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(seed)
    model = ViTForImageClassification(ViTConfig(**config)).eval()
    randomise_all_parameters(model, seed)
    return model


def randomise_all_parameters(model: torch.nn.Module, seed: int) -> None:
    """Give every tensor distinct values, LayerNorms and biases included.

    The default init sets every LayerNorm to weight 1 / bias 0 and every Linear bias to 0, so a
    loader that swapped two same-shaped tensors (``norm1`` for ``norm2``, a ``q`` bias for a ``k``
    bias) would still give the right answer. Scales stay near the default's so the activations
    of a 12-layer model stay finite and the softmax is not saturated.
    """
    gen = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "layernorm" in name and name.endswith(".weight"):
                param.copy_(1.0 + 0.3 * noise)  # gains between about 0.1 and 1.9
            elif name.endswith(".bias"):
                param.copy_(0.05 * noise)
            elif name.startswith("classifier."):
                param.copy_(0.5 * noise)  # spread the logits so the probabilities differ per class
            else:
                param.copy_(0.02 * noise)


def write_checkpoint(folder: Path, config: dict[str, Any] | None = None, *, seed: int = 0, layout: str = "v4",
                     fmt: str = "bin", preprocessor: bool = True) -> tuple[Path, torch.nn.Module]:
    """Write a model folder; returns it and the transformers model whose weights it holds."""
    config = dict(config or TINY_CONFIG)
    folder.mkdir(parents=True, exist_ok=True)
    model = make_hf_model(config, seed)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if any(k.startswith("vit.layers.") for k in state) and layout == "v4":
        state = v5_to_v4_names(state)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    if preprocessor:
        (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    if fmt == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(state, str(folder / "model.safetensors"))
    return folder, model
