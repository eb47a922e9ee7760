"""A self-contained HTML audit report: one file, inline CSS, SVG and one small script for
sorting tables; a Content-Security-Policy forbids every other script and all network access."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from ..exceptions import ValidationError
from ._assets import CSS, SORT_JS, csp
from ._consensus import agreement_section, annotators_section
from ._sections import (
    confused_pairs,
    name_cell,
    next_steps_section,
    noise_section,
    pairs_section,
    scores_section,
)
from ._svg import bar_chart_svg, esc

__all__ = ["render_report", "write_report"]

#: Columns the issues table needs when the label check ran (``is_label_issue`` present).
LABEL_COLUMNS = ("given_label", "suggested_label", "label_score", "is_label_issue")
REQUIRED_KEYS = ("n_items", "n_classes", "classes")
TEXT_LIMIT = 200
_ISSUE_COLUMN = re.compile(r"^is_(.+)_issue$")


def _check_inputs(issues: Any, summary: Any, max_rows: Any) -> None:
    if not isinstance(issues, pd.DataFrame):
        raise ValidationError(
            "issues",
            f"got {type(issues).__name__}, expected a pandas DataFrame",
            "pass the issues table the audit returns",
        )
    if "is_label_issue" in issues.columns:
        missing = [c for c in LABEL_COLUMNS if c not in issues.columns]
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
    for key in ("noise_matrix", "joint"):
        if summary.get(key) is None:
            continue
        shape = np.asarray(summary[key], dtype=float).shape
        if shape != (k, k):
            raise ValidationError(
                f"summary[{key!r}]",
                f"has shape {shape}, expected ({k}, {k}) for {k} classes",
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


def _num(value: Any, digits: int = 3) -> tuple[str, str]:
    """(shown text, sort key) of a number; NaN shows empty and sorts last."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return esc(value), ""
    if not np.isfinite(f):
        return "", ' data-v="Infinity"'
    return f"{f:.{digits}f}", f' data-v="{f:.17g}"'


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
    parts = ['<section id="summary"><h2>Summary</h2>']
    if rows:
        parts.append(
            "<table><thead><tr><th>issue type</th><th>items flagged</th><th>share of items</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        )
    if summary.get("estimated_noise_rate") is not None:
        rate = float(summary["estimated_noise_rate"])
        rate_txt = f"{100 * rate:.1f}%" if np.isfinite(rate) else "n/a"
        parts.append(
            "<p>Estimated label noise rate (share of items whose given label differs from the "
            f'true label):</p><p class="big" id="noise-rate">{rate_txt}</p>'
        )
    parts.append("</section>")
    return "\n".join(parts)


def _per_class_section(issues: pd.DataFrame, summary: Mapping[str, Any]) -> str:
    per_class = (summary.get("issues_per_class", {}) or {}).get("label")
    if per_class is None:
        given = issues.loc[_flags(issues, "is_label_issue"), "given_label"].astype(str)
        per_class = given.value_counts().to_dict()
    if not any(v for v in per_class.values()):
        return ""
    bars = bar_chart_svg(
        {str(k): v for k, v in per_class.items() if v},
        title="Label issues per given class",
        xlabel="items flagged",
    )
    return f'<section id="per-class"><h2>Label issues per class</h2><figure>\n{bars}\n</figure></section>'


def _sort_key(issues: pd.DataFrame, types: list[str]) -> tuple[str, pd.Series]:
    """Worst first: by label_score when the label check ran, else by the lowest score."""
    if "label_score" in issues:
        return "label_score", issues["label_score"]
    score_cols = [f"{t}_score" for t in types if f"{t}_score" in issues.columns]
    if not score_cols:
        return "item order", pd.Series(np.arange(len(issues)), index=issues.index)
    return "score (the lowest of each item's scores)", issues[score_cols].min(axis=1)


def _table_section(
    issues: pd.DataFrame,
    types: list[str],
    max_rows: int,
    item_link: Callable[[Any], str | None] | None = None,
) -> str:
    what, key = _sort_key(issues, types)
    order = np.argsort(key.to_numpy(dtype=float, na_value=np.inf), kind="stable")[:max_rows]
    worst = issues.iloc[order]
    has_labels = "given_label" in issues.columns
    score_cols = [f"{t}_score" for t in types if f"{t}_score" in issues.columns]
    flag_cols = [(t, f"is_{t}_issue") for t in types if f"is_{t}_issue" in issues.columns]
    dup_ids = (
        pd.to_numeric(worst["near_duplicate_set"], errors="coerce").fillna(-1).to_numpy()
        if "near_duplicate_set" in issues.columns
        else np.full(len(worst), -1.0)
    )
    has_dup = bool((dup_ids >= 0).any())  # no column of blanks
    has_text = "text" in issues.columns
    has_consensus = "consensus_label" in issues.columns  # an audit of annotations
    head = ["item", *(["given label", "suggested label"] if has_labels else []), *score_cols]
    head += ["consensus label", "answers"] if has_consensus else []
    head += ["flags", *(["duplicate set"] if has_dup else []), *(["text"] if has_text else [])]
    flags = {col: _flags(worst, col) for _, col in flag_cols}
    rows = []
    for pos, (item, row) in enumerate(worst.iterrows()):
        flagged = [t.replace("_", " ") for t, col in flag_cols if flags[col][pos]]
        url = None if item_link is None else item_link(item)
        cells = [
            f'<td><a href="{esc(url)}">{esc(item)}</a></td>' if url else f"<td>{esc(item)}</td>"
        ]
        if has_labels:
            cells += [
                name_cell(row["given_label"]),
                name_cell(row["suggested_label"]),
            ]
        for c in score_cols:
            shown, sort = _num(row[c])
            cells.append(f'<td class="num"{sort}>{shown}</td>')
        if has_consensus:
            shown, sort = _num(row["n_labels"], 0)
            cells += [name_cell(row["consensus_label"]), f'<td class="num"{sort}>{shown}</td>']
        cells.append(f"<td>{esc(', '.join(flagged))}</td>")
        if has_dup:
            shown = str(int(dup_ids[pos])) if dup_ids[pos] >= 0 else ""
            sort = f' data-v="{int(dup_ids[pos])}"' if dup_ids[pos] >= 0 else ' data-v="Infinity"'
            cells.append(f'<td class="num"{sort}>{shown}</td>')
        if has_text:
            text = row["text"]
            txt = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
            trimmed = txt if len(txt) <= TEXT_LIMIT else txt[:TEXT_LIMIT] + "…"
            cells.append(f'<td class="text">{esc(trimmed)}</td>')
        css = ' class="flagged"' if flagged else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    sorted_col = "label_score" if what == "label_score" else None
    header = "".join(
        f"<th{' aria-sort=' + chr(34) + 'ascending' + chr(34) if h == sorted_col else ''}>"
        f'<button type="button">{esc(h).replace("_", "_<wbr>")}</button></th>'
        for h in head
    )
    if not rows:
        return ""
    note = (
        f"The {len(worst)} items with the lowest {esc(what)}, of {len(issues)} in total, worst "
        "first. Click a column header to sort by it."
    )
    return (
        f'<section id="worst-items"><h2>Items to review</h2><p class="muted">{note}</p>\n'
        f'<div class="scroll"><table class="sortable"><thead><tr>{header}</tr></thead><tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div></section>"
    )


def _warnings_section(summary: Mapping[str, Any]) -> str:
    """What the data or the audit warned about (too few items per class, label variants, an
    unreliable noise estimate), shown right under the summary; absent when nothing warned."""
    warned = [str(w) for w in summary.get("warnings", []) or []]
    if not warned:
        return ""
    return (
        '<section id="warnings"><h2>Warnings</h2>'
        "<p>Read these before trusting the figures below.</p><ul>"
        + "".join(f"<li>{esc(w)}</li>" for w in warned)
        + "</ul></section>"
    )


def _notes_section(summary: Mapping[str, Any]) -> str:
    notes = [str(n) for n in summary.get("notes", []) or []]
    settings = dict(summary.get("settings", {}) or {})
    parts = []
    if notes:
        parts.append(
            '<section id="notes"><h2>Notes</h2><ul>'
            + "".join(f"<li>{esc(n)}</li>" for n in notes)
            + "</ul></section>"
        )
    if settings:
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in settings.items())
        parts.append(
            f'<section id="settings"><h2>Settings</h2><table><tbody>{rows}</tbody></table></section>'
        )
    return "\n".join(parts)


