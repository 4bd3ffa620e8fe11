"""Saved results: ``predictions.npz`` (arrays) and ``summary.json`` (numbers and provenance).

Together the two files hold everything needed to rebuild the :class:`AnalysisResult`, so a
later command (a report, a re-export) works from saved results without the model or the slide.

``predictions.npz`` holds :meth:`AnalysisResult.grid_arrays` (``t_col, t_row, l0_x, l0_y, l0_w,
l0_h, tissue, probs, status, qc, entropy, margin, hm_probs, hm_count, class_names``, and
``spread`` with test-time augmentation), the grid spec as 0-d arrays
``grid_<field>`` (``grid_l0_width, grid_l0_height, grid_l0_stride, grid_k, grid_level,
grid_lv_downsample, grid_lv_tile``) and ``format_version``, ``slide_fingerprint`` and
``created``, which tie it to the ``summary.json`` written beside it.

``summary.json`` is described by :func:`summary_document`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.atomic import atomic_path, write_text
from chaoyang_desktop.core.analysis.composition import annotation_compositions
from chaoyang_desktop.core.errors import SavedResultError
from chaoyang_desktop.core.analysis.results import TILE_FAILED, TILE_PENDING, AnalysisResult, Provenance
from chaoyang_desktop.core.slide.tiling import GridSpec

PREDICTIONS_NPZ = "predictions.npz"
SUMMARY_JSON = "summary.json"

#: Bumped when either file changes in a way an older reader would misread.
#: 2: tile quality control (status 3 and the ``qc`` bits), uncertainty and TTA spread.
FORMAT_VERSION = 2
#: Versions this program reads: version 1 files simply have no QC flags and no spread.
READABLE_VERSIONS = (1, 2)

_GRID_FIELDS = tuple(f.name for f in dataclasses.fields(GridSpec))


# ----- predictions.npz --------------------------------------------------------------------------
def predictions_arrays(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Everything ``predictions.npz`` holds, by key."""
    arrays = dict(result.grid_arrays())
    for name, value in dataclasses.asdict(result.grid).items():
        arrays[f"grid_{name}"] = np.asarray(value)
    arrays["format_version"] = np.asarray(FORMAT_VERSION)
    arrays["slide_fingerprint"] = np.asarray(result.provenance.slide_fingerprint)
    arrays["created"] = np.asarray(result.provenance.created)
    return arrays


