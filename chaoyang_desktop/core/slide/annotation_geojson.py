"""Annotations as QuPath GeoJSON: writing, reading (with what is skipped), and files.

QuPath's GeoJSON, as its source shows (qupath-core ``PathObjectTypeAdapters`` and
``GsonTools.PathClassTypeAdapter``, v0.2 to v0.5):

- "Export objects as GeoJSON" writes a FeatureCollection; without that option, and in older
  versions, a bare JSON list of features (or one feature).
- ``"id"`` of a feature is the object's UUID since v0.4; v0.2 wrote the Java class name there
  (``"PathAnnotationObject"``, ``"PathDetectionObject"``...), which then said the object type.
- Rectangles and ellipses are written as Polygons (ellipses as many-vertex polygons), rings
  closed, coordinates in level-0 pixels; several pieces make a MultiPolygon.
- ``properties``: ``objectType`` (``annotation``, ``detection``, ``cell``, ``tile``,
  ``tmaCore``; ``object_type`` in older files), ``name`` only when set, ``color`` ``[r, g, b]``
  (the object's own colour), ``classification``, ``isLocked`` only when true, ``measurements``
  (name to number) and ``metadata`` (string to string; QuPath keeps primitive values only).
- ``classification`` is ``{"name": "Tumor", "color": [200, 0, 0]}`` (a fourth alpha value when
  neither 0 nor 255; ``"names": [...]`` for derived classes such as ``Tumor: Positive``). Before
  v0.4 it was Gson's dump of the Java object, ``{"name": ..., "colorRGB": <packed ARGB as a
  signed int>, "parentClass": {...}}``; QuPath also reads a bare string.

We write what QuPath writes for an annotation, and keep our own shape in
``metadata.chaoyang_shape`` (a string, so QuPath keeps it too). Every other property is kept in
:attr:`Annotation.extra` and written back unchanged. Coordinates are written with Python's
shortest exact float repr, so a file we write reads back bit-exact.

Import the public names from :mod:`chaoyang_desktop.core.slide.annotations`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chaoyang_desktop.core.slide.annotation_model import (
    QUPATH_DEFAULT_CLASSES,
    SHAPES,
    Annotation,
    PathClass,
    frozen_ring,
    has_area,
    new_uid,
)
from chaoyang_desktop.core.atomic import write_text
from chaoyang_desktop.core.errors import AnnotationError
from chaoyang_desktop.core.slide.geojson_file import read_geojson_file
from chaoyang_desktop.core.slide.roi import RoiPolygon

#: The ``metadata`` key our shape is written under.
SHAPE_KEY = "chaoyang_shape"


# ----- GeoJSON: writing ------------------------------------------------------------------------------
#: Properties that the annotation's own fields give; never taken from ``extra``.
_OWN_KEYS = ("objectType", "object_type", "name", "classification")


def _closed(ring: np.ndarray) -> list[list[float]]:
    # tolist() gives Python floats, which json writes with repr: the round trip is bit-exact.
    points: list[list[float]] = ring.tolist()
    return points + [list(points[0])]


def annotation_to_feature(annotation: Annotation) -> dict[str, Any]:
    """One QuPath annotation Feature (see the module docstring for the format)."""
    rings = [[_closed(p.exterior), *(_closed(h) for h in p.holes)] for p in annotation.polygons]
    geometry: dict[str, Any] = (
        {"type": "Polygon", "coordinates": rings[0]}
        if len(rings) == 1
        else {"type": "MultiPolygon", "coordinates": rings}
    )
    extra = copy.deepcopy(dict(annotation.extra))
    for key in _OWN_KEYS:
        extra.pop(key, None)
    metadata = extra.pop("metadata", None)
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata[SHAPE_KEY] = annotation.shape
    properties: dict[str, Any] = {"objectType": "annotation"}
    if annotation.name:
        properties["name"] = annotation.name
    if annotation.path_class is not None:
        properties["classification"] = {
            "name": annotation.path_class.name,
            "color": [int(c) for c in annotation.path_class.color],
        }
    properties["metadata"] = metadata
    properties.update(extra)
    return {"type": "Feature", "id": annotation.uid, "geometry": geometry, "properties": properties}


def annotations_to_geojson(annotations: Iterable[Annotation]) -> dict[str, Any]:
    """A FeatureCollection of annotation features that QuPath imports (File > Import objects)."""
    return {"type": "FeatureCollection", "features": [annotation_to_feature(a) for a in annotations]}


# ----- GeoJSON: reading ------------------------------------------------------------------------------
@dataclass
class AnnotationImport:
    """What a GeoJSON document gave: the annotations, and one note per kind of thing skipped."""

    annotations: list[Annotation]
    notes: list[str]


#: QuPath v0.2 wrote the object's Java class in the feature ``id``.
_LEGACY_TYPE_IDS = {
    "PathAnnotationObject": "annotation",
    "PathDetectionObject": "detection",
    "PathCellObject": "cell",
    "PathTileObject": "tile",
    "TMACoreObject": "tmaCore",
    "PathRootObject": "root",
}
#: Object types that are not area annotations (detections and cells are results, not regions).
_NOT_ANNOTATIONS = {"detection", "cell", "tile", "tmaCore", "tma_core", "root"}


class _Malformed(Exception):
    """A feature whose geometry cannot be read; it is skipped with a note."""


class _Skipped:
    """Counts of skipped things, by ``(singular, plural)`` phrase, in the order first seen."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, singular: str, plural: str, n: int = 1) -> None:
        self.counts[(singular, plural)] += n

    def notes(self, where: str) -> list[str]:
        return [f"{where}: skipped {n} {one if n == 1 else many}." for (one, many), n in self.counts.items()]


