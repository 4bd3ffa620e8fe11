"""Classifying image patches: finding the files, decoding ahead, batching through the classifier.

A file that cannot be read becomes an error record; the others are still classified. Before a
patch reaches the model, tile quality control (:mod:`chaoyang_desktop.core.slide.tile_qc`) looks
at its pixels: a patch of glass, pen ink, blur or a dark artefact is not classified, because the
model would still name one of its tissue classes for it, with confidence. Such a patch is not an
error either: its record carries the reasons. Classified patches carry how unsure the model was
(normalised entropy, top-1 minus top-2 margin and, with test-time augmentation, the spread of
the top class across the views), as slide tiles do. The same generator drives
``chaoyang-desktop classify`` and the GUI's patch gallery.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chaoyang_desktop.core.analysis.results import UNSURE_MARGIN, entropy_of, margin_of
from chaoyang_desktop.core.errors import CancelledError
from chaoyang_desktop.core.model.inference import Classifier
from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES, decode_or_error, is_image_file
from chaoyang_desktop.core.slide.tile_qc import assess_tile, describe, reason_names


@dataclass(frozen=True)
class PatchResult:
    """The outcome for one input file: probabilities, the QC reasons it was left out, or an error.

    Exactly one of three kinds: *classified* (``probabilities`` set, with ``entropy``, ``margin``
    and with TTA ``tta_spread``), *QC-flagged* (``qc`` bits set, no probabilities: the model was
    not asked) or *failed* (``error`` set). Only plain values, so records cross from the worker
    thread to the GUI as they are.
    """

    path: str
    probabilities: tuple[float, ...] | None = None
    class_names: tuple[str, ...] = ()
    error: str | None = None
    #: Tile QC bits (:data:`~chaoyang_desktop.core.slide.tile_qc.QC_GLASS` ...); 0: passed or QC off.
    qc: int = 0
    #: Normalised entropy of the probabilities, 0 (one class) to 1 (all equal).
    entropy: float | None = None
    #: Top-1 minus top-2 probability; below :data:`UNSURE_MARGIN` the patch counts as unsure.
    margin: float | None = None
    #: Standard deviation of the top class's probability across the TTA views; None without TTA.
    tta_spread: float | None = None

    @property
    def ok(self) -> bool:
        """Not an error: classified, or left out by QC (which ``classify`` does not count as a failure)."""
        return self.error is None

    @property
    def classified(self) -> bool:
        """The model judged this patch: it has probabilities."""
        return self.probabilities is not None

    @property
    def qc_flagged(self) -> bool:
        """Left out by quality control, so deliberately not classified."""
        return self.qc != 0

    @property
    def qc_names(self) -> list[str]:
        """Short QC reason names (``glass``, ``pen``, ``blur``, ``dark``), for files."""
        return reason_names(self.qc)

    @property
    def qc_words(self) -> str:
        """The QC reasons for people, e.g. ``"glass or background"``; empty when it passed."""
        return describe(self.qc)

    @property
    def unsure(self) -> bool:
        """Classified, but the top two classes are within :data:`UNSURE_MARGIN` of each other."""
        return self.margin is not None and self.margin < UNSURE_MARGIN

    @property
    def label_index(self) -> int:
        assert self.probabilities is not None
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str | None:
        return None if self.probabilities is None else self.class_names[self.label_index]

    @property
    def confidence(self) -> float | None:
        return None if self.probabilities is None else float(max(self.probabilities))

    def to_dict(self) -> dict[str, Any]:
        """The record ``classify --format json`` writes.

        Errors keep their two keys; every other record has the same keys, so a QC-flagged patch
        reads as nulls where a classified one has numbers, and ``qc`` is ``""`` when it passed.
        """
        if self.error is not None:
            return {"path": self.path, "error": self.error}

        def num(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {
            "path": self.path,
            "label": self.label,
            "confidence": num(self.confidence),
            "probabilities": (None if self.probabilities is None else
                              {n: round(float(p), 6) for n, p in zip(self.class_names, self.probabilities)}),
            "entropy": num(self.entropy),
            "margin": num(self.margin),
            "tta_spread": num(self.tta_spread),
            "qc": ";".join(self.qc_names),
        }


def _decode_and_assess(path: Path, qc: bool) -> tuple[np.ndarray | str, int]:
    """Decode one file and, when ``qc``, its QC bits: run on the decoding threads, off the model's."""
    decoded = decode_or_error(path)
    if qc and isinstance(decoded, np.ndarray):
        # Patches are taken to be at the model's nominal resolution: no resize before the focus check.
        return decoded, assess_tile(decoded)
    return decoded, 0


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[PatchResult]]:
    """Expand files and folders (recursively) into image paths, in a stable order.

    Returns:
        ``(images, problems)``: problems are error records for inputs that do not exist or
        folders that hold no image.
    """
    images: list[Path] = []
    problems: list[PatchResult] = []
    seen: set[Path] = set()
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                (q for q in p.rglob("*") if q.is_file() and is_image_file(q)),
                key=lambda q: str(q.relative_to(p)).lower(),
            )
            if not found:
                problems.append(PatchResult(str(p), error=f"no images found in this folder (looked for {', '.join(IMAGE_SUFFIXES)})"))
            candidates = found
        elif p.is_file():
            candidates = [p]
        else:
            problems.append(PatchResult(str(p), error="no such file or folder"))
            continue
        for q in candidates:
            key = q.resolve()
            if key not in seen:
                seen.add(key)
                images.append(q)
    return images, problems


