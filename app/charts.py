"""Inline SVG charts for the dashboard: stacked bars over time, a line, horizontal bars, and a PR's cost between
pushes. Pure: strings in, a string of SVG out; no JavaScript, no external assets, every text escaped.

Each chart is `<svg role="img" aria-labelledby="ID-title ID-desc">` with a `<title>` and a `<desc>` that states the
figures in words, a legend when there is more than one series, a `<title>` on every mark (a tooltip), and colours
from the Okabe–Ito palette (told apart with colour-blindness; text labels carry the meaning too). Outcomes (merged,
closed…) have a palette of their own, so no colour means both a model and an outcome. A text too long for its room
is elided, with the whole of it in a `<title>` of its group (a tooltip, and what a screen reader reads). Charts
scale by their `viewBox`: the page's CSS gives them the width there is.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
OTHER_COLOR = "#8C8C8C"
# Outcomes: Paul Tol's muted scheme, none of them a model colour (merged, closed, open, not linked).
OUTCOME_PALETTE = ("#117733", "#CC6677", "#882255", "#332288", "#BBBBBB")  # merged, reverted, closed, open, none
AXIS_COLOR = "#595959"  # 7:1 against white
GRID_COLOR = "#E3E3E3"
WIDTH = 720  # charts over time
BAR_WIDTH = 560  # horizontal bars: narrower, so their text stays legible on a phone
LABEL_MARGIN = 180  # horizontal bars: the room left of the bars for their labels
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="12"'

Number = Decimal | int | float
Formatter = Callable[[Decimal], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[Number]  # one per label
    color: str | None = None  # None: the palette's next colour


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: Number
    color: str | None = None
    note: str = ""  # shown after the value (e.g. "3 PRs")


def _text(value: object) -> str:
    return escape(str(value), quote=True)


_NARROW = frozenset("fijlrtI1.,:;!|'()[] ")
_WIDE = frozenset("mwMW@%")


def text_width(text: str, font_size: float) -> float:
    """A generous estimate of the width of `text` in a sans-serif font (no font metrics on the server): wide enough
    that what fits here fits in the fonts browsers pick for system-ui."""
    em = sum(0.34 if c in _NARROW else 0.9 if c in _WIDE else 0.7 if c.isupper() else 0.6 for c in text)
    return em * font_size


def _fit(text: str, room: float, font_size: float) -> str:
    """`text`, or its longest head that fits `room` followed by an ellipsis."""
    if text_width(text, font_size) <= room:
        return text
    head = text
    while head and text_width(head + "…", font_size) > room:
        head = head[:-1]
    return head.rstrip() + "…"


def _label(text: str, room: float, font_size: int, attributes: str) -> str:
    """A `<text>` that fits `room`; when shortened, grouped with a `<title>` holding the whole text."""
    shown = _fit(text, room, font_size)
    element = f'<text {attributes} font-size="{font_size}">{_text(shown)}</text>'
    return element if shown == text else f"<g><title>{_text(text)}</title>{element}</g>"


def _plain(value: Decimal) -> str:
    return f"{value:,}"


def _dec(value: Number) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _color(index: int, chosen: str | None) -> str:
    return chosen or PALETTE[index % len(PALETTE)]


def series_color(name: str) -> str:
    """The colour of a named series (a model) on every chart and page: a stable hash of the name into the palette,
    never its rank on one page, so a model keeps its colour when the period or the repository changes. Two
    names may share a colour; the legend and every mark's tooltip name them."""
    return PALETTE[hashlib.sha256(name.encode()).digest()[0] % len(PALETTE)]


