"""The per-slide PDF report.

Page 1 is the result: the slide's name, the research-use statement (led by the out-of-domain
warning when the input check was overridden), every warning and note (partial analysis, assumed
pixel size, quality control...), the composition table and the overview with the class map. Then
the slide and method details (the analysis's own tile geometry), the charts, the annotations and
the tile galleries, where each tile is letterboxed in a square cell with its own shape. The PDF's
creation date is the report's time, the one printed as "Report made".

Rendering uses ReportLab (BSD licence), the only module that imports it. Why ReportLab:

- Text stays text: every number and name is a PDF text object with a ToUnicode map, so the report
  is searchable and ``pypdf``/``pdftotext`` extract it; charts are vector drawings with text
  labels, not pictures.
- It embeds JPEG images as they are (no re-encoding) and lays out flowing pages
  (tables that split across pages, keep-together blocks) without our own pagination code.
- It is a small pure-Python wheel (dependencies: Pillow, which we already use, and
  charset-normalizer), with no Qt, so the CLI writes reports on a headless server exactly as the
  GUI does. Qt's ``QPdfWriter`` would need a ``QGuiApplication`` and the ``export`` package must
  never import Qt. fpdf2 was the other candidate: it needs fontTools and bundles no Unicode font.
- It bundles Bitstream Vera TrueType fonts (the family DejaVu grew from) with every Latin
  character the report needs (µ, ², ×, ≥, en dashes, accented names), embedded as subsets, so
  units are printed properly on every machine. Characters Vera lacks (a Chinese slide name) are
  set in ReportLab's built-in ``STSong-Light`` CID font: viewers with CJK fonts draw them, and the
  text stays searchable everywhere.

The content comes from :func:`chaoyang_desktop.export.report_data.build_report_data`; the
composition numbers are :meth:`AnalysisResult.summary`'s, as in ``summary.json``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from reportlab.graphics.shapes import Drawing, Group, Line, Rect, String
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from chaoyang_desktop.core.slide.annotations import Annotation
from chaoyang_desktop.core.atomic import atomic_path
from chaoyang_desktop.core.analysis.results import AnalysisResult
from chaoyang_desktop.core.slide.roi import Roi
from chaoyang_desktop.export._colors import hex_to_rgb
from chaoyang_desktop.export.report_data import (
    ClassHistogram,
    Gallery,
    GalleryTile,
    ReportData,
    ReportOptions,
    TileSource,
    build_report_data,
    format_area_mm2,
    format_percent,
    format_probability,
    format_um,
)

_PAGE_W, _PAGE_H = A4
_MARGIN_X = 16 * mm
_MARGIN_TOP = 15 * mm
_MARGIN_BOTTOM = 20 * mm
_FRAME_W = _PAGE_W - 2 * _MARGIN_X
_FRAME_H = _PAGE_H - _MARGIN_TOP - _MARGIN_BOTTOM

_FONT = "ChaoyangVera"
_FONT_BOLD = "ChaoyangVera-Bold"
_FONT_ITALIC = "ChaoyangVera-Italic"
_FONT_BOLD_ITALIC = "ChaoyangVera-BoldItalic"
_FONT_MONO = "Courier"  # a standard PDF font: fine for hex digests, which are ASCII
_FONT_CJK = "STSong-Light"

_INK = colors.HexColor("#1e1e1e")
_MUTED = colors.HexColor("#5a5a5a")
_RULE = colors.HexColor("#b4b4b4")
_SHADE = colors.HexColor("#f0f0f0")
_WARN = colors.HexColor("#8a1c1c")
#: Fills a gallery cell round a tile that does not fill it (an edge tile clipped by the slide):
#: neither white (glass) nor a tissue colour.
_LETTERBOX = colors.HexColor("#d2d2d2")

log = logging.getLogger(__name__)
_font_lock = threading.Lock()
_vera_chars: frozenset[int] = frozenset()


# ----- fonts and text --------------------------------------------------------------------------------
def _register_fonts() -> None:
    """Register the bundled Vera family and the CJK fallback once per process (thread-safe).

    Should Vera be missing (a frozen app built without ReportLab's data files), the same names
    are given to the standard Helvetica fonts, whose WinAnsi encoding still has µ, ² and ×, so a
    report is still made rather than an error shown.
    """
    global _vera_chars
    with _font_lock:
        if _vera_chars:
            return
        faces = ((_FONT, "Vera.ttf", "Helvetica"), (_FONT_BOLD, "VeraBd.ttf", "Helvetica-Bold"),
                 (_FONT_ITALIC, "VeraIt.ttf", "Helvetica-Oblique"),
                 (_FONT_BOLD_ITALIC, "VeraBI.ttf", "Helvetica-BoldOblique"))
        try:
            fonts = [TTFont(name, ttf) for name, ttf, _ in faces]  # found on ReportLab's own font path
            chars = frozenset(fonts[0].face.charToGlyph)
        except TTFError:
            log.warning("ReportLab's Vera fonts are missing; the report uses Helvetica")
            fonts = [pdfmetrics.Font(name, std, "WinAnsiEncoding") for name, _, std in faces]
            chars = frozenset(c for c in range(32, 256) if _in_cp1252(c))
        for font in fonts:
            pdfmetrics.registerFont(font)
        pdfmetrics.registerFontFamily(_FONT, normal=_FONT, bold=_FONT_BOLD, italic=_FONT_ITALIC,
                                      boldItalic=_FONT_BOLD_ITALIC)
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT_CJK))
        # Binary streams: ASCII85 would make every embedded picture a quarter bigger, and no
        # PDF reader of this century needs 7-bit-clean files.
        rl_config.useA85 = 0
        _vera_chars = chars


def _in_cp1252(code: int) -> bool:
    try:
        chr(code).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _markup(text: str) -> str:
    """Escape ``text`` for a Paragraph; characters Vera lacks are set in the CJK fallback font."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append(f'<font name="{_FONT_CJK}">{escape("".join(run))}</font>')
            run.clear()

    for ch in text:
        if ord(ch) in _vera_chars or ch in "\n\t":
            flush()
            out.append(escape(ch))
        else:
            run.append(ch)
    flush()
    return "".join(out)


def _plain(text: str) -> str:
    """``text`` for a chart label, which has one font: unknown characters become ``?``."""
    return "".join(ch if ord(ch) in _vera_chars else "?" for ch in text)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=_FONT, fontSize=9, leading=12, textColor=_INK, alignment=TA_LEFT)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5, textColor=_MUTED),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8.5, leading=10.5),
        "tile": ParagraphStyle("tile", parent=base, fontSize=7, leading=8.6),
        "title": ParagraphStyle("title", parent=base, fontName=_FONT_BOLD, fontSize=17, leading=21, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=12.5, leading=16, spaceAfter=6),
        "h1": ParagraphStyle("h1", parent=base, fontName=_FONT_BOLD, fontSize=12.5, leading=16, spaceBefore=10,
                             spaceAfter=5),
        "h2": ParagraphStyle("h2", parent=base, fontName=_FONT_BOLD, fontSize=10, leading=13, spaceBefore=7,
                             spaceAfter=3),
        "warn": ParagraphStyle("warn", parent=base, fontName=_FONT_BOLD, fontSize=9.5, leading=12.5,
                               textColor=_WARN),
        "mono": ParagraphStyle("mono", parent=base, fontName=_FONT_MONO, fontSize=8, leading=10),
    }


