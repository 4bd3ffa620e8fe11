"""Inference settings as plain values, importable without torch.

The command-line parser and the GUI's settings need the choices and the settings object before
(or without) loading PyTorch, which takes seconds; :mod:`chaoyang_desktop.core.inference` applies
them.
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class EngineSettings:
    """Inference settings shared by the CLI, the GUI and the pipeline."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 16
    threads: int | None = None
    channel_order: str | None = None
    resize: str | None = None
