"""The one-page cohort summary PDF: a batch of slides at a glance, beside ``cohort.csv``.

The page shows the title and date, the counts by status, the settings the whole cohort was
analysed with, each analysed slide's class composition as a stacked bar (with the cohort's own,
area-weighted, on top and in the legend), and a table of slides: row number, file name, status,
tissue tiles, % per class and, for a slide without results, why.

It is always exactly one page, whatever the cohort's size (1 or 5,000 slides):

- It is drawn on one canvas, not a flowing document, so a second page cannot arise; every block
  is measured (ReportLab ``wrap``) before anything is drawn, so nothing overlaps.
- When everything fits, the chart's bars take the room left by the table, up to ``_PITCH_MAX``.
- Otherwise the chart gets at most ``_CHART_SHARE`` of the room, its bars as thin as
  ``_PITCH_MIN``, and shows the first analysed slides; the table takes the rest and a line says
  "… and N more slides: see cohort.csv".
- The table then keeps first the slides a reader must act on: failed, then out of domain, then
  no tiles, then the analysed ones, then those not run yet (each group in the given order), and
  lists what it keeps in the given order. Its "#" column is the slide's row in ``cohort.csv``, so
  gaps show where slides were left out.

Fonts, colours and the research-use statement are the per-slide report's (:mod:`pdf_report`),
so the two documents look alike. Names and reasons are elided to one line (cohort.csv has them in
full), so the table lists as many slides as it can.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath
from typing import Any

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from chaoyang_desktop import __version__
from chaoyang_desktop.core.atomic import atomic_path
from chaoyang_desktop.core.model.profile import default_colors
from chaoyang_desktop.export import pdf_report as _pr
from chaoyang_desktop.export.cohort_csv import COHORT_CSV, CohortEntry, cohort_class_names
from chaoyang_desktop.export.pdf_report import (
    _FONT,
    _FONT_BOLD,
    _FONT_CJK,
    _INK,
    _MARGIN_BOTTOM,
    _MARGIN_TOP,
    _MARGIN_X,
    _MUTED,
    _PAGE_H,
    _PAGE_W,
    _RULE,
    _SHADE,
    _WARN,
    _markup,
    _plain,
    _register_fonts,
    _rgb,
    _styles,
    _thousands,
    pdf_date,
)
from chaoyang_desktop.export.report_data import RESEARCH_USE_STATEMENT, format_percent

_W = _PAGE_W - 2 * _MARGIN_X
_PITCH_MAX = 14.0  # one slide's bar and gap in the chart, in points, when there is room
_PITCH_MIN = 7.0  # thinner bars would need labels under 6 pt
_CHART_SHARE = 0.4  # of the room under the settings, when the table cannot list every slide
_CELL_PT, _CELL_LEADING = 7.0, 8.4
_ROW_PAD = 1.2  # above and below a table row's text
_ROW_MIN = _CELL_LEADING + 2 * _ROW_PAD
_DASH, _ELLIPSIS = "\u2013", "\u2026"
#: How the table names a status; "skipped" (finished in an earlier run) would read as "not done".
_STATUS_LABEL = {"ok": "done", "skipped": "done earlier"}
#: Which slides the table keeps first when it cannot list them all (lower first).
_KEEP_FIRST = {"failed": 0, "out of domain": 1, "no tiles": 2, "ok": 3, "skipped": 3, "not analysed": 4}


def write_cohort_pdf(entries: Sequence[CohortEntry], path: str | os.PathLike[str], *,
                     settings: Sequence[tuple[str, str]] = (), class_colors: Mapping[str, str] | None = None,
                     title: str = "Cohort summary", when: datetime | None = None) -> Path:
    """Write the one-page summary of ``entries`` to ``path`` atomically.

    Args:
        entries: The cohort's slides, in the order to show them (that of ``cohort.csv``).
        settings: ``(label, value)`` pairs of the analysis settings, the same for every slide.
        class_colors: Class name to ``"#rrggbb"``; classes missing get the model's default colours.
        title: The page's title.
        when: The summary's time (the date printed and the PDF's creation date); None is now.

    Returns:
        ``path``.

    Raises:
        OutputError: The folder is missing or not writable, or the disk is full; no partial or
            temporary file is left and an existing file is untouched.
    """
    target = Path(path)
    with atomic_path(target, suffix=".pdf") as tmp:
        render_cohort_pdf(entries, tmp, settings=settings, class_colors=class_colors, title=title, when=when)
    return target


def render_cohort_pdf(entries: Sequence[CohortEntry], target: str | os.PathLike[str] | io.BufferedIOBase, *,
                      settings: Sequence[tuple[str, str]] = (), class_colors: Mapping[str, str] | None = None,
                      title: str = "Cohort summary", when: datetime | None = None) -> None:
    """Draw the page into ``target`` (a path or a binary file), not atomically: for previews and tests."""
    _register_fonts()
    st = _styles()
    when = (when or datetime.now(timezone.utc)).replace(microsecond=0)
    if when.tzinfo is None:
        when = when.astimezone()
    names = cohort_class_names(entries)
    wanted = dict(class_colors or {})
    colors_ = [wanted.get(n) or d for n, d in zip(names, default_colors(tuple(names)))]
    analysed = [i for i, e in enumerate(entries) if _percents(e, names) is not None]

    facts = (f"Made {when.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC with Chaoyang Desktop {__version__}. "
             f"Every slide's numbers are in {COHORT_CSV} and in its results folder (summary.json).")
    head: list[Flowable] = [
        Paragraph(_markup(title), st["title"]),
        Paragraph(_markup(_counts_line(entries)), st["subtitle"]),
        Paragraph(_markup(facts), st["small"]),
        _statement(st),
    ]
    if settings:
        head += [Paragraph("Settings (the same for every slide)", st["h2"]), _settings_table(settings, st)]
    chart_head = [Paragraph("Class composition", st["h2"]), Paragraph(
        "Each bar is one analysed slide: the share of each predicted class in its analysed tissue (%). The top "
        "bar and the legend are the whole cohort's (all analysed tissue together).", st["small"])]
    table_head = Paragraph("Slides", st["h2"])

    room = _PAGE_H - _MARGIN_TOP - _MARGIN_BOTTOM - _stack_height(head) - _stack_height([table_head], True)
    if analysed:
        room -= _stack_height(chart_head, True)
        fixed = _chart(entries, [], names, colors_, 0.0, _W).height
    else:
        chart_head = [chart_head[0], Paragraph("No slide has results to chart.", st["body"])]
        room -= _stack_height(chart_head, True)
        fixed = 0.0
    charted, pitch, table, notes = _allot(entries, names, st, analysed, fixed, room)
    body: list[Flowable] = list(chart_head)
    if analysed:
        body.append(_chart(entries, charted, names, colors_, pitch, _W))
    body += [table_head, table, *notes]

    dest: Any = os.fspath(target) if isinstance(target, (str, os.PathLike)) else target
    # Invariant: same input, same bytes (no random ids); the dates are the summary's own time.
    c = rl_canvas.Canvas(dest, pagesize=A4, invariant=1)
    stamp = pdf_date(when)
    c.setDateFormatter(lambda *_ymdhms: stamp)
    c.setTitle(title)
    c.setAuthor("Chaoyang Desktop")
    c.setSubject(f"Summary of {len(entries)} slides. {RESEARCH_USE_STATEMENT}")
    c.setCreator(f"Chaoyang Desktop {__version__}")
    y = _draw_stack(c, head, _PAGE_H - _MARGIN_TOP)
    _draw_stack(c, body, y, first_spaced=True)
    _footer(c, len(entries))
    c.showPage()
    c.save()


def _allot(entries: Sequence[CohortEntry], names: Sequence[str], st: dict[str, ParagraphStyle],
           analysed: Sequence[int], fixed: float, room: float) -> tuple[Sequence[int], float, Table, list[Flowable]]:
    """Share ``room`` between the chart (``fixed`` high plus a pitch per bar) and the table.

    Returns the charted slides, the bar pitch, the table, and the notes on what is left out.
    """
    header_h = _header_height(entries, names, st)
    table_all, table_h = None, math.inf
    if fixed + len(analysed) * _PITCH_MIN + header_h + len(entries) * _ROW_MIN <= room:
        table_all = _table(entries, range(len(entries)), names, st)
        table_h = table_all.wrap(_W, _PAGE_H)[1]
    if table_all is not None and fixed + len(analysed) * _PITCH_MIN + table_h <= room:  # all fits
        pitch = min(_PITCH_MAX, (room - fixed - table_h) / len(analysed)) if analysed else 0.0
        return analysed, pitch, table_all, []
    # Room for the notes under the table, measured with the longest numbers they can hold.
    room -= _stack_height(_overflow_notes(len(entries), len(analysed) + 1, len(analysed), st), True)
    # The chart gets a share of the room, or more if the table needs less; never more than it uses.
    budget = min(max(room * _CHART_SHARE, room - header_h - len(entries) * _ROW_MIN),
                 fixed + len(analysed) * _PITCH_MAX)
    n_chart = min(len(analysed), max(1, math.floor((budget - fixed) / _PITCH_MIN))) if analysed else 0
    pitch = max(_PITCH_MIN, min(_PITCH_MAX, (budget - fixed) / n_chart)) if n_chart else 0.0
    kept = _fit_rows(entries, names, st, room - (fixed + n_chart * pitch if analysed else 0.0))
    return (analysed[:n_chart], pitch, _table(entries, kept, names, st),
            _overflow_notes(len(entries) - len(kept), len(analysed), n_chart, st))


# ----- content ---------------------------------------------------------------------------------------
def _counts_line(entries: Sequence[CohortEntry]) -> str:
    """"12 slides: 9 done, 1 out of domain, 2 failed" (done counts the earlier runs too)."""
    n = {s: sum(e.status == s for e in entries) for s in ("ok", "skipped", "out of domain", "no tiles", "failed",
                                                          "not analysed")}
    parts = []
    if n["ok"] + n["skipped"]:
        parts.append(f"{n['ok'] + n['skipped']:,} done" + (f" ({n['skipped']:,} in an earlier run)"
                                                          if n["skipped"] else ""))
    parts += [f"{n[s]:,} {s}" for s in ("out of domain", "no tiles", "failed", "not analysed") if n[s]]
    head = f"{len(entries):,} slide{'' if len(entries) == 1 else 's'}"
    return head + (": " + ", ".join(parts) if parts else "")


def _percents(entry: CohortEntry, names: Sequence[str]) -> list[float] | None:
    """The slide's % per cohort class (0 for a class its model lacks); None without analysed tissue."""
    s = entry.summary
    if not s or float(s.get("analysed_area_mm2", 0.0)) <= 0:
        return None
    by_name = {c["name"]: float(c["percent"]) for c in s.get("classes", [])}
    return [by_name.get(n, 0.0) for n in names]


