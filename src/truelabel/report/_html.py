"""A self-contained HTML audit report: one file, inline CSS and SVG, no network access."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from ..exceptions import ValidationError
from ._svg import bar_chart_svg, esc, heatmap_svg, histogram_svg

__all__ = ["render_report", "write_report"]

REQUIRED_COLUMNS = ("given_label", "suggested_label", "label_score", "is_label_issue")
REQUIRED_KEYS = ("n_items", "n_classes", "classes", "noise_matrix", "estimated_noise_rate")
TEXT_LIMIT = 200
_ISSUE_COLUMN = re.compile(r"^is_(.+)_issue$")

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  max-width: 1100px; padding: 1.5rem; color: #1d1d1f; line-height: 1.45; background: #fff; }
header { border-bottom: 2px solid #4c78a8; margin-bottom: 1rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem 0; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta { color: #555; margin: 0 0 .8rem 0; }
.big { font-size: 2rem; font-weight: bold; color: #4c78a8; margin: .2rem 0; }
table { border-collapse: collapse; font-size: .9rem; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f0f3f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fff4f4; }
td.text { max-width: 28rem; overflow-wrap: anywhere; }
figure { margin: 1rem 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .85rem; }
.muted { color: #666; }
footer { margin-top: 2rem; color: #777; font-size: .8rem; border-top: 1px solid #ddd; }
@media print {
  body { max-width: none; padding: 0; }
  figure, table, tr { page-break-inside: avoid; break-inside: avoid; }
  h2 { page-break-after: avoid; break-after: avoid; }
}
"""


def _check_inputs(issues: Any, summary: Any, max_rows: Any) -> None:
    if not isinstance(issues, pd.DataFrame):
        raise ValidationError(
            "issues",
            f"got {type(issues).__name__}, expected a pandas DataFrame",
            "pass the issues table the audit returns",
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in issues.columns]
    if missing:
        raise ValidationError(
            "issues",
            f"missing column(s) {', '.join(map(repr, missing))}; "
            f"has {list(map(str, issues.columns))}",
            "pass the issues table the audit returns",
        )
    if not isinstance(summary, Mapping):
        raise ValidationError(
            "summary", f"got {type(summary).__name__}, expected a dict", "pass the audit summary"
        )
    absent = [k for k in REQUIRED_KEYS if k not in summary]
    if absent:
        raise ValidationError(
            "summary", f"missing key(s) {', '.join(map(repr, absent))}", "pass the audit summary"
        )
    k = len(summary["classes"])
    nm = np.asarray(summary["noise_matrix"], dtype=float)
    if nm.shape != (k, k):
        raise ValidationError(
            "summary['noise_matrix']",
            f"has shape {nm.shape}, expected ({k}, {k}) for {k} classes",
            "pass a K x K matrix in the order of summary['classes']",
        )
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
        raise ValidationError(
            "max_rows", f"got {max_rows!r}, expected an integer >= 0", "e.g. max_rows=200"
        )


def _flags(issues: pd.DataFrame, column: str) -> np.ndarray:
    return issues[column].to_numpy(dtype=bool, na_value=False)


def _issue_types(issues: pd.DataFrame, summary: Mapping[str, Any]) -> list[str]:
    types = list(summary.get("issue_counts", {}) or {})
    for col in issues.columns:
        match = _ISSUE_COLUMN.match(str(col))
        if match and match.group(1) not in types:
            types.append(match.group(1))
    return sorted(types, key=lambda t: (t != "label", types.index(t)))


def _num(value: Any, digits: int = 3) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return esc(value)
    return "" if np.isnan(f) else f"{f:.{digits}f}"


def _summary_section(issues: pd.DataFrame, summary: Mapping[str, Any], types: list[str]) -> str:
    counts = dict(summary.get("issue_counts", {}) or {})
    n_items = int(summary["n_items"]) or len(issues)
    rows = []
    for t in types:
        if t in counts:
            count = int(counts[t])
        elif f"is_{t}_issue" in issues.columns:
            count = int(_flags(issues, f"is_{t}_issue").sum())
        else:
            count = 0
        share = f"{100 * count / n_items:.1f}%" if n_items else ""
        rows.append(
            f'<tr><td>{esc(t.replace("_", " "))}</td><td class="num">{count}</td>'
            f'<td class="num">{share}</td></tr>'
        )
    body = "\n".join(rows) or '<tr><td colspan="3" class="muted">no issue types</td></tr>'
    rate = float(summary["estimated_noise_rate"])
    rate_txt = f"{100 * rate:.1f}%" if np.isfinite(rate) else "n/a"
    return (
        '<section id="summary"><h2>Summary</h2>\n'
        "<table><thead><tr><th>issue type</th><th>items flagged</th><th>share of items</th>"
        f"</tr></thead><tbody>\n{body}\n</tbody></table>\n"
        "<p>Estimated label noise rate (share of items whose given label differs from the "
        f'true label):</p><p class="big" id="noise-rate">{rate_txt}</p></section>'
    )