def _rgb(color: str) -> colors.Color:
    r, g, b = hex_to_rgb(color)
    return colors.Color(r / 255.0, g / 255.0, b / 255.0)


def _thousands(n: float) -> str:
    return f"{int(round(n)):,}"


# ----- images ----------------------------------------------------------------------------------------
def _jpeg(rgb: npt.ArrayLike, quality: int) -> ImageReader:
    """An RGB array as a JPEG that ReportLab embeds as it is (DCTDecode).

    Tissue is photographic, so JPEG keeps a report with an overview and two dozen tiles around a
    megabyte, where lossless Flate makes the overview alone several megabytes. Chroma is not
    subsampled, so thin class-cell edges and the ROI outline keep their colour.
    """
    pil = PILImage.fromarray(np.ascontiguousarray(np.asarray(rgb)[:, :, :3]), "RGB")
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality, subsampling=0)
    buf.seek(0)
    return ImageReader(buf)


def _fit_box(w_px: int, h_px: int, max_w: float, max_h: float) -> tuple[float, float]:
    """The largest ``w x h`` with the aspect ratio of ``w_px x h_px`` inside ``max_w x max_h``."""
    scale = min(max_w / w_px, max_h / h_px)
    return w_px * scale, h_px * scale


class _Picture(Flowable):  # type: ignore[misc]  # ReportLab ships no type hints
    """A picture letterboxed in a fixed ``box_w`` x ``box_h`` box: scaled to fit with its own
    aspect ratio, centred, on a neutral grey where it does not fill the box, with a hairline frame
    round the box.

    Every gallery cell is the same square, so captions line up, and an edge tile that the slide
    clips to 128 x 23 px shows as a 128 x 23 strip on grey, never stretched to a square.
    ``drawn`` is the picture's rectangle ``(x, y, w, h)`` inside the box.
    """

    def __init__(self, rgb: np.ndarray, box_w: float, box_h: float, *, quality: int = 88) -> None:
        super().__init__()
        h_px, w_px = rgb.shape[:2]
        self._reader = _jpeg(rgb, quality)
        w, h = _fit_box(w_px, h_px, box_w, box_h)
        self.drawn = ((box_w - w) / 2, (box_h - h) / 2, w, h)
        self.width, self.height = box_w, box_h

    def draw(self) -> None:
        x, y, w, h = self.drawn
        if w < self.width - 0.01 or h < self.height - 0.01:
            self.canv.setFillColor(_LETTERBOX)
            self.canv.rect(0, 0, self.width, self.height, fill=1, stroke=0)
        self.canv.drawImage(self._reader, x, y, w, h)
        self.canv.setStrokeColor(_RULE)
        self.canv.setLineWidth(0.4)
        self.canv.rect(0, 0, self.width, self.height, fill=0, stroke=1)