def _cohort_shares(entries: Sequence[CohortEntry], names: Sequence[str]) -> list[float]:
    """Each class's % of all analysed tissue of the cohort: areas summed, so a big slide weighs more."""
    area = [0.0] * len(names)
    for e in entries:
        if _percents(e, names) is not None:
            for c in (e.summary or {})["classes"]:
                area[names.index(c["name"])] += float(c["area_mm2"])
    total = sum(area)
    return [100.0 * a / total if total > 0 else 0.0 for a in area]


def _note(entry: CohortEntry) -> tuple[str, bool]:
    """What the table's last column says of a slide, and whether it is a warning."""
    if entry.error:
        return entry.error, entry.status in ("failed", "out of domain")
    notes, warn = [], False
    if (entry.domain or {}).get("status") == "analysed anyway":
        notes.append("analysed although out of domain")
        warn = True
    failed = int((entry.summary or {}).get("tiles_failed", 0))
    if failed:
        notes.append(f"{failed:,} tile{'' if failed == 1 else 's'} failed")
    return "; ".join(notes), warn


# ----- text fitting ----------------------------------------------------------------------------------
def _width(text: str, size: float, bold: bool = False, font: str | None = None) -> float:
    """Width in ``font``, or as set by :func:`_markup`: Vera, and the CJK font for what Vera lacks."""
    if font:
        return float(pdfmetrics.stringWidth(text, font, size))
    vera_font = _FONT_BOLD if bold else _FONT
    vera = _pr._vera_chars  # read at call time: filled in by _register_fonts
    return float(sum(pdfmetrics.stringWidth(ch, vera_font if ord(ch) in vera else _FONT_CJK, size) for ch in text))


