"""Small, dependency-free SVG charts for the audit report.

Every function returns one ``<svg>`` element as a string that is valid XML and can be
inlined in HTML. Every piece of text placed in the SVG is escaped, so class names such
as ``<script>`` render as text and never as markup.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["bar_chart_svg", "esc", "heatmap_svg"]

#: Above this many rows/columns a heatmap drops the numbers written in the cells.
CELL_TEXT_LIMIT = 20
#: Above this many rows/columns a heatmap drops its tick labels (hover titles remain).
TICK_LABEL_LIMIT = 50
#: Above this many cells a heatmap drops the per-cell hover titles (keeps the file small).
CELL_TITLE_LIMIT = 2500
#: A bar chart shows at most this many bars.
MAX_BARS = 30

_FONT = 'font-family="system-ui, sans-serif"'
FLAGGED = "#d62728"
UNFLAGGED = "#8fb3d9"
_BAR = "#4c78a8"
# Characters that are not allowed in XML 1.0 (control characters except tab/newline/CR).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def esc(value: object) -> str:
    """Escape any value for use as SVG/HTML text or attribute content.

    Examples
    --------
    >>> esc("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    return html.escape(_XML_INVALID.sub("\ufffd", str(value)), quote=True)


def _truncate(text: object, limit: int) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: max(limit - 1, 1)] + "…"


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _nice_ticks(vmax: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``vmax``."""
    if not math.isfinite(vmax) or vmax <= 0:
        return [0.0, 1.0]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    count = math.ceil(vmax / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def _color(t: float) -> str:
    """Sequential white -> dark blue colour for ``t`` in [0, 1]; grey for NaN."""
    if not math.isfinite(t):
        return "#cccccc"
    t = min(max(t, 0.0), 1.0)
    lo, mid, hi = (247, 251, 255), (107, 174, 214), (8, 48, 107)
    a, b, u = (lo, mid, t * 2) if t < 0.5 else (mid, hi, t * 2 - 1)
    r, g, bl = (round(a[i] + (b[i] - a[i]) * u) for i in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(title)}" {_FONT}>',
        f"<title>{esc(title)}</title>",
        f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{esc(title)}</text>',
    ]


def _empty(title: str, message: str = "no data") -> str:
    parts = _open(420, 80, title)
    parts.append(
        f'<text x="210" y="55" text-anchor="middle" font-size="13" fill="#666">'
        f"{esc(message)}</text>"
    )
    return "\n".join([*parts, "</svg>"])


def _cell_runs(
    m: np.ndarray, vmin: float, span: float, left: float, top: float, cell: float
) -> list[str]:
    """Cells of a large heatmap as one rect per horizontal run of equal (quantised) colour.

    Runs in the background colour are skipped, which keeps K=100 matrices small.
    """
    background = _color(0.0)
    out = []
    for i, row in enumerate(m):
        t = np.round((row - vmin) / span * 50) / 50
        colors = [_color(float(x)) for x in t]
        j = 0
        while j < len(colors):
            end = j
            while end + 1 < len(colors) and colors[end + 1] == colors[j]:
                end += 1
            if colors[j] != background:
                out.append(
                    f'<rect x="{left + j * cell:.1f}" y="{top + i * cell:.1f}" '
                    f'width="{(end - j + 1) * cell:.1f}" height="{cell:.1f}" fill="{colors[j]}"/>'
                )
            j = end + 1
    return out


def heatmap_svg(
    matrix: Any,
    row_labels: Sequence[object],
    col_labels: Sequence[object],
    *,
    title: str,
    row_title: str,
    col_title: str,
    mask_diagonal: bool = False,
) -> str:
    """A heatmap of ``matrix`` (n_rows, n_cols) with a colour legend.

    Values are written in the cells when both dimensions are at most ``CELL_TEXT_LIMIT``;
    tick labels are shown up to ``TICK_LABEL_LIMIT`` and truncated, column labels rotated.
    With ``mask_diagonal`` the diagonal is drawn grey and the colour scale spans the
    off-diagonal values only, so small confusions stay visible next to a heavy diagonal.
    """
    values = np.asarray(matrix, dtype=float)
    if values.ndim != 2 or values.size == 0:
        return _empty(title)
    m = values.copy()
    if mask_diagonal:
        np.fill_diagonal(m, np.nan)  # grey, and out of the colour scale
    n_rows, n_cols = m.shape
    rows = [str(r) for r in row_labels][:n_rows] + [""] * max(0, n_rows - len(row_labels))
    cols = [str(c) for c in col_labels][:n_cols] + [""] * max(0, n_cols - len(col_labels))
    big = max(n_rows, n_cols)
    cell = min(44.0, max(5.0, 620.0 / big))
    show_ticks = big <= TICK_LABEL_LIMIT
    show_text = big <= CELL_TEXT_LIMIT
    show_titles = n_rows * n_cols <= CELL_TITLE_LIMIT
    tick_font = min(12.0, max(7.0, cell * 0.7))
    max_chars = 16
    char_w = tick_font * 0.6
    row_lab_w = (
        min(max_chars, max((len(r) for r in rows), default=1)) * char_w + 8 if show_ticks else 0
    )
    col_lab_h = (
        min(max_chars, max((len(c) for c in cols), default=1)) * char_w * 0.72 + 12
        if show_ticks
        else 0
    )
    left = 40 + row_lab_w
    top = 60 + col_lab_h
    grid_w, grid_h = cell * n_cols, cell * n_rows
    legend_x = left + grid_w + 20
    width = legend_x + 70
    height = top + grid_h + 40
    finite = m[np.isfinite(m)]
    vmin = min(0.0, float(finite.min())) if finite.size else 0.0
    vmax = float(finite.max()) if finite.size else 1.0
    span = vmax - vmin if vmax > vmin else 1.0

    parts = _open(max(width, 300), height, title)
    parts.append(
        f'<text x="{left + grid_w / 2:.1f}" y="42" text-anchor="middle" font-size="12">'
        f"{esc(col_title)}</text>"
    )
    ry = top + grid_h / 2
    parts.append(
        f'<text x="14" y="{ry:.1f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {ry:.1f})">{esc(row_title)}</text>'
    )
    # Background in the zero colour: cells that are exactly vmin need no element of their own.
    parts.append(
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{grid_w:.1f}" height="{grid_h:.1f}" '
        f'fill="{_color(0.0)}" stroke="#999" stroke-width="0.5"/>'
    )
    text_font = min(12.0, cell * 0.32)
    if not show_titles:
        parts.extend(_cell_runs(m, vmin, span, left, top, cell))
    for i in range(n_rows if show_titles else 0):
        for j in range(n_cols):
            v = float(values[i, j])
            t = (float(m[i, j]) - vmin) / span if math.isfinite(m[i, j]) else math.nan
            x, y = left + j * cell, top + i * cell
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.1f}" height="{cell:.1f}" '
                f'fill="{_color(t)}"><title>{esc(row_title)}={esc(rows[i])}, '
                f"{esc(col_title)}={esc(cols[j])}: {esc(_fmt(v))}</title></rect>"
            )
            if show_text:
                fill = "#ffffff" if math.isfinite(t) and t > 0.55 else "#222222"
                ty = y + cell / 2 + text_font / 3
                parts.append(
                    f'<text class="cell" x="{x + cell / 2:.1f}" y="{ty:.1f}" '
                    f'text-anchor="middle" font-size="{text_font:.1f}" fill="{fill}">'
                    f"{esc(_fmt(v))}</text>"
                )
    if show_ticks:
        for i, lab in enumerate(rows):
            y = top + (i + 0.5) * cell + tick_font / 3
            parts.append(
                f'<text x="{left - 4:.1f}" y="{y:.1f}" text-anchor="end" '
                f'font-size="{tick_font:.1f}"><title>{esc(lab)}</title>'
                f"{esc(_truncate(lab, max_chars))}</text>"
            )
        for j, lab in enumerate(cols):
            x = left + (j + 0.5) * cell
            y = top - 4
            parts.append(
                f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="start" font-size="{tick_font:.1f}" '
                f'transform="rotate(-45 {x:.1f} {y:.1f})"><title>{esc(lab)}</title>'
                f"{esc(_truncate(lab, max_chars))}</text>"
            )
    else:
        hint = "hover a cell for details" if show_titles else "labels hidden at this size"
        parts.append(
            f'<text x="{left:.1f}" y="{top + grid_h + 16:.1f}" font-size="11" fill="#666">'
            f"{n_rows} x {n_cols} matrix: {hint}</text>"
        )
    # Legend: ten stacked swatches from vmax (top) to vmin (bottom).
    steps = 10
    sh = min(grid_h, 200.0) / steps
    for k in range(steps):
        t = 1 - (k + 0.5) / steps
        parts.append(
            f'<rect x="{legend_x:.1f}" y="{top + k * sh:.1f}" width="14" height="{sh + 0.5:.1f}" '
            f'fill="{_color(t)}"/>'
        )
    for val, yy in ((vmax, top + 4), (vmin, top + steps * sh)):
        parts.append(
            f'<text x="{legend_x + 18:.1f}" y="{yy:.1f}" font-size="10">{esc(_fmt(val))}</text>'
        )
    return "\n".join([*parts, "</svg>"])


def bar_chart_svg(values: Mapping[str, float | int], *, title: str, xlabel: str) -> str:
    """Horizontal bars sorted descending; only the top ``MAX_BARS`` are drawn.

    Examples
    --------
    >>> svg = bar_chart_svg({"cat": 3, "<dog>": 5}, title="issues", xlabel="count")
    >>> svg.startswith("<svg") and "&lt;dog&gt;" in svg and "<dog>" not in svg
    True
    """
    items = [(str(k), float(v)) for k, v in values.items() if v is not None]
    items = [(k, v) for k, v in items if math.isfinite(v)]
    if not items:
        return _empty(title)
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    shown = items[:MAX_BARS]
    truncated = len(items) > len(shown)
    max_chars = 24
    label_w = min(max_chars, max(len(k) for k, _ in shown)) * 7 + 12
    left, plot_w, bar_h = 20 + label_w, 420.0, 18.0
    top = 40.0
    height = top + bar_h * len(shown) + 60 + (18 if truncated else 0)
    width = left + plot_w + 60
    vmax = max((v for _, v in shown), default=0.0)
    ticks = _nice_ticks(max(vmax, 0.0))
    scale = plot_w / ticks[-1]
    parts = _open(width, height, title)
    base_y = top + bar_h * len(shown)
    for tv in ticks:
        x = left + tv * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{base_y:.1f}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{base_y + 14:.1f}" text-anchor="middle" font-size="10">'
            f"{esc(_fmt(tv))}</text>"
        )
    for i, (k, v) in enumerate(shown):
        y = top + i * bar_h
        w = max(v, 0.0) * scale
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y + bar_h * 0.7:.1f}" text-anchor="end" '
            f'font-size="12"><title>{esc(k)}</title>{esc(_truncate(k, max_chars))}</text>'
            f'<rect x="{left:.1f}" y="{y + 2:.1f}" width="{w:.1f}" height="{bar_h - 4:.1f}" '
            f'fill="{_BAR}"><title>{esc(k)}: {esc(_fmt(v))}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11">'
            f"{esc(_fmt(v))}</text>"
        )
    parts.append(
        f'<line x1="{left:.1f}" y1="{top:.1f}" x2="{left:.1f}" y2="{base_y:.1f}" stroke="#333"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{base_y + 32:.1f}" text-anchor="middle" '
        f'font-size="12">{esc(xlabel)}</text>'
    )
    if truncated:
        parts.append(
            f'<text x="{left:.1f}" y="{base_y + 52:.1f}" font-size="11" fill="#666">'
            f"showing top {len(shown)} of {len(items)}</text>"
        )
    return "\n".join([*parts, "</svg>"])