class _OverviewBlock(Flowable):  # type: ignore[misc]
    """The overview picture, its scale bar and its caption, as big as the room left on the page.

    The picture keeps its aspect ratio and takes the frame's width or the height left under what
    precedes it (the composition table on page 1); with less than ``min_h`` left, the block goes
    to the next page, where it is sized for the whole frame.
    """

    def __init__(self, rgb: np.ndarray, slide_mm: float | None, caption: Paragraph, *, min_h: float,
                 quality: int = 90) -> None:
        super().__init__()
        self._h_px, self._w_px = rgb.shape[:2]
        self._reader = _jpeg(rgb, quality)
        self._slide_mm = slide_mm
        self._caption = caption
        self._min_h = min_h
        self._bar_h = 22.0 if slide_mm else 4.0
        self._pic = (0.0, 0.0)
        self._cap_h = 0.0
        self.hAlign = "CENTER"

    def wrap(self, avail_w: float, avail_h: float) -> tuple[float, float]:
        self._cap_h = float(self._caption.wrap(avail_w, avail_h)[1])
        room = avail_h - self._bar_h - self._cap_h
        if room < self._min_h:
            room = _FRAME_H - self._bar_h - self._cap_h  # does not fit here: sized for the next page
        self._pic = _fit_box(self._w_px, self._h_px, avail_w, room)
        self.width = avail_w
        self.height = self._pic[1] + self._bar_h + self._cap_h
        return self.width, self.height

    def draw(self) -> None:
        w, h = self._pic
        x = (self.width - w) / 2
        y = self.height - h
        self.canv.drawImage(self._reader, x, y, w, h)
        self.canv.setStrokeColor(_RULE)
        self.canv.setLineWidth(0.4)
        self.canv.rect(x, y, w, h, fill=0, stroke=1)
        if self._slide_mm:
            # The picture is the whole slide, edge to edge, so its width is the slide's width.
            scale_bar(self._slide_mm, w).drawOn(self.canv, x, y - 20)
        self._caption.drawOn(self.canv, 0, 0)


# ----- charts (vector) -------------------------------------------------------------------------------
def _nice_step(max_value: float, max_ticks: int = 5) -> float:
    """A 1, 2 or 5 times a power of ten step giving at most ``max_ticks`` intervals up to ``max_value``."""
    if max_value <= 0:
        return 1.0
    raw = max_value / max_ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return float(m * power)
    return float(10 * power)


def composition_chart(data: ReportData, width: float) -> Drawing:
    """Horizontal bars: each class's percent of the analysed area, with value labels and an axis."""
    rows = data.composition.classes
    label_w = max([pdfmetrics.stringWidth(_plain(r.name), _FONT, 9) for r in rows] + [40.0]) + 8
    value_w = 46.0
    bar_h, gap = 14.0, 7.0
    top, bottom = 18.0, 34.0
    height = top + bottom + len(rows) * (bar_h + gap)
    plot_x0, plot_x1 = label_w, width - value_w
    d = Drawing(width, height)
    d.add(String(0, height - 11, "Share of the analysed area by predicted class", fontName=_FONT_BOLD,
                 fontSize=9, fillColor=_INK))
    y_axis = bottom
    for pct in range(0, 101, 20):
        x = plot_x0 + (plot_x1 - plot_x0) * pct / 100
        d.add(Line(x, y_axis, x, height - top, strokeColor=_RULE, strokeWidth=0.4))
        d.add(Line(x, y_axis, x, y_axis - 3, strokeColor=_INK, strokeWidth=0.6))
        d.add(String(x, y_axis - 12, f"{pct}", fontName=_FONT, fontSize=7.5, fillColor=_INK, textAnchor="middle"))
    d.add(Line(plot_x0, y_axis, plot_x1, y_axis, strokeColor=_INK, strokeWidth=0.6))
    d.add(String((plot_x0 + plot_x1) / 2, 4, "% of analysed area", fontName=_FONT, fontSize=8, fillColor=_INK,
                 textAnchor="middle"))
    for j, row in enumerate(rows):
        y = height - top - (j + 1) * (bar_h + gap) + gap / 2
        w = (plot_x1 - plot_x0) * max(0.0, min(100.0, row.percent)) / 100
        d.add(Rect(plot_x0, y, max(w, 0.0), bar_h, fillColor=_rgb(row.color), strokeColor=_INK, strokeWidth=0.4))
        d.add(String(plot_x0 - 5, y + bar_h / 2 - 3, _plain(row.name), fontName=_FONT, fontSize=9, fillColor=_INK,
                     textAnchor="end"))
        d.add(String(plot_x0 + w + 4, y + bar_h / 2 - 3, f"{format_percent(row.percent)} %", fontName=_FONT,
                     fontSize=8.5, fillColor=_INK))
    return d