def _chart_font(text: str) -> str:
    """A chart label has one font: Vera, or the CJK font (which has Latin too) for a name Vera cannot set."""
    return _FONT if all(ord(ch) in _pr._vera_chars for ch in text) else _FONT_CJK


def _elide(text: str, max_w: float, size: float, *, middle: bool = False, bold: bool = False,
           font: str | None = None) -> str:
    """``text`` cut to ``max_w`` with an ellipsis: in the middle for file names (the end tells them
    apart: dates, numbers, extension), at the end for reasons."""
    text = " ".join(text.split())  # one line: a reason may hold newlines
    if _width(text, size, bold, font) <= max_w:
        return text

    def cut(k: int) -> str:
        if middle:
            tail = k // 2
            return text[:k - tail] + _ELLIPSIS + (text[-tail:] if tail else "")
        return text[:k].rstrip() + _ELLIPSIS

    lo, hi = 0, len(text) - 1  # the longest cut that fits, by bisection
    while lo < hi:
        k = (lo + hi + 1) // 2
        lo, hi = (k, hi) if _width(cut(k), size, bold, font) <= max_w else (lo, k - 1)
    return cut(lo)


def _file_name(entry: CohortEntry) -> str:
    return PureWindowsPath(entry.slide).name or entry.slide  # splits on / and \ alike