def _figures(issues: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    classes = [str(c) for c in summary["classes"]]
    heat = heatmap_svg(
        summary["noise_matrix"],
        classes,
        classes,
        title="Noise matrix P(given | true)",
        row_title="given label",
        col_title="true label",
    )
    per_class = (summary.get("issues_per_class", {}) or {}).get("label")
    if per_class is None:
        given = issues.loc[_flags(issues, "is_label_issue"), "given_label"].astype(str)
        per_class = given.value_counts().to_dict()
    bars = bar_chart_svg(
        {str(k): v for k, v in per_class.items()},
        title="Label issues per given class",
        xlabel="items flagged",
    )
    hist = histogram_svg(
        issues["label_score"].to_numpy(dtype=float, na_value=np.nan),
        title="Label quality scores",
        xlabel="label_score (lower = more likely mislabeled)",
        highlight_mask=_flags(issues, "is_label_issue"),
    )
    return (
        '<section id="noise-matrix"><h2>Noise matrix</h2><figure>\n'
        f"{heat}\n<figcaption>Entry (given s, true y) is the estimated probability that an "
        "item whose true class is y carries the given label s; each column sums to 1."
        "</figcaption></figure></section>\n"
        '<section id="per-class"><h2>Label issues per class</h2><figure>\n'
        f"{bars}\n</figure></section>\n"
        '<section id="scores"><h2>Label score distribution</h2><figure>\n'
        f"{hist}\n<figcaption>Items flagged as label issues are stacked in red."
        "</figcaption></figure></section>"
    )


def _table_section(issues: pd.DataFrame, types: list[str], max_rows: int) -> str:
    worst = issues.sort_values("label_score", kind="stable", na_position="last").head(max_rows)
    score_cols = [f"{t}_score" for t in types if f"{t}_score" in issues.columns]
    flag_cols = [(t, f"is_{t}_issue") for t in types if f"is_{t}_issue" in issues.columns]
    has_dup = "near_duplicate_set" in issues.columns
    has_text = "text" in issues.columns
    head = ["item", "given label", "suggested label", *score_cols, "flags"]
    head += ["duplicate set"] if has_dup else []
    head += ["text"] if has_text else []
    flags = {col: _flags(worst, col) for _, col in flag_cols}
    rows = []
    for pos, (item, row) in enumerate(worst.iterrows()):
        flagged = [t.replace("_", " ") for t, col in flag_cols if flags[col][pos]]
        cells = [
            f"<td>{esc(item)}</td>",
            f"<td>{esc(row['given_label'])}</td>",
            f"<td>{esc(row['suggested_label'])}</td>",
            *(f'<td class="num">{_num(row[c])}</td>' for c in score_cols),
            f"<td>{esc(', '.join(flagged))}</td>",
        ]
        if has_dup:
            dup = row["near_duplicate_set"]
            shown = "" if pd.isna(dup) or str(dup) == "-1" else esc(dup)
            cells.append(f'<td class="num">{shown}</td>')
        if has_text:
            text = row["text"]
            txt = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
            trimmed = txt if len(txt) <= TEXT_LIMIT else txt[:TEXT_LIMIT] + "…"
            cells.append(f'<td class="text">{esc(trimmed)}</td>')
        css = ' class="flagged"' if flagged else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "\n".join(rows) or (f'<tr><td colspan="{len(head)}" class="muted">no items</td></tr>')
    note = (
        f"The {len(worst)} items with the lowest label_score, of {len(issues)} in total."
        if len(issues)
        else "The issues table is empty."
    )
    return (
        f'<section id="worst-items"><h2>Items to review</h2><p class="muted">{note}</p>\n'
        f"<table><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table></section>"
    )


def _notes_section(summary: Mapping[str, Any]) -> str:
    notes = [str(n) for n in summary.get("notes", []) or []]
    settings = dict(summary.get("settings", {}) or {})
    parts = ['<section id="notes"><h2>Notes</h2>']
    if notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    else:
        parts.append('<p class="muted">No notes.</p>')
    if settings:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in settings.items())
        parts.append(f"<h3>Settings</h3><table><tbody>{rows}</tbody></table>")
    parts.append("</section>")
    return "\n".join(parts)


def render_report(
    issues: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    title: str = "truelabel audit report",
    max_rows: int = 200,
    generated_at: datetime | None = None,
) -> str:
    """Render the audit as one self-contained HTML page (inline CSS and SVG, no scripts).

    Parameters
    ----------
    issues : DataFrame
        Indexed by item id, with ``given_label``, ``suggested_label``, ``label_score``,
        ``is_label_issue`` and optionally more ``is_<type>_issue``/``<type>_score`` pairs,
        ``near_duplicate_set`` and ``text``.
    summary : dict
        The audit summary (``n_items``, ``classes``, ``noise_matrix``, ...).
    title : str
        Page title.
    max_rows : int
        How many of the lowest-scoring items to list.
    generated_at : datetime, optional
        Timestamp shown in the header; defaults to now (UTC).

    Returns
    -------
    str
        The HTML document. Every user-provided string is escaped.
    """
    _check_inputs(issues, summary, max_rows)
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    types = _issue_types(issues, summary)
    from .. import __version__

    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<header><h1>{esc(title)}</h1>",
            f'<p class="meta">{int(summary["n_items"])} items &middot; '
            f"{int(summary['n_classes'])} classes &middot; generated at "
            f'<time datetime="{esc(when)}">{esc(when)}</time></p></header>',
            "<main>",
            _summary_section(issues, summary, types),
            _figures(issues, summary),
            _table_section(issues, types, max_rows),
            _notes_section(summary),
            "</main>",
            f"<footer><p>Generated by truelabel {esc(__version__)}.</p></footer>",
            "</body></html>",
            "",
        ]
    )


def write_report(
    path: str | os.PathLike[str],
    issues: pd.DataFrame,
    summary: Mapping[str, Any],
    **kw: Any,
) -> Path:
    """Render the report and write it atomically to ``path``; return the path.

    The HTML is rendered before the file is opened, and written through a temporary file
    renamed onto ``path``, so a failure never leaves a partial report behind.
    """
    target = Path(path)
    text = render_report(issues, summary, **kw)
    with atomic_write(target) as fh:
        fh.write(text)
    return target
