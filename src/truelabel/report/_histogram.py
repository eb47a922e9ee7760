"""Score histograms that keep a few flagged items visible next to thousands of clean ones.

Two readings of the same scores: ``log_scale=True`` puts flagged and unflagged counts side
by side in every bin on a log axis (a bin of 10 flagged items next to 9,000 clean ones is
still a quarter of the height), and ``value_range`` zooms on the score range that holds
the flagged items, with linear counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._svg import FLAGGED, UNFLAGGED, _empty, _fmt, _nice_ticks, _open, esc

__all__ = ["histogram_svg"]

_LEFT, _TOP, _PLOT_W, _PLOT_H = 60.0, 50.0, 480.0, 220.0


def _log_ticks(vmax: float) -> list[int]:
    """0, 1, 10, 100, ... up to the first power of ten at or above ``vmax``."""
    top = max(1, math.ceil(math.log10(max(vmax, 1.0)) - 1e-12))
    return [0] + [10**e for e in range(top + 1)]


def _bar(x: float, w: float, base: float, h: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'fill="{fill}">{tip}</rect>'
    )


def histogram_svg(
    values: Any,
    *,
    bins: int = 30,
    title: str,
    xlabel: str,
    highlight_mask: Any = None,
    log_scale: bool = False,
    value_range: tuple[float, float] | None = None,
) -> str:
    """Histogram of ``values``; ``highlight_mask`` marks flagged items in red.

    Parameters
    ----------
    values : array of shape (n,)
    bins : int, default 30
    title, xlabel : str
    highlight_mask : array of bool of shape (n,), optional
        Flagged items: stacked on top of the others (linear counts) or drawn as a bar of
        their own beside them (``log_scale``). A dashed line marks the highest flagged value.
    log_scale : bool, default False
        Count axis on a log scale (``log10(1 + count)``), flagged and unflagged side by side.
    value_range : (float, float), optional
        Only values in ``[lo, hi]`` are binned; the others are counted in a note.

    Examples
    --------
    >>> svg = histogram_svg([0.1, 0.9, 0.95], title="t", xlabel="x", highlight_mask=[1, 0, 0])
    >>> "flagged (1)" in svg and "not flagged (2)" in svg
    True
    """
    v = np.asarray(values, dtype=float).ravel()
    mask = (
        np.zeros(v.shape, dtype=bool)
        if highlight_mask is None
        else np.asarray(highlight_mask, dtype=bool).ravel()
    )
    if mask.shape != v.shape:
        raise ValueError(
            f"highlight_mask: has {mask.size} entries, values has {v.size}; pass one per value"
        )
    finite = np.isfinite(v)
    n_dropped = int((~finite).sum())
    v, mask = v[finite], mask[finite]
    n_outside = 0
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        inside = (v >= lo) & (v <= hi)
        n_outside = int((~inside).sum())
        v, mask = v[inside], mask[inside]
    elif v.size:
        lo, hi = float(v.min()), float(v.max())
    if v.size == 0:
        return _empty(title)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, max(int(bins), 1) + 1)
    plain, _ = np.histogram(v[~mask], bins=edges)
    flagged, _ = np.histogram(v[mask], bins=edges)
    left, top, plot_w, plot_h = _LEFT, _TOP, _PLOT_W, _PLOT_H
    width, height = left + plot_w + 30, top + plot_h + 70
    base = top + plot_h
    if log_scale:
        ticks: list[float] = [float(t) for t in _log_ticks(float(max(plain.max(), flagged.max())))]
        unit = plot_h / math.log10(1 + ticks[-1])

        def y_of(count: float) -> float:
            return math.log10(1 + count) * unit
    else:
        ticks = _nice_ticks(float((plain + flagged).max()), 4)
        unit = plot_h / ticks[-1]

        def y_of(count: float) -> float:
            return count * unit

    xs = plot_w / (hi - lo)
    parts = _open(width, height, title)
    for tv in ticks:
        y = base - y_of(tv)
        parts.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
            f'stroke="#eee"/><text x="{left - 6:.1f}" y="{y + 3:.1f}" text-anchor="end" '
            f'font-size="10">{esc(_fmt(tv))}</text>'
        )
    for b in range(len(edges) - 1):
        x = left + (edges[b] - lo) * xs
        w = max((edges[b + 1] - edges[b]) * xs - 1, 0.5)
        tip = (
            f'<title class="bin">[{esc(_fmt(edges[b]))}, {esc(_fmt(edges[b + 1]))}): '
            f"{int(plain[b])} not flagged, {int(flagged[b])} flagged</title>"
        )
        if log_scale:  # side by side: each count keeps its own (log) height
            half = max(w / 2, 0.5)
            if plain[b]:
                parts.append(_bar(x, half, base, y_of(plain[b]), UNFLAGGED, tip))
            if flagged[b]:
                parts.append(_bar(x + half, half, base, y_of(flagged[b]), FLAGGED, tip))
        else:  # stacked: flagged on top of the others
            if plain[b]:
                parts.append(_bar(x, w, base, y_of(plain[b]), UNFLAGGED, tip))
            if flagged[b]:
                parts.append(_bar(x, w, base - y_of(plain[b]), y_of(flagged[b]), FLAGGED, tip))
    for tv in np.linspace(lo, hi, 6):
        x = left + (tv - lo) * xs
        parts.append(
            f'<text x="{x:.1f}" y="{base + 14:.1f}" text-anchor="middle" font-size="10">'
            f"{esc(_fmt(round(float(tv), 3)))}</text>"
        )
    axis = "count (log scale)" if log_scale else "count"
    parts.append(
        f'<line x1="{left:.1f}" y1="{base:.1f}" x2="{left + plot_w:.1f}" y2="{base:.1f}" '
        f'stroke="#333"/><text x="{left + plot_w / 2:.1f}" y="{base + 32:.1f}" '
        f'text-anchor="middle" font-size="12">{esc(xlabel)}</text>'
        f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{axis}</text>'
    )
    if mask.any():
        worst_flagged = float(v[mask].max())
        x = left + (worst_flagged - lo) * xs
        parts.append(
            f'<line class="flag-limit" x1="{x:.1f}" y1="{top - 8:.1f}" x2="{x:.1f}" '
            f'y2="{base:.1f}" stroke="{FLAGGED}" stroke-dasharray="4 3"/>'
            f'<text x="{min(x, left + plot_w - 120):.1f}" y="{top - 11:.1f}" font-size="10" '
            f'fill="{FLAGGED}">highest flagged: {esc(_fmt(round(worst_flagged, 3)))}</text>'
        )
    legend_y = base + 52
    if highlight_mask is not None:
        parts.append(
            f'<rect x="{left:.1f}" y="{legend_y - 9:.1f}" width="10" height="10" '
            f'fill="{UNFLAGGED}"/><text x="{left + 14:.1f}" y="{legend_y:.1f}" font-size="11">'
            f"not flagged ({int(plain.sum())})</text>"
            f'<rect x="{left + 150:.1f}" y="{legend_y - 9:.1f}" width="10" height="10" '
            f'fill="{FLAGGED}"/><text x="{left + 164:.1f}" y="{legend_y:.1f}" font-size="11">'
            f"flagged ({int(flagged.sum())})</text>"
        )
    notes = []
    if n_outside:
        notes.append(f"{n_outside} outside the range")
    if n_dropped:
        notes.append(f"{n_dropped} non-finite values left out")
    if notes:
        parts.append(
            f'<text x="{left + plot_w:.1f}" y="{legend_y:.1f}" text-anchor="end" font-size="11" '
            f'fill="#666">{esc("; ".join(notes))}</text>'
        )
    return "\n".join([*parts, "</svg>"])
