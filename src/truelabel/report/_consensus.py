"""The consensus report (``truelabel consensus``) and the annotator table it shares with the
audit report (``truelabel audit --annotations``): same page style, every value escaped."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from ._assets import CSS, SORT_JS, csp
from ._sections import name_cell
from ._svg import esc

__all__ = ["agreement_section", "annotators_section", "render_consensus_report"]


def _num(value: Any, digits: int = 3) -> str:
    """A sortable numeric cell; NaN/None show empty and sort last."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return f"<td>{esc(value)}</td>"
    if not np.isfinite(f):
        return '<td class="num" data-v="Infinity"></td>'
    shown = str(int(f)) if digits == 0 else f"{f:.{digits}f}"
    return f'<td class="num" data-v="{f:.17g}">{shown}</td>'


def _head(names: list[str]) -> str:
    return "".join(f'<th><button type="button">{esc(h)}</button></th>' for h in names)


def annotators_section(annotators: pd.DataFrame, *, max_rows: int = 500) -> str:
    """Annotators, worst quality first: quality with its interval, source, kappa, flags.

    ``annotators`` is :func:`~truelabel.aggregate.annotator_quality`'s table (optionally
    with ``few_answers`` and ``disagrees`` columns)."""
    if annotators is None or len(annotators) == 0:
        return ""
    worst = annotators.sort_values("quality", kind="stable").head(max_rows)
    rows = []
    for annot, r in worst.iterrows():
        flags = []
        if bool(r.get("is_spammer", False)):
            flags.append("spammer")
        if bool(r.get("disagrees", False)):
            flags.append("disagrees with consensus")
        if bool(r.get("few_answers", False)):
            flags.append("few answers")
        css = ' class="flagged"' if ("spammer" in flags or len(flags) > 1) else ""
        rows.append(
            f"<tr{css}>{name_cell(annot)}{_num(r['n_answers'], 0)}{_num(r['quality'])}"
            f"{_num(r['ci_low'])}{_num(r['ci_high'])}<td>{esc(r['source'])}</td>"
            f"{_num(r.get('kappa'))}<td>{esc(', '.join(flags))}</td></tr>"
        )
    head = _head(["annotator", "answers", "quality", "ci low", "ci high", "source", "kappa"])
    shown = (
        f"the {len(worst)} lowest of {len(annotators)}" if len(worst) < len(annotators) else "all"
    )
    note = (
        f"Quality = share of correct answers, on gold items where the annotator answered "
        f"any (source gold), else agreement with the consensus; 95% Wilson interval. Kappa "
        f"compares that agreement with chance (random answers with the annotator's own label "
        f"shares); below 0.2 = spammer. Showing {shown} annotators, worst first."
    )
    return (
        f'<section id="annotators"><h2>Annotators</h2><p class="muted">{note}</p>\n'
        f'<div class="scroll"><table class="sortable"><thead><tr>{head}<th>flags</th></tr>'
        "</thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div></section>"
    )


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def _multilabel_agreement_section(agreement: Mapping[str, Any]) -> str:
    per_class = agreement["per_class"]
    rows = [
        f"<tr>{name_cell(name)}<td class='num'>{_fmt(r['fleiss_kappa'])}</td>"
        f"<td class='num'>{_fmt(r['krippendorff_alpha'])}</td>"
        f"<td class='num'>{_fmt(r['cohen_kappa_mean'])}</td>{_num(r['n_pairs'], 0)}</tr>"
        for name, r in per_class.items()
    ]
    rows.append(
        f"<tr><th>mean over classes</th><td class='num'>{_fmt(agreement['fleiss_kappa_mean'])}"
        f"</td><td class='num'>{_fmt(agreement['krippendorff_alpha_mean'])}</td>"
        f"<td class='num'>{_fmt(agreement['cohen_kappa_mean'])}</td><td></td></tr>"
    )
    head = _head(["class", "Fleiss' kappa", "Krippendorff's alpha", "Cohen's kappa (mean)"])
    note = agreement.get("note")
    extra = f'<p class="muted">{esc(note)}</p>' if note else ""
    return (
        '<section id="agreement"><h2>Agreement</h2><p class="muted">Per class, on the yes/no '
        'answers "the class is in the set"; Cohen\'s kappa is the mean over annotator pairs '
        "sharing 2+ items. 1 = perfect agreement, 0 = chance level, below 0 = worse than "
        f'chance.</p><table class="sortable"><thead><tr>{head}<th>pairs</th></tr></thead>'
        "<tbody>" + "".join(rows) + f"</tbody></table>{extra}</section>"
    )


