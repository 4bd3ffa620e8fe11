"""The regions drawn on each slide, kept across sessions in the user's data folder.

Keyed by the slide's content fingerprint, not its path: a slide that is moved or renamed keeps
its regions, and a file name (which may identify a patient) is never written here. Each slide's
regions are one JSON file: a list of QuPath-style GeoJSON FeatureCollections, in the order they
were drawn, written atomically; each carries the region's name (the annotations it was made of)
as a ``name`` member.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from chaoyang_desktop.core.atomic import write_text
from chaoyang_desktop.core.errors import ChaoyangError
from chaoyang_desktop.core.paths import user_data_dir
from chaoyang_desktop.core.slide.roi import Roi

log = logging.getLogger(__name__)


class RegionStore:
    """Load and save the list of regions drawn on a slide."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else user_data_dir() / "regions"

    def _file(self, fingerprint: str) -> Path:
        if not fingerprint.isalnum():
            raise ValueError(f"not a slide fingerprint: {fingerprint!r}")
        return self.root / f"{fingerprint}.json"

    def load(self, fingerprint: str) -> list[Roi]:
        """The regions of the slide, oldest first; none when there is no readable file."""
        path = self._file(fingerprint)
        if not path.is_file():
            return []
        try:
            docs = json.loads(path.read_text(encoding="utf-8"))
            return [Roi.from_geojson(doc, source=str(doc.get("name") or "drawn")) for doc in docs]
        except (OSError, ValueError, TypeError, ChaoyangError) as exc:
            log.warning("Ignoring the unreadable regions file %s: %s", path, exc)
            return []

    def save(self, fingerprint: str, regions: list[Roi]) -> None:
        """Replace the slide's regions; a failure to write costs only their memory across sessions."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            docs = [dict(r.to_geojson(), name=r.source) for r in regions]  # a foreign member: the region's name
            write_text(self._file(fingerprint), json.dumps(docs, indent=1) + "\n")
        except (OSError, ChaoyangError) as exc:
            log.warning("Could not save the regions of this slide (%s); they last for this session only.", exc)
