"""Deciding what a path opens as: one slide, a list of slides, or a gallery of patches.

Whole-slide formats (.svs, .ndpi, .mrxs, ...) are slides. A plain image is a *patch* when its
longer side is at most :data:`PATCH_MAX_SIDE` pixels (Chaoyang patches are 512 px, Kather's 150
and 224), otherwise it is shown and analysed as a one-level slide. Only the image header is read.
A folder opens as a slide list when it holds slides, otherwise as a patch gallery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chaoyang_desktop.core.errors import SlideOpenError
from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES
from chaoyang_desktop.core.slide.reader import SLIDE_SUFFIXES

PATCH_MAX_SIDE = 1024
#: Image files in a folder whose headers are all read; above this a sample decides for all.
_HEADER_CHECK_LIMIT = 300
_SAMPLE = 30

KIND_SLIDE = "slide"
KIND_SLIDES = "slides"
KIND_PATCHES = "patches"

WSI_SUFFIXES = tuple(s for s in SLIDE_SUFFIXES if s not in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class OpenTarget:
    """What to show: ``kind`` is ``slide`` (one), ``slides`` (a list) or ``patches`` (a gallery)."""

    kind: str
    paths: tuple[Path, ...]
    folder: Path | None = None
    skipped_patches: int = 0


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the file header, None when Pillow cannot read the header."""
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def is_patch_image(path: Path) -> bool:
    """A small plain image (classified whole), rather than an image to tile like a slide."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    size = image_size(path)
    return size is not None and max(size) <= PATCH_MAX_SIDE


def _scan(folder: Path) -> tuple[list[Path], list[Path]]:
    """Slide files and plain image files under ``folder`` (recursively), in a stable order."""
    wsi: list[Path] = []
    images: list[Path] = []
    dicom_dirs: set[Path] = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files, key=str.lower):
            if name.startswith("."):
                continue
            p = Path(root) / name
            suffix = p.suffix.lower()
            if suffix == ".dcm":
                if p.parent not in dicom_dirs:  # one DICOM series per folder
                    dicom_dirs.add(p.parent)
                    wsi.append(p)
            elif suffix in WSI_SUFFIXES:
                wsi.append(p)
            elif suffix in IMAGE_SUFFIXES:
                images.append(p)
    return wsi, images


def _split_images(images: list[Path]) -> tuple[list[Path], list[Path]]:
    """``(big images, patches)``; large folders are judged on a sample."""
    if len(images) <= _HEADER_CHECK_LIMIT:
        big = [p for p in images if not is_patch_image(p)]
        small = [p for p in images if p not in set(big)]
        return big, small
    step = max(1, len(images) // _SAMPLE)
    sample = images[::step][:_SAMPLE]
    patches = sum(is_patch_image(p) for p in sample)
    return ([], images) if patches * 2 >= len(sample) else (images, [])


def resolve_open(paths: Sequence[str | os.PathLike[str]]) -> OpenTarget:
    """What the given files and folders open as.

    Raises:
        SlideOpenError: Nothing openable was found, with the reason.
    """
    slides: list[Path] = []
    patches: list[Path] = []
    folder: Path | None = None
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            folder = folder or p
            wsi, images = _scan(p)
            big, small = _split_images(images)
            slides.extend(wsi + big)
            patches.extend(small)
        elif p.is_file():
            if p.suffix.lower() in IMAGE_SUFFIXES and is_patch_image(p):
                patches.append(p)
            else:
                slides.append(p)
        else:
            raise SlideOpenError(f"{p} does not exist. Check the path.")
    if not slides and not patches:
        where = ", ".join(str(Path(p)) for p in paths)
        raise SlideOpenError(
            f"No slides or images found in {where}. Chaoyang Desktop opens whole-slide images "
            f"({', '.join(WSI_SUFFIXES)}) and images ({', '.join(IMAGE_SUFFIXES)})."
        )
    if slides:
        if len(slides) == 1 and folder is None and not patches:
            return OpenTarget(KIND_SLIDE, (slides[0],))
        return OpenTarget(KIND_SLIDES, tuple(slides), folder, skipped_patches=len(patches))
    return OpenTarget(KIND_PATCHES, tuple(patches), folder)
