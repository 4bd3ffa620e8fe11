"""Small charts drawn with Pillow: confusion matrix, reliability diagrams, training curves.

Pillow is already a dependency and draws everything these reports need; matplotlib would add
~40 MB to the frozen app for three pictures. Each function returns a ``PIL.Image`` (RGB) so the
GUI can show it as is or draw the same numbers its own way; writers save them atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from chaoyang_desktop.core.learn.metrics import Calibration

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_TEXT = (30, 30, 30)
_GRID = (225, 225, 225)
_AXIS = (90, 90, 90)
_WHITE = (255, 255, 255)
# Sequential blues for the confusion matrix: light for few, dark for many; not a class colour.
_LOW = np.array([247, 251, 255], dtype=np.float64)
_HIGH = np.array([8, 48, 107], dtype=np.float64)
#: Line colours (colour-blind safe, Okabe-Ito) for chart series.
SERIES_COLORS: tuple[tuple[int, int, int], ...] = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167),
                                                   (230, 159, 0), (86, 180, 233))


def _font(size: int) -> Font:
    # Pillow >= 10.1 with FreeType scales its bundled font (see heatmap_image.py).
    return ImageFont.load_default(size=size)


def _text_w(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    return float(draw.textlength(text, font=font))


def _vertical_text(text: str, font: Font, fill: tuple[int, int, int]) -> Image.Image:
    """``text`` rotated 90 degrees counter-clockwise on a white background (reads bottom to top)."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    l, t, r, b = probe.textbbox((0, 0), text, font=font)
    img = Image.new("RGB", (int(r - l) + 4, int(b - t) + 4), _WHITE)
    ImageDraw.Draw(img).text((2 - l, 2 - t), text, fill=fill, font=font)
    return img.rotate(90, expand=True)


def render_confusion_matrix(
    confusion: npt.ArrayLike,
    class_names: Sequence[str],
    *,
    title: str = "Confusion matrix",
    cell: int = 96,
) -> Image.Image:
    """Counts with row percentages; cells shaded by the fraction of their true class.

    Shading by row (recall) keeps a rare class readable next to a common one; the diagonal is
    outlined so right answers are found at a glance.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"The confusion matrix must be {k} x {k} (got {cm.shape}).")
    font = _font(max(12, cell // 6))
    small = _font(max(10, cell // 8))
    big = _font(max(14, cell // 5))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = cell // 4
    row_label_w = int(max(_text_w(probe, n, font) for n in class_names)) + pad
    col_labels = [_vertical_text(n, font, _TEXT) for n in class_names]
    col_label_h = max(im.height for im in col_labels)
    title_h = int(big.size * 1.8) if isinstance(big, ImageFont.FreeTypeFont) else 28
    axis_h = int(font.size * 1.8) if isinstance(font, ImageFont.FreeTypeFont) else 24
    left = pad + axis_h + row_label_w
    top = pad + title_h + axis_h + col_label_h + pad // 2
    width = left + k * cell + pad
    height = top + k * cell + pad
    width = max(width, int(_text_w(probe, title, big)) + 2 * pad)
    img = Image.new("RGB", (width, height), _WHITE)
    d = ImageDraw.Draw(img)
    d.text((width / 2, pad), title, fill=_TEXT, font=big, anchor="mt")
    d.text((left + k * cell / 2, pad + title_h), "predicted class", fill=_AXIS, font=font, anchor="mt")
    axis_label = _vertical_text("true class", font, _AXIS)
    img.paste(axis_label, (pad, int(top + k * cell / 2 - axis_label.height / 2)))
    rows = cm.sum(axis=1)
    for j, lab in enumerate(col_labels):
        img.paste(lab, (int(left + j * cell + cell / 2 - lab.width / 2), top - lab.height - pad // 2))
    for i, name in enumerate(class_names):
        d.text((left - pad // 2, top + i * cell + cell / 2), name, fill=_TEXT, font=font, anchor="rm")
        for j in range(k):
            frac = cm[i, j] / rows[i] if rows[i] else 0.0
            color = tuple(int(round(c)) for c in _LOW + (_HIGH - _LOW) * frac)
            x0, y0 = left + j * cell, top + i * cell
            d.rectangle((x0, y0, x0 + cell, y0 + cell), fill=color, outline=_GRID)
            ink = _WHITE if frac > 0.5 else _TEXT
            d.text((x0 + cell / 2, y0 + cell * 0.42), str(int(cm[i, j])), fill=ink, font=font, anchor="mm")
            if rows[i]:
                d.text((x0 + cell / 2, y0 + cell * 0.70), f"{100 * frac:.0f}%", fill=ink, font=small, anchor="mm")
    for i in range(k):
        x0, y0 = left + i * cell, top + i * cell
        d.rectangle((x0, y0, x0 + cell, y0 + cell), outline=_TEXT, width=2)
    return img


_GAP = (210, 40, 30, 255)


def _hatch(img: Image.Image, box: tuple[int, int, int, int], color: tuple[int, int, int, int], step: int = 6) -> None:
    """Diagonal lines in ``box``: a region marked this way reads the same over a bar or over white."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return
    tile = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    td = ImageDraw.Draw(tile)
    for c in range(-h, w, step):
        td.line((c, h, c + h, 0), fill=color, width=2)
    td.rectangle((0, 0, w - 1, h - 1), outline=color)
    img.paste(tile, (x0, y0), tile)


