"""The annotations of each slide, kept across sessions (see :mod:`slide_store`).

Each slide's annotations are one QuPath GeoJSON FeatureCollection, ``<fingerprint>.geojson``,
so the file can also be dragged into QuPath.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chaoyang_desktop.core.slide.annotations import Annotation, annotations_from_geojson, write_annotations_file
from chaoyang_desktop.core.slide.slide_store import SlideStore


class AnnotationStore(SlideStore[Annotation]):
    """Load and save the annotations drawn on a slide."""

    folder = "annotations"
    suffix = ".geojson"
    what = "annotations"

    def _read(self, path: Path) -> list[Annotation]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and doc.get("features") == []:
            return []  # every annotation was deleted: a valid, empty collection
        return annotations_from_geojson(doc, source=path.name).annotations

    def _write(self, path: Path, items: Sequence[Annotation]) -> None:
        write_annotations_file(path, items)
