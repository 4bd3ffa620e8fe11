"""The opt-in fast CPU modes (``--precision bf16`` and ``int8``) against fp32 on real H&E patches.

The real weights cannot be downloaded in tests, so a random model with the real input size,
patch size and layout stands in. Random weights make the top class fragile (logits are close),
so the thresholds are looser than what the real model should show; benchmarks/bench_cpu_modes.py
measures the same on the full ViT-B.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chaoyang_desktop.core.slide.imageio import decode_image
from chaoyang_desktop.core.model.inference import (
    Classifier,
    EngineSettings,
    cpu_has_int8,
    cpu_has_native_bf16,
    select_precision,
)
from tests.model_factory import BASE_CONFIG, write_checkpoint

# ViT-B's input (384 px, 16 px patches: 577 tokens) at a fraction of its width and depth, so the
# quantised layers see real sequence lengths and the test stays fast on two cores.
SMALL_CONFIG = {**BASE_CONFIG, "hidden_size": 192, "num_hidden_layers": 4, "num_attention_heads": 3,
                "intermediate_size": 768}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder, _ = write_checkpoint(tmp_path_factory.mktemp("small"), SMALL_CONFIG, seed=0)  # fp32 splits 0/4/26/11
    return folder


@pytest.fixture(scope="module")
def real_patches(test_data: Path) -> list[np.ndarray]:
    paths = sorted(p for p in (test_data / "patches").rglob("*") if p.is_file())
    assert len(paths) >= 30
    return [decode_image(p) for p in paths]


@pytest.fixture(scope="module")
def fp32_probs(small_model: Path, real_patches: list[np.ndarray]) -> np.ndarray:
    clf = Classifier.load(str(small_model), EngineSettings(device="cpu", precision="fp32", batch_size=8))
    probs = clf.predict(real_patches)
    # Agreement says nothing if fp32 puts every patch in the same class.
    assert np.bincount(probs.argmax(1), minlength=4).max() <= 0.75 * len(probs)
    return probs


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(1) == b.argmax(1)).mean())


def test_cpu_precision_choices() -> None:
    cpu = torch.device("cpu")
    assert select_precision(cpu, "auto") == "fp32"
    assert select_precision(cpu, "fp16") == "fp32"
    assert select_precision(cpu, "bf16") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert select_precision(cpu, "int8") == ("int8" if cpu_has_int8() else "fp32")


@pytest.mark.skipif(not cpu_has_int8(), reason="this PyTorch has no quantised CPU backend")
def test_int8_quantises_the_blocks_and_keeps_the_head(small_model: Path) -> None:
    clf = Classifier.load(str(small_model), EngineSettings(device="cpu", precision="int8"))
    assert clf.precision == "int8"
    modules = dict(clf.model.named_modules())
    for name in ("blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.3.mlp.fc1", "blocks.3.mlp.fc2"):
        assert type(modules[name]).__module__.startswith("torch.ao.nn.quantized.dynamic"), name
    assert type(modules["head"]) is torch.nn.Linear


@pytest.mark.skipif(not cpu_has_int8(), reason="this PyTorch has no quantised CPU backend")
def test_int8_agrees_with_fp32_on_real_patches(small_model: Path, real_patches: list[np.ndarray],
                                              fp32_probs: np.ndarray) -> None:
    clf = Classifier.load(str(small_model), EngineSettings(device="cpu", precision="int8", batch_size=8))
    probs = clf.predict(real_patches)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert _agreement(probs, fp32_probs) >= 0.85
    assert float(np.abs(probs - fp32_probs).mean()) < 0.05


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16 or AMX)")
def test_bf16_agrees_with_fp32_on_real_patches(small_model: Path, real_patches: list[np.ndarray],
                                              fp32_probs: np.ndarray) -> None:
    clf = Classifier.load(str(small_model), EngineSettings(device="cpu", precision="bf16", batch_size=8))
    assert clf.precision == "bf16" and next(clf.model.parameters()).dtype == torch.bfloat16
    probs = clf.predict(real_patches)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert _agreement(probs, fp32_probs) >= 0.9
    assert float(np.abs(probs - fp32_probs).mean()) < 0.05