def write_predictions_npz(result: AnalysisResult, path: str | os.PathLike[str]) -> None:
    """Write the per-tile and heatmap arrays to ``path`` (compressed) atomically.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    arrays = predictions_arrays(result)
    # Through a file object: given a name, numpy appends ".npz" to the temporary file's name
    # and the rename would then move a file that does not exist.
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types allow_pickle only


# ----- summary.json -----------------------------------------------------------------------------
def summary_document(
    result: AnalysisResult,
    slide_facts: dict[str, Any] | None = None,
    annotations: Sequence[Annotation] | None = None,
) -> dict[str, Any]:
    """The content of ``summary.json``.

    Keys:
        ``format_version``: :data:`FORMAT_VERSION`.
        ``slide``: ``path, file_name, vendor, dimensions ([width, height] level-0 pixels), mpp,
            mpp_assumed, objective_power`` from the provenance, plus ``slide_facts``. Where both
            give a key the provenance wins: the result was computed with its values.
        ``analysis``: ``model_id, tile_um, stride_um, tile_px, input_size, tissue_threshold,
            roi`` (ROI file or null), ``grid`` (the :class:`GridSpec` fields), ``tiles``
            (``total, done, failed, pending, qc``), ``complete``, ``qc`` (whether quality
            control left flagged tiles out), ``qc_version``, ``tta`` (test-time augmentation),
            ``temperature`` and ``calibration`` (the temperature file, or null).
        ``classes``: ``summary()["classes"]``: per class ``name, color, tiles, area_mm2,
            percent, mean_confidence``.
        ``analysed_area_mm2``: ``summary()["analysed_area_mm2"]``.
        ``quality_control``: ``enabled``, ``tiles_flagged`` and ``by_reason`` (tiles per reason:
            ``glass, pen, blur, dark``; a tile with two reasons counts under both).
        ``uncertainty``: ``summary()["uncertainty"]``: ``margin_threshold`` (a cell or tile is
            unsure when its top-1 minus top-2 probability is below it), ``unsure_area_mm2``,
            ``unsure_percent`` (of the analysed area), ``unsure_tiles``, ``mean_entropy``
            (normalised to 0-1) and ``mean_top_spread`` (TTA only, else null).
        ``domain_check``: whether the model can judge the slide (:meth:`DomainCheck.to_dict`:
            ``status`` passed / analysed anyway, ``findings``, ``measurements``); null in
            results saved before the check existed.
        ``provenance``: :meth:`Provenance.to_dict`.
        ``failed_tiles``: per failed tile ``index, t_col, t_row, l0_rect ([x, y, w, h]), error``.
        ``annotations``: per annotation :meth:`AnnotationComposition.to_dict`: ``uid, name``
            (its name, or e.g. "Rectangle 2" when unnamed), ``class_name`` (its classification
            or null), ``area_mm2`` (the annotation's), ``analysed_area_mm2``, ``tiles`` and
            ``classes`` (as ``classes`` above, restricted to the annotation: areas from the
            heatmap cells, each weighted by the share of it the annotation covers; tiles from
            the done tiles whose centre is inside). Always present; an empty list when no
            annotation is given.

    Args:
        result: The analysis.
        slide_facts: Extra facts about the slide (levels, scanner...), JSON-serialisable.
        annotations: Annotations of the slide whose composition to state; None for none.
    """
    p = result.provenance
    summary = result.summary()
    slide: dict[str, Any] = dict(slide_facts or {})
    slide.update(
        {
            "path": p.slide_path,
            # PureWindowsPath splits on both separators, so a path saved on Windows still works.
            "file_name": PureWindowsPath(p.slide_path).name,
            "vendor": p.vendor,
            "dimensions": [p.l0_width, p.l0_height],
            "mpp": p.mpp,
            "mpp_assumed": p.mpp_assumed,
            "objective_power": p.objective_power,
        }
    )
    rects = result.rects()
    failed = []
    for i in np.flatnonzero(result.status == TILE_FAILED):
        failed.append(
            {
                "index": int(i),
                "t_col": int(result.t_col[i]),
                "t_row": int(result.t_row[i]),
                "l0_rect": [int(v) for v in rects[i]],
                "error": result.errors.get(int(i), ""),
            }
        )
    return {
        "format_version": FORMAT_VERSION,
        "slide": slide,
        "analysis": {
            "model_id": p.model_id,
            "tile_um": p.tile_um,
            "stride_um": p.stride_um,
            "tile_px": p.tile_px,
            "input_size": p.input_size,
            "tissue_threshold": p.tissue_threshold,
            "roi": p.roi_path,
            "grid": result.grid_dict(),
            "tiles": {
                "total": summary["tiles_total"],
                "done": summary["tiles_done"],
                "failed": summary["tiles_failed"],
                "pending": int(np.count_nonzero(result.status == TILE_PENDING)),
                "qc": summary["tiles_qc"],
            },
            "complete": result.complete,
            "qc": p.qc,
            "qc_version": p.qc_version,
            "tta": p.tta,
            "temperature": p.temperature,
            "calibration": p.calibration,
        },
        "classes": summary["classes"],
        "analysed_area_mm2": summary["analysed_area_mm2"],
        "quality_control": {
            "enabled": p.qc,
            "tiles_flagged": summary["tiles_qc"],
            "by_reason": summary["qc_by_reason"],
        },
        "uncertainty": summary["uncertainty"],
        "domain_check": p.domain_check,
        "provenance": p.to_dict(),
        "failed_tiles": failed,
        "annotations": [c.to_dict() for c in annotation_compositions(result, annotations or ())],
    }


def _json_default(obj: Any) -> Any:
    # Slide facts often come straight from numpy or pathlib.
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_summary_json(
    result: AnalysisResult,
    path: str | os.PathLike[str],
    slide_facts: dict[str, Any] | None = None,
    annotations: Sequence[Annotation] | None = None,
) -> None:
    """Write :func:`summary_document` to ``path`` atomically (indented UTF-8 JSON).

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    doc = summary_document(result, slide_facts, annotations)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False, default=_json_default)
    write_text(path, text + "\n")