# ----- blocks ----------------------------------------------------------------------------------------
def _statement(st: dict[str, ParagraphStyle]) -> Table:
    text = (_markup(RESEARCH_USE_STATEMENT) + " The classes are a model's predictions on tiles of each slide; they "
            "are not a diagnosis and have not been reviewed.")
    style = ParagraphStyle("cohort_warn", parent=st["warn"], fontSize=8.5, leading=11)
    box = Table([[Paragraph(text, style)]], colWidths=[_W])
    box.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.8, _WARN), ("TOPPADDING", (0, 0), (-1, -1), 3),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 4), ("LEFTPADDING", (0, 0), (-1, -1), 6)]))
    box.spaceBefore = 6
    return box


def _settings_table(settings: Sequence[tuple[str, str]], st: dict[str, ParagraphStyle]) -> Table:
    """Label/value pairs two to a row, in the given order; a value too long for half the width (a
    model id) gets a whole row, so it is not broken mid-word."""
    key = ParagraphStyle("set_key", parent=st["small"], textColor=_MUTED)
    val = ParagraphStyle("set_val", parent=st["small"], textColor=_INK)
    key_w = min(max(_width(k, 7.5) for k, _ in settings) + 8, 40 * mm)
    half_val = _W / 2 - key_w - 8
    rows: list[list[Any]] = []
    spans: list[tuple[Any, ...]] = []
    for k, v in settings:
        pair = [Paragraph(_markup(k), key), Paragraph(_markup(v), val)]
        if _width(v, 7.5) > half_val:
            spans.append(("SPAN", (1, len(rows)), (3, len(rows))))
            rows.append(pair + ["", ""])
        elif rows and len(rows[-1]) == 2:
            rows[-1] += pair
        else:
            rows.append(pair)
    rows = [r + ["", ""] * (2 - len(r) // 2) for r in rows]
    t = Table(rows, colWidths=[key_w, _W / 2 - key_w, key_w, _W / 2 - key_w], hAlign="LEFT")
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
                           ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                           ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 6), *spans]))
    return t


def _legend(names: Sequence[str], shares: Sequence[float], width: float) -> list[list[tuple[float, int, str]]]:
    """The legend's items as lines of ``(x, class index, label)``, wrapped to ``width``."""
    lines: list[list[tuple[float, int, str]]] = [[]]
    x = 0.0
    for k, (name, share) in enumerate(zip(names, shares)):
        label = _plain(f"{name} {format_percent(share)} %")
        w = 11 + pdfmetrics.stringWidth(label, _FONT, 7.5) + 14
        if lines[-1] and x + w > width:
            lines.append([])
            x = 0.0
        lines[-1].append((x, k, label))
        x += w
    return lines


