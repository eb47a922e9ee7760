"""Dashboard charts as server-rendered inline SVG (no chart library, no script): bars of
decisions per hour / day / week, and bars of the issue rate per class. Every label is
escaped; styling comes from classes in ``static/style.css`` (the CSP allows no inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

__all__ = ["bar_chart_svg", "dashboard_charts", "progress_buckets"]

#: (unit, floor frequency, bucket length, longest span shown in this unit)
_UNITS = (
    ("hour", "h", pd.Timedelta(hours=1), pd.Timedelta(hours=48)),
    ("day", "D", pd.Timedelta(days=1), pd.Timedelta(days=120)),
)


def progress_buckets(created_at: pd.Series) -> tuple[str, list[pd.Timestamp], list[int]]:
    """Counts per time bucket between the first and the last timestamp (empty buckets
    included): hours when they span at most 48 hours, days up to 120 days, else weeks
    (starting Monday). Returns ``(unit, bucket starts, counts)``."""
    times = pd.to_datetime(created_at, utc=True)
    if times.empty:
        return "day", [], []
    span = times.max() - times.min()
    unit, freq, step = "week", "D", pd.Timedelta(days=7)
    for name, code, length, limit in _UNITS:
        if span <= limit:
            unit, freq, step = name, code, length
            break
    if unit == "week":  # the Monday 00:00 UTC of each week
        days = times.dt.floor("D")
        starts = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    else:
        starts = times.dt.floor(freq)
    counts = starts.value_counts()
    grid = pd.date_range(starts.min(), starts.max(), freq=step)
    full = counts.reindex(grid, fill_value=0)
    return unit, list(full.index), [int(v) for v in full.to_numpy()]


def bar_chart_svg(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    value_text: Sequence[str] | None = None,
    flagged: Sequence[bool] | None = None,
    max_value: float | None = None,
    label_every: int = 1,
    width: int = 720,
    height: int = 200,
) -> Markup:
    """Vertical bars, one per label, with the value on hover (``<title>``) and every
    ``label_every``-th label under the axis. ``max_value`` fixes the top of the scale
    (default: the largest value). All text is escaped."""
    n = len(labels)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    texts = list(value_text) if value_text is not None else [f"{v:g}" for v in vals]
    top = float(max_value if max_value is not None else (vals.max() if n else 0.0)) or 1.0
    left, bottom, pad = 40, 34, 8
    plot_w, plot_h = width - left - pad, height - bottom - pad
    slot = plot_w / max(n, 1)
    bar_w = max(1.0, slot * 0.8)
    parts: list[str] = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<line class="axis" x1="{left}" y1="{pad + plot_h}" x2="{width - pad}" '
        f'y2="{pad + plot_h}"/>',
        f'<text x="{left - 4}" y="{pad + 10}" text-anchor="end">{escape(_tick(top))}</text>',
        f'<text x="{left - 4}" y="{pad + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (label, v) in enumerate(zip(labels, vals, strict=True)):
        h = 0.0 if not np.isfinite(v) else plot_h * min(max(v, 0.0) / top, 1.0)
        x = left + i * slot + (slot - bar_w) / 2
        css = "bar flagged" if flagged is not None and flagged[i] else "bar"
        tip = f"{label}: {texts[i]}"
        parts.append(
            f'<rect class="{css}" x="{x:.1f}" y="{pad + plot_h - h:.1f}" width="{bar_w:.1f}" '
            f'height="{h:.1f}"><title>{escape(tip)}</title></rect>'
        )
        if i % max(label_every, 1) == 0:
            short = label if len(label) <= 16 else label[:15] + "…"
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{escape(short)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _tick(top: float) -> str:
    return f"{top:.0%}" if top <= 1.0 and top != int(top) else f"{top:g}"


def dashboard_charts(
    decision_times: pd.Series, class_rates: list[dict[str, Any]]
) -> dict[str, Any]:
    """The two dashboard charts and the progress table behind the first one."""
    unit, starts, counts = progress_buckets(decision_times)
    fmt = {"hour": "%m-%d %H:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d"}[unit]
    names = [t.strftime(fmt) for t in starts]
    progress = (
        bar_chart_svg(
            names,
            counts,
            title=f"decisions per {unit}",
            label_every=max(1, len(names) // 8),
        )
        if counts
        else None
    )
    rates = bar_chart_svg(
        [r["label"] for r in class_rates],
        [r["rate"] for r in class_rates],
        title="share of items flagged per class",
        value_text=[f"{r['flagged']} of {r['items']} ({r['rate']:.1%})" for r in class_rates],
        flagged=[True] * len(class_rates),
        max_value=max([r["rate"] for r in class_rates] + [0.0]) or 1.0,
    )
    return {"unit": unit, "starts": starts, "counts": counts, "progress": progress, "rates": rates}
