"""Everything a per-slide report shows, gathered into plain frozen data, without drawing anything.

:func:`build_report_data` turns an :class:`AnalysisResult` (plus, when at hand, the slide's
thumbnail and a way to read tile pixels) into a :class:`ReportData`. The PDF renderer
(:mod:`chaoyang_desktop.export.pdf_report`) only lays that data out, so a future renderer (an
HTML page, a Qt preview) shows the same content, and tests can check the numbers without parsing
a PDF.

The composition numbers come from :meth:`AnalysisResult.summary`, the call ``summary.json`` is
written from, and are formatted by the ``format_*`` functions here, so a number in the report
can be traced to ``summary.json`` by formatting it the same way.

Reading tile pixels and the ROI file is the only I/O here; both are optional, and a missing
source becomes a note in the report instead of an error. Building runs in a worker thread in the
GUI: it touches no Qt object and returns only numpy arrays inside frozen dataclasses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

from chaoyang_desktop import __version__
from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.analysis.composition import AnnotationComposition, annotation_compositions
from chaoyang_desktop.core.errors import ChaoyangError, RoiError
from chaoyang_desktop.core.analysis.results import TILE_DONE, AnalysisResult, entropy_of, margin_of
from chaoyang_desktop.core.slide.roi import Roi, load_roi
from chaoyang_desktop.core.slide.tiling import choose_level
from chaoyang_desktop.export.heatmap_image import render_heatmap

#: Reads one level-0 rectangle ``(l0_x, l0_y, l0_w, l0_h)`` of the slide as RGB uint8 (H, W, 3).
#: The picture may be downsampled; the report scales it to its cell anyway.
TileReader = Callable[[int, int, int, int], np.ndarray]

RESEARCH_USE_STATEMENT = "For research use only; not for diagnosis."


@runtime_checkable
class RegionSource(Protocol):
    """What :func:`slide_tile_reader` needs of a slide: :class:`chaoyang_desktop.core.slide.reader.Slide` has it."""

    level_downsamples: tuple[float, ...]

    def read_region(self, l0_x: int, l0_y: int, level: int, lv_w: int, lv_h: int) -> np.ndarray: ...


TileSource = TileReader | RegionSource


# ----- number formats shared by every renderer and by the tests ------------------------------------
def format_area_mm2(area_mm2: float) -> str:
    """An area as the report prints it (mm², 3 decimals: 1000 µm², a sixtieth of a 256 µm tile)."""
    return f"{area_mm2:.3f}"


def format_percent(percent: float) -> str:
    """A share of the analysed area as the report prints it (1 decimal, no sign)."""
    return f"{percent:.1f}"


def format_probability(p: float | None) -> str:
    """A probability or mean confidence as the report prints it; an en dash when there is none."""
    return "\u2013" if p is None or not math.isfinite(p) else f"{p:.3f}"


def format_um(um: float) -> str:
    """A length in µm (or a pixel size in µm/px) as the report prints it: 3 significant digits,
    whole micrometres from 100 up (``63.9``, ``256``, ``1024``, ``0.166``), no exponent."""
    if not math.isfinite(um):
        return "\u2013"
    if um == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(um))))
    text = f"{um:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def set_um(actual_um: float, step_um: float) -> float:
    """The value most likely set for a length the grid rounded to whole pixels.

    The analysis records what it measured: a 64 µm tile at 0.499 µm/px is 128 px, recorded as
    63.872 µm. Every setting within half a pixel step (``step_um / 2``) of that gives the same
    tiles, so the report states the roundest of them (fewest significant digits, to 0.1 µm at
    the finest): 64 µm here, 256 µm for 255.987 µm. When no tenth of a micrometre lies that close
    (sub-0.1 µm pixels), ``actual_um`` to 3 significant digits.

    Args:
        actual_um: The recorded length (pixels times µm/px).
        step_um: What one more pixel of the setting's rounding adds to it (the tile side changes
            by ``k`` level-0 pixels per stride pixel: ``k * mpp``).
    """
    if not (math.isfinite(actual_um) and actual_um > 0):
        return actual_um
    half = abs(step_um) / 2 * (1 + 1e-9)
    for exponent in range(math.floor(math.log10(actual_um)) + 1, -2, -1):
        step = 10.0**exponent
        candidate = round(round(actual_um / step) * step, 1)
        if candidate > 0 and abs(candidate - actual_um) <= half:
            return float(candidate)
    return float(f"{actual_um:.3g}")


# ----- options and data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportOptions:
    """What goes into a report and how big.

    Attributes:
        top_per_class: Most confident tiles shown per class.
        least_confident: Least confident tiles shown for review (over all classes).
        gallery_px: Longest side, in pixels, at which gallery tiles are read and embedded.
        overview_max_side: Longest side of the slide overview picture, in pixels.
        overlay_alpha: Opacity of the class colours over the overview.
        histogram_bins: Bins of each per-class confidence histogram.
        title: The report's title.
        report_date: When the report is made; None means now (tests pass a fixed one). It is
            printed as "Report made" and is the PDF's creation date.
    """

    top_per_class: int = 4
    least_confident: int = 8
    gallery_px: int = 256
    overview_max_side: int = 1600
    overlay_alpha: float = 0.5
    histogram_bins: int = 8
    title: str = "Colon tissue classification report"
    report_date: datetime | None = None

    def validated(self) -> ReportOptions:
        """Return self, or raise :class:`ValueError` naming the bad option."""
        for name in ("top_per_class", "least_confident"):
            if getattr(self, name) < 0:
                raise ValueError(f"ReportOptions.{name} must not be negative.")
        for name in ("gallery_px", "overview_max_side", "histogram_bins"):
            if getattr(self, name) < 1:
                raise ValueError(f"ReportOptions.{name} must be at least 1.")
        if not 0.0 <= self.overlay_alpha <= 1.0:
            raise ValueError("ReportOptions.overlay_alpha must be between 0 and 1.")
        return self


@dataclass(frozen=True)
class HeaderFacts:
    """The slide, as the header names it."""

    file_name: str
    path: str
    fingerprint: str
    vendor: str
    l0_width: int
    l0_height: int
    mpp: float
    mpp_assumed: bool
    objective_power: float | None
    analysis_date: str
    report_date: str
    #: When the report was made (time-zone aware, whole seconds): ``report_date`` is it, printed,
    #: and the PDF's creation date is it too.
    report_time: datetime
    #: The domain check, as a sentence: passed, or the findings that were overridden.
    input_check: str = "not recorded (analysed before this version checked its input)"
    #: True when the slide was analysed although the check found it outside the model's domain.
    input_overridden: bool = False


@dataclass(frozen=True)
class MethodFacts:
    """How the result was made: model, preprocessing, tiling, filtering, software.

    The tile geometry is the analysis's own (its grid and provenance), not the model's defaults:
    a tile is ``l0_tile`` level-0 pixels square (``tile_um`` µm measured, ``tile_um_set`` as
    set), read as ``lv_tile`` pixels from pyramid ``level`` and resized through ``resize_px`` to
    the ``input_size`` px network input.
    """

    model_id: str
    weights_sha256: str
    class_names: tuple[str, ...]
    channel_order: str
    resize: str
    #: Pixels across the model's training patch (a property of the model, not of these tiles).
    tile_px: int
    input_size: int
    #: Tile side and stride as recorded: whole level-0 pixels times µm/px (e.g. 63.872).
    tile_um: float
    stride_um: float
    #: The same as set (see :func:`set_um`): 64, not 63.872. The report prints these.
    tile_um_set: float
    stride_um_set: float
    #: Level-0 µm/px, tile side and stride in level-0 pixels, and the tile side in strides.
    mpp: float
    l0_tile: int
    l0_stride: int
    k: int
    level: int
    lv_downsample: float
    #: Tile side in pixels of the read level (what is read for each tile).
    lv_tile: int
    #: The sizes a tile goes through from the read to the network: ``(lv_tile, input_size)``,
    #: ``(lv_tile, tile_px, input_size)`` when a much finer read is first reduced to the
    #: training patch size, or ``(lv_tile,)`` when it is read at the input size.
    resize_px: tuple[int, ...]
    tissue_threshold: float
    roi_path: str | None
    analysis_software_version: str
    report_software_version: str
    #: Tile quality control on (flagged tiles left out), test-time augmentation, calibration.
    qc: bool = False
    tta: bool = False
    temperature: float = 1.0
    calibration: str | None = None
    #: The model's training resolution (level-0 µm/px of its ``tile_px`` patches), as the domain
    #: check recorded it; None for results analysed before the check.
    model_mpp: float | None = None


@dataclass(frozen=True)
class ClassRow:
    """One class of :meth:`AnalysisResult.summary`'s ``classes``, typed."""

    name: str
    color: str
    tiles: int
    area_mm2: float
    percent: float
    mean_confidence: float | None