def nice_step(maximum: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 × 10^k) so that `ticks` steps cover `maximum`."""
    if maximum <= 0:
        return 1.0
    raw = maximum / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(float(m * power) for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _open(chart_id: str, title: str, desc: str, height: int, width: int = WIDTH) -> list[str]:
    ident = _text(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" class="chart" {FONT}>',
        f'<title id="{ident}-title">{_text(title)}</title>',
        f'<desc id="{ident}-desc">{_text(desc)}</desc>',
        f'<rect width="{width}" height="{height}" fill="#FFFFFF"/>',
    ]


def _empty(chart_id: str, title: str, desc: str, width: int = WIDTH) -> str:
    parts = _open(chart_id, title, desc or "No data in this period.", 80, width)
    parts.append(f'<text x="{width / 2}" y="45" text-anchor="middle" fill="{AXIS_COLOR}">No data in this period</text>')
    return "\n".join([*parts, "</svg>"])


def _legend(items: Sequence[tuple[str, str]], top: float) -> tuple[list[str], float]:
    """Swatches and names in rows; returns the markup and the height it takes."""
    parts, x, y = ['<g class="legend">'], 60.0, top
    for name, color in items:
        shown = _fit(name, 260, 12)
        width = 20 + text_width(shown, 12)
        if x + width > WIDTH - 10 and x > 60:
            x, y = 60.0, y + 20
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" fill="{color}"/>')
        parts.append(_label(name, 260, 12, f'x="{x + 16:.1f}" y="{y + 10:.1f}"'))
        x += width + 12
    parts.append("</g>")
    return parts, y - top + 20


def _axis(top: float, bottom: float, maximum: float, fmt: Formatter) -> tuple[list[str], float]:
    """Horizontal grid lines with value labels on the left; returns them and the axis' top value."""
    step = nice_step(maximum)
    count = max(1, math.ceil(maximum / step - 1e-9))
    top_value = step * count
    parts = []
    for i in range(count + 1):
        y = bottom - (bottom - top) * i / count
        parts.append(f'<line x1="60" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="{GRID_COLOR}"/>')
        label = fmt(Decimal(str(round(step * i, 10))))
        parts.append(f'<text x="54" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS_COLOR}">{_text(label)}</text>')
    parts.append(f'<line x1="60" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="{AXIS_COLOR}"/>')
    return parts, top_value


def _x_labels(labels: Sequence[str], xs: Sequence[float], y: float) -> list[str]:
    every = max(1, math.ceil(len(labels) / 8))  # at most ~8 labels, the last one always shown
    shown = [i for i in range(len(labels)) if i % every == 0 or i == len(labels) - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < every:
        shown.pop(-2)
    room = (WIDTH - 70) / len(labels) * every  # a label may use the columns whose labels are skipped
    return [
        _label(labels[i], room, 12, f'x="{xs[i]:.1f}" y="{y:.1f}" text-anchor="middle" fill="{AXIS_COLOR}"')
        for i in shown
    ]


def stacked_bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Formatter = _plain,
) -> str:
    """One column per label (a day, a week), one stacked segment per series (a model)."""
    totals = [sum((_dec(s.values[i]) for s in series), Decimal(0)) for i in range(len(labels))]
    if not labels or not series or max(totals, default=Decimal(0)) <= 0:
        return _empty(chart_id, title, desc)
    colors = [_color(i, s.color) for i, s in enumerate(series)]
    _, legend_height = _legend([(s.name, c) for s, c in zip(series, colors, strict=True)], 0)
    top, bottom = 16.0, 230.0
    height = int(bottom + 30 + legend_height + 10)
    axis, top_value = _axis(top, bottom, float(max(totals)), fmt)
    slot = (WIDTH - 70) / len(labels)
    bar = max(1.0, slot * 0.72)
    xs = [60 + slot * i + slot / 2 for i in range(len(labels))]
    parts = [*_open(chart_id, title, desc, height), *axis]
    for i, label in enumerate(labels):
        y = bottom
        for s, color in zip(series, colors, strict=True):
            value = _dec(s.values[i])
            if value <= 0:
                continue
            h = float(value) / top_value * (bottom - top)
            y -= h
            tip = f"{label} · {s.name}: {fmt(value)}"
            parts.append(
                f'<rect x="{xs[i] - bar / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{_text(tip)}</title></rect>"
            )
    parts += _x_labels(labels, xs, bottom + 18)
    legend_parts, _ = _legend([(s.name, c) for s, c in zip(series, colors, strict=True)], bottom + 32)
    return "\n".join([*parts, *legend_parts, "</svg>"])


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[Number | None],
    series_name: str,
    fmt: Formatter = _plain,
) -> str:
    """A line over labels; None is a gap (no value that week)."""
    known = [_dec(v) for v in values if v is not None]
    if not labels or not known:
        return _empty(chart_id, title, desc)
    top, bottom = 16.0, 230.0
    axis, top_value = _axis(top, bottom, float(max(known)) or 1.0, fmt)
    slot = (WIDTH - 70) / len(labels)
    xs = [60 + slot * i + slot / 2 for i in range(len(labels))]
    color = PALETTE[0]
    parts = [*_open(chart_id, title, desc, int(bottom + 62)), *axis]
    segment: list[str] = []
    marks: list[str] = []
    for i, value in enumerate(values):
        if value is None:
            if len(segment) > 1:
                parts.append(_polyline(segment, color))
            segment = []
            continue
        y = bottom - float(_dec(value)) / top_value * (bottom - top)
        segment.append(f"{xs[i]:.1f},{y:.1f}")
        tip = f"{labels[i]}: {fmt(_dec(value))}"
        marks.append(f'<circle cx="{xs[i]:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{_text(tip)}</title></circle>')
    if len(segment) > 1:
        parts.append(_polyline(segment, color))
    parts += marks
    parts += _x_labels(labels, xs, bottom + 18)
    legend, _ = _legend([(series_name, color)], bottom + 32)
    return "\n".join([*parts, *legend, "</svg>"])