# ----- reading back -----------------------------------------------------------------------------
def load_result_dir(directory: str | os.PathLike[str]) -> AnalysisResult:
    """Rebuild the :class:`AnalysisResult` saved in ``directory``.

    Reads ``predictions.npz`` (arrays, grid) and ``summary.json`` (provenance, failed-tile
    errors). Heatmap and summary are recomputed from the tiles, so they equal the saved ones.

    Raises:
        SavedResultError: A file is missing or unreadable, or the two files come from
            different analyses.
    """
    folder = Path(directory)
    npz_path = folder / PREDICTIONS_NPZ
    json_path = folder / SUMMARY_JSON
    for f in (npz_path, json_path):
        if not f.is_file():
            raise SavedResultError(
                f"No saved analysis in {folder}: {f.name} is missing. Run the analysis with this "
                "output folder first, or choose the folder that holds its results."
            )
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
        provenance = Provenance.from_dict(doc["provenance"])
        version = doc.get("format_version")
        failed = doc.get("failed_tiles", [])
        errors = {int(f["index"]): str(f.get("error", "")) for f in failed}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise SavedResultError(f"{json_path} is not a readable Chaoyang Desktop summary ({exc}).") from exc
    if version not in READABLE_VERSIONS:
        raise SavedResultError(
            f"{json_path} has format version {version!r}; this program reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}. Re-run the analysis with this version."
        )
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        grid = GridSpec(
            l0_width=int(arrays["grid_l0_width"]),
            l0_height=int(arrays["grid_l0_height"]),
            l0_stride=int(arrays["grid_l0_stride"]),
            k=int(arrays["grid_k"]),
            level=int(arrays["grid_level"]),
            lv_downsample=float(arrays["grid_lv_downsample"]),
            lv_tile=int(arrays["grid_lv_tile"]),
        )
        npz_version = int(arrays["format_version"])
        fingerprint = str(arrays["slide_fingerprint"])
        created = str(arrays["created"])
        class_names = tuple(str(n) for n in arrays["class_names"])
        result = AnalysisResult(
            provenance=provenance,
            grid=grid,
            t_col=arrays["t_col"].astype(np.int32),
            t_row=arrays["t_row"].astype(np.int32),
            tissue=arrays["tissue"].astype(np.float32),
            probs=arrays["probs"].astype(np.float32),
            status=arrays["status"].astype(np.uint8),
            errors=errors,
            qc=arrays["qc"].astype(np.uint8) if "qc" in arrays else np.zeros(0, dtype=np.uint8),
            spread=arrays["spread"].astype(np.float32) if "spread" in arrays else None,
        )
    except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        # EOFError: an empty or truncated file (a full disk, a copy interrupted).
        raise SavedResultError(f"{npz_path} is not a readable Chaoyang Desktop prediction file "
                               f"({type(exc).__name__}: {exc or 'empty file'}).") from exc
    if npz_version != version:
        raise SavedResultError(
            f"{npz_path} has format version {npz_version} but {json_path.name} has {version}; "
            "re-export both from one analysis."
        )
    if (fingerprint, created) != (provenance.slide_fingerprint, provenance.created):
        raise SavedResultError(
            f"{npz_path.name} and {json_path.name} in {folder} come from different analyses; "
            "re-export both from one analysis."
        )
    n = result.n_tiles
    if class_names != provenance.class_names or any(
        len(a) != n for a in (result.t_row, result.tissue, result.probs, result.status, result.qc)
    ) or result.probs.shape[1:] != (len(class_names),) or (
        result.spread is not None and result.spread.shape != result.probs.shape):
        raise SavedResultError(f"{npz_path} is inconsistent with {json_path.name}; re-run the analysis.")
    return result
