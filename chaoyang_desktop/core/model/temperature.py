"""A fitted temperature (temperature scaling, Guo et al. 2017) and the file that stores it.

Temperature scaling divides the network's logits by one number ``T`` before the softmax. It
leaves the predicted class of every tile unchanged and only makes the confidences mean what
they say on the user's own scanner and staining: ``T > 1`` softens an over-confident model.
``evaluate --fit-temperature`` fits ``T`` on a labelled folder (see
:mod:`chaoyang_desktop.core.learn.calibration`) and saves a :class:`TemperatureFile`; inference
uses it when asked (``--calibration FILE`` or the GUI setting).

The file is JSON::

    {"kind": "chaoyang-desktop temperature", "version": 1, "temperature": 1.7,
     "model_id": "...", "weights_sha256": "...", "fitted_on": "/data/labelled", "n": 412,
     "nll_before": 0.61, "nll_after": 0.48, "ece_before": 0.09, "ece_after": 0.02,
     "created": "2026-11-30T12:00:00+00:00"}

A temperature belongs to one set of weights: loading it for another model is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoyang_desktop.core.atomic import write_text
from chaoyang_desktop.core.errors import SettingsError

FILE_KIND = "chaoyang-desktop temperature"
FILE_VERSION = 1
#: Temperatures outside this range are a failed fit or a hand-edited file, not a calibration.
TEMPERATURE_RANGE = (0.05, 20.0)


@dataclass(frozen=True)
class TemperatureFile:
    """One fitted temperature with what it was fitted for and on.

    Attributes:
        temperature: The divisor of the logits.
        model_id: The model it was fitted for.
        weights_sha256: The weights it was fitted for; it applies to those only.
        fitted_on: The labelled data it was fitted on (a folder or label file).
        n: Number of labelled patches used.
        nll_before: Mean negative log-likelihood at temperature 1.
        nll_after: The same at ``temperature``.
        ece_before: Expected calibration error at temperature 1.
        ece_after: The same at ``temperature``.
        created: ISO time of the fit.
        path: Where it was read from (not stored in the file).
    """

    temperature: float
    model_id: str
    weights_sha256: str
    fitted_on: str = ""
    n: int = 0
    nll_before: float | None = None
    nll_after: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    created: str = ""
    path: str = ""

    def __post_init__(self) -> None:
        low, high = TEMPERATURE_RANGE
        if not (math.isfinite(self.temperature) and low <= self.temperature <= high):
            raise SettingsError(f"A temperature must lie between {low:g} and {high:g} (got {self.temperature}); "
                                "fit it again with `evaluate --fit-temperature`.")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return {"kind": FILE_KIND, "version": FILE_VERSION, **d}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically.

        Raises:
            OutputError: It cannot be written; an existing file is left as it was.
        """
        write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TemperatureFile:
        """Read a temperature file.

        Raises:
            SettingsError: Missing, unreadable, or not a temperature file.
        """
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise SettingsError(f"No calibration file at {p}; fit one with `evaluate --fit-temperature`.") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SettingsError(f"{p} is not a readable calibration file ({exc}); fit it again with "
                                "`evaluate --fit-temperature`.") from exc
        if not isinstance(doc, dict) or doc.get("kind") != FILE_KIND:
            raise SettingsError(f"{p} is not a Chaoyang Desktop calibration file; fit one with "
                                "`evaluate --fit-temperature`.")
        if doc.get("version") != FILE_VERSION:
            raise SettingsError(f"{p} has calibration format {doc.get('version')!r}; this program reads version "
                                f"{FILE_VERSION}. Fit it again with this version.")
        names = {f.name for f in dataclasses.fields(cls)} - {"path"}
        try:
            kw = {k: v for k, v in doc.items() if k in names}
            kw["temperature"] = float(kw["temperature"])
            kw["model_id"] = str(kw["model_id"])
            kw["weights_sha256"] = str(kw["weights_sha256"])
            return cls(**kw, path=str(p))
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingsError(f"{p} lacks a valid {exc} entry; fit it again with `evaluate --fit-temperature`.") from exc

    def check_weights(self, weights_sha256: str) -> None:
        """Refuse to apply this temperature to weights it was not fitted for."""
        if self.weights_sha256 != weights_sha256:
            where = f" ({self.path})" if self.path else ""
            raise SettingsError(
                f"The calibration{where} was fitted for other weights ({self.weights_sha256[:12]}, {self.model_id}), "
                f"not the loaded model ({weights_sha256[:12]}): fit it again for this model with "
                "`evaluate --fit-temperature`, or turn calibration off.")


def temperature_of(path: str | None) -> float:
    """The temperature a calibration file holds, or 1 without one.

    For what is shown or planned before a run (the status bar, the preview's cache key): a file
    that cannot be read counts as none here, and the run itself refuses it with its reason.
    """
    if not path:
        return 1.0
    try:
        return TemperatureFile.load(path).temperature
    except SettingsError:
        return 1.0