@dataclass(frozen=True)
class _Axes:
    """A plot area and its data ranges, for mapping data to pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    xmin: float
    xmax: float
    ymin: float
    ymax: float

    def px(self, x: float, y: float) -> tuple[float, float]:
        fx = (x - self.xmin) / (self.xmax - self.xmin) if self.xmax > self.xmin else 0.5
        fy = (y - self.ymin) / (self.ymax - self.ymin) if self.ymax > self.ymin else 0.5
        return self.x0 + fx * (self.x1 - self.x0), self.y1 - fy * (self.y1 - self.y0)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-6:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi - 1e-12:
        ticks.append(round(v, 10))
    return ticks


def _tick_label(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def _draw_axes(d: ImageDraw.ImageDraw, ax: _Axes, xticks: Sequence[float], yticks: Sequence[float], font: Font,
               xlabel: str, ylabel_img: Image.Image | None, img: Image.Image) -> None:
    for v in yticks:
        _, y = ax.px(ax.xmin, v)
        d.line((ax.x0, y, ax.x1, y), fill=_GRID)
        d.text((ax.x0 - 6, y), _tick_label(v), fill=_TEXT, font=font, anchor="rm")
    for v in xticks:
        x, _ = ax.px(v, ax.ymin)
        d.line((x, ax.y1, x, ax.y1 + 5), fill=_AXIS)
        d.text((x, ax.y1 + 8), _tick_label(v), fill=_TEXT, font=font, anchor="mt")
    d.rectangle((ax.x0, ax.y0, ax.x1, ax.y1), outline=_AXIS)
    size = font.size if isinstance(font, ImageFont.FreeTypeFont) else 12
    d.text(((ax.x0 + ax.x1) / 2, ax.y1 + 12 + size * 1.4), xlabel, fill=_AXIS, font=font, anchor="mt")
    if ylabel_img is not None:
        img.paste(ylabel_img, (6, int((ax.y0 + ax.y1) / 2 - ylabel_img.height / 2)))


def render_reliability(calibration: Calibration, *, title: str = "Reliability diagram", size: int = 640) -> Image.Image:
    """Accuracy per confidence bin against the diagonal, with the sample count per bin below.

    Bars show each non-empty bin's accuracy; the red band between a bar's top and the mean
    confidence of that bin is the gap the expected calibration error averages.
    """
    font = _font(max(12, size // 40))
    big = _font(max(14, size // 32))
    fsize = font.size if isinstance(font, ImageFont.FreeTypeFont) else 12
    left, right, top = int(fsize * 5), int(fsize * 1.5), int(fsize * 4.5)
    plot = size - left - right
    hist_h = size // 5
    gap_between = int(fsize * 3.2)
    height = top + plot + gap_between + hist_h + int(fsize * 3.5)
    img = Image.new("RGB", (size, height), _WHITE)
    d = ImageDraw.Draw(img, "RGBA")
    d.text((size / 2, fsize * 0.8), title, fill=_TEXT, font=big, anchor="mt")
    n = sum(b.count for b in calibration.bins)
    d.text((size / 2, fsize * 2.6), f"ECE {calibration.ece:.3f} ({len(calibration.bins)} bins, {n} images)",
           fill=_AXIS, font=font, anchor="mt")
    ax = _Axes(left, top, left + plot, top + plot, 0.0, 1.0, 0.0, 1.0)
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for v in ticks:
        _, y = ax.px(0, v)
        d.line((ax.x0, y, ax.x1, y), fill=_GRID)
        d.text((ax.x0 - 6, y), f"{v:g}", fill=_TEXT, font=font, anchor="rm")
    for b in calibration.bins:
        if not b.count:
            continue
        xa, ya = ax.px(b.lower, b.accuracy)
        xb, y_base = ax.px(b.upper, 0.0)
        d.rectangle((xa + 1, ya, xb - 1, y_base), fill=(0, 114, 178, 230), outline=(0, 70, 120))
    # Gaps on top of every bar, so an over-confident bin (gap above) and an under-confident one
    # (gap over the bar) read the same way: a light red band ending at a red confidence line.
    for b in calibration.bins:
        if not b.count:
            continue
        xa, ya = ax.px(b.lower, b.accuracy)
        xb, yc = ax.px(b.upper, b.confidence)
        _hatch(img, (int(xa) + 1, int(min(ya, yc)), int(xb) - 1, int(max(ya, yc))), _GAP)
        d.line((xa + 1, yc, xb - 1, yc), fill=(200, 30, 20), width=3)
    d.line((*ax.px(0, 0), *ax.px(1, 1)), fill=(60, 60, 60), width=2)
    d.rectangle((ax.x0, ax.y0, ax.x1, ax.y1), outline=_AXIS)
    img.paste(_vertical_text("accuracy", font, _AXIS), (4, int(top + plot / 2 - fsize * 3)))
    # Legend, top left inside the plot, on white so bars behind it do not hide it.
    entries = (("box", (0, 114, 178, 230), "accuracy of the bin"), ("line", (200, 30, 20, 255), "mean confidence of the bin"),
               ("hatch", _GAP, "gap (averaged into the ECE)"), ("diag", (60, 60, 60, 255), "perfect calibration"))
    lx, ly = ax.x0 + 10, ax.y0 + 10
    legend_w = int(max(_text_w(d, t, font) for _, _, t in entries) + fsize * 2.5)
    d.rectangle((lx - 6, ly - 6, lx + legend_w, ly + int(fsize * 1.5) * len(entries)), fill=(255, 255, 255, 225), outline=_GRID)
    for kind, color, label in entries:
        if kind == "box":
            d.rectangle((lx, ly, lx + fsize, ly + fsize), fill=color)
        elif kind == "hatch":
            _hatch(img, (lx, ly, lx + int(fsize), ly + int(fsize)), color)
        elif kind == "line":
            d.line((lx, ly + fsize / 2, lx + fsize, ly + fsize / 2), fill=color, width=3)
        else:
            d.line((lx, ly + fsize, lx + fsize, ly), fill=color, width=2)
        d.text((lx + fsize + 6, ly + fsize / 2), label, fill=_TEXT, font=font, anchor="lm")
        ly += int(fsize * 1.5)
    # Histogram of counts per bin.
    h0 = top + plot + gap_between
    hist = _Axes(left, h0, left + plot, h0 + hist_h, 0.0, 1.0, 0.0, float(max([b.count for b in calibration.bins] + [1])))
    for b in calibration.bins:
        if b.count:
            xa, ya = hist.px(b.lower, b.count)
            xb, yb = hist.px(b.upper, 0)
            d.rectangle((xa + 1, ya, xb - 1, yb), fill=(120, 120, 120))
    d.rectangle((hist.x0, hist.y0, hist.x1, hist.y1), outline=_AXIS)
    d.text((hist.x0 - 6, hist.y0), str(int(hist.ymax)), fill=_TEXT, font=font, anchor="rt")
    d.text((hist.x0 - 6, hist.y1), "0", fill=_TEXT, font=font, anchor="rb")
    for v in ticks:
        x, _ = hist.px(v, 0)
        d.line((x, hist.y1, x, hist.y1 + 5), fill=_AXIS)
        d.text((x, hist.y1 + 8), f"{v:g}", fill=_TEXT, font=font, anchor="mt")
        x2, _ = ax.px(v, 0)
        d.line((x2, ax.y1, x2, ax.y1 + 5), fill=_AXIS)
    d.text(((hist.x0 + hist.x1) / 2, hist.y1 + 10 + fsize * 1.4), "confidence (top class probability)",
           fill=_AXIS, font=font, anchor="mt")
    d.text((hist.x1, hist.y0 - 4), "images per bin", fill=_AXIS, font=font, anchor="rb")
    return img


def render_reliability_before_after(before: Calibration, after: Calibration, temperature: float, *,
                                    base_temperature: float = 1.0, size: int = 640) -> Image.Image:
    """Two reliability diagrams side by side: as evaluated, and after temperature scaling.

    Two panels on the same axes rather than two series in one: each keeps its own gap bands
    and count histogram, which overlaid bars would hide, and the ECE in each title reads at once.
    """
    left = render_reliability(before, title=f"Before (T = {base_temperature:.3g})", size=size)
    right = render_reliability(after, title=f"After temperature scaling (T = {temperature:.3g})", size=size)
    return hconcat([left, right], gap=max(10, size // 32))


@dataclass(frozen=True)
class Series:
    """One line of a chart: a name, x and y values (NaN breaks the line), a colour."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: tuple[int, int, int]