def _chart(entries: Sequence[CohortEntry], charted: Sequence[int], names: Sequence[str], colors_: Sequence[str],
           pitch: float, width: float) -> Drawing:
    """Stacked horizontal bars of class %: the cohort on top, then each charted slide; legend above,
    axis below. With no slide charted it is the fixed part, whose height the layout needs."""
    shares = _cohort_shares(entries, names)
    legend = _legend(names, shares, width)
    legend_h, top_bar, axis_h = 4 + 11.0 * len(legend), _PITCH_MAX, 24.0
    height = legend_h + 4 + top_bar + 4 + len(charted) * pitch + axis_h
    d = Drawing(width, height)
    for j, line in enumerate(legend):
        y = height - 12 - 11 * j
        for x, k, label in line:
            d.add(Rect(x, y - 1, 8, 8, fillColor=_rgb(colors_[k]), strokeColor=_INK, strokeWidth=0.3))
            d.add(String(x + 11, y, label, fontName=_FONT, fontSize=7.5, fillColor=_INK))
    font = min(7.0, 0.85 * pitch) if charted else 7.0
    label_max = 0.22 * width
    labels = []
    for i in charted:
        name = _file_name(entries[i])
        labels.append((_elide(name, label_max, font, middle=True, font=_chart_font(name)), _chart_font(name)))
    top_label = f"All analysed ({sum(_percents(e, names) is not None for e in entries):,})"
    label_w = max([pdfmetrics.stringWidth(s, f, font) for s, f in labels]
                  + [pdfmetrics.stringWidth(top_label, _FONT_BOLD, 7.0)])
    x0, x1 = label_w + 6, width - 4
    y_axis = axis_h
    y_top = height - legend_h - 4
    for pct in range(0, 101, 20):
        x = x0 + (x1 - x0) * pct / 100
        d.add(Line(x, y_axis, x, y_top, strokeColor=_RULE, strokeWidth=0.4))
        d.add(Line(x, y_axis, x, y_axis - 3, strokeColor=_INK, strokeWidth=0.6))
        d.add(String(x, y_axis - 11, f"{pct}", fontName=_FONT, fontSize=7, fillColor=_INK, textAnchor="middle"))
    d.add(Line(x0, y_axis, x1, y_axis, strokeColor=_INK, strokeWidth=0.6))
    d.add(String((x0 + x1) / 2, 2, "% of analysed area", fontName=_FONT, fontSize=7.5, fillColor=_INK,
                 textAnchor="middle"))

    def bar(y: float, h: float, percents: Sequence[float]) -> None:
        done = 0.0
        for k, p in enumerate(percents):
            p = max(0.0, min(p, 100.0 - done))  # rounding may sum past 100
            if p > 0:
                d.add(Rect(x0 + (x1 - x0) * done / 100, y, (x1 - x0) * p / 100, h, fillColor=_rgb(colors_[k]),
                           strokeColor=None))
            done += p
        d.add(Rect(x0, y, (x1 - x0) * done / 100, h, fillColor=None, strokeColor=_INK, strokeWidth=0.3))

    bar(y_top - 11, 10, shares)
    d.add(String(x0 - 4, y_top - 11 + 2.5, top_label, fontName=_FONT_BOLD, fontSize=7, fillColor=_INK,
                 textAnchor="end"))
    bar_h = 0.72 * pitch
    for j, (i, (label, face)) in enumerate(zip(charted, labels)):
        y = y_top - top_bar - 4 - (j + 1) * pitch + (pitch - bar_h) / 2
        bar(y, bar_h, _percents(entries[i], names) or [])
        d.add(String(x0 - 4, y + bar_h / 2 - font * 0.35, label, fontName=face, fontSize=font, fillColor=_INK,
                     textAnchor="end"))
    return d


