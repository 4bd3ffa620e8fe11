"""Inference settings as plain values, importable without torch.

The command-line parser and the GUI's settings need the choices and the settings object before
(or without) loading PyTorch, which takes seconds; :mod:`chaoyang_desktop.core.model.inference` applies
them.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaoyang_desktop.core.errors import SettingsError

DEVICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")
#: Larger batches gain nothing on any GPU we know and only risk running out of memory.
MAX_BATCH_SIZE = 4096
MAX_THREADS = 1024


@dataclass(frozen=True)
class EngineSettings:
    """Inference settings shared by the CLI, the GUI and the pipeline."""

    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 16
    threads: int | None = None
    channel_order: str | None = None
    resize: str | None = None
    #: Test-time augmentation: average the eight flips and 90-degree rotations training used.
    tta: bool = False
    #: A temperature file (``evaluate --fit-temperature``) to calibrate the probabilities with.
    calibration: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise SettingsError(f"The batch size must be between 1 and {MAX_BATCH_SIZE} (got {self.batch_size}).")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise SettingsError(f"The number of CPU threads must be between 1 and {MAX_THREADS} (got {self.threads}); "
                                "leave it out for PyTorch's default.")
