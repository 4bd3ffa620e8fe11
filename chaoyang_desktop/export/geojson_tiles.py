"""Per-tile predictions as a GeoJSON FeatureCollection that QuPath imports by drag and drop.

The layout follows what QuPath itself writes (``PathObjectTypeAdapters`` in qupath-core, v0.4+):
each tile is a ``Feature`` with a UUID ``id``, a ``Polygon`` in level-0 pixels, and properties
``objectType: "tile"``, ``classification: {"name", "color": [r, g, b]}`` and ``measurements`` as
an object of name -> number. QuPath creates tile objects from these, coloured by class, with
the probabilities in its measurement table.

Tiles left out by quality control are features too, in QuPath's own ``Ignore*`` class (grey),
with a ``qc`` property naming the reasons (``glass``, ``pen``, ``blur``, ``dark``, ``;``-separated).
Classified tiles carry ``entropy`` (normalised, 0-1), ``margin`` (top-1 minus top-2) and, with
test-time augmentation, ``tta_spread`` among their measurements.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import numpy as np

from chaoyang_desktop.core.atomic import write_text
from chaoyang_desktop.core.analysis.results import TILE_DONE, TILE_QC, AnalysisResult
from chaoyang_desktop.core.slide.tile_qc import reason_names
from chaoyang_desktop.export._colors import hex_to_rgb
from chaoyang_desktop.export.csv_tiles import prob_column

#: Namespace of the tile ids. Fixed forever: changing it changes every exported id.
TILE_ID_NAMESPACE = uuid.UUID("6159694d-efb1-5bec-93a9-4dcde191261a")
#: QuPath's built-in class for objects to leave out of measurements, with its grey.
QC_CLASS = {"name": "Ignore*", "color": [180, 180, 180]}


def tile_id(result: AnalysisResult, l0_rect: tuple[int, int, int, int]) -> str:
    """A UUID for one tile, the same on every export of the same slide, model and tile.

    QuPath expects a UUID; a random one would make two exports of the same result differ.
    The tile is named by its level-0 rectangle rather than its index in the result, because
    the index shifts when the tissue threshold or the ROI changes while the tile does not;
    the weights hash keeps the tiles of two models apart when both are imported into one image.
    """
    p = result.provenance
    x, y, w, h = l0_rect
    return str(uuid.uuid5(TILE_ID_NAMESPACE, f"{p.slide_fingerprint}/{p.weights_sha256}/{x},{y},{w},{h}"))


def tiles_feature_collection(result: AnalysisResult) -> dict[str, Any]:
    """Build the FeatureCollection of every done or QC-flagged tile, in tile order.

    Failed and pending tiles have no class and are left out. Measurements hold each class's
    probability (``prob_<class>``, 6 decimals), the top-class ``confidence``, ``entropy``,
    ``margin`` and with TTA ``tta_spread``.

    Returns:
        A plain dict ready for :func:`json.dumps`.
    """
    names = result.class_names
    rgb = [list(hex_to_rgb(c)) for c in result.provenance.class_colors]
    rows = np.flatnonzero((result.status == TILE_DONE) | (result.status == TILE_QC))
    rects = result.rects()
    labels = result.labels()
    conf = result.confidences()
    entropy = result.entropy()
    margin = result.margin()
    spread = result.top_spread()
    features: list[dict[str, Any]] = []
    for i in rows:
        x, y, w, h = (int(v) for v in rects[i])
        k = int(labels[i])
        measurements: dict[str, float] = {}
        extra: dict[str, Any] = {}
        if result.status[i] == TILE_QC:
            classification: dict[str, Any] = dict(QC_CLASS)
            extra["qc"] = ";".join(reason_names(int(result.qc[i])))
        else:
            classification = {"name": names[k], "color": rgb[k]}
            measurements = {prob_column(n): round(float(p), 6) for n, p in zip(names, result.probs[i], strict=True)}
            measurements["confidence"] = round(float(conf[i]), 6)
            measurements["entropy"] = round(float(entropy[i]), 6)
            measurements["margin"] = round(float(margin[i]), 6)
            if spread is not None:
                measurements["tta_spread"] = round(float(spread[i]), 6)
        features.append(
            {
                "type": "Feature",
                "id": tile_id(result, (x, y, w, h)),
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]],
                },
                "properties": {
                    "objectType": "tile",
                    "classification": classification,
                    "isLocked": False,
                    "measurements": measurements,
                    **extra,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_tiles_geojson(result: AnalysisResult, path: str | os.PathLike[str]) -> None:
    """Write :func:`tiles_feature_collection` to ``path`` atomically.

    One feature per line: compact enough for slides with 100,000 tiles, still diffable.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    fc = tiles_feature_collection(result)
    # allow_nan=False: NaN is not JSON and QuPath's parser would reject the whole file.
    lines = [json.dumps(f, ensure_ascii=False, allow_nan=False, separators=(",", ":")) for f in fc["features"]]
    body = ",\n".join(lines)
    text = '{"type":"FeatureCollection","features":[\n' + body + ("\n" if lines else "") + "]}\n"
    write_text(path, text)
