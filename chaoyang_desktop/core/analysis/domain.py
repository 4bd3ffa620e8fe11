"""Whether the model can judge a slide at all: the domain check, made in the plan before the model runs.

The classifier was trained on brightfield H&E patches of colon tissue at about 0.5 um/px. Given
a fluorescence slide, a grayscale scan, another stain or a slide scanned far coarser, it still
returns confident classes, and those colours mean nothing. So the plan measures, on the slide's
thumbnail and its metadata:

- **resolution**: the finest level must reach the model's pixel size within
  :data:`RESOLUTION_TOLERANCE` (coarser tiles would be blown up to the input size);
- **fluorescence**: a dark background (the same rule that switches the tissue detector);
- **grayscale**: hardly any coloured pixel among the non-glass ones;
- **stain**: among the coloured tissue pixels, the share with an H&E hue (blue-purple to pink).
  Hematoxylin is blue-purple and eosin pink; DAB (IHC) is brown, many special stains and pen
  inks are green or blue. ``docs/domain-check.md`` lists the real images this was measured on
  and their figures.

Each finding is one sentence that names the figures. A slide with findings is refused unless the
user asks to analyse it anyway; the findings and the override are recorded in every output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from chaoyang_desktop.core.slide.tissue import DARK_BACKGROUND, detect_tissue

#: The finest level may be this much coarser than the model's pixel size (0.5 -> 0.625 um/px):
#: 20x scanners report 0.45-0.55 um/px; a 10x scan (1 um/px) would be upsampled twofold.
RESOLUTION_TOLERANCE = 1.25
#: A pixel is coloured when its channels spread by more than this (0..255).
GREY_SPREAD = 12
#: Non-glass pixels: brightest channel below this.
CONTENT_MAX_BRIGHTNESS = 215
#: Grayscale: fewer than this share of the non-glass pixels are coloured.
GREY_MAX_COLOURED = 0.01
#: Too little content to judge the stain (fewer coloured tissue pixels than this): no finding.
STAIN_MIN_PIXELS = 200
#: H&E hues, degrees on the HSV circle: from blue (hematoxylin) through purple and pink (eosin) to
#: red. Below ``HE_HUE_TO`` only bright pixels count as H&E (eosin, red cells); dark ones are the
#: reddish brown of DAB.
HE_HUE_FROM = 230.0
HE_HUE_TO = 12.0
BROWN_HUE_TO = 70.0
RED_MIN_VALUE = 150
#: Below this share of H&E hues among coloured tissue pixels the stain is not H&E.
HE_MIN_SHARE = 0.6
#: HSV saturation (0..255) and value above which a tissue pixel's hue is counted.
HUE_MIN_SATURATION = 25
HUE_MIN_VALUE = 40

KINDS = ("resolution", "fluorescence", "grayscale", "stain")


@dataclass(frozen=True)
class Finding:
    """One reason the model cannot judge the slide: ``kind`` from :data:`KINDS`, and a sentence."""

    kind: str
    message: str


@dataclass(frozen=True)
class DomainCheck:
    """The findings (empty when the slide is in the model's domain) and the figures measured."""

    findings: tuple[Finding, ...] = ()
    measurements: Mapping[str, float] = field(default_factory=dict)
    overridden: bool = False

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def reason(self) -> str:
        """The findings as one line; empty when passed."""
        return " ".join(f.message for f in self.findings)

    @property
    def status(self) -> str:
        """``passed``, ``out of domain`` or ``analysed anyway``."""
        if self.passed:
            return "passed"
        return "analysed anyway" if self.overridden else "out of domain"

    def with_override(self, overridden: bool) -> DomainCheck:
        return DomainCheck(self.findings, self.measurements, overridden and not self.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "passed": self.passed,
            "overridden": self.overridden,
            "findings": [{"kind": f.kind, "message": f.message} for f in self.findings],
            "measurements": {k: round(float(v), 6) for k, v in self.measurements.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DomainCheck | None:
        if not d:
            return None
        findings = tuple(Finding(str(f["kind"]), str(f["message"])) for f in d.get("findings", ()))
        return cls(findings, {str(k): float(v) for k, v in d.get("measurements", {}).items()},
                   bool(d.get("overridden", False)))


def check_resolution(l0_mpp: float, model_mpp: float) -> Finding | None:
    """A finding when the finest level is coarser than the model's pixel size allows."""
    limit = model_mpp * RESOLUTION_TOLERANCE
    if l0_mpp <= limit:
        return None
    return Finding("resolution", (
        f"The slide's finest level is {l0_mpp:.3g} um/px, {l0_mpp / model_mpp:.3g} times coarser than the "
        f"model's {model_mpp:.3g} um/px (at most {limit:.3g} um/px is accepted): tiles would be enlarged "
        "beyond what the model was trained on."))


def hue_degrees(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HSV hue in degrees (0..360), saturation and value (0..255) of an RGB uint8 image."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV_FULL)  # hue on 0..255
    return hsv[..., 0].astype(np.float32) * (360.0 / 256.0), hsv[..., 1], hsv[..., 2]


def check_appearance(thumb: np.ndarray, tissue: np.ndarray | None = None) -> tuple[list[Finding], dict[str, float]]:
    """Fluorescence, grayscale and stain findings from an RGB uint8 thumbnail of the whole slide.

    Args:
        thumb: The thumbnail.
        tissue: :func:`detect_tissue` of ``thumb`` when the caller has it (saves computing it again).
    """
    brightest = thumb.max(axis=2)
    spread = brightest.astype(np.int16) - thumb.min(axis=2)
    measurements: dict[str, float] = {"background_brightness": float(np.median(brightest))}
    if measurements["background_brightness"] < DARK_BACKGROUND:
        return [Finding("fluorescence", (
            f"The background is dark (median brightness {measurements['background_brightness']:.0f} of 255): "
            "this looks like a fluorescence image, and the model only judges brightfield H&E."))], measurements
    content = brightest < CONTENT_MAX_BRIGHTNESS
    measurements["content_share"] = float(content.mean())
    if content.sum() < STAIN_MIN_PIXELS:
        return [], measurements  # hardly anything but glass: nothing to judge by (the plan says "no tiles")
    coloured = float((spread[content] > GREY_SPREAD).mean())
    measurements["coloured_share"] = coloured
    if coloured < GREY_MAX_COLOURED:
        return [Finding("grayscale", (
            f"The slide is grayscale (only {coloured:.1%} of its non-glass pixels have colour): the model "
            "only judges colour H&E."))], measurements
    hue, sat, val = hue_degrees(thumb)
    if tissue is None:
        tissue = detect_tissue(thumb)
    tissue = tissue & (sat > HUE_MIN_SATURATION) & (val > HUE_MIN_VALUE)
    hues = hue[tissue]
    measurements["stain_pixels"] = float(len(hues))
    if len(hues) < STAIN_MIN_PIXELS:
        return [], measurements
    values = val[tissue]
    red = hues < HE_HUE_TO
    he = float(np.mean((hues >= HE_HUE_FROM) | (red & (values >= RED_MIN_VALUE))))
    brown = float(np.mean(((hues >= HE_HUE_TO) & (hues < BROWN_HUE_TO)) | (red & (values < RED_MIN_VALUE))))
    green_blue = float(np.mean((hues >= BROWN_HUE_TO) & (hues < HE_HUE_FROM)))
    measurements.update(he_hue_share=he, brown_hue_share=brown, green_blue_hue_share=green_blue)
    if he >= HE_MIN_SHARE:
        return [], measurements
    looks = "brown, as DAB in immunohistochemistry" if brown >= green_blue else "green or blue"
    return [Finding("stain", (
        f"The stain does not look like H&E: only {he:.0%} of the tissue has H&E's pink-to-purple hues "
        f"(at least {HE_MIN_SHARE:.0%} expected), and {max(brown, green_blue):.0%} is {looks}."))], measurements


def check_domain(thumb: np.ndarray, l0_mpp: float, model_mpp: float, tissue: np.ndarray | None = None) -> DomainCheck:
    """The domain check of a slide from its thumbnail and the pixel size its tiles are planned with.

    ``tissue``: the thumbnail's tissue mask, when the caller has detected it already.
    """
    findings: list[Finding] = []
    resolution = check_resolution(l0_mpp, model_mpp)
    if resolution is not None:
        findings.append(resolution)
    appearance, measurements = check_appearance(thumb, tissue)
    findings.extend(appearance)
    measurements["l0_mpp"] = float(l0_mpp)
    measurements["model_mpp"] = float(model_mpp)
    return DomainCheck(tuple(findings), measurements)