def histogram_chart(h: ClassHistogram, width: float, height: float) -> Drawing:
    """One class's confidence histogram with labelled axes."""
    d = Drawing(width, height)
    n = sum(h.counts)
    d.add(String(0, height - 10, _plain(f"{h.name}  (n = {n} tile{'' if n == 1 else 's'})"), fontName=_FONT_BOLD,
                 fontSize=8.5,
                 fillColor=_INK))
    left, right, bottom, top = 30.0, 6.0, 28.0, 16.0
    x0, x1, y0, y1 = left, width - right, bottom, height - top
    step = _nice_step(max(h.counts, default=0), 4)
    step = max(1.0, step)
    y_max = step * max(1, math.ceil(max(h.counts, default=0) / step))
    for k in range(int(round(y_max / step)) + 1):
        v = k * step
        y = y0 + (y1 - y0) * v / y_max
        d.add(Line(x0, y, x1, y, strokeColor=_RULE, strokeWidth=0.4))
        d.add(String(x0 - 3, y - 2.5, f"{int(v)}", fontName=_FONT, fontSize=6.5, fillColor=_INK, textAnchor="end"))
    lo, hi = h.edges[0], h.edges[-1]
    bin_w = (x1 - x0) / len(h.counts)
    for j, c in enumerate(h.counts):
        if c:
            bh = (y1 - y0) * c / y_max
            d.add(Rect(x0 + j * bin_w + 0.6, y0, bin_w - 1.2, bh, fillColor=_rgb(h.color), strokeColor=_INK,
                       strokeWidth=0.3))
    every = max(1, math.ceil(len(h.edges) / 6))
    for j, e in enumerate(h.edges):
        x = x0 + (x1 - x0) * (e - lo) / (hi - lo)
        d.add(Line(x, y0, x, y0 - 2.5, strokeColor=_INK, strokeWidth=0.5))
        if j % every == 0 or j == len(h.edges) - 1:
            d.add(String(x, y0 - 10, f"{e:.1f}", fontName=_FONT, fontSize=6.5, fillColor=_INK, textAnchor="middle"))
    d.add(Line(x0, y0, x1, y0, strokeColor=_INK, strokeWidth=0.6))
    d.add(Line(x0, y0, x0, y1, strokeColor=_INK, strokeWidth=0.6))
    d.add(String((x0 + x1) / 2, 2, "Top-class probability", fontName=_FONT, fontSize=7, fillColor=_INK,
                 textAnchor="middle"))
    label = String(0, 0, "Tiles", fontName=_FONT, fontSize=7, fillColor=_INK, textAnchor="middle")
    # A rotated axis title: ReportLab rotates a String through a group transform.
    g = Group(label)
    g.transform = (0, 1, -1, 0, 8, (y0 + y1) / 2)
    d.add(g)
    if n == 0:
        d.add(String((x0 + x1) / 2, (y0 + y1) / 2, "no tile predicted as this class", fontName=_FONT_ITALIC,
                     fontSize=7, fillColor=_MUTED, textAnchor="middle"))
    return d


def scale_bar(slide_mm: float, drawn_w: float) -> Drawing:
    """A scale bar for a picture ``drawn_w`` points wide showing ``slide_mm`` millimetres of slide.

    The bar is the longest 1-2-5 length up to a quarter of the picture, labelled in mm or µm.
    """
    pt_per_mm = drawn_w / slide_mm
    target = slide_mm / 4
    length = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * length <= target:
            length *= m
            break
    bar = length * pt_per_mm
    label = f"{length:g} mm" if length >= 1 else f"{length * 1000:g} µm"
    d = Drawing(drawn_w, 16)
    d.add(Rect(0, 10, bar, 3, fillColor=_INK, strokeColor=_INK, strokeWidth=0))
    d.add(Line(0, 8, 0, 15, strokeColor=_INK, strokeWidth=0.8))
    d.add(Line(bar, 8, bar, 15, strokeColor=_INK, strokeWidth=0.8))
    d.add(String(bar + 5, 9, label, fontName=_FONT, fontSize=8, fillColor=_INK))
    return d


# ----- page furniture --------------------------------------------------------------------------------
def pdf_date(when: datetime) -> str:
    """``when`` as a PDF date string, ``D:YYYYMMDDHHmmSS+HH'mm'`` (a naive time is taken as local)."""
    if when.tzinfo is None:
        when = when.astimezone()
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hh, mm_ = divmod(abs(minutes), 60)
    return f"D:{when:%Y%m%d%H%M%S}{sign}{hh:02d}'{mm_:02d}'"


class _NumberedCanvas(rl_canvas.Canvas):  # type: ignore[misc]
    """Draws the footer once the page count is known ("Page N of M")."""

    def __init__(self, *args: Any, footer_left: str = "", footer_mid: str = "", created: datetime | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._footer_left = footer_left
        self._footer_mid = footer_mid
        if created is not None:
            # The document is invariant (no random ids), but its dates are the report's real time
            # (without this, ReportLab's invariant mode writes 2000-01-01).
            stamp = pdf_date(created)
            self.setDateFormatter(lambda *_ymdhms: stamp)

    def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._draw_footer(total)
            super().showPage()
        super().save()

    def _draw_footer(self, total: int) -> None:
        self.saveState()
        y = _MARGIN_BOTTOM - 9 * mm
        self.setStrokeColor(_RULE)
        self.setLineWidth(0.5)
        self.line(_MARGIN_X, y + 4 * mm, _PAGE_W - _MARGIN_X, y + 4 * mm)
        self.setFillColor(_INK)
        self.setFont(_FONT_BOLD, 7.5)
        self.drawString(_MARGIN_X, y, self._footer_left)
        self.setFont(_FONT, 7.5)
        self.drawCentredString(_PAGE_W / 2, y, self._footer_mid)
        self.drawRightString(_PAGE_W - _MARGIN_X, y, f"Page {self._pageNumber} of {total}")
        self.restoreState()


class _Swatch(Flowable):  # type: ignore[misc]
    """A small filled square in a class colour, for tables."""

    def __init__(self, color: str, side: float = 8.0) -> None:
        super().__init__()
        self.color = color
        self.side = side
        self.width = self.height = side

    def draw(self) -> None:
        self.canv.setFillColor(_rgb(self.color))
        self.canv.setStrokeColor(_INK)
        self.canv.setLineWidth(0.4)
        self.canv.rect(0, 0, self.side, self.side, fill=1, stroke=1)


# ----- sections --------------------------------------------------------------------------------------
def _kv_table(rows: Sequence[tuple[str, Flowable | str]], st: dict[str, ParagraphStyle]) -> Table:
    key_w = 42 * mm
    cells = [[Paragraph(_markup(k), st["cell"]), v if isinstance(v, Flowable) else Paragraph(v, st["cell"])]
             for k, v in rows]
    t = Table(cells, colWidths=[key_w, _FRAME_W - key_w], hAlign="LEFT")
    t.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TEXTCOLOR", (0, 0), (0, -1), _MUTED),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ]))
    return t


def _statement_box(data: ReportData, st: dict[str, ParagraphStyle]) -> Table:
    """The research-use statement, led by the out-of-domain warning when the check was overridden."""
    h = data.header
    warning = _markup(data.statement) + (" The classes are a model's predictions on tiles of the slide; they are "
                                         "not a diagnosis and have not been reviewed.")
    if h.input_overridden:
        warning = ("<b>This slide is outside what the model can judge, and was analysed anyway:</b> "
                   + _markup(h.input_check.removeprefix("ANALYSED ANYWAY, although: "))
                   + " <b>The classes below may mean nothing.</b> " + warning)
    statement = Table([[Paragraph(warning, st["warn"])]], colWidths=[_FRAME_W])
    statement.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 0.8, _WARN),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("LEFTPADDING", (0, 0), (-1, -1), 6),
    ]))
    return statement


