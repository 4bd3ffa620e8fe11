"""Tile quality control: tiles the model should not judge, and why.

A tile is flagged, with one bit per reason, when its pixels show:

- ``glass``: mostly glass or background (bright and colourless: empty slide, the edge of a
  section, fat, which is white with thin membranes);
- ``pen``: marker ink (green, blue, red or black), which pathologists draw on the glass, and
  the tissue-marking dye grossing puts on margins (the teal dye on CMU-1's edges is flagged);
- ``blur``: out of focus (the variance of the Laplacian of the tissue's brightness is low);
- ``dark``: mostly near-black (folds, thick or crushed tissue, dirt, scanner borders).

The colour checks are fractions of pixels, measured on the tile reduced to
:data:`COLOUR_SIDE` px (area-averaged): fractions hardly change with resolution, so the same
rules also run on the slide thumbnail, where the plan finds pen and dark areas before any tile
is read. Focus depends on resolution, so it is measured only on the full tile brought to the
model's nominal resolution (``tile_px`` across a tile, 0.5 um/px for Chaoyang).

Thresholds were set on real data (``tests/data``): the H&E patches of Kather et al. and the
CMU-1 slide, against pen-marked H&E thumbnails from MSKCC's PenAnnotationExtractor and
CODAIT's deep-histopath, and Gaussian defocus drawn onto real tiles; see
``tests/core/slide/test_tile_qc.py`` for the figures they must keep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

QC_GLASS = 1
QC_PEN = 2
QC_BLUR = 4
QC_DARK = 8
#: Bits in reporting order, with their short names (CSV, JSON) and their words for people.
QC_REASONS: tuple[tuple[int, str, str], ...] = (
    (QC_GLASS, "glass", "glass or background"),
    (QC_PEN, "pen", "pen or marking ink"),
    (QC_BLUR, "blur", "out of focus"),
    (QC_DARK, "dark", "dark artefact or fold"),
)
QC_NAMES: tuple[str, ...] = tuple(name for _, name, _ in QC_REASONS)
#: Bumped when a rule or threshold changes, so cached results made with the old rules are not reused.
QC_VERSION = 1

#: Side of the area-averaged image the colour fractions are measured on.
COLOUR_SIDE = 128


@dataclass(frozen=True)
class QcThresholds:
    """The fraction of a tile (or the focus measure) above or below which it is flagged.

    Attributes:
        glass: Share of glass-like pixels that makes a tile glass. Fat measured 0.55-0.95, empty
            glass 0.99-1, and real tissue tiles up to 0.88 (pale, Macenko-normalised mucin: the
            one real tissue tile flagged); 0.85 keeps every tile with a seventh of tissue.
        pen: Share of ink pixels that makes a tile pen-marked. Real unmarked tissue measured at
            most 0.03 (blue-green specks on CMU-1).
        dark: Share of near-black pixels that makes a tile dark. The darkest real tissue tile,
            dense lymphocytes on a strongly stained slide, measured 0.18.
        blur: Variance of the 4-neighbour Laplacian of tissue brightness (0-255) below which a
            tile is out of focus. Real in-focus tissue measured 139-3650; a Gaussian defocus of
            sigma 2 px (1 um) brought every real tile below 40.
    """

    glass: float = 0.85
    pen: float = 0.05
    dark: float = 0.6
    blur: float = 60.0


DEFAULT_THRESHOLDS = QcThresholds()

# Pixel rules, on 0-255 RGB. Glass: bright and colourless (HSV saturation as in tissue.py).
GLASS_MIN_BRIGHT = 200
GLASS_MAX_SAT = 18
#: A near-black pixel: its brightest channel is below this.
DARK_MAX = 40


def glass_mask(rgb: np.ndarray) -> np.ndarray:
    """Bright, colourless pixels: glass, background, the white of fat (HSV saturation as in tissue.py)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)  # S = 255 * chroma / max, V = max
    mask: np.ndarray = (hsv[..., 2] > GLASS_MIN_BRIGHT) & (hsv[..., 1] < GLASS_MAX_SAT)
    return mask


