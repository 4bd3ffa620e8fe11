"""Annotations drawn on a slide: the model, its QuPath GeoJSON form and undo, in one namespace.

The public names of three small modules, imported from here by the GUI, the exporters and the
tests:

- :mod:`~chaoyang_desktop.core.slide.annotation_model`: :class:`PathClass`, :class:`Annotation`
  (immutable, level-0 polygons with holes; every edit returns a new one with the same uid),
  :data:`SHAPES`, :data:`QUPATH_DEFAULT_CLASSES`.
- :mod:`~chaoyang_desktop.core.slide.annotation_geojson`: :func:`annotations_to_geojson`,
  :func:`annotations_from_geojson`, :class:`AnnotationImport`, :func:`read_annotations_file`,
  :func:`write_annotations_file` (QuPath's format is described there).
- :mod:`~chaoyang_desktop.core.slide.annotation_history`: :class:`AnnotationHistory`.
"""

from __future__ import annotations

from chaoyang_desktop.core.slide.annotation_geojson import (
    SHAPE_KEY,
    AnnotationImport,
    annotation_to_feature,
    annotations_from_geojson,
    annotations_to_geojson,
    read_annotations_file,
    write_annotations_file,
)
from chaoyang_desktop.core.slide.annotation_history import HISTORY_LIMIT, AnnotationHistory
from chaoyang_desktop.core.slide.annotation_model import (
    ELLIPSE_VERTICES,
    QUPATH_DEFAULT_CLASSES,
    SHAPES,
    Annotation,
    PathClass,
)

__all__ = [
    "ELLIPSE_VERTICES",
    "HISTORY_LIMIT",
    "QUPATH_DEFAULT_CLASSES",
    "SHAPES",
    "SHAPE_KEY",
    "Annotation",
    "AnnotationHistory",
    "AnnotationImport",
    "PathClass",
    "annotation_to_feature",
    "annotations_from_geojson",
    "annotations_to_geojson",
    "read_annotations_file",
    "write_annotations_file",
]