def _parse_ring(coords: Any) -> np.ndarray:
    try:
        arr = np.array(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _Malformed from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise _Malformed
    arr = arr[:, :2]
    if not np.isfinite(arr).all():
        raise _Malformed
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]
    return frozen_ring(arr)


def _polygons(geometry: Any, skipped: _Skipped) -> list[RoiPolygon]:
    """The polygons of a geometry; other geometries and rings without area are counted as skipped."""
    if not isinstance(geometry, dict):
        raise _Malformed
    gtype = geometry.get("type")
    if gtype == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list):
            raise _Malformed
        return [p for g in parts for p in _polygons(g, skipped)]
    coords = geometry.get("coordinates")
    if gtype == "Polygon":
        pieces = [coords]
    elif gtype == "MultiPolygon":
        if not isinstance(coords, list):
            raise _Malformed
        pieces = coords
    else:
        kind = gtype if isinstance(gtype, str) else "unknown"
        skipped.add(f"{kind} geometry (only polygons are imported)", f"{kind} geometries (only polygons are imported)")
        return []
    out = []
    for piece in pieces:
        if not isinstance(piece, list) or not piece:
            raise _Malformed
        exterior = _parse_ring(piece[0])
        if not has_area(exterior):
            skipped.add("polygon without area", "polygons without area")
            continue
        holes = []
        for ring in piece[1:]:
            hole = _parse_ring(ring)
            if has_area(hole):
                holes.append(hole)
            else:
                skipped.add("hole without area", "holes without area")
        out.append(RoiPolygon(exterior, tuple(holes)))
    return out


def _default_color(name: str) -> tuple[int, int, int]:
    """QuPath's colour for its default classes; otherwise a stable colour derived from the name."""
    for pc in QUPATH_DEFAULT_CLASSES:
        if pc.name == name:
            return pc.color
    r, g, b = hashlib.sha256(name.encode("utf-8")).digest()[:3]
    return int(r), int(g), int(b)


