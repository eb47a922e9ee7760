"""Self-contained HTML audit reports with inline SVG charts.

One file, no external CSS, fonts, scripts or images: it opens offline and prints cleanly. Its
only script sorts tables; a Content-Security-Policy blocks any other script and all network use.
Only the standard library, NumPy and pandas are used (no plotting library).
"""

from __future__ import annotations

from ._histogram import histogram_svg
from ._html import render_report, write_report
from ._svg import bar_chart_svg, heatmap_svg

__all__ = [
    "bar_chart_svg",
    "heatmap_svg",
    "histogram_svg",
    "render_report",
    "write_report",
]