def classify_files(
    classifier: Classifier,
    paths: Sequence[Path],
    *,
    batch_size: int | None = None,
    workers: int = 4,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    qc: bool = True,
) -> Iterator[PatchResult]:
    """Yield one :class:`PatchResult` per path, in input order, decoding ahead in threads.

    Args:
        qc: Run tile quality control on each decoded patch and leave flagged ones unclassified
            (the default, as for slides); False sends every readable patch to the model.

    Raises:
        CancelledError: when ``cancel`` is set (checked between batches).
    """
    names = classifier.profile.class_names
    batch = batch_size or classifier.batch_size
    total = len(paths)
    done = 0

    def prepare(path: Path) -> tuple[np.ndarray | str, int]:
        return _decode_and_assess(path, qc)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        # map() keeps order and decodes ahead of the consumer; memory is bounded by chunking.
        for start in range(0, total, batch * 4):
            chunk = list(paths[start : start + batch * 4])
            prepared = list(pool.map(prepare, chunk))
            for b in range(0, len(chunk), batch):
                if cancel is not None and cancel.is_set():
                    raise CancelledError("Classification cancelled.")
                part = list(zip(chunk[b : b + batch], prepared[b : b + batch]))
                row: dict[int, int] = {}  # position in part -> row of probs
                images: list[np.ndarray] = []
                for i, (_, (d, flags)) in enumerate(part):
                    if isinstance(d, np.ndarray) and not flags:
                        row[i] = len(images)
                        images.append(d)
                probs, spread = (classifier.predict_with_spread(images) if images
                                 else (np.empty((0, len(names)), dtype=np.float32), None))
                entropy, margin = entropy_of(probs), margin_of(probs)
                top = np.argmax(probs, axis=1)
                for i, (p, (d, flags)) in enumerate(part):
                    if not isinstance(d, np.ndarray):
                        yield PatchResult(str(p), error=d)
                    elif flags:
                        yield PatchResult(str(p), class_names=names, qc=flags)
                    else:
                        k = row[i]
                        yield PatchResult(
                            str(p), tuple(float(x) for x in probs[k]), names,
                            entropy=float(entropy[k]), margin=float(margin[k]),
                            tta_spread=None if spread is None else float(spread[k, top[k]]))
                done += len(part)
                if on_progress is not None:
                    on_progress(done, total)