def render_report(
    issues: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    title: str = "truelabel audit report",
    max_rows: int = 200,
    generated_at: datetime | None = None,
    item_link: Callable[[Any], str | None] | None = None,
) -> str:
    """Render the audit as one self-contained HTML page.

    Sections appear only when they have content: a summary, the next steps (what to
    review first, the issues.csv columns, the commands to run next), the label-score
    histograms (log counts, plus a zoom on the flagged range), the most-confused class
    pairs, the noise matrix, label issues per class, the items to review (sortable) and
    the annotators (``summary["annotators"]``, an audit of annotations) and the notes and
    settings. Inline CSS and SVG and one small sorting script; a
    Content-Security-Policy blocks every other script and any network access.

    Parameters
    ----------
    issues : DataFrame
        Indexed by item id, with ``is_<type>_issue``/``<type>_score`` pairs; when
        ``is_label_issue`` is present also ``given_label``, ``suggested_label`` and
        ``label_score``; optionally ``near_duplicate_set`` and ``text``.
    summary : dict
        The audit summary: ``n_items``, ``n_classes``, ``classes`` and, when labels were
        audited, ``noise_matrix``, ``joint`` and ``estimated_noise_rate``.
    title : str
        Page title.
    max_rows : int
        How many of the worst items to list.
    generated_at : datetime, optional
        Timestamp shown in the header; defaults to now (UTC).
    item_link : callable, optional
        Item id -> the URL of its review page (None: no link); each listed item's id
        links there (``truelabel audit PROJECT`` links to ``truelabel serve``).

    Returns
    -------
    str
        The HTML document. Every user-provided string is escaped.
    """
    _check_inputs(issues, summary, max_rows)
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    types = _issue_types(issues, summary)
    has_labels = "is_label_issue" in issues.columns
    pairs = confused_pairs(issues, summary if has_labels else {})
    n_classes = int(summary["n_classes"])
    classes_txt = f"{n_classes} classes &middot; " if n_classes else ""
    from .. import __version__

    sections = [
        _summary_section(issues, summary, types),
        _warnings_section(summary),
        next_steps_section(issues, summary, pairs, types),
        scores_section(issues) if has_labels and len(issues) else "",
        pairs_section(pairs),
        noise_section(summary, pairs),
        _per_class_section(issues, summary) if has_labels else "",
        _table_section(issues, types, max_rows, item_link),
        annotators_section(summary["annotators"]) if summary.get("annotators") is not None else "",
        agreement_section(summary["agreement"]) if summary.get("agreement") else "",
        _notes_section(summary),
    ]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{csp()}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<header><h1>{esc(title)}</h1>",
            f'<p class="meta">{int(summary["n_items"])} items &middot; {classes_txt}'
            "generated at "
            f'<time datetime="{esc(when)}">{esc(when)}</time></p></header>',
            "<main>",
            *(s for s in sections if s),
            "</main>",
            f"<footer><p>Generated by truelabel {esc(__version__)}.</p></footer>",
            f"<script>{SORT_JS}</script>",
            "</body></html>",
            "",
        ]
    )