def _table(entries: Sequence[CohortEntry], rows: Sequence[int], names: Sequence[str],
           st: dict[str, ParagraphStyle]) -> Table:
    """The slides table for ``entries[i] for i in rows``, one line a row.

    A slide without results has no numbers, so its reason spans the number columns: it is then
    wide enough to be read, where the note column of an analysed slide is narrow.
    """
    cell = ParagraphStyle("cohort_cell", parent=st["cell"], fontSize=_CELL_PT, leading=_CELL_LEADING)
    warn = ParagraphStyle("cohort_warn", parent=cell, textColor=_WARN)
    right = ParagraphStyle("cohort_head_r", parent=cell, alignment=TA_RIGHT)
    idx_w = _width(f"{len(entries):,}", _CELL_PT) + 8
    status_w = max(_width(_STATUS_LABEL.get(s, s), _CELL_PT) for s in _KEEP_FIRST) + 8
    name_w, tiles_w = 32 * mm, _width("Tissue", _CELL_PT, bold=True) + 8
    class_w = [max(28.0, min(_width(n, _CELL_PT, bold=True) + 8, 22 * mm)) for n in names]
    fixed = idx_w + name_w + status_w + tiles_w
    if _W - fixed - sum(class_w) < 28 * mm:  # many classes: they share what the note leaves
        class_w = [(_W - fixed - 28 * mm) / len(names)] * len(names)
    widths = [idx_w, name_w, status_w, tiles_w, *class_w, _W - fixed - sum(class_w)]

    def head(text: str, w: float, align_right: bool = False) -> Paragraph:
        return Paragraph(f"<b>{_markup(_elide(text, w - 6, _CELL_PT, bold=True))}</b>", right if align_right else cell)

    table: list[list[Any]] = [[head("#", idx_w, True), head("Slide", name_w), head("Status", status_w),
                               Paragraph("<b>Tissue<br/>tiles</b>", right),
                               *[_class_head(n, w - 6, right) for n, w in zip(names, class_w)],
                               head("Note", widths[-1])]]
    style: list[tuple[Any, ...]] = []
    for r, i in enumerate(rows, 1):
        e = entries[i]
        note, warned = _note(e)
        row = [f"{i + 1:,}", _line(_file_name(e), name_w - 6, cell, middle=True),
               _STATUS_LABEL.get(e.status, e.status)]
        if e.summary is None:
            row += [_line(note, sum(widths[3:]) - 6, warn if warned else cell)] + [""] * (len(widths) - 4)
            style.append(("SPAN", (3, r), (-1, r)))
        else:
            percents = _percents(e, names)
            row += [_thousands(e.summary["tiles_total"]),
                    *([format_percent(p) for p in percents] if percents else [_DASH] * len(names)),
                    _line(note, widths[-1] - 6, warn if warned else cell)]
        table.append(row)
        if e.status in ("failed", "out of domain"):
            style.append(("TEXTCOLOR", (2, r), (2, r), _WARN))
    t = Table(table, colWidths=widths, hAlign="LEFT", repeatRows=1)
    t.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), _FONT), ("FONTSIZE", (0, 0), (-1, -1), _CELL_PT),
        ("LEADING", (0, 0), (-1, -1), _CELL_LEADING), ("TEXTCOLOR", (0, 1), (-1, -1), _INK),
        ("VALIGN", (0, 0), (-1, 0), "BOTTOM"), ("VALIGN", (0, 1), (-1, -1), "MIDDLE"),
        ("ALIGN", (0, 1), (0, -1), "RIGHT"), ("ALIGN", (3, 1), (-2, -1), "RIGHT"),
        ("TEXTCOLOR", (0, 1), (0, -1), _MUTED),
        ("LINEBELOW", (0, 0), (-1, 0), 0.6, _INK), ("ROWBACKGROUNDS", (0, 1), (-1, -1), [None, _SHADE]),
        ("TOPPADDING", (0, 0), (-1, -1), _ROW_PAD), ("BOTTOMPADDING", (0, 0), (-1, -1), _ROW_PAD),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3), *style,
    ]))
    return t


def _class_head(name: str, max_w: float, style: ParagraphStyle) -> Paragraph:
    """A class column's header, "<name>" over "%": a long name is set smaller (to 5.5 pt) before it is elided."""
    size = max(5.5, min(_CELL_PT, _CELL_PT * (max_w - 0.5) / max(_width(name, _CELL_PT, bold=True), 1.0)))
    text = _markup(_elide(name, max_w, size, bold=True))
    return Paragraph(f'<b><font size="{size:.2f}">{text}</font><br/>%</b>', style)


