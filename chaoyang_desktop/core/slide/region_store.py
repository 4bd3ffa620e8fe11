"""The regions analysed on each slide, kept across sessions (see :mod:`slide_store`).

Each slide's regions are one JSON file: a list of QuPath-style GeoJSON FeatureCollections, in
the order they were analysed; each carries the region's name (the annotations it was made of)
as a ``name`` member.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from chaoyang_desktop.core.atomic import write_text
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.core.slide.slide_store import SlideStore


class RegionStore(SlideStore[Roi]):
    """Load and save the list of regions of a slide."""

    folder = "regions"
    suffix = ".json"
    what = "regions"

    def _read(self, path: Path) -> list[Roi]:
        docs = json.loads(path.read_text(encoding="utf-8"))
        return [Roi.from_geojson(doc, source=str(doc.get("name") or "drawn")) for doc in docs]

    def _write(self, path: Path, items: Sequence[Roi]) -> None:
        docs = [dict(r.to_geojson(), name=r.source) for r in items]  # a foreign member: the region's name
        write_text(path, json.dumps(docs, indent=1) + "\n")
