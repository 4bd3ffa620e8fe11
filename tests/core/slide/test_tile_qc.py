"""Tile quality control on real tissue: what it flags, what it must leave alone.

References come from outside the code under test: the class folders of the real labelled
patches (tissue classes against background and fat), real pen-marked slide overviews with
points picked by eye on the ink and on clean tissue, and defects drawn onto real tiles.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from chaoyang_desktop.core.slide.reader import open_slide
from chaoyang_desktop.core.slide.tile_qc import (
    DEFAULT_THRESHOLDS,
    QC_BLUR,
    QC_DARK,
    QC_GLASS,
    QC_PEN,
    assess_tile,
    colour_fractions,
    count_by_reason,
    describe,
    reason_names,
)
from tests.conftest import TEST_DATA

#: Folders of the patch sets that hold no tissue the model judges: background and fat.
NOT_TISSUE = {"BACK", "ADI", "07_ADIPOSE", "08_EMPTY"}
#: Inks as they look on the real pen-marked overviews (median colours of their strokes).
INKS = {"green": (70, 140, 110), "blue": (40, 80, 170), "red": (190, 20, 30), "black": (25, 25, 28)}


def _patches() -> list[tuple[str, np.ndarray]]:
    return [(p.parent.name, np.asarray(Image.open(p).convert("RGB")))
            for p in sorted((TEST_DATA / "patches").rglob("*")) if p.is_file()]


def _tissue_patches() -> list[np.ndarray]:
    return [rgb for folder, rgb in _patches() if folder not in NOT_TISSUE]


def test_real_tissue_patches_are_rarely_flagged() -> None:
    tissue = _tissue_patches()
    flags = [assess_tile(rgb) for rgb in tissue]
    false_flags = sum(f != 0 for f in flags)
    # 33 real H&E tissue patches: one is flagged (a Macenko-normalised mucin patch, 88 % pale).
    assert len(tissue) == 33
    assert false_flags / len(tissue) <= 0.05, [describe(f) for f in flags if f]


def test_background_and_empty_patches_are_glass() -> None:
    empty = [rgb for folder, rgb in _patches() if folder in {"BACK", "08_EMPTY"}]
    assert len(empty) == 3
    assert all(assess_tile(rgb) & QC_GLASS for rgb in empty)


def test_blur_drawn_on_real_tissue_is_flagged() -> None:
    tissue = _tissue_patches()
    # A defocus of sigma 2 px (1 um at 0.5 um/px): every real tissue patch becomes "blur".
    blurred = [assess_tile(cv2.GaussianBlur(rgb, (0, 0), 2.0)) for rgb in tissue]
    assert all(f & QC_BLUR for f in blurred if not f & QC_GLASS)
    assert sum(bool(f & QC_BLUR) for f in blurred) >= len(tissue) - 1


@pytest.mark.parametrize("ink", sorted(INKS))
def test_pen_strokes_drawn_on_real_tissue_are_flagged(ink: str) -> None:
    rng = np.random.default_rng(3)
    flagged = 0
    tissue = _tissue_patches()
    for rgb in tissue:
        marked = rgb.copy()
        h, w = rgb.shape[:2]
        x0, y0 = 0, int(rng.integers(0, h))
        x1, y1 = w - 1, int(rng.integers(0, h))
        # A marker stroke about a tenth of the tile wide, laid over the tissue with 85 % opacity.
        cv2.line(marked, (x0, y0), (x1, y1), INKS[ink], thickness=max(2, w // 10))
        marked = cv2.addWeighted(marked, 0.85, rgb, 0.15, 0)
        flagged += bool(assess_tile(marked) & QC_PEN)
    assert flagged >= 0.95 * len(tissue)


# Points picked by eye on the real overviews: (x, y) on ink, and on clean tissue or blood.
PEN_IMAGES = {
    "PenAnnotationExtractor__thumbnail_00019.jpg": {
        "ink": [(870, 470), (180, 100), (330, 450), (600, 350)],
        "clean": [(500, 200), (665, 130), (450, 650), (150, 500), (420, 590)],
    },
    "PenAnnotationExtractor__thumbnail_00236.jpg": {
        "ink": [(60, 330), (950, 260), (200, 430), (600, 470)],
        "clean": [(450, 330), (700, 150), (800, 300)],
    },
    "deep-histopath__slide-pen.png": {
        "ink": [(130, 300), (420, 60), (240, 450)],
        "clean": [(300, 270), (450, 400), (250, 330)],
    },
}


@pytest.mark.parametrize("name", sorted(PEN_IMAGES))
def test_pen_on_real_pen_marked_slides(name: str) -> None:
    rgb = np.asarray(Image.open(TEST_DATA / "pen" / name).convert("RGB"))

    def flags_at(x: int, y: int, half: int = 16) -> int:
        tile = rgb[max(0, y - half): y + half, max(0, x - half): x + half]
        return assess_tile(tile)

    points = PEN_IMAGES[name]
    assert all(flags_at(x, y) & QC_PEN for x, y in points["ink"]), name
    assert not any(flags_at(x, y) & QC_PEN for x, y in points["clean"]), name


def test_real_slide_tiles_keep_their_tissue(test_data: Path) -> None:
    # Every 256 um tile of CMU-1 with at least a third of tissue passes; the glass corner does not.
    with open_slide(test_data / "slides" / "CMU-1-Small-Region.svs") as slide:
        w, h = slide.dimensions
        tiles = [slide.read_region(x, y, 0, 512, 512) for y in range(0, h - 511, 512) for x in range(0, w - 511, 512)]
    tissue = [t for t in tiles if colour_fractions(t)["glass"] < 0.67]
    assert len(tissue) >= 8
    assert all(assess_tile(t, 512) == 0 for t in tissue)
    assert assess_tile(tiles[0], 512) & QC_GLASS  # the top-left corner is empty glass


def test_reasons_are_named_in_order() -> None:
    assert reason_names(QC_BLUR | QC_GLASS) == ["glass", "blur"]
    assert describe(QC_PEN | QC_DARK) == "pen or marking ink, dark artefact or fold"
    assert count_by_reason(np.array([QC_PEN, QC_PEN | QC_BLUR, 0], dtype=np.uint8)) == {
        "glass": 0, "pen": 2, "blur": 1, "dark": 0}
    assert DEFAULT_THRESHOLDS.blur > 0
