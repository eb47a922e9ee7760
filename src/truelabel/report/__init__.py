"""Self-contained HTML audit reports with inline SVG charts.

One file, no scripts, no external CSS, fonts or images: it opens offline and prints cleanly.
Only the standard library, NumPy and pandas are used (no plotting library).
"""

from __future__ import annotations

from ._html import render_report, write_report
from ._svg import bar_chart_svg, heatmap_svg, histogram_svg

__all__ = [
    "bar_chart_svg",
    "heatmap_svg",
    "histogram_svg",
    "render_report",
    "write_report",
]