def _line(text: str, width: float, style: ParagraphStyle, middle: bool = False) -> Paragraph:
    """A table cell of one line: ``text`` elided to ``width``."""
    return Paragraph(_markup(_elide(text, width, _CELL_PT, middle=middle)), style)


def _header_height(entries: Sequence[CohortEntry], names: Sequence[str], st: dict[str, ParagraphStyle]) -> float:
    return float(_table(entries, [], names, st).wrap(_W, _PAGE_H)[1])


def _fit_rows(entries: Sequence[CohortEntry], names: Sequence[str], st: dict[str, ParagraphStyle],
              room: float) -> list[int]:
    """The slides a table ``room`` high lists, kept by :data:`_KEEP_FIRST`, in the given order."""
    order = sorted(range(len(entries)), key=lambda i: (_KEEP_FIRST[entries[i].status], i))
    header_h = _header_height(entries, names, st)
    candidates = order[:max(0, math.floor((room - header_h) / _ROW_MIN))]  # rows are at least one line
    t = _table(entries, candidates, names, st)
    t.wrap(_W, _PAGE_H)
    kept, used = [], header_h
    for i, h in zip(candidates, t._rowHeights[1:]):  # measured, not assumed one line each
        if used + h > room:
            break
        kept.append(i)
        used += h
    return sorted(kept)


def _overflow_notes(left_out: int, n_analysed: int, n_charted: int, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The lines under the table saying what the page leaves out (none when it shows everything)."""
    out: list[Flowable] = []
    why = ""
    if left_out:
        more = f"{_ELLIPSIS} and {left_out:,} more slide{'' if left_out == 1 else 's'}: see {COHORT_CSV}"
        out.append(Paragraph(f"<b>{_markup(more)}</b>", st["body"]))
        out[0].spaceBefore = 3
        why = ("The table keeps failed, out-of-domain and no-tissue slides before analysed ones; # is the slide's "
               f"row in {COHORT_CSV}. ")
    if n_charted < n_analysed:
        why += f"The chart shows the first {n_charted:,} of {n_analysed:,} analysed slides."
    if why:
        out.append(Paragraph(_markup(why.strip()), st["small"]))
    return out


# ----- drawing ---------------------------------------------------------------------------------------
def _stack_height(flowables: Sequence[Flowable], first_spaced: bool = False) -> float:
    """Height of ``flowables`` stacked with their spaceBefore/After (the first's before only if asked)."""
    h = 0.0
    for j, f in enumerate(flowables):
        if j or first_spaced:
            h += f.getSpaceBefore()
        h += f.wrap(_W, _PAGE_H)[1] + f.getSpaceAfter()
    return h


def _draw_stack(c: rl_canvas.Canvas, flowables: Sequence[Flowable], y: float, first_spaced: bool = False) -> float:
    """Draw ``flowables`` top-down from ``y``; returns where the next one starts."""
    for j, f in enumerate(flowables):
        if j or first_spaced:
            y -= f.getSpaceBefore()
        h = f.wrap(_W, _PAGE_H)[1]
        f.drawOn(c, _MARGIN_X, y - h)
        y -= h + f.getSpaceAfter()
    return y


def _footer(c: rl_canvas.Canvas, n: int) -> None:
    y = _MARGIN_BOTTOM - 9 * mm
    c.saveState()
    c.setStrokeColor(_RULE)
    c.setLineWidth(0.5)
    c.line(_MARGIN_X, y + 4 * mm, _PAGE_W - _MARGIN_X, y + 4 * mm)
    c.setFillColor(_INK)
    c.setFont(_FONT_BOLD, 7.5)
    c.drawString(_MARGIN_X, y, RESEARCH_USE_STATEMENT)
    c.setFont(_FONT, 7.5)
    c.drawRightString(_PAGE_W - _MARGIN_X, y, f"Cohort of {n:,} slide{'' if n == 1 else 's'} \u00b7 Page 1 of 1")
    c.restoreState()