@dataclass(frozen=True)
class Composition:
    """The composition of the analysed tissue, exactly as ``summary.json`` states it."""

    classes: tuple[ClassRow, ...]
    analysed_area_mm2: float
    tiles_total: int
    tiles_done: int
    tiles_failed: int
    tiles_pending: int
    #: Tiles quality control left out, per reason (glass, pen, blur, dark).
    tiles_qc: int = 0
    qc_by_reason: tuple[tuple[str, int], ...] = ()
    #: Share of the analysed area whose top two classes are within ``margin_threshold``.
    unsure_percent: float = 0.0
    margin_threshold: float = 0.2

    @property
    def complete(self) -> bool:
        return self.tiles_pending == 0


@dataclass(frozen=True)
class AnnotationRow:
    """One annotation's line of the report's "Annotations" table (its composition in ``summary.json``).

    Attributes:
        name: Its name, or e.g. ``"Rectangle 2"`` when unnamed.
        class_name: Its own classification, or None.
        area_mm2: The annotation's area.
        analysed_area_mm2: Analysed area inside it; the percentages are of this.
        tiles: Done tiles whose centre is inside.
        classes: Per model class: its composition row, as in the slide's composition.
    """

    name: str
    class_name: str | None
    area_mm2: float
    analysed_area_mm2: float
    tiles: int
    classes: tuple[ClassRow, ...]