def _polyline(points: Sequence[str], color: str, dash: str = "") -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2.5"{dashed}/>'


def horizontal_bar_chart(*, chart_id: str, title: str, desc: str, bars: Sequence[Bar], fmt: Formatter = _plain) -> str:
    """One labelled bar per item, its value written beside it."""
    values = [_dec(b.value) for b in bars]
    if not bars or max(values) <= 0:
        return _empty(chart_id, title, desc, BAR_WIDTH)
    row, left = 30, LABEL_MARGIN
    height = 16 + row * len(bars)
    texts = [fmt(value) + (f" · {b.note}" if b.note else "") for b, value in zip(bars, values, strict=True)]
    right = max(120.0, max(text_width(t, 13) for t in texts) + 12)  # the longest value fits beside its bar
    scale = max(BAR_WIDTH - left - right, 60) / float(max(values))
    parts = _open(chart_id, title, desc, height, BAR_WIDTH)
    for i, (b, value) in enumerate(zip(bars, values, strict=True)):
        y = 8 + row * i
        width = max(float(value) * scale, 1.0 if value > 0 else 0.0)
        shown = texts[i]
        parts.append(_label(b.label, left - 8, 13, f'x="{left - 8}" y="{y + 16}" text-anchor="end"'))
        parts.append(
            f'<rect x="{left}" y="{y + 3}" width="{width:.1f}" height="20" fill="{_color(i, b.color)}">'
            f"<title>{_text(f'{b.label}: {shown}')}</title></rect>"
        )
        parts.append(
            f'<text x="{left + width + 6:.1f}" y="{y + 16}" font-size="13" fill="{AXIS_COLOR}">{_text(shown)}</text>'
        )
    return "\n".join([*parts, "</svg>"])


def push_timeline_chart(*, chart_id: str, title: str, desc: str, bars: Sequence[Bar], fmt: Formatter = _plain) -> str:
    """A PR's cost between pushes: one column per interval (labelled by its push), and the running total."""
    values = [_dec(b.value) for b in bars]
    total = sum(values, Decimal(0))
    if not bars or total <= 0:
        return _empty(chart_id, title, desc)
    top, bottom = 16.0, 230.0
    axis, top_value = _axis(top, bottom, float(total), fmt)
    slot = (WIDTH - 70) / len(bars)
    width = max(1.0, min(slot * 0.6, 80))
    xs = [60 + slot * i + slot / 2 for i in range(len(bars))]
    parts = [*_open(chart_id, title, desc, int(bottom + 62)), *axis]
    running, line = Decimal(0), []
    for i, (b, value) in enumerate(zip(bars, values, strict=True)):
        h = float(value) / top_value * (bottom - top)
        tip = f"{b.label}: {fmt(value)}" + (f" · {b.note}" if b.note else "")
        parts.append(
            f'<rect x="{xs[i] - width / 2:.1f}" y="{bottom - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{_text(tip)}</title></rect>'
        )
        running += value
        line.append(f"{xs[i]:.1f},{bottom - float(running) / top_value * (bottom - top):.1f}")
    parts.append(_polyline(line, PALETTE[5], dash="6 4"))
    running = Decimal(0)
    for i, value in enumerate(values):
        running += value
        y = bottom - float(running) / top_value * (bottom - top)
        tip = f"after {bars[i].label}: {fmt(running)} in all"
        parts.append(
            f'<circle cx="{xs[i]:.1f}" cy="{y:.1f}" r="4" fill="{PALETTE[5]}"><title>{_text(tip)}</title></circle>'
        )
    parts += _x_labels([b.label for b in bars], xs, bottom + 18)
    legend, _ = _legend([("cost of the interval", PALETTE[0]), ("running total", PALETTE[5])], bottom + 32)
    return "\n".join([*parts, *legend, "</svg>"])
