"""The annotations of each slide, kept across sessions in the user's data folder.

Keyed by the slide's content fingerprint, not its path (as :mod:`region_store`): a moved or
renamed slide keeps its annotations, and no file name (which may identify a patient) is
written here. Each slide's annotations are one QuPath GeoJSON FeatureCollection,
``<fingerprint>.geojson``, written atomically, so the file can also be dragged into QuPath.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from chaoyang_desktop.core.slide.annotations import Annotation, annotations_from_geojson, write_annotations_file
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.paths import user_data_dir

log = logging.getLogger(__name__)


class AnnotationStore:
    """Load and save the annotations drawn on a slide."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else user_data_dir() / "annotations"

    def _file(self, fingerprint: str) -> Path:
        # Alphanumeric only: the key becomes a file name and must never walk out of the folder.
        if not fingerprint.isalnum():
            raise ValueError(f"not a slide fingerprint: {fingerprint!r}")
        return self.root / f"{fingerprint}.geojson"

    def load(self, fingerprint: str) -> list[Annotation]:
        """The slide's annotations in the saved order; none when there is no readable file."""
        path = self._file(fingerprint)
        if not path.is_file():
            return []
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("features") == []:
                return []  # every annotation was deleted: a valid, empty collection
            return annotations_from_geojson(doc, source=path.name).annotations
        except (OSError, ValueError, TypeError, RecursionError, ChaoyangError) as exc:
            log.warning("Ignoring the unreadable annotations file %s: %s", path, exc)
            return []

    def save(self, fingerprint: str, annotations: Sequence[Annotation]) -> None:
        """Replace the slide's annotations; a failure to write costs only their memory across sessions."""
        path = self._file(fingerprint)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_annotations_file(path, annotations)
        except (OSError, ValueError, TypeError, ChaoyangError) as exc:
            log.warning("Could not save the annotations of this slide (%s); they last for this session only.", exc)