@dataclass(frozen=True)
class ClassHistogram:
    """Top-class confidences of the tiles predicted as one class.

    ``counts[j]`` tiles have a confidence in ``[edges[j], edges[j + 1])`` (the last bin is closed).
    """

    name: str
    color: str
    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class GalleryTile:
    """One tile shown in a gallery: where it is, what the model said, and its pixels if read."""

    index: int
    l0_rect: tuple[int, int, int, int]
    label: str
    confidence: float
    probabilities: tuple[tuple[str, float], ...]
    #: RGB (H, W, 3) at most ``gallery_px`` on its longest side, with the shape of ``l0_rect``
    #: (an edge tile clipped by the slide keeps its aspect ratio; it is never stretched).
    image: np.ndarray | None = None
    #: Top-1 minus top-2 probability and normalised entropy of the tile.
    margin: float | None = None
    entropy: float | None = None
    #: True when the slide's edge clips the tile (``l0_rect`` is narrower or lower than a tile).
    clipped: bool = False


@dataclass(frozen=True)
class Gallery:
    """A titled group of tiles (most confident of one class, or least confident overall)."""

    title: str
    tiles: tuple[GalleryTile, ...]
    color: str | None = None


@dataclass(frozen=True, eq=False)
class Overview:
    """The overview picture.

    Attributes:
        image: RGB uint8 (H, W, 3): the thumbnail with the class map (and ROI outline) blended in.
        has_legend: True when ``image`` already holds a legend (a saved ``heatmap.png``), so a
            renderer must not add a second one.
        roi_drawn: True when the region of interest is outlined on it.
    """

    image: np.ndarray
    has_legend: bool
    roi_drawn: bool


@dataclass(frozen=True)
class ReportData:
    """The full content of one slide's report; see :func:`build_report_data`."""

    title: str
    header: HeaderFacts
    method: MethodFacts
    composition: Composition
    histograms: tuple[ClassHistogram, ...]
    most_confident: tuple[Gallery, ...]
    least_confident: Gallery
    overview: Overview | None
    tile_images: bool
    notes: tuple[str, ...] = field(default=())
    statement: str = RESEARCH_USE_STATEMENT
    #: The "Annotations" table; empty when no annotation was given (the table is left out).
    annotations: tuple[AnnotationRow, ...] = field(default=())


