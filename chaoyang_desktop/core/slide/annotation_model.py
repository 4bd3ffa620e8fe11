"""An annotation: a named, classified polygon (with holes) drawn on a slide, in level-0 pixels.

An :class:`Annotation` is immutable: every edit (a move, a dragged vertex, a new name) returns a
new one with the same ``uid``, so :class:`~chaoyang_desktop.core.slide.annotation_history.AnnotationHistory`
keeps undo steps as plain snapshots, and a worker thread can read a state while the user keeps
drawing. Rings are open ``(M, 2)`` arrays, as in :mod:`chaoyang_desktop.core.slide.roi`, whose
:class:`Roi` an annotation turns into for rasterising and analysis.

Import the public names from :mod:`chaoyang_desktop.core.slide.annotations`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from chaoyang_desktop.core.errors import AnnotationError
from chaoyang_desktop.core.slide.roi import Roi, RoiPolygon


@dataclass(frozen=True)
class PathClass:
    """A QuPath classification: its name and display colour ``(r, g, b)``, 0 to 255."""

    name: str
    color: tuple[int, int, int]


#: The classes a new QuPath project starts with (an asterisk marks QuPath's ignored classes).
QUPATH_DEFAULT_CLASSES: tuple[PathClass, ...] = (
    PathClass("Tumor", (200, 0, 0)),
    PathClass("Stroma", (150, 200, 150)),
    PathClass("Immune cells", (160, 90, 160)),
    PathClass("Necrosis", (50, 50, 50)),
    PathClass("Other", (255, 200, 0)),
    PathClass("Region*", (0, 0, 180)),
    PathClass("Ignore*", (180, 180, 180)),
)

SHAPES = ("rectangle", "ellipse", "polygon", "freehand")

#: Vertices of the polygon an ellipse is stored as (every 5 degrees).
ELLIPSE_VERTICES = 72

_NO_AREA = "The annotation has no area; draw at least three points that are not on one line."
_NO_AREA_BOX = "The annotation has no area; drag a {} that has both a width and a height."


# ----- ring helpers ----------------------------------------------------------------------------------
def new_uid() -> str:
    """A new annotation uid: a random UUID, as QuPath gives its objects."""
    return str(uuid.uuid4())


def frozen_ring(points: Any) -> np.ndarray:
    """A read-only float64 ``(M, 2)`` copy, so no caller can change a stored ring."""
    arr = np.array(points, dtype=np.float64).reshape(-1, 2)
    arr.setflags(write=False)
    return arr


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def has_area(ring: np.ndarray) -> bool:
    """Whether an open ring has three distinct points not all on one line."""
    return len(ring) >= 3 and len(np.unique(ring, axis=0)) >= 3 and _area(ring) > 0.0


def _points(l0_points: Any) -> np.ndarray:
    try:
        arr = np.array(l0_points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AnnotationError(f"The annotation's points are not numbers ({exc}); give (x, y) pairs.") from exc
    if arr.size == 0:
        raise AnnotationError(_NO_AREA)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise AnnotationError("The annotation's points must be (x, y) pairs; give a list of [x, y].")
    if not np.isfinite(arr).all():
        raise AnnotationError("The annotation's points must be finite numbers; draw it again.")
    return arr


def _finite(*values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise AnnotationError("A vertex needs finite coordinates; place it on the slide.")


def _drop_closing(arr: np.ndarray) -> np.ndarray:
    """Rings are stored open: a last point equal to the first is the GeoJSON closing point."""
    while len(arr) > 1 and np.array_equal(arr[0], arr[-1]):
        arr = arr[:-1]
    return arr


def _odd_crossings(ring: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Per point, whether a ray to +x crosses ``ring`` an odd number of times.

    Edges count over the half-open span ``min(y) <= y < max(y)``, the rule of
    :func:`chaoyang_desktop.core.slide.roi._scanline_fill`, so a heatmap cell's centre is inside here
    exactly when the rasterised mask has it.
    """
    x0, y0 = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    px, py = pts[:, 0:1], pts[:, 1:2]
    straddle = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return np.asarray(np.count_nonzero(straddle & (px < x_cross), axis=1) % 2 == 1)


