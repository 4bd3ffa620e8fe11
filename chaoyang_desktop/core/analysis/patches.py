"""Classifying image patches: finding the files, decoding ahead, batching through the classifier.

A file that cannot be read becomes an error record; the others are still classified. The same
generator drives ``chaoyang-desktop classify`` and the GUI's patch gallery.
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

from chaoyang_desktop.core.errors import CancelledError
from chaoyang_desktop.core.slide.imageio import IMAGE_SUFFIXES, decode_or_error, is_image_file
from chaoyang_desktop.core.model.inference import Classifier


@dataclass(frozen=True)
class PatchResult:
    """The outcome for one input file: probabilities, or the reason it failed."""

    path: str
    probabilities: tuple[float, ...] | None = None
    class_names: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

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
        """The record ``classify --format json`` writes."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        assert self.probabilities is not None
        return {
            "path": self.path,
            "label": self.label,
            "confidence": round(float(self.confidence or 0.0), 6),
            "probabilities": {n: round(float(p), 6) for n, p in zip(self.class_names, self.probabilities)},
        }


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
) -> Iterator[PatchResult]:
    """Yield one :class:`PatchResult` per path, in input order, decoding ahead in threads.

    Raises:
        CancelledError: when ``cancel`` is set (checked between batches).
    """
    names = classifier.profile.class_names
    batch = batch_size or classifier.batch_size
    total = len(paths)
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        # map() keeps order and decodes ahead of the consumer; memory is bounded by chunking.
        for start in range(0, total, batch * 4):
            chunk = list(paths[start : start + batch * 4])
            decoded = list(pool.map(decode_or_error, chunk))
            for b in range(0, len(chunk), batch):
                if cancel is not None and cancel.is_set():
                    raise CancelledError("Classification cancelled.")
                part = list(zip(chunk[b : b + batch], decoded[b : b + batch]))
                good = [(p, d) for p, d in part if isinstance(d, np.ndarray)]
                probs = classifier.predict([d for _, d in good]) if good else np.empty((0, len(names)))
                by_path = {id(d): pr for (_, d), pr in zip(good, probs)}
                for p, d in part:
                    if isinstance(d, np.ndarray):
                        yield PatchResult(str(p), tuple(float(x) for x in by_path[id(d)]), names)
                    else:
                        yield PatchResult(str(p), error=d)
                done += len(part)
                if on_progress is not None:
                    on_progress(done, total)