# ----- tile pixels -----------------------------------------------------------------------------------
def slide_tile_reader(slide: RegionSource, max_px: int = 256) -> TileReader:
    """A :data:`TileReader` over an open slide that reads each tile from a level near ``max_px``.

    A 256 µm tile at 0.25 µm/px is 1024 px at level 0; reading it from a coarser pyramid level
    (where the slide has one) keeps galleries fast on huge slides.
    """

    def read(l0_x: int, l0_y: int, l0_w: int, l0_h: int) -> np.ndarray:
        wanted = max(1.0, max(l0_w, l0_h) / max_px)
        level = choose_level(tuple(slide.level_downsamples), wanted)
        ds = float(slide.level_downsamples[level])
        lv_w = max(1, round(l0_w / ds))
        lv_h = max(1, round(l0_h / ds))
        return np.asarray(slide.read_region(l0_x, l0_y, level, lv_w, lv_h))

    return read


def as_tile_reader(source: TileSource | None, max_px: int = 256) -> TileReader | None:
    """Accept either a :data:`TileReader` callable or an open slide (anything with ``read_region``)."""
    if source is None:
        return None
    if isinstance(source, RegionSource):
        return slide_tile_reader(source, max_px)
    if callable(source):
        return source
    raise TypeError(f"Expected a slide or a read_tile(l0_x, l0_y, l0_w, l0_h) callable, got {type(source).__name__}.")


def _fit(rgb: np.ndarray, max_px: int) -> np.ndarray:
    """``rgb`` scaled down to at most ``max_px`` on its longest side, keeping its aspect ratio.

    A tile clipped by the slide's edge (128 x 23 px) stays a strip (256 x 46 px at most); it is
    never stretched to a square. Renderers letterbox it in a square cell.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] < 3 or 0 in arr.shape[:2]:
        raise ValueError(f"A tile must be a uint8 (H, W, 3) RGB array (got {arr.dtype} {arr.shape}).")
    img = Image.fromarray(np.ascontiguousarray(arr[:, :, :3]), "RGB")
    if max(img.size) > max_px:
        scale = max_px / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.LANCZOS)
    return np.asarray(img)


# ----- selections ------------------------------------------------------------------------------------
def _gallery_tile(result: AnalysisResult, i: int, rects: np.ndarray, reader: TileReader | None, max_px: int,
                  failures: list[str]) -> GalleryTile:
    names = result.class_names
    probs = result.probs[i].astype(np.float64)
    k = int(np.argmax(probs))
    x, y, w, h = (int(v) for v in rects[i])
    image = None
    if reader is not None:
        try:
            image = _fit(reader(x, y, w, h), max_px)
        except (ChaoyangError, OSError, ValueError) as exc:
            # A damaged region must not sink the whole report; the tile keeps its numbers.
            failures.append(f"tile at x {x}, y {y}: {exc}")
    return GalleryTile(
        index=int(i),
        l0_rect=(x, y, w, h),
        label=names[k],
        confidence=float(probs[k]),
        probabilities=tuple((n, float(p)) for n, p in zip(names, probs, strict=True)),
        image=image,
        margin=float(margin_of(probs[None])[0]),
        entropy=float(entropy_of(probs[None])[0]),
        clipped=min(w, h) < result.grid.l0_tile,
    )


def most_confident_indices(result: AnalysisResult, class_index: int, n: int) -> np.ndarray:
    """Done tiles predicted as ``class_index``, most confident first (ties: lower index first)."""
    labels = result.labels()
    conf = result.confidences()
    sel = np.flatnonzero(labels == class_index)
    order = np.lexsort((sel, -conf[sel].astype(np.float64)))
    return sel[order][:n]


def most_uncertain_indices(result: AnalysisResult, n: int) -> np.ndarray:
    """Done tiles the model is least sure of first: smallest top-1 minus top-2 margin, then
    highest entropy, then lower index. Those are the tiles worth a pathologist's look."""
    done = np.flatnonzero(result.status == TILE_DONE)
    margin = result.margin()[done].astype(np.float64)
    entropy = result.entropy()[done].astype(np.float64)
    order = np.lexsort((done, -entropy, margin))
    return done[order][:n]


def confidence_histograms(result: AnalysisResult, bins: int = 8) -> tuple[ClassHistogram, ...]:
    """Per class, a histogram of the top-class probability of the tiles predicted as that class.

    The range starts at the lowest tenth not above ``1 / n_classes`` (the least a top class can
    score), so no bin is empty by construction, and ends at 1.
    """
    names = result.class_names
    lo = math.floor(10.0 / max(1, len(names))) / 10.0
    edges = np.linspace(lo, 1.0, bins + 1)
    labels = result.labels()
    conf = result.confidences().astype(np.float64)
    out = []
    for k, name in enumerate(names):
        values = np.clip(conf[labels == k], lo, 1.0)
        counts, _ = np.histogram(values, bins=edges)
        out.append(ClassHistogram(name, result.provenance.class_colors[k],
                                  tuple(float(e) for e in edges), tuple(int(c) for c in counts)))
    return tuple(out)