def pixel_masks(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Per-pixel ``glass``, ``pen`` and ``dark`` masks of an RGB ``uint8`` image.

    Ink colours are told from the stains by hue relations that H&E never shows:

    - blue ink is cyan-leaning (green above red), haematoxylin is purple (red at or above green);
    - green ink has green above both red and blue, which no stain gives;
    - red ink has blue no higher than green and red far above green (CODAIT's red pen: 149-184
      at the 5th-95th percentile); eosin is pinker, and deep eosin stays below 130;
    - black ink is dark and colourless, nuclei stay coloured however dark they are.
    """
    r = rgb[..., 0].astype(np.int16)
    g = rgb[..., 1].astype(np.int16)
    b = rgb[..., 2].astype(np.int16)
    bright = np.maximum(np.maximum(r, g), b)
    chroma = bright - np.minimum(np.minimum(r, g), b)
    glass = glass_mask(rgb)
    blue = (b - r > 50) & (g - r > 15) & (b > g)
    green = (g - r > 20) & (g > b)
    red = (r > 150) & (r - g > 130) & (b - g < 20)
    black = (bright < 70) & (chroma < 18)
    return {"glass": glass, "pen": blue | green | red | black, "dark": bright < DARK_MAX}


def colour_fractions(rgb: np.ndarray) -> dict[str, float]:
    """Share of glass, pen and dark pixels of a tile, measured at :data:`COLOUR_SIDE` px."""
    h, w = rgb.shape[:2]
    if max(h, w) > COLOUR_SIDE:
        scale = COLOUR_SIDE / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return {name: float(mask.mean()) for name, mask in pixel_masks(rgb).items()}


def focus_measure(rgb: np.ndarray, nominal_side: int | None = None) -> float:
    """Variance of the 4-neighbour Laplacian of the brightness over the tile's non-glass pixels.

    Args:
        rgb: The tile at its read resolution.
        nominal_side: Pixels across the tile at the model's nominal resolution; the tile is
            resized to it first, because sharpness per pixel depends on the pixel size.

    Returns:
        The variance, or ``inf`` when fewer than 1 % of the pixels are tissue (nothing to judge:
        such a tile is glass, not blurred).
    """
    if nominal_side is not None and rgb.shape[0] != nominal_side:
        shrinking = rgb.shape[0] > nominal_side
        rgb = cv2.resize(rgb, (nominal_side, nominal_side),
                         interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=1)
    tissue = (~glass_mask(rgb)).view(np.uint8)
    if cv2.countNonZero(tissue) < 0.01 * tissue.size:
        return float("inf")
    # Masked standard deviation in OpenCV: no copy of the tissue pixels, and the GIL is released.
    _, std = cv2.meanStdDev(lap, mask=tissue)
    return float(std[0, 0]) ** 2


def flags_from_fractions(glass: np.ndarray | float, pen: np.ndarray | float, dark: np.ndarray | float,
                         thresholds: QcThresholds = DEFAULT_THRESHOLDS) -> np.ndarray:
    """QC bits from colour fractions (vectorised over tiles)."""
    out = np.where(np.asarray(glass) >= thresholds.glass, QC_GLASS, 0)
    out = out | np.where(np.asarray(pen) >= thresholds.pen, QC_PEN, 0)
    out = out | np.where(np.asarray(dark) >= thresholds.dark, QC_DARK, 0)
    return np.asarray(out, dtype=np.uint8)


def assess_tile(rgb: np.ndarray, nominal_side: int | None = None,
                thresholds: QcThresholds = DEFAULT_THRESHOLDS) -> int:
    """All QC bits of one tile (0: the model may judge it).

    Focus is only judged on tiles that pass the colour checks: a glass or ink tile has no
    tissue texture to measure.
    """
    f = colour_fractions(rgb)
    flags = int(flags_from_fractions(f["glass"], f["pen"], f["dark"], thresholds))
    if flags == 0 and focus_measure(rgb, nominal_side) < thresholds.blur:
        flags |= QC_BLUR
    return flags


def reason_names(flags: int) -> list[str]:
    """Short names of the bits set, in reporting order."""
    return [name for bit, name, _ in QC_REASONS if flags & bit]


def describe(flags: int) -> str:
    """The reasons in words, e.g. ``"pen or marking ink, out of focus"``; empty for 0."""
    return ", ".join(words for bit, _, words in QC_REASONS if flags & bit)


def count_by_reason(flags: Iterable[int] | np.ndarray) -> dict[str, int]:
    """Tiles per reason (a tile with two reasons counts under both), every reason present."""
    arr = np.asarray(list(flags) if not isinstance(flags, np.ndarray) else flags, dtype=np.uint8)
    return {name: int(np.count_nonzero(arr & bit)) for bit, name, _ in QC_REASONS}


def thumbnail_fraction_masks(thumb: np.ndarray) -> dict[str, np.ndarray]:
    """The pen and dark masks of a slide thumbnail, for the plan's per-tile fractions.

    Glass is left out: at thumbnail scale fat and the edges of sections read as glass, and the
    tissue threshold already handles them; glass is judged on each tile's own pixels.
    """
    masks = pixel_masks(thumb)
    return {"pen": masks["pen"], "dark": masks["dark"]}