def render_line_chart(series: Sequence[Series], *, title: str, xlabel: str, ylabel: str,
                      ylim: tuple[float, float] | None = None, marker_x: float | None = None,
                      marker_label: str = "", width: int = 640, height: int = 440) -> Image.Image:
    """A line chart with dots at the points, a legend and an optional vertical marker."""
    font = _font(max(12, width // 45))
    big = _font(max(14, width // 36))
    fsize = font.size if isinstance(font, ImageFont.FreeTypeFont) else 12
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y if math.isfinite(float(v))]
    xmin, xmax = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if ylim is not None:
        ymin, ymax = ylim
    else:
        ymin, ymax = (min(ys), max(ys)) if ys else (0.0, 1.0)
        ymin = min(0.0, ymin) if ymin >= 0 and ymin < 0.3 * ymax else ymin
    yticks = nice_ticks(ymin, ymax)
    ymin, ymax = yticks[0], yticks[-1]
    span = xmax - xmin
    xticks = [float(v) for v in nice_ticks(xmin, xmax, target=min(8, max(1, int(span))))] if span else [xmin]
    xticks = [v for v in xticks if xmin <= v <= xmax and float(v).is_integer()] or [xmin]
    if xmax == xmin:
        xmin, xmax = xmin - 1, xmax + 1
    legend_h = int(fsize * 1.6) * ((len(series) + 1) // 2) + 6
    ax = _Axes(int(fsize * 5.5), int(fsize * 3) + legend_h, width - int(fsize * 1.5), height - int(fsize * 4),
               xmin, xmax, ymin, ymax)
    img = Image.new("RGB", (width, height), _WHITE)
    d = ImageDraw.Draw(img)
    d.text((width / 2, fsize * 0.6), title, fill=_TEXT, font=big, anchor="mt")
    _draw_axes(d, ax, xticks, yticks, font, xlabel, _vertical_text(ylabel, font, _AXIS), img)
    if marker_x is not None:
        mx, _ = ax.px(marker_x, ymin)
        for dash_y in range(ax.y0, ax.y1, 8):
            d.line((mx, dash_y, mx, min(dash_y + 4, ax.y1)), fill=(120, 120, 120), width=1)
    for s in series:
        pts = [(float(x), float(y)) for x, y in zip(s.x, s.y)]
        run: list[tuple[float, float]] = []
        for x, y in pts + [(math.nan, math.nan)]:
            if math.isfinite(y):
                run.append(ax.px(x, y))
                continue
            if len(run) > 1:
                d.line(run, fill=s.color, width=3, joint="curve")
            for px, py in run:
                d.ellipse((px - 3.5, py - 3.5, px + 3.5, py + 3.5), fill=s.color)
            run = []
    if marker_x is not None and marker_label:
        # Beside the marker where there is room, on a white box drawn over the lines.
        mx, _ = ax.px(marker_x, ymin)
        room_right = ax.x1 - mx > _text_w(d, marker_label, font) + 12
        pos = (mx + 6 if room_right else mx - 6, ax.y0 + 6)
        anchor = "lt" if room_right else "rt"
        bx = d.textbbox(pos, marker_label, font=font, anchor=anchor)
        d.rectangle((bx[0] - 3, bx[1] - 2, bx[2] + 3, bx[3] + 2), fill=_WHITE, outline=_GRID)
        d.text(pos, marker_label, fill=(90, 90, 90), font=font, anchor=anchor)
    # Legend in two columns above the plot.
    col_w = (ax.x1 - ax.x0) // 2
    for i, s in enumerate(series):
        lx = ax.x0 + (i % 2) * col_w
        ly = int(fsize * 2.6) + (i // 2) * int(fsize * 1.6)
        d.line((lx, ly + fsize / 2, lx + 2 * fsize, ly + fsize / 2), fill=s.color, width=3)
        d.text((lx + 2 * fsize + 6, ly + fsize / 2), s.name, fill=_TEXT, font=font, anchor="lm")
    return img


def hconcat(images: Sequence[Image.Image], gap: int = 10) -> Image.Image:
    """Images side by side on white, top-aligned."""
    w = sum(im.width for im in images) + gap * (len(images) - 1)
    h = max(im.height for im in images)
    out = Image.new("RGB", (w, h), _WHITE)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out