# ----- ROI -------------------------------------------------------------------------------------------
def roi_rings(roi: Roi) -> list[np.ndarray]:
    """Every exterior and hole ring of ``roi``, as :func:`render_heatmap` takes them."""
    rings: list[np.ndarray] = []
    for polygon in roi.polygons:
        rings.append(polygon.exterior)
        rings.extend(polygon.holes)
    return rings


def saved_roi(result: AnalysisResult) -> tuple[Roi | None, str | None]:
    """The ROI an analysis used, read again from its file; or None and a note saying why not.

    The file is trusted only when it still holds the polygons the analysis used (same digest),
    because an outline of an edited region would misstate what was analysed.
    """
    p = result.provenance
    if not p.roi_path:
        return None, None
    if not Path(p.roi_path).is_file():
        return None, f"The region of interest file {p.roi_path} is no longer available; its outline is not drawn."
    try:
        roi = load_roi(p.roi_path)
    except RoiError as exc:
        return None, f"The region of interest could not be read again ({exc}); its outline is not drawn."
    if p.roi_digest is not None and roi.digest() != p.roi_digest:
        return None, (f"The region of interest file {p.roi_path} has changed since the analysis; "
                      "its outline is not drawn.")
    return roi, None


# ----- the builder -----------------------------------------------------------------------------------
#: Reads this much larger than the training patch are reduced to it before the final resize
#: (``chaoyang_desktop.core.model.preprocess``, which imports torch and so is not imported here).
_PREREDUCE_RATIO = 1.05


def resize_steps(lv_tile: int, tile_px: int, input_size: int, resize: str) -> tuple[int, ...]:
    """The sizes a tile read at ``lv_tile`` px goes through to the network input, as the
    preprocessing does it: straight to ``input_size``, or first down to the ``tile_px`` training
    patch when the read is much finer (not with the ``antialias`` method)."""
    if lv_tile == input_size:
        return (lv_tile,)
    if resize != "antialias" and lv_tile > tile_px * _PREREDUCE_RATIO and tile_px != input_size:
        return (lv_tile, tile_px, input_size)
    return (lv_tile, input_size)


