"""The class map blended over the slide thumbnail, with a legend, as a picture for reports.

The map is one small RGBA image with one pixel per heatmap cell (colour of the cell's top class,
opacity from its confidence), upscaled to the thumbnail by nearest neighbour so cell edges stay
crisp, then alpha-composited. The legend is a panel beside or below the slide so it never hides
tissue; its percentages come from :meth:`AnalysisResult.summary`, like every other number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from chaoyang_desktop.core.atomic import atomic_path
from chaoyang_desktop.core.errors import SettingsError
from chaoyang_desktop.core.analysis.results import TILE_QC, AnalysisResult
from chaoyang_desktop.core.slide.tiling import GridSpec
from chaoyang_desktop.export._colors import hex_to_rgb

LegendPosition = Literal["auto", "right", "below"]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Outline of the region of interest: black reads on both pink tissue and white glass.
ROI_COLOR = (0, 0, 0)
_TEXT_COLOR = (30, 30, 30)
_PANEL_COLOR = (255, 255, 255)


#: Cells of tiles quality control left out: a dark neutral grey that no class uses (as in the viewer).
QC_RGB = (60, 60, 60)


def cell_overlay(result: AnalysisResult, *, alpha: float = 0.5, alpha_by_confidence: bool = True) -> np.ndarray:
    """The class map as a uint8 RGBA image of shape (hm_rows, hm_cols, 4).

    A cell's colour is its top class (of the probabilities averaged over the done tiles that
    cover it, as in :meth:`AnalysisResult.summary`); its opacity is ``alpha`` times that class's
    probability, or ``alpha``. Cells only tiles left out by quality control cover are dark grey
    (:data:`QC_RGB`, opacity ``alpha``); other cells no done tile covers are fully transparent.
    """
    if not 0.0 <= alpha <= 1.0 or math.isnan(alpha):
        raise SettingsError(f"The overlay opacity must be between 0 and 1 (got {alpha}).")
    hm, cnt = result.heatmap()
    covered = cnt > 0
    palette = np.array([hex_to_rgb(c) for c in result.provenance.class_colors], dtype=np.uint8)
    out = np.zeros((*cnt.shape, 4), dtype=np.uint8)
    flagged = result.status == TILE_QC
    if np.any(flagged):
        qc_cells = result.grid.covered_cells(result.t_col[flagged], result.t_row[flagged]) & ~covered
        out[qc_cells, :3] = QC_RGB
        out[qc_cells, 3] = round(alpha * 255.0)
    if not np.any(covered):
        return out
    hm_label = np.argmax(hm[covered], axis=1)
    hm_conf = np.max(hm[covered], axis=1).astype(np.float64)
    a = alpha * hm_conf if alpha_by_confidence else np.full(hm_conf.shape, alpha)
    out[covered, :3] = palette[hm_label]
    out[covered, 3] = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    return out


def thumb_cell_index(thumb_w: int, thumb_h: int, grid: GridSpec) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap row of every thumbnail row and heatmap column of every thumbnail column.

    The thumbnail covers the whole slide, so a thumbnail pixel's centre maps to level-0 by the
    per-axis scale; the cell holding that point is the nearest-neighbour sample. The last cells
    are clipped to the slide, which a plain resize of the cell image to the thumbnail would
    stretch; this mapping does not.
    """
    l0_x = (np.arange(thumb_w) + 0.5) * (grid.l0_width / thumb_w)
    l0_y = (np.arange(thumb_h) + 0.5) * (grid.l0_height / thumb_h)
    hm_col = np.minimum((l0_x // grid.l0_stride).astype(np.int64), grid.hm_cols - 1)
    hm_row = np.minimum((l0_y // grid.l0_stride).astype(np.int64), grid.hm_rows - 1)
    return hm_row, hm_col


def _as_rgb(thumb_rgb: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(thumb_rgb)
    if arr.dtype != np.uint8:
        raise ValueError(f"The thumbnail must be uint8 (got {arr.dtype}).")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"The thumbnail must be an (H, W, 3) RGB array (got shape {arr.shape}).")
    return np.ascontiguousarray(arr[:, :, :3])


def _font(size: int) -> Font:
    # Pillow >= 10.1 with FreeType (every PyPI wheel) scales its bundled font; the bitmap
    # fallback of older builds would be unreadable in a report and cannot anchor text.
    return ImageFont.load_default(size=size)


def _legend_panel(result: AnalysisResult, font_size: int) -> Image.Image:
    summary = result.summary()
    font = _font(font_size)
    small = _font(max(10, round(font_size * 0.8)))
    sup = _font(max(8, round(font_size * 0.55)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = round(font_size * 0.8)
    gap = round(font_size * 0.6)
    line_h = round(font_size * 1.5)
    swatch = font_size

    title = "Predicted class, % of analysed area"
    names = [c["name"] for c in summary["classes"]]
    pcts = [f"{c['percent']:.1f} %" for c in summary["classes"]]
    # (text, superscript): the default font has no "²" glyph, so the exponent is drawn small.
    notes = [(f"Analysed area {summary['analysed_area_mm2']:.3f} mm", "2")]
    if not result.complete:
        notes.append((f"Partial: {summary['tiles_done']} of {summary['tiles_total']} tiles done", ""))
    n_qc = summary.get("tiles_qc", 0)
    if n_qc:
        notes.append((f"Dark grey: {n_qc} tile{'s' if n_qc > 1 else ''} left out by quality control", ""))
    n_failed = summary["tiles_failed"]
    if n_failed:
        notes.append((f"{n_failed} tile{'s' if n_failed > 1 else ''} failed, not shown", ""))

    name_w = max((probe.textlength(n, font=font) for n in names), default=0.0)
    pct_w = max((probe.textlength(p, font=font) for p in pcts), default=0.0)
    rows_w = swatch + gap + name_w + 2 * gap + pct_w
    notes_w = [probe.textlength(t, font=small) + 1 + probe.textlength(e, font=sup) for t, e in notes]
    text_w = max([probe.textlength(title, font=font), rows_w, *notes_w])
    width = math.ceil(text_w) + 2 * pad
    small_h = round(font_size * 0.8 * 1.5)
    height = 2 * pad + line_h * (1 + len(names)) + gap + small_h * len(notes)

    panel = Image.new("RGB", (width, height), _PANEL_COLOR)
    draw = ImageDraw.Draw(panel)
    y = pad
    draw.text((pad, y), title, fill=_TEXT_COLOR, font=font)
    y += line_h
    for color, name, pct in zip(result.provenance.class_colors, names, pcts, strict=True):
        top = y + (line_h - swatch) // 2
        draw.rectangle([pad, top, pad + swatch, top + swatch], fill=hex_to_rgb(color), outline=_TEXT_COLOR)
        # Text is anchored on the row's middle so swatch and text line up whatever the font.
        mid = y + line_h // 2
        draw.text((pad + swatch + gap, mid), name, fill=_TEXT_COLOR, font=font, anchor="lm")
        draw.text((pad + rows_w, mid), pct, fill=_TEXT_COLOR, font=font, anchor="rm")
        y += line_h
    y += gap
    for text, exponent in notes:
        mid = y + small_h // 2
        draw.text((pad, mid), text, fill=_TEXT_COLOR, font=small, anchor="lm")
        if exponent:
            # Exponent top-aligned with the tallest glyph of the line, as a superscript sits.
            sup_x = pad + probe.textlength(text, font=small)
            sup_top = draw.textbbox((pad, mid), text, font=small, anchor="lm")[1]
            draw.text((sup_x + 1, sup_top), exponent, fill=_TEXT_COLOR, font=sup, anchor="lt")
        y += small_h
    return panel


def _draw_roi(img: Image.Image, grid: GridSpec, roi_polygons: Sequence[npt.ArrayLike]) -> None:
    sx = img.width / grid.l0_width
    sy = img.height / grid.l0_height
    width = max(1, round(min(img.width, img.height) / 300))
    draw = ImageDraw.Draw(img)
    for poly in roi_polygons:
        l0_xy = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(l0_xy) < 2:
            continue
        pts = [(float(x * sx), float(y * sy)) for x, y in l0_xy]
        if pts[0] != pts[-1]:
            pts.append(pts[0])
        draw.line(pts, fill=ROI_COLOR, width=width, joint="curve")


def render_heatmap(
    thumb_rgb: npt.ArrayLike,
    result: AnalysisResult,
    *,
    alpha: float = 0.5,
    alpha_by_confidence: bool = True,
    legend: bool = True,
    roi_polygons: Sequence[npt.ArrayLike] | None = None,
    legend_position: LegendPosition = "auto",
) -> Image.Image:
    """Blend the class map over the slide thumbnail.

    Args:
        thumb_rgb: uint8 (H, W, 3) thumbnail of the whole slide (RGBA and grey are accepted).
        result: The analysis; its grid says where each heatmap cell lies in level-0 pixels.
        alpha: Opacity of a cell's colour, 0 to 1.
        alpha_by_confidence: Multiply the opacity by the cell's top-class probability, so
            uncertain regions show more tissue.
        legend: Add a panel with each class's colour, name and share of the analysed area.
        roi_polygons: Region outlines to draw, each an (N, 2) array of level-0 ``x, y``.
        legend_position: ``"right"``, ``"below"``, or ``"auto"``: right of a portrait or square
            thumbnail, below a landscape one, so the picture stays near the slide's shape.

    Returns:
        An RGB image; the slide occupies its top-left ``W x H`` pixels.
    """
    rgb = _as_rgb(thumb_rgb)
    thumb_h, thumb_w = rgb.shape[:2]
    cells = cell_overlay(result, alpha=alpha, alpha_by_confidence=alpha_by_confidence)
    hm_row, hm_col = thumb_cell_index(thumb_w, thumb_h, result.grid)
    overlay = cells[hm_row][:, hm_col]
    base = Image.fromarray(rgb, "RGB").convert("RGBA")
    img = Image.alpha_composite(base, Image.fromarray(overlay, "RGBA")).convert("RGB")
    if roi_polygons is not None:
        _draw_roi(img, result.grid, roi_polygons)
    if not legend:
        return img

    font_size = int(np.clip(round(max(thumb_w, thumb_h) / 40), 12, 48))
    panel = _legend_panel(result, font_size)
    if legend_position not in ("auto", "right", "below"):
        raise ValueError(f"legend_position must be 'auto', 'right' or 'below' (got {legend_position!r}).")
    right = legend_position == "right" or (legend_position == "auto" and thumb_h >= thumb_w)
    if right:
        canvas = Image.new("RGB", (thumb_w + panel.width, max(thumb_h, panel.height)), _PANEL_COLOR)
        canvas.paste(panel, (thumb_w, 0))
    else:
        canvas = Image.new("RGB", (max(thumb_w, panel.width), thumb_h + panel.height), _PANEL_COLOR)
        canvas.paste(panel, (0, thumb_h))
    canvas.paste(img, (0, 0))
    return canvas


def write_heatmap_png(
    thumb_rgb: npt.ArrayLike, result: AnalysisResult, path: str | os.PathLike[str], **kw: Any
) -> None:
    """Render with :func:`render_heatmap` (``kw`` are its options) and save a PNG atomically.

    Raises:
        OutputError: The file cannot be written; an existing file is left as it was.
    """
    img = render_heatmap(thumb_rgb, result, **kw)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