def _first_page(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Page 1, the result: who and when, the warnings, the composition table and the overview."""
    h = data.header
    m = data.method
    facts = (f"Analysed {_markup(h.analysis_date)}; report made {_markup(h.report_date)}. "
             f"Model {_markup(m.model_id)}; {format_um(m.tile_um_set)} µm tiles "
             f"({_thousands(m.l0_tile)} px at {format_um(h.mpp)} µm/px"
             + ("<b>, assumed</b>" if h.mpp_assumed else "") + "). Method details on page 2.")
    out: list[Flowable] = [
        Paragraph(_markup(data.title), st["title"]),
        Paragraph(_markup(h.file_name), st["subtitle"]),
        Paragraph(facts, st["small"]),
        Spacer(1, 5),
        _statement_box(data, st),
    ]
    if data.notes:
        out.append(Paragraph("Warnings and notes", st["h2"]))
        out += [Paragraph("• " + _markup(note), st["body"]) for note in data.notes]
    out += _composition_table(data, st)
    out += _overview(data, st)
    return out


def _overview(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    title = Paragraph("Predicted classes over the slide", st["h2"])
    ov = data.overview
    if ov is None:
        return [title, Paragraph("No overview picture is available for this report (see the notes above).",
                                 st["body"])]
    lead = ("The saved heatmap (heatmap.png) with its legend. Colour" if ov.has_legend
            else "Colours as in the table above")
    caption = (f"{lead}: the top class of each heatmap cell (probabilities averaged over the "
               "tiles covering it); opacity follows that probability, so uncertain regions show more tissue. "
               + ("Dark grey: tiles quality control left out. " if data.composition.tiles_qc else "")
               + "Uncoloured areas were not analysed (background, outside the region of interest, or failed tiles).")
    if ov.roi_drawn:
        caption += " Black outline: the region of interest."
    slide_mm = None if ov.has_legend else data.header.l0_width * data.header.mpp / 1000.0
    block = _OverviewBlock(ov.image, slide_mm, Paragraph(_markup(caption), st["small"]), min_h=70 * mm)
    return [CondPageBreak(90 * mm), title, block]


def _composition_table(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    c = data.composition
    head = ["", "Class", "Tiles", "Area (mm²)", "% of analysed area", "Mean confidence"]
    right = ParagraphStyle("cell_right", parent=st["cell"], alignment=TA_RIGHT)
    rows: list[list[Any]] = [[Paragraph(f"<b>{x}</b>", st["cell"] if j < 2 else right) if x else ""
                              for j, x in enumerate(head)]]
    for r in c.classes:
        rows.append([_Swatch(r.color, 9), Paragraph(_markup(r.name), st["cell"]), _thousands(r.tiles),
                     format_area_mm2(r.area_mm2), format_percent(r.percent), format_probability(r.mean_confidence)])
    rows.append(["", Paragraph("<b>Analysed tissue</b>", st["cell"]), _thousands(c.tiles_done),
                 format_area_mm2(c.analysed_area_mm2), format_percent(100.0 if c.analysed_area_mm2 > 0 else 0.0), ""])
    widths = [16, 46 * mm, 20 * mm, 27 * mm, 40 * mm]
    widths.append(_FRAME_W - sum(widths))
    t = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
    t.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), _FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, _INK),
        ("LINEABOVE", (0, -1), (-1, -1), 0.6, _INK),
        ("BACKGROUND", (0, -1), (-1, -1), _SHADE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    partial = "" if c.complete else " <b>Partial analysis: the classified tiles only.</b>"
    note = ("Tiles and mean confidence: per tile (its top class). Area: per heatmap cell (the top class of the "
            "probabilities averaged over the tiles covering it), clipped to the slide, so overlapping tiles are not "
            "counted twice; percentages are of the analysed area. The same numbers are in summary.json.")
    return [
        Paragraph("Class composition", st["h1"]),
        t,
        Spacer(1, 2),
        Paragraph(_markup(note) + partial, st["small"]),
    ]


def _tiles_rows(data: ReportData) -> list[tuple[str, Flowable | str]]:
    """The method's tile geometry, from the analysis's own grid: size, stride, read, network input."""
    m = data.method
    tile, stride = format_um(m.tile_um_set), format_um(m.stride_um_set)
    if m.k <= 1:
        stride_text = f"{stride} µm: tiles side by side, no overlap"
    else:
        stride_text = (f"{stride} µm: neighbouring tiles overlap by {format_um(m.tile_um_set - m.stride_um_set)} µm "
                       f"({100 * (m.k - 1) / m.k:.0f} % of a tile), and each {stride} µm heatmap cell averages "
                       f"the up to {m.k * m.k} tiles covering it")
    read_mpp = m.mpp * m.lv_downsample
    if m.level == 0 and math.isclose(m.lv_downsample, 1.0):
        read = f"{_thousands(m.lv_tile)} × {_thousands(m.lv_tile)} px from pyramid level 0 (full resolution)"
    else:
        read = (f"{_thousands(m.lv_tile)} × {_thousands(m.lv_tile)} px from pyramid level {m.level} "
                f"(downsample {m.lv_downsample:.3g}, {format_um(read_mpp)} µm/px)")
    method = {"linear": "bilinear, OpenCV INTER_LINEAR as in training",
              "antialias": "antialiased bilinear, PIL"}.get(m.resize, _markup(m.resize))
    steps = m.resize_px
    if len(steps) == 1:
        resize = f"tiles read at {steps[0]} px are used as they are"
    elif len(steps) == 3:
        resize = (f"each tile is reduced from {steps[0]} to {steps[1]} px (the training patch size; area "
                  f"averaging, OpenCV INTER_AREA), then resized to {steps[2]} px ({method})")
    else:
        factor = steps[1] / steps[0]
        how = "enlarged" if factor > 1 else "reduced"
        resize = f"each tile is {how} from {steps[0]} to {steps[1]} px ({method}; ×{factor:.3g})"
    input_mpp = m.tile_um / m.input_size
    network = (f"{m.input_size} × {m.input_size} px, channel order {_markup(m.channel_order.upper())}: {resize}, "
               f"so the network sees {format_um(input_mpp)} µm/px. Tiles clipped by the slide's edge are padded "
               "with white (glass) to a full tile first; those less than half inside the slide are not classified.")
    rows: list[tuple[str, Flowable | str]] = [
        ("Tile size", f"{tile} µm square: {_thousands(m.l0_tile)} × {_thousands(m.l0_tile)} px at level 0 "
                      f"({format_um(m.mpp)} µm/px)"),
        ("Stride", stride_text),
        ("Read", read),
        ("Network input", network),
    ]
    if m.model_mpp:
        trained_um = m.tile_px * m.model_mpp
        trained_mpp = trained_um / m.input_size
        training = (f"{m.tile_px} px patches at {format_um(m.model_mpp)} µm/px ({format_um(trained_um)} µm) resized "
                    f"to {m.input_size} px: {format_um(trained_mpp)} µm/px")
        ratio = trained_mpp / input_mpp
        if not 0.9 <= ratio <= 1.1:
            training += f". <b>Here the network sees tissue at {ratio:.2g}× the magnification of training.</b>"
        rows.append(("Model's training", training))
    return rows


def _details_section(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Page 2: the slide and how it was analysed."""
    h = data.header
    m = data.method
    mm_w = h.l0_width * h.mpp / 1000.0
    mm_h = h.l0_height * h.mpp / 1000.0
    if h.mpp_assumed:
        mpp = f"{format_um(h.mpp)} µm/px <b>(assumed</b>: not in the file; the model's nominal resolution<b>)</b>"
    else:
        mpp = f"{format_um(h.mpp)} µm/px (from the slide)"
    objective = f"{h.objective_power:g}×" if h.objective_power else "not recorded in the file"
    slide_rows: list[tuple[str, Flowable | str]] = [
        ("Slide file", f"<b>{_markup(h.file_name)}</b>"),
        ("Location", _markup(h.path)),
        ("Format / vendor", _markup(h.vendor)),
        ("Dimensions", f"{_thousands(h.l0_width)} × {_thousands(h.l0_height)} px at level 0 "
                       f"({mm_w:.2f} × {mm_h:.2f} mm)"),
        ("Pixel size", mpp),
        ("Input check", f"<b>{_markup(h.input_check)}</b>" if h.input_overridden else _markup(h.input_check)),
        ("Objective", objective),
        ("Content fingerprint", Paragraph(_markup(h.fingerprint), st["mono"])),
        ("Analysed", _markup(h.analysis_date)),
        ("Report made", _markup(h.report_date)),
    ]
    c = data.composition
    tiles_line = (f"{_thousands(c.tiles_total)} tissue tiles: {_thousands(c.tiles_done)} classified, "
                  f"{_thousands(c.tiles_qc)} left out by quality control, "
                  f"{_thousands(c.tiles_failed)} failed, {_thousands(c.tiles_pending)} pending")
    if not c.complete:
        tiles_line += " <b>(partial analysis)</b>"
    method_rows: list[tuple[str, Flowable | str]] = [
        ("Model", _markup(m.model_id)),
        ("Weights SHA-256", Paragraph(_markup(m.weights_sha256 or "unknown"), st["mono"])),
        ("Classes", _markup(", ".join(m.class_names))),
        *_tiles_rows(data),
        ("Tissue threshold", f"{m.tissue_threshold:g} (least tissue fraction of a tile to be classified)"),
        ("Quality control", ("on: tiles of glass or background, pen ink, out of focus or dark artefacts are not "
                             "classified" + (" (" + ", ".join(f"{n} {name}" for name, n in c.qc_by_reason if n) + ")"
                                             if c.tiles_qc else "; none was found"))
                            if m.qc else "off: every tissue tile was classified"),
        ("Test-time augmentation", "on: the mean of the 8 flips and 90° rotations of each tile" if m.tta else "off"),
        ("Calibration", (f"temperature {m.temperature:.3g} (logits divided by it)"
                         + (f", from {_markup(m.calibration)}" if m.calibration else ""))
                        if not math.isclose(m.temperature, 1.0) else "none: the model's own probabilities"),
        ("Uncertainty", f"the model is unsure on {c.unsure_percent:.1f}% of the analysed tissue "
                        f"(its top two classes within {c.margin_threshold:.2f})"),
        ("Region of interest", _markup(m.roi_path) if m.roi_path else "whole slide"),
        ("Tiles analysed", tiles_line),
        ("Software", f"Chaoyang Desktop {_markup(m.analysis_software_version)} (analysis), "
                     f"{_markup(m.report_software_version)} (report)"),
    ]
    return [
        Paragraph("Slide", st["h1"]),
        _kv_table(slide_rows, st),
        Paragraph("Method", st["h1"]),
        _kv_table(method_rows, st),
    ]


def _charts_section(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The composition as bars and the per-class confidence histograms."""
    out: list[Flowable] = [
        CondPageBreak(70 * mm),
        Paragraph("Composition and confidence", st["h1"]),
        composition_chart(data, _FRAME_W),
    ]
    # Histograms two per row.
    hist_w = (_FRAME_W - 6 * mm) / 2
    hist_h = 52 * mm
    charts = [histogram_chart(h, hist_w, hist_h) for h in data.histograms]
    grid = [charts[i:i + 2] + [""] * (2 - len(charts[i:i + 2])) for i in range(0, len(charts), 2)]
    if grid:
        ht = Table(grid, colWidths=[hist_w + 3 * mm, hist_w + 3 * mm], hAlign="LEFT")
        ht.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 4),
                                ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        out.append(KeepTogether([
            Paragraph("Confidence per class", st["h2"]),
            Paragraph("Top-class probability of the tiles predicted as each class. Most mass near 1 means the "
                      "model is sure of those tiles; mass near the left edge marks tiles to review.", st["small"]),
            ht,
        ]))
    return out


def _annotations_section(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """One row per annotation: name, class, area and the share of each predicted class inside it."""
    right = ParagraphStyle("cell_right", parent=st["cell"], alignment=TA_RIGHT)
    class_names = data.method.class_names
    head: list[Any] = [Paragraph("<b>Annotation</b>", st["cell"]), Paragraph("<b>Class</b>", st["cell"]),
                       Paragraph("<b>Area (mm²)</b>", right), Paragraph("<b>Analysed (mm²)</b>", right)]
    head += [Paragraph(f"<b>% {_markup(name)}</b>", right) for name in class_names]
    rows: list[list[Any]] = [head]
    for a in data.annotations:
        analysed = a.analysed_area_mm2 > 0
        # Without analysed tissue inside, a 0 % would read as "none of this class": print a dash.
        shares = [format_percent(c.percent) if analysed else "\u2013" for c in a.classes]
        rows.append([Paragraph(_markup(a.name), st["cell"]), Paragraph(_markup(a.class_name or "\u2013"), st["cell"]),
                     format_area_mm2(a.area_mm2), format_area_mm2(a.analysed_area_mm2), *shares])
    widths = [40 * mm, 26 * mm, 20 * mm, 22 * mm]
    share_w = (_FRAME_W - sum(widths)) / max(1, len(class_names))
    t = Table(rows, colWidths=widths + [share_w] * len(class_names), hAlign="LEFT", repeatRows=1)
    t.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), _FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, _INK),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 3),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    note = ("Area: the annotation's own. Percentages: share of each predicted class in the analysed area inside "
            "the annotation (each heatmap cell weighted by the share of it the annotation covers), computed as "
            "for the whole slide; the same numbers are in summary.json under \"annotations\".")
    return [CondPageBreak(50 * mm), Paragraph("Annotations", st["h1"]), t, Spacer(1, 3),
            Paragraph(_markup(note), st["small"])]


def _tile_cell(tile: GalleryTile, st: dict[str, ParagraphStyle], img_side: float, with_images: bool) -> list[Flowable]:
    x, y, w, h = tile.l0_rect
    size = f"{_thousands(w)} × {_thousands(h)} px (level 0)"
    if tile.clipped:
        size += ", clipped by the slide's edge"
    lines = [f"x {_thousands(x)}, y {_thousands(y)}", size]
    probs = []
    for name, p in tile.probabilities:
        text = f"{_markup(name)} {format_probability(p)}"
        probs.append(f"<b>{text}</b>" if name == tile.label else text)
    if tile.margin is not None and tile.entropy is not None:
        probs.append(f"margin {tile.margin:.2f}, entropy {tile.entropy:.2f}")
    para = Paragraph("<br/>".join(lines + probs), st["tile"])
    cell: list[Flowable] = []
    if tile.image is not None:
        img = _Picture(tile.image, img_side, img_side)
        img.hAlign = "LEFT"
        cell += [img, Spacer(1, 2)]
    elif with_images:
        cell += [Paragraph("<i>picture could not be read</i>", st["tile"]), Spacer(1, 2)]
    cell.append(para)
    return cell


def _gallery_table(gallery: Gallery, st: dict[str, ParagraphStyle], with_images: bool) -> Flowable:
    cols = 4
    col_w = _FRAME_W / cols
    img_side = col_w - 8
    if not gallery.tiles:
        return Paragraph("<i>No tile was predicted as this class.</i>" if gallery.color else "<i>No tile.</i>",
                         st["small"])
    cells = [_tile_cell(t, st, img_side, with_images) for t in gallery.tiles]
    rows = [cells[i:i + cols] + [""] * (cols - len(cells[i:i + cols])) for i in range(0, len(cells), cols)]
    t = Table(rows, colWidths=[col_w] * cols, hAlign="LEFT")
    t.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))
    return t


def _gallery_heading(gallery: Gallery, st: dict[str, ParagraphStyle]) -> Flowable:
    title = Paragraph(_markup(gallery.title), st["h2"])
    if gallery.color is None:
        return title
    t = Table([[_Swatch(gallery.color, 9), title]], colWidths=[14, _FRAME_W - 14], hAlign="LEFT")
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                           ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return t


def _gallery_section(data: ReportData, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    m = data.method
    intro = (f"Each tile is {format_um(m.tile_um_set)} µm square ({_thousands(m.l0_tile)} px at level 0). Positions "
             "are level-0 pixels (top-left corner x, y; width × height), as in tiles.csv and QuPath. Probabilities "
             "are the model's for each class; the top class is in bold. A tile clipped by the slide's edge is shown "
             "with its own shape on grey, not stretched.")
    if not data.tile_images:
        intro += " Tile pictures are omitted because the slide file was not available."
    out: list[Flowable] = [PageBreak(), Paragraph("Tile galleries", st["h1"]), Paragraph(_markup(intro), st["small"])]
    for gallery in (*data.most_confident, data.least_confident):
        out.append(KeepTogether([_gallery_heading(gallery, st), Spacer(1, 2),
                                 _gallery_table(gallery, st, data.tile_images)]))
    return out


# ----- entry points ----------------------------------------------------------------------------------
def render_report(data: ReportData, target: str | os.PathLike[str] | io.BufferedIOBase) -> None:
    """Lay out ``data`` as a PDF into ``target`` (a path or a binary file object), not atomically.

    Use :func:`write_report_data` or :func:`write_report` for files; this is for previews and tests.
    """
    _register_fonts()
    st = _styles()
    dest: Any = os.fspath(target) if isinstance(target, (str, os.PathLike)) else target
    doc = BaseDocTemplate(
        dest,
        pagesize=A4,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=_MARGIN_TOP,
        bottomMargin=_MARGIN_BOTTOM,
        title=f"{data.title}: {data.header.file_name}",
        author="Chaoyang Desktop",
        subject=f"Tile classification of {data.header.file_name}. {data.statement}",
        creator=f"Chaoyang Desktop {data.method.report_software_version}",
        keywords=["pathology", "H&E", "colon", *data.method.class_names],
        # Same data, same bytes: no random ids; the dates are the report's own time (the canvas).
        invariant=True,
    )
    frame = Frame(_MARGIN_X, _MARGIN_BOTTOM, _FRAME_W, _FRAME_H, id="body", leftPadding=0, rightPadding=0,
                  topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    story: list[Flowable] = []
    story += _first_page(data, st)
    story.append(PageBreak())
    story += _details_section(data, st)
    story += _charts_section(data, st)
    if data.annotations:
        story += _annotations_section(data, st)
    story += _gallery_section(data, st)
    maker = partial(_NumberedCanvas, footer_left=_plain(data.statement), footer_mid=_plain(data.header.file_name),
                    created=data.header.report_time)
    doc.build(story, canvasmaker=maker)


def write_report_data(data: ReportData, path: str | os.PathLike[str]) -> Path:
    """Render ``data`` to ``path`` atomically.

    Raises:
        OutputError: The folder is missing or not writable, or the disk is full; no partial or
            temporary file is left and an existing report is untouched.
    """
    target = Path(path)
    with atomic_path(target, suffix=".pdf") as tmp:
        render_report(data, tmp)
    return target


def write_report(
    result: AnalysisResult,
    thumb_rgb: npt.ArrayLike | None,
    tiles: TileSource | None,
    path: str | os.PathLike[str],
    options: ReportOptions | None = None,
    *,
    overview_rgb: npt.ArrayLike | None = None,
    roi: Roi | None = None,
    notes: Sequence[str] = (),
    annotations: Sequence[Annotation] = (),
) -> Path:
    """Build and write the PDF report of one analysis (what File > Export report... calls).

    Args:
        result: The analysis, complete or partial.
        thumb_rgb: Thumbnail of the whole slide (uint8 RGB); None takes it from ``tiles`` when
            that is an open slide, or uses ``overview_rgb``.
        tiles: An open slide or a ``read_tile(l0_x, l0_y, l0_w, l0_h) -> RGB`` callable for the
            gallery pictures; None omits the pictures (the report says so).
        path: The PDF to write; its folder must exist.
        options: Counts and sizes (:class:`ReportOptions`).
        overview_rgb: A saved heatmap picture with legend, used when there is no thumbnail.
        roi: The region to outline; None reads the provenance's ROI file again if unchanged.
        notes: Extra remarks printed under "Notes".
        annotations: Annotations of the slide, listed with their composition in an
            "Annotations" table (left out when there is none).

    Returns:
        ``path``.

    Raises:
        OutputError: The file cannot be written; nothing partial is left behind.
    """
    data = build_report_data(result, thumb_rgb, tiles, options, overview_rgb=overview_rgb, roi=roi, notes=notes,
                             annotations=annotations)
    return write_report_data(data, path)
