"""Region of interest: polygons in level-0 pixels, read from GeoJSON or drawn by the user.

QuPath's "Export objects as GeoJSON" writes a FeatureCollection (older versions a bare JSON
list of features) whose coordinates are level-0 pixels, the space every stored geometry here
uses. Polygons and multipolygons, with holes, make the region; points and lines are skipped
with a note.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chaoyang_desktop.core.errors import RoiError
from chaoyang_desktop.core.slide.geojson_file import read_geojson_file


def _ring(coords: Any, where: str) -> np.ndarray | None:
    """A ring as an ``(M, 2)`` float array without the closing point; None if degenerate."""
    try:
        arr = np.asarray(coords, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise RoiError(f"{where}: coordinates are not numbers ({exc}).") from exc
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise RoiError(f"{where}: a ring must be a list of [x, y] points.")
    arr = arr[:, :2]
    if not np.isfinite(arr).all():
        raise RoiError(f"{where}: coordinates must be finite numbers.")
    if len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]
    if len(np.unique(arr, axis=0)) < 3:
        return None
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class RoiPolygon:
    """One polygon: an exterior ring and its holes, each ``(M, 2)`` level-0 ``(x, y)``, open."""

    exterior: np.ndarray
    holes: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True, eq=False)
class Roi:
    """A region of interest made of polygons with holes, in level-0 pixels.

    Attributes:
        polygons: The polygons; their union, minus their holes, is the region.
        source: Where it came from (a file path, or ``"drawn"``).
        notes: What was skipped while reading (points, lines, degenerate rings).
    """

    polygons: tuple[RoiPolygon, ...]
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.polygons:
            raise RoiError(f"{self.source or 'The ROI'} holds no polygon.")

    @classmethod
    def from_polygon_points(cls, points: Sequence[Sequence[float]] | np.ndarray, source: str = "drawn") -> Roi:
        """A ROI from a user-drawn polygon, or a rectangle given by two opposite corners.

        Args:
            points: Level-0 ``(x, y)`` vertices (3 or more), or 2 corners of a rectangle.
            source: Recorded as :attr:`source`.
        """
        arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if len(arr) == 2:
            (x0, y0), (x1, y1) = arr
            arr = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        ring = _ring(arr, "The drawn region")
        if ring is None or _area(ring) == 0:
            raise RoiError("The drawn region has no area; draw at least three points that are not on one line.")
        return cls((RoiPolygon(ring),), source=source)

    @classmethod
    def from_geojson(cls, obj: Any, source: str = "") -> Roi:
        """A ROI from parsed GeoJSON: FeatureCollection, Feature, geometry or a list of features."""
        polygons: list[RoiPolygon] = []
        notes: list[str] = []
        for where, geometry in _geometries(obj, source or "GeoJSON"):
            gtype = geometry.get("type")
            coords = geometry.get("coordinates")
            if gtype == "Polygon":
                parts = [coords]
            elif gtype == "MultiPolygon":
                parts = list(coords) if isinstance(coords, list) else [None]
            else:
                notes.append(f"{where}: skipped a {gtype} (only polygons make a region).")
                continue
            for part in parts:
                if not isinstance(part, list) or not part:
                    raise RoiError(f"{where}: a {gtype} needs a list of rings.")
                exterior = _ring(part[0], where)
                if exterior is None:
                    notes.append(f"{where}: skipped a polygon with fewer than 3 distinct points.")
                    continue
                holes = tuple(h for h in (_ring(r, where) for r in part[1:]) if h is not None)
                polygons.append(RoiPolygon(exterior, holes))
        if not polygons:
            detail = f" ({'; '.join(notes)})" if notes else ""
            raise RoiError(
                f"{source or 'The GeoJSON'} holds no polygon{detail}. Export an area annotation "
                "(QuPath: File > Export objects as GeoJSON)."
            )
        return cls(tuple(polygons), source=source, notes=tuple(notes))

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` in level-0 pixels."""
        points = np.concatenate([p.exterior for p in self.polygons])
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def rasterize(self, width: int, height: int, l0_per_px_x: float, l0_per_px_y: float) -> np.ndarray:
        """The region as a ``(height, width)`` bool mask whose pixel is ``l0_per_px`` level-0 pixels.

        A mask pixel is inside when its centre is inside a polygon and outside its holes, so the
        mask's area matches the polygons' area to within the pixels along their edges.
        """
        scale = np.array([1.0 / l0_per_px_x, 1.0 / l0_per_px_y])
        mask = np.zeros((int(height), int(width)), dtype=bool)
        for polygon in self.polygons:
            rings = [polygon.exterior * scale] + [hole * scale for hole in polygon.holes]
            mask |= _scanline_fill(rings, int(width), int(height))
        return mask

    def area_l0(self) -> float:
        """Area in level-0 square pixels (exteriors minus holes; overlaps counted twice)."""
        return float(sum(_area(p.exterior) - sum(_area(h) for h in p.holes) for p in self.polygons))

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection (one annotation feature per polygon) that QuPath imports."""

        def closed(ring: np.ndarray) -> list[list[float]]:
            return [[float(x), float(y)] for x, y in np.vstack([ring, ring[:1]])]

        features = [
            {
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [closed(p.exterior)] + [closed(h) for h in p.holes],
                },
                "properties": {"objectType": "annotation", "name": "ROI"},
            }
            for p in self.polygons
        ]
        return {"type": "FeatureCollection", "features": features}

    def digest(self) -> str:
        """A short hash of the polygons (16 hex characters), stored in the provenance.

        Lets a later reader tell whether a ROI file still holds the region an analysis used.
        """
        return hashlib.sha256(json.dumps(self.to_geojson(), sort_keys=True).encode()).hexdigest()[:16]


def _scanline_fill(rings: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Even-odd fill of rings given in mask pixels, sampling each pixel at its centre.

    Written with numpy rather than ``PIL.ImageDraw.polygon``, which also fills every pixel the
    outline touches and so grows each polygon by about half a pixel on every side.
    """
    rows_parts, xs_parts = [], []
    for ring in rings:
        x0, y0 = ring[:, 0], ring[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        # Rows whose centre r + 0.5 lies in [min(y), max(y)): half-open, so a vertex shared by
        # two edges is counted once and horizontal edges not at all.
        r0 = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.int64)
        r1 = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.int64)
        counts = np.maximum(r1 - r0, 0)
        edge = np.repeat(np.arange(len(ring)), counts)
        rows = r0[edge] + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        t = (rows + 0.5 - y0[edge]) / (y1[edge] - y0[edge])
        rows_parts.append(rows)
        xs_parts.append(x0[edge] + t * (x1[edge] - x0[edge]))
    rows = np.concatenate(rows_parts)
    xs = np.concatenate(xs_parts)
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    # Every row crosses the rings an even number of times; consecutive crossings bound a span.
    span_row = rows[0::2]
    c_start = np.clip(np.ceil(xs[0::2] - 0.5), 0, width).astype(np.int64)
    c_end = np.clip(np.ceil(xs[1::2] - 0.5), 0, width).astype(np.int64)
    stride = width + 1
    diff = np.bincount(span_row * stride + c_start, minlength=height * stride)
    diff -= np.bincount(span_row * stride + c_end, minlength=height * stride)
    return np.cumsum(diff.reshape(height, stride), axis=1)[:, :width] > 0


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def _geometries(obj: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every geometry in a GeoJSON object, with a label saying where it was found."""
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _geometries(item, f"{where}, item {i + 1}")
        return
    if not isinstance(obj, dict):
        raise RoiError(f"{where}: expected a GeoJSON object, found {type(obj).__name__}.")
    kind = obj.get("type")
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list):
            raise RoiError(f"{where}: a FeatureCollection needs a list of features.")
        yield from _geometries(features, where)
    elif kind == "Feature":
        geometry = obj.get("geometry")
        if geometry is not None:  # GeoJSON allows features without a geometry
            yield from _geometries(geometry, where)
    elif kind == "GeometryCollection":
        for i, geometry in enumerate(obj.get("geometries") or []):
            yield from _geometries(geometry, f"{where}, geometry {i + 1}")
    elif isinstance(kind, str):
        yield where, obj
    else:
        raise RoiError(f"{where}: not GeoJSON (no \"type\").")


def load_roi(path: str | os.PathLike[str]) -> Roi:
    """Read a region of interest from a GeoJSON file (e.g. exported from QuPath).

    Raises:
        RoiError: Missing or unreadable file, invalid JSON or GeoJSON, or no polygon in it.
    """
    obj = read_geojson_file(path, RoiError, "ROI")
    return Roi.from_geojson(obj, source=str(Path(path)))