def _class_name(value: Mapping[str, Any]) -> str | None:
    names = value.get("names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return ": ".join(names)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    parent = value.get("parentClass")  # a derived class before v0.4
    parent_name = _class_name(parent) if isinstance(parent, dict) else None
    return f"{parent_name}: {name}" if parent_name else name


def _unpack_rgb(packed: int) -> tuple[int, int, int]:
    # Java packs ARGB into a signed 32-bit int; Python's >> on a negative int keeps the bits we need.
    return (packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF


def _class_color(value: Mapping[str, Any]) -> tuple[int, int, int] | None:
    color = value.get("color")
    if isinstance(color, list) and len(color) >= 3 and all(_is_number(c) for c in color[:3]):
        r, g, b = (int(min(255, max(0, round(float(c))))) for c in color[:3])
        return r, g, b
    for packed in (color, value.get("colorRGB")):
        if isinstance(packed, int) and not isinstance(packed, bool):
            return _unpack_rgb(packed)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _path_class(value: Any) -> PathClass | None:
    """A classification in any form QuPath writes or reads; None for none (or QuPath's empty class)."""
    if isinstance(value, str) and value:
        return PathClass(value, _default_color(value))
    if not isinstance(value, dict):
        return None
    name = _class_name(value)
    if name is None:
        return None
    return PathClass(name, _class_color(value) or _default_color(name))


def _features(obj: Any, where: str) -> list[dict[str, Any]]:
    """The features of a FeatureCollection, a list of features, a Feature or a bare geometry."""
    not_geojson = (
        f"{where} is not GeoJSON; give a GeoJSON file, e.g. from QuPath's File > Export objects as GeoJSON."
    )
    items: Any
    if isinstance(obj, list):
        items = obj
    elif isinstance(obj, dict) and obj.get("type") == "FeatureCollection":
        items = obj.get("features")
        if not isinstance(items, list):
            raise AnnotationError(f"{where}: a FeatureCollection needs a list of features; export it again.")
    elif isinstance(obj, dict):
        items = [obj]
    else:
        raise AnnotationError(not_geojson)
    features = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise AnnotationError(not_geojson)
        if item["type"] == "Feature":
            features.append(item)
        else:  # a bare geometry stands for a feature without properties
            features.append({"type": "Feature", "geometry": item, "properties": {}})
    return features


def annotations_from_geojson(obj: Any, source: str = "") -> AnnotationImport:
    """Annotations from parsed GeoJSON: a FeatureCollection, a list of features, a Feature or a geometry.

    Each Polygon or MultiPolygon feature (holes kept) becomes one annotation with the feature's
    id as uid (a new UUID when it has none, or repeats an earlier one), its name,
    classification, shape (``metadata.chaoyang_shape``, else ``"polygon"``) and every other
    property in ``extra``. Points, lines, features without geometry and non-annotation objects
    (QuPath detections, cells, tiles, TMA cores) are skipped, counted in ``notes``.

    Raises:
        AnnotationError: ``obj`` is not GeoJSON, or holds no usable annotation.
    """
    where = source or "The GeoJSON"
    skipped = _Skipped()
    annotations: list[Annotation] = []
    seen: set[str] = set()
    renamed_ids = 0
    for feature in _features(obj, where):
        props = feature.get("properties")
        props = props if isinstance(props, dict) else {}
        fid = feature.get("id")
        object_type = props.get("objectType", props.get("object_type"))
        if isinstance(fid, str) and fid in _LEGACY_TYPE_IDS:
            object_type = object_type or _LEGACY_TYPE_IDS[fid]
            fid = None
        if isinstance(object_type, str) and object_type in _NOT_ANNOTATIONS:
            skipped.add(f"{object_type} object (only annotations are imported)",
                        f"{object_type} objects (only annotations are imported)")
            continue
        geometry = feature.get("geometry")
        if geometry is None:
            skipped.add("feature without a geometry", "features without a geometry")
            continue
        try:
            polygons = _polygons(geometry, skipped)
        except _Malformed:
            skipped.add("feature whose coordinates are not [x, y] numbers",
                        "features whose coordinates are not [x, y] numbers")
            continue
        if not polygons:
            continue
        uid = str(fid) if isinstance(fid, (str, int)) and not isinstance(fid, bool) and str(fid) else None
        if uid is None or uid in seen:
            renamed_ids += uid is not None
            uid = new_uid()
        seen.add(uid)
        annotations.append(_annotation(uid, tuple(polygons), props))
    notes = skipped.notes(where)
    if renamed_ids:
        notes.append(f"{where}: {renamed_ids} feature id(s) repeated an earlier one and were given new ids.")
    if not annotations:
        detail = f" ({' '.join(notes)})" if notes else ""
        raise AnnotationError(
            f"{where} holds no annotation polygon{detail}. Export area annotations "
            "(QuPath: File > Export objects as GeoJSON)."
        )
    return AnnotationImport(annotations, notes)


def _annotation(uid: str, polygons: tuple[RoiPolygon, ...], props: dict[str, Any]) -> Annotation:
    extra = {k: v for k, v in props.items() if k not in _OWN_KEYS}
    shape = "polygon"
    metadata = extra.get("metadata")
    if isinstance(metadata, dict):
        if metadata.get(SHAPE_KEY) in SHAPES:
            shape = str(metadata[SHAPE_KEY])
        rest = {k: v for k, v in metadata.items() if k != SHAPE_KEY}
        if rest:
            extra["metadata"] = rest
        else:
            del extra["metadata"]
    name = props.get("name")
    return Annotation(
        uid=uid,
        polygons=polygons,
        name=name if isinstance(name, str) else "",
        path_class=_path_class(props.get("classification")),
        shape=shape,
        extra=extra,
    )


# ----- files -----------------------------------------------------------------------------------------
def read_annotations_file(path: str | os.PathLike[str]) -> AnnotationImport:
    """Read annotations from a GeoJSON file (a QuPath export, or one we wrote).

    Raises:
        AnnotationError: Missing or unreadable file, invalid JSON or GeoJSON, or no annotation.
    """
    obj = read_geojson_file(path, AnnotationError, "annotation")
    return annotations_from_geojson(obj, source=Path(path).name)


def write_annotations_file(path: str | os.PathLike[str], annotations: Iterable[Annotation]) -> None:
    """Write the annotations as a QuPath FeatureCollection, atomically.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    text = json.dumps(annotations_to_geojson(annotations), indent=1, ensure_ascii=False)
    write_text(path, text + "\n")