def _report_time(when: datetime | None) -> datetime:
    """The report's time, time-zone aware and to the second (a naive time is taken as local)."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.astimezone()
    return when.replace(microsecond=0)


def _iso_to_display(iso: str) -> str:
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return when.strftime("%Y-%m-%d %H:%M")


def _input_check_facts(check: dict[str, Any] | None) -> dict[str, Any]:
    """``input_check`` and ``input_overridden`` of :class:`HeaderFacts` from a saved domain check."""
    if not check:
        return {}
    findings = " ".join(str(f.get("message", "")) for f in check.get("findings", []))
    if not findings:
        m = check.get("measurements", {})
        detail = f" ({float(m['l0_mpp']):.3g} µm/px; model {float(m['model_mpp']):.3g})" if "l0_mpp" in m else ""
        return {"input_check": f"passed: brightfield H&E at the model's resolution{detail}"}
    if check.get("overridden"):
        return {"input_check": f"ANALYSED ANYWAY, although: {findings}", "input_overridden": True}
    return {"input_check": f"out of the model's domain: {findings}"}


def _model_mpp(check: dict[str, Any] | None) -> float | None:
    try:
        value = float((check or {})["measurements"]["model_mpp"])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def composition_from_summary(summary: dict[str, Any]) -> Composition:
    """Type the dict of :meth:`AnalysisResult.summary` (the numbers ``summary.json`` holds)."""
    return Composition(
        classes=_class_rows(summary["classes"]),
        analysed_area_mm2=float(summary["analysed_area_mm2"]),
        tiles_total=int(summary["tiles_total"]),
        tiles_done=int(summary["tiles_done"]),
        tiles_failed=int(summary["tiles_failed"]),
        tiles_pending=int(summary["tiles_pending"]),
        tiles_qc=int(summary.get("tiles_qc", 0)),
        qc_by_reason=tuple((str(k), int(v)) for k, v in (summary.get("qc_by_reason") or {}).items()),
        unsure_percent=float((summary.get("uncertainty") or {}).get("unsure_percent", 0.0)),
        margin_threshold=float((summary.get("uncertainty") or {}).get("margin_threshold", 0.2)),
    )


def _class_rows(classes: Sequence[dict[str, Any]]) -> tuple[ClassRow, ...]:
    return tuple(
        ClassRow(name=c["name"], color=c["color"], tiles=int(c["tiles"]), area_mm2=float(c["area_mm2"]),
                 percent=float(c["percent"]),
                 mean_confidence=None if c["mean_confidence"] is None else float(c["mean_confidence"]))
        for c in classes
    )


def annotation_row(composition: AnnotationComposition) -> AnnotationRow:
    """Type one :class:`AnnotationComposition` (the numbers of ``summary.json``'s ``annotations``)."""
    return AnnotationRow(
        name=composition.name,
        class_name=composition.class_name,
        area_mm2=composition.area_mm2,
        analysed_area_mm2=composition.analysed_area_mm2,
        tiles=composition.tiles,
        classes=_class_rows(composition.classes),
    )


def _thumbnail_of(source: TileSource | None, max_side: int) -> np.ndarray | None:
    thumbnail = getattr(source, "thumbnail", None)
    if thumbnail is None:
        return None
    return np.asarray(thumbnail(max_side))


def build_report_data(
    result: AnalysisResult,
    thumb_rgb: npt.ArrayLike | None = None,
    tiles: TileSource | None = None,
    options: ReportOptions | None = None,
    *,
    overview_rgb: npt.ArrayLike | None = None,
    roi: Roi | None = None,
    notes: Sequence[str] = (),
    annotations: Sequence[Annotation] = (),
) -> ReportData:
    """Gather the content of one slide's report.

    Args:
        result: The analysis (complete or partial; a partial one is labelled as such).
        thumb_rgb: uint8 (H, W, 3) thumbnail of the whole slide; the class map is blended over
            it. None: taken from ``tiles`` when that is an open slide, else ``overview_rgb``.
        tiles: Where gallery pixels come from: an open :class:`~chaoyang_desktop.core.slide.reader.Slide`
            or a ``read_tile(l0_x, l0_y, l0_w, l0_h) -> RGB`` callable. None: the galleries list
            coordinates and probabilities without pictures, and the report says why.
        options: Sizes and counts; defaults when None.
        overview_rgb: A finished heatmap picture with its legend (a saved ``heatmap.png``), used
            when no thumbnail is at hand.
        roi: The region of interest to outline. None: read again from the provenance's
            ``roi_path`` when there is one (skipped, with a note, if the file is gone or changed).
        notes: Extra remarks for the report (e.g. why the slide file was not used).
        annotations: Annotations of the slide; each gets a row of the "Annotations" table with
            its composition (:func:`annotation_compositions`, as in ``summary.json``).

    Returns:
        The report content; the composition is ``result.summary()`` typed, unchanged.
    """
    opts = (options or ReportOptions()).validated()
    p = result.provenance
    all_notes: list[str] = list(notes)
    summary = result.summary()
    composition = composition_from_summary(summary)
    report_time = _report_time(opts.report_date)

    header = HeaderFacts(
        file_name=PureWindowsPath(p.slide_path).name,
        path=p.slide_path,
        fingerprint=p.slide_fingerprint,
        vendor=p.vendor,
        l0_width=p.l0_width,
        l0_height=p.l0_height,
        mpp=p.mpp,
        mpp_assumed=p.mpp_assumed,
        objective_power=p.objective_power,
        analysis_date=_iso_to_display(p.created),
        report_date=_iso_to_display(report_time.isoformat()),
        report_time=report_time,
        **_input_check_facts(p.domain_check),
    )
    grid = result.grid
    tile_um_set = set_um(p.tile_um, grid.k * p.mpp)
    method = MethodFacts(
        model_id=p.model_id,
        weights_sha256=p.weights_sha256,
        class_names=p.class_names,
        channel_order=p.channel_order,
        resize=p.resize,
        tile_px=p.tile_px,
        input_size=p.input_size,
        tile_um=p.tile_um,
        stride_um=p.stride_um,
        tile_um_set=tile_um_set,
        stride_um_set=tile_um_set / grid.k,
        mpp=p.mpp,
        l0_tile=grid.l0_tile,
        l0_stride=grid.l0_stride,
        k=grid.k,
        level=grid.level,
        lv_downsample=grid.lv_downsample,
        lv_tile=grid.lv_tile,
        resize_px=resize_steps(grid.lv_tile, p.tile_px, p.input_size, p.resize),
        tissue_threshold=p.tissue_threshold,
        roi_path=p.roi_path,
        analysis_software_version=p.software_version,
        report_software_version=__version__,
        qc=p.qc,
        tta=p.tta,
        temperature=p.temperature,
        calibration=p.calibration,
        model_mpp=_model_mpp(p.domain_check),
    )

    if not composition.complete:
        all_notes.append(
            f"Partial analysis: {composition.tiles_done} of {composition.tiles_total} tiles are classified; "
            "every number describes the classified tiles only."
        )
    if composition.tiles_qc:
        reasons = ", ".join(f"{n} {name}" for name, n in composition.qc_by_reason if n)
        all_notes.append(
            f"Quality control left {composition.tiles_qc} tile(s) unclassified ({reasons}): glass or background, "
            "pen ink, out of focus or dark artefacts. They are in no class and no area."
        )
    if composition.tiles_failed:
        all_notes.append(
            f"{composition.tiles_failed} tile(s) could not be read or classified and are left out "
            "(listed in summary.json)."
        )
    if p.mpp_assumed:
        all_notes.append(
            "The pixel size was not in the file and was assumed from the model's nominal resolution; "
            "sizes and areas are estimates."
        )

    # ROI outline.
    roi_note = None
    if roi is None:
        roi, roi_note = saved_roi(result)
    if roi_note:
        all_notes.append(roi_note)

    # Overview picture.
    overview: Overview | None = None
    thumb = np.asarray(thumb_rgb) if thumb_rgb is not None else None
    if thumb is None and overview_rgb is None:
        thumb = _thumbnail_of(tiles, opts.overview_max_side)
    if thumb is not None:
        if max(thumb.shape[:2]) > opts.overview_max_side:
            thumb = _fit(thumb, opts.overview_max_side)
        picture = render_heatmap(thumb, result, alpha=opts.overlay_alpha, legend=False,
                                 roi_polygons=roi_rings(roi) if roi is not None else None)
        overview = Overview(np.asarray(picture), has_legend=False, roi_drawn=roi is not None)
    elif overview_rgb is not None:
        arr = np.asarray(overview_rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] < 3:
            raise ValueError(f"overview_rgb must be a uint8 (H, W, 3) RGB array (got {arr.dtype} {arr.shape}).")
        overview = Overview(np.ascontiguousarray(arr[:, :, :3]), has_legend=True, roi_drawn=False)
    else:
        all_notes.append("No slide thumbnail or saved heatmap was available; the overview is omitted.")

    # Galleries.
    reader = as_tile_reader(tiles, opts.gallery_px)
    rects = result.rects()
    failures: list[str] = []
    most = []
    for k, name in enumerate(result.class_names):
        idx = most_confident_indices(result, k, opts.top_per_class)
        most.append(Gallery(f"Most confident: {name}",
                            tuple(_gallery_tile(result, int(i), rects, reader, opts.gallery_px, failures) for i in idx),
                            color=p.class_colors[k]))
    least = Gallery("Most uncertain tiles (for review): smallest margin between the top two classes first",
                    tuple(_gallery_tile(result, int(i), rects, reader, opts.gallery_px, failures)
                          for i in most_uncertain_indices(result, opts.least_confident)))
    if reader is None:
        all_notes.append("The slide file was not available when this report was made; the galleries "
                         "list each tile's position and probabilities without its picture.")
    if failures:
        shown = "; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else "")
        all_notes.append(f"{len(failures)} gallery tile picture(s) could not be read: {shown}.")

    return ReportData(
        title=opts.title,
        header=header,
        method=method,
        composition=composition,
        histograms=confidence_histograms(result, opts.histogram_bins),
        most_confident=tuple(most),
        least_confident=least,
        overview=overview,
        tile_images=reader is not None,
        notes=tuple(all_notes),
        annotations=tuple(annotation_row(c) for c in annotation_compositions(result, annotations)),
    )