def write_report(
    result: Any,
    path: str | os.PathLike[str] | pd.DataFrame,
    summary: Mapping[str, Any] | None = None,
    **kw: Any,
) -> Path:
    """Render the report of an audit and write it atomically; return the path.

    ``write_report(result, path)`` writes the report of an
    :class:`~truelabel.AuditResult` (anything with ``issues`` and ``summary``).
    ``write_report(path, issues, summary)`` writes one for a table and summary given
    directly (e.g. an issues table with extra columns such as ``text``). Keywords go to
    :func:`render_report`. The HTML is rendered before the file is opened and written
    through a temporary file renamed onto the path, so a failure never leaves a partial
    report behind.
    """
    if summary is not None:
        target, issues, summ = result, path, summary
    elif hasattr(result, "issues") and hasattr(result, "summary"):
        target, issues, summ = path, result.issues, result.summary
    else:
        raise ValidationError(
            "result",
            f"got {type(result).__name__}, expected an AuditResult",
            "call write_report(result, path) with what Audit().run() returns, "
            "or write_report(path, issues, summary)",
        )
    if not isinstance(target, str | os.PathLike):
        raise ValidationError(
            "path", f"got {type(target).__name__}", "pass a file path such as 'report.html'"
        )
    if not isinstance(issues, pd.DataFrame):
        raise ValidationError(
            "issues", f"got {type(issues).__name__}", "pass the issues DataFrame of the audit"
        )
    text = render_report(issues, summ, **kw)
    out = Path(target)
    with atomic_write(out) as fh:
        fh.write(text)
    return out