# ----- the annotation --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Annotation:
    """One annotation: polygons with holes in level-0 pixels, a name, a class and a shape.

    Attributes:
        uid: Identity across edits, undo and files (the GeoJSON feature ``id``, a UUID).
        polygons: Level-0 polygons with open rings, as in :class:`RoiPolygon`; at least one.
        name: Given by the user; empty when unnamed (see :meth:`display_name`).
        path_class: The QuPath classification, or None.
        shape: How it was drawn, one of :data:`SHAPES`; editing a vertex of a rectangle or an
            ellipse makes it a ``"polygon"``.
        extra: Other GeoJSON properties read from a file, written back unchanged (read-only).
    """

    uid: str = field(default_factory=new_uid)
    polygons: tuple[RoiPolygon, ...] = ()
    name: str = ""
    path_class: PathClass | None = None
    shape: str = "polygon"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.polygons:
            raise AnnotationError("An annotation needs a polygon; draw one first.")
        if self.shape not in SHAPES:
            raise ValueError(f"Unknown annotation shape {self.shape!r}; use one of {', '.join(SHAPES)}.")
        object.__setattr__(self, "polygons", tuple(self.polygons))
        # A private deep copy behind a read-only view: a frozen annotation must not change
        # through a dict its creator still holds.
        object.__setattr__(self, "extra", MappingProxyType(copy.deepcopy(dict(self.extra))))

    # ----- constructors ----------------------------------------------------------------------------
    @classmethod
    def rectangle(cls, l0_x0: float, l0_y0: float, l0_x1: float, l0_y1: float, **kw: Any) -> Annotation:
        """An axis-aligned rectangle from two opposite corners (in any order)."""
        _finite(l0_x0, l0_y0, l0_x1, l0_y1)
        x0, x1 = sorted((float(l0_x0), float(l0_x1)))
        y0, y1 = sorted((float(l0_y0), float(l0_y1)))
        if x0 == x1 or y0 == y1:
            raise AnnotationError(_NO_AREA_BOX.format("rectangle"))
        ring = frozen_ring([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        return cls(polygons=(RoiPolygon(ring),), shape="rectangle", **kw)

    @classmethod
    def ellipse(cls, l0_x0: float, l0_y0: float, l0_x1: float, l0_y1: float, **kw: Any) -> Annotation:
        """The ellipse inscribed in a bounding box, as a polygon of :data:`ELLIPSE_VERTICES` vertices.

        GeoJSON has no ellipse (QuPath too writes ellipses as polygons), so storing the polygon
        makes what is drawn, measured, analysed and exported the same shape.
        """
        _finite(l0_x0, l0_y0, l0_x1, l0_y1)
        x0, x1 = sorted((float(l0_x0), float(l0_x1)))
        y0, y1 = sorted((float(l0_y0), float(l0_y1)))
        if x0 == x1 or y0 == y1:
            raise AnnotationError(_NO_AREA_BOX.format("ellipse"))
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        theta = np.arange(ELLIPSE_VERTICES) * (2.0 * np.pi / ELLIPSE_VERTICES)
        ring = frozen_ring(np.stack([cx + rx * np.cos(theta), cy + ry * np.sin(theta)], axis=1))
        return cls(polygons=(RoiPolygon(ring),), shape="ellipse", **kw)

    @classmethod
    def polygon(cls, l0_points: Sequence[Sequence[float]] | np.ndarray, **kw: Any) -> Annotation:
        """A polygon through the clicked vertices (a repeated first point closing it is dropped)."""
        ring = _drop_closing(_points(l0_points))
        if not has_area(ring):
            raise AnnotationError(_NO_AREA)
        return cls(polygons=(RoiPolygon(frozen_ring(ring)),), shape="polygon", **kw)

    @classmethod
    def freehand(cls, l0_points: Sequence[Sequence[float]] | np.ndarray, **kw: Any) -> Annotation:
        """A freehand outline; repeated consecutive points (a mouse that did not move) are dropped."""
        arr = _points(l0_points)
        keep = np.concatenate([[True], np.any(arr[1:] != arr[:-1], axis=1)])
        ring = _drop_closing(arr[keep])
        if not has_area(ring):
            raise AnnotationError(_NO_AREA)
        return cls(polygons=(RoiPolygon(frozen_ring(ring)),), shape="freehand", **kw)

    # ----- geometry --------------------------------------------------------------------------------
    def roi(self) -> Roi:
        """The annotation as a region of interest (source: its name, or ``"annotation"``)."""
        return Roi(self.polygons, source=self.name or "annotation")

    def bounds(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)`` of the exteriors in level-0 pixels."""
        points = np.concatenate([p.exterior for p in self.polygons])
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def area_l0(self) -> float:
        """Area in level-0 square pixels: exteriors minus holes."""
        return float(sum(_area(p.exterior) - sum(_area(h) for h in p.holes) for p in self.polygons))

    def contains(self, l0_x: float, l0_y: float) -> bool:
        """Whether a level-0 point is inside (even-odd rule; points in holes are outside)."""
        return bool(self.contains_points(np.array([[l0_x, l0_y]], dtype=np.float64))[0])

    def contains_points(self, l0_xy: np.ndarray) -> np.ndarray:
        """:meth:`contains` for an ``(N, 2)`` array of level-0 points; a bool array of N."""
        pts = np.asarray(l0_xy, dtype=np.float64).reshape(-1, 2)
        inside = np.zeros(len(pts), dtype=bool)
        x0, y0, x1, y1 = self.bounds()
        # Only points in the bounding box are tested, in chunks, so a slide's worth of tile
        # centres against a long freehand outline stays within a few tens of MB.
        candidates = np.flatnonzero((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1))
        n_edges = max(len(r) for p in self.polygons for r in (p.exterior, *p.holes))
        chunk = max(1, (1 << 21) // n_edges)
        for start in range(0, len(candidates), chunk):
            idx = candidates[start : start + chunk]
            sub = pts[idx]
            hit = np.zeros(len(idx), dtype=bool)
            for polygon in self.polygons:
                parity = np.zeros(len(idx), dtype=bool)
                for ring in (polygon.exterior, *polygon.holes):
                    parity ^= _odd_crossings(ring, sub)
                hit |= parity
            inside[idx] = hit
        return inside

    def vertices(self) -> np.ndarray:
        """The exterior of the first polygon, ``(M, 2)`` level-0, open (what vertex edits change)."""
        return self.polygons[0].exterior

    # ----- edits (each returns a new annotation with the same uid) ---------------------------------
    def moved(self, l0_dx: float, l0_dy: float) -> Annotation:
        """The annotation shifted by ``(l0_dx, l0_dy)``; its shape is kept."""
        _finite(l0_dx, l0_dy)
        shift = np.array([l0_dx, l0_dy], dtype=np.float64)
        polygons = tuple(
            RoiPolygon(frozen_ring(p.exterior + shift), tuple(frozen_ring(h + shift) for h in p.holes)) for p in self.polygons
        )
        return dataclasses.replace(self, polygons=polygons)

    def with_vertex(self, index: int, l0_x: float, l0_y: float) -> Annotation:
        """Vertex ``index`` of :meth:`vertices` moved to ``(l0_x, l0_y)``.

        Raises:
            AnnotationError: The move would leave the outline without area.
            IndexError: No such vertex.
        """
        _finite(l0_x, l0_y)
        ring = np.array(self.vertices())
        ring[_vertex_index(index, len(ring))] = (l0_x, l0_y)
        return self._with_exterior(ring)

    def inserted_vertex(self, after_index: int, l0_x: float, l0_y: float) -> Annotation:
        """A new vertex at ``(l0_x, l0_y)`` after vertex ``after_index`` (the last one: before the first)."""
        _finite(l0_x, l0_y)
        ring = np.array(self.vertices())
        at = _vertex_index(after_index, len(ring)) + 1
        return self._with_exterior(np.insert(ring, at, [l0_x, l0_y], axis=0))

    def without_vertex(self, index: int) -> Annotation:
        """Vertex ``index`` removed.

        Raises:
            AnnotationError: Fewer than three vertices would be left, or no area.
        """
        ring = np.array(self.vertices())
        i = _vertex_index(index, len(ring))
        if len(ring) <= 3:
            raise AnnotationError(
                "An annotation needs at least three vertices; delete the whole annotation instead."
            )
        return self._with_exterior(np.delete(ring, i, axis=0))

    def _with_exterior(self, ring: np.ndarray) -> Annotation:
        if not has_area(ring):
            raise AnnotationError("That edit would leave the annotation without area; place the vertex elsewhere.")
        first = RoiPolygon(frozen_ring(ring), self.polygons[0].holes)
        # A dragged vertex makes a rectangle or an ellipse a general polygon; freehand stays.
        shape = "polygon" if self.shape in ("rectangle", "ellipse") else self.shape
        return dataclasses.replace(self, polygons=(first, *self.polygons[1:]), shape=shape)

    def renamed(self, name: str) -> Annotation:
        """The annotation with ``name`` (surrounding blanks dropped; empty for unnamed)."""
        return dataclasses.replace(self, name=name.strip())

    def classified(self, path_class: PathClass | None) -> Annotation:
        """The annotation with ``path_class`` (None: unclassified)."""
        return dataclasses.replace(self, path_class=path_class)

    def display_name(self, index: int) -> str:
        """The name, or the shape and ``index`` (e.g. ``"Rectangle 3"``) when unnamed."""
        return self.name or f"{self.shape.capitalize()} {index}"


def _vertex_index(index: int, n: int) -> int:
    if not -n <= index < n:
        raise IndexError(f"vertex {index} out of range (the outline has {n})")
    return index % n
