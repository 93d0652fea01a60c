"""Charts as inline SVG, rendered on the server by pure functions: data in, markup out.

Every mark carries its exact value (``data-value``, ``data-x``/``data-y``) and every
chart its total (``data-total``), so a test, or a reader with the inspector, can check
the picture against the numbers it was drawn from. Geometry is float; the data
attributes are the exact decimal text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import escape

PALETTE = ("#2b6cb0", "#2f855a", "#d69e2e", "#c53030", "#6b46c1", "#319795", "#b83280")
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 240, 56, 40, 12


def number(value: Decimal) -> str:
    """Exact decimal text without trailing zeros (``12.50`` -> ``12.5``, ``0E-9`` -> ``0``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[Decimal, ...]
    """One per category (bar chart) or per x label (line chart)."""


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _scale(values: Sequence[Decimal]) -> float:
    top = max((float(v) for v in values), default=0.0)
    return top if top > 0 else 1.0


def _frame(kind: str, label: str, total: Decimal, body: list[str], legend: Sequence[str]) -> str:
    keys = "".join(
        f'<span class="key"><i style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        f"{escape(name)}</span>"
        for i, name in enumerate(legend)
    )
    return (
        f'<figure class="chart"><svg data-chart="{_attr(kind)}" data-total="{number(total)}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_attr(label)}"'
        f' preserveAspectRatio="xMidYMid meet">{"".join(body)}</svg>'
        f'<figcaption>{escape(label)} <span class="legend">{keys}</span></figcaption></figure>'
    )


def _axis(top: float) -> list[str]:
    base = HEIGHT - PAD_BOTTOM
    out = [f'<line x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#999"/>']
    for frac in (0.5, 1.0):
        y = base - frac * (base - PAD_TOP)
        out.append(
            f'<text x="{PAD_LEFT - 4}" y="{y:.1f}" text-anchor="end" font-size="10">'
            f"{top * frac:,.6g}</text>"
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}" stroke="#eee"/>'
        )
    return out


def bar_chart(label: str, categories: Sequence[str], series: Sequence[Series]) -> str:
    """Grouped bars: one group per category, one bar per series inside it."""
    values = [v for s in series for v in s.values]
    top = _scale(values)
    body = _axis(top)
    base = HEIGHT - PAD_BOTTOM
    group = (WIDTH - PAD_LEFT) / max(len(categories), 1)
    bar = group * 0.8 / max(len(series), 1)
    for c, category in enumerate(categories):
        x0 = PAD_LEFT + c * group + group * 0.1
        for s_no, s in enumerate(series):
            value = s.values[c]
            h = max(float(value), 0.0) / top * (base - PAD_TOP)
            body.append(
                f'<rect class="mark" data-category="{_attr(category)}"'
                f' data-series="{_attr(s.name)}" data-value="{number(value)}"'
                f' x="{x0 + s_no * bar:.1f}" y="{base - h:.1f}" width="{bar * 0.9:.1f}"'
                f' height="{h:.1f}" fill="{PALETTE[s_no % len(PALETTE)]}">'
                f"<title>{escape(category)} {escape(s.name)}: {number(value)}</title></rect>"
            )
        fits = max(int(group / 6.5), 3)
        shown = category if len(category) <= fits else category[: fits - 1] + "…"
        body.append(
            f'<text x="{x0 + group * 0.4:.1f}" y="{base + 14}" text-anchor="middle"'
            f' font-size="11">{escape(shown)}<title>{escape(category)}</title></text>'
        )
    return _frame("bar", label, sum(values, Decimal(0)), body, [s.name for s in series])


def _time_offsets(xs: Sequence[str]) -> list[float]:
    """Where each x falls between the first and the last (0..1) when every x is an ISO
    date or time, so gaps in time show as gaps; empty when they are not all times."""
    try:
        stamps = [datetime.fromisoformat(x).replace(tzinfo=UTC).timestamp() for x in xs]
    except ValueError:
        return []
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return [0.0] * len(stamps) if len(stamps) == 1 else []
    return [(t - stamps[0]) / (stamps[-1] - stamps[0]) for t in stamps]


def line_chart(label: str, xs: Sequence[str], series: Sequence[Series]) -> str:
    """One polyline per series over the x labels (times, in order), a dot per point."""
    values = [v for s in series for v in s.values]
    top = _scale(values)
    body = _axis(top)
    base = HEIGHT - PAD_BOTTOM
    span = WIDTH - PAD_LEFT - 10
    offsets = _time_offsets(xs)
    step = span / max(len(xs) - 1, 1)
    place = [
        PAD_LEFT + 5 + (o * span if offsets else i * step)
        for i, o in enumerate(offsets or [0.0] * len(xs))
    ]
    for s_no, s in enumerate(series):
        colour = PALETTE[s_no % len(PALETTE)]
        points = [
            (place[i], base - max(float(v), 0.0) / top * (base - PAD_TOP))
            for i, v in enumerate(s.values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), at, v in zip(points, xs, s.values, strict=True):
            body.append(
                f'<circle class="mark" data-series="{_attr(s.name)}" data-x="{_attr(at)}"'
                f' data-y="{number(v)}" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(at)} {escape(s.name)}: {number(v)}</title></circle>"
            )
    if xs:
        for i in sorted({0, len(xs) - 1}):
            anchor = "start" if i == 0 else "end"
            body.append(
                f'<text x="{place[i]:.1f}" y="{base + 14}" text-anchor="{anchor}"'
                f' font-size="11">{escape(xs[i])}</text>'
            )
    return _frame("line", label, sum(values, Decimal(0)), body, [s.name for s in series])