def agreement_section(agreement: Mapping[str, Any]) -> str:
    """Fleiss' kappa, Krippendorff's alpha and the pairwise Cohen's kappa summary (per class
    for multi-label answers, when ``agreement`` has ``per_class``)."""
    if "per_class" in agreement:
        return _multilabel_agreement_section(agreement)
    pairs = agreement.get("cohen_kappa_pairs", {}) or {}
    rows = [
        ("Fleiss' kappa", _fmt(agreement.get("fleiss_kappa"))),
        ("Krippendorff's alpha (nominal)", _fmt(agreement.get("krippendorff_alpha"))),
        (
            f"Cohen's kappa, {int(pairs.get('n_pairs', 0))} annotator pairs sharing "
            f"{int(pairs.get('min_common_items', 2))}+ items: mean / median / weighted mean",
            " / ".join(_fmt(pairs.get(k)) for k in ("mean", "median", "weighted_mean")),
        ),
        ("Cohen's kappa: min / max", " / ".join(_fmt(pairs.get(k)) for k in ("min", "max"))),
    ]
    body = "".join(f"<tr><th>{esc(a)}</th><td class='num'>{esc(b)}</td></tr>" for a, b in rows)
    note = agreement.get("note")
    extra = f'<p class="muted">{esc(note)}</p>' if note else ""
    return (
        '<section id="agreement"><h2>Agreement</h2><p class="muted">1 = perfect agreement, '
        "0 = chance level, below 0 = worse than chance.</p>"
        f"<table><tbody>{body}</tbody></table>{extra}</section>"
    )


def _doubtful_section(consensus: pd.DataFrame, max_rows: int) -> str:
    doubt = consensus[consensus["is_doubtful"].to_numpy(dtype=bool)]
    if doubt.empty:
        return (
            '<section id="doubtful"><h2>Doubtful items</h2><p>No item is below the '
            "confidence threshold.</p></section>"
        )
    worst = doubt.sort_values("confidence", kind="stable").head(max_rows)
    rows = [
        f"<tr>{name_cell(item)}{name_cell(r['label'])}{_num(r['confidence'])}"
        f"{_num(r['n_labels'], 0)}</tr>"
        for item, r in worst.iterrows()
    ]
    note = (
        f"The {len(worst)} least confident of {len(doubt)} doubtful items: get more answers "
        "for them, or have an expert decide."
    )
    return (
        f'<section id="doubtful"><h2>Doubtful items</h2><p class="muted">{esc(note)}</p>\n'
        f'<div class="scroll"><table class="sortable"><thead><tr>'
        f"{_head(['item', 'consensus label', 'confidence', 'answers'])}</tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div></section>"
    )


def _summary_section(s: Mapping[str, Any]) -> str:
    rows = [
        ("items", s["n_items"]),
        ("annotators", s["n_annotators"]),
        ("answers", s["n_answers"]),
        ("classes", ", ".join(map(str, s["classes"]))),
        ("method", s["method"]),
        ("mean confidence", f"{s['mean_confidence']:.3f}"),
        (f"doubtful items (confidence < {s['doubtful_below']})", s["n_doubtful"]),
        ("spammers", s["n_spammers"]),
        ("gold items", s["n_gold"]),
    ]
    body = "".join(f"<tr><th>{esc(a)}</th><td>{esc(b)}</td></tr>" for a, b in rows)
    return f'<section id="summary"><h2>Summary</h2><table><tbody>{body}</tbody></table></section>'


def _list_section(ident: str, title: str, items: list[str]) -> str:
    if not items:
        return ""
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f'<section id="{ident}"><h2>{esc(title)}</h2><ul>{lis}</ul></section>'


def render_consensus_report(
    result: Any,
    *,
    settings: Mapping[str, Any] | None = None,
    title: str = "truelabel consensus report",
    max_rows: int = 200,
    generated_at: datetime | None = None,
) -> str:
    """One self-contained HTML page: summary, warnings, annotators, doubtful items,
    agreement and settings (a :class:`truelabel._consensus.ConsensusResult`)."""
    s = result.summary
    when = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    from .. import __version__

    settings_rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in (settings or {}).items()
    )
    sections = [
        _summary_section(s),
        _list_section("warnings", "Warnings", list(result.warnings)),
        annotators_section(result.annotators),
        _doubtful_section(result.consensus, max_rows),
        agreement_section(result.agreement),
        f'<section id="settings"><h2>Settings</h2><table><tbody>{settings_rows}</tbody></table>'
        "</section>"
        if settings_rows
        else "",
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
            f'<p class="meta">{int(s["n_items"])} items &middot; {int(s["n_annotators"])} '
            f'annotators &middot; generated at <time datetime="{esc(when)}">{esc(when)}</time>'
            "</p></header>",
            "<main>",
            *(x for x in sections if x),
            "</main>",
            f"<footer><p>Generated by truelabel {esc(__version__)}.</p></footer>",
            f"<script>{SORT_JS}</script>",
            "</body></html>",
            "",
        ]
    )
