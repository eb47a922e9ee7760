"""The sections of the report that tell a reader what to do: next steps, confused class
pairs, the score histograms and the noise matrix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..detect import find_overlapping_classes
from ._histogram import histogram_svg
from ._svg import CELL_TEXT_LIMIT, esc, heatmap_svg

__all__ = [
    "confused_pairs",
    "name_cell",
    "next_steps_section",
    "noise_section",
    "pairs_section",
    "scores_section",
]

#: Confused pairs listed in the report (pairs estimated at fewer than one item are left out).
MAX_PAIRS = 15
#: Flagged example items shown per confused pair, worst first.
EXAMPLES_PER_PAIR = 3
#: Above this many classes the noise-matrix heatmap shows only the classes of the top pairs.
SUBMATRIX_CLASSES = 12
EXAMPLE_TEXT_LIMIT = 80

# What every issues.csv column means, for the "next steps" glossary.
_COLUMN_HELP = {
    "id": "the item's id (the first column of issues.csv)",
    "row": "position of the item in the input file",
    "is_label_issue": "True when the given label is likely wrong",
    "label_score": "label quality in [0, 1]; lower = more likely mislabelled",
    "given_label": "the label in your data",
    "suggested_label": "the class the model finds most likely",
    "is_outlier_issue": "True when the item is unlike the rest of the data",
    "outlier_score": "in [0, 1]; lower = more unusual",
    "is_near_duplicate_issue": "True when the item has a near-copy in the data",
    "near_duplicate_score": "in [0, 1]; lower = closer to its nearest copy",
    "near_duplicate_set": "id shared by the items of one near-duplicate set (-1: none)",
    "text": "the item's text",
    "is_consensus_issue": "True when the annotators' consensus on the item is doubtful",
    "consensus_score": "probability of the consensus label; lower = more doubtful",
    "consensus_label": "the label the annotators most likely meant (their consensus)",
    "n_labels": "how many answers the item got",
}


def name_cell(value: object) -> str:
    """A class name as an escaped table cell that may wrap after underscores."""
    return f'<td class="name">{esc(value).replace("_", "_<wbr>")}</td>'


def _flags(issues: pd.DataFrame, column: str) -> np.ndarray:
    return issues[column].to_numpy(dtype=bool, na_value=False)


def confused_pairs(
    issues: pd.DataFrame, summary: Mapping[str, Any], limit: int = MAX_PAIRS
) -> pd.DataFrame:
    """Directed (given, likely true) class pairs from ``summary['joint']``, most items first.

    Columns: ``given``, ``true``, ``n_items`` (estimated items), ``share`` (of the items
    given that label), ``n_flagged`` (flagged items with this given/suggested pair) and
    ``examples`` ((id, text) of up to ``EXAMPLES_PER_PAIR`` of them, worst label_score
    first; text None without a ``text`` column).
    """
    columns = ["given", "true", "n_items", "share", "n_flagged", "examples"]
    if summary.get("joint") is None or "given_label" not in issues:
        return pd.DataFrame(columns=columns)
    joint = np.asarray(summary["joint"], dtype=np.float64)
    total = float(joint.sum())
    if joint.ndim != 2 or total <= 0:
        return pd.DataFrame(columns=columns)
    joint = joint / total
    classes = [str(c) for c in summary["classes"]]
    n_labelled = int(issues["given_label"].notna().sum())
    table = find_overlapping_classes(
        joint=joint, n_items=n_labelled, classes=classes, asymmetric=True
    )
    table = table[table["n_overlapping"] >= 1].head(limit)
    given_rows = joint.sum(axis=1)
    a, b = table["class_a"].to_numpy(), table["class_b"].to_numpy()
    share = np.where(given_rows[a] > 0, joint[a, b] / np.maximum(given_rows[a], 1e-300), 0.0)
    flagged = issues.loc[_flags(issues, "is_label_issue")]
    flagged = flagged.sort_values("label_score", kind="stable")  # worst first
    given = flagged["given_label"].astype(str).to_numpy()
    suggested = flagged["suggested_label"].astype(str).to_numpy()
    texts = flagged["text"].to_numpy() if "text" in flagged else np.full(len(flagged), None)
    names_a, names_b = table["name_a"].tolist(), table["name_b"].tolist()
    n_flagged, examples = [], []
    for g, t in zip(names_a, names_b, strict=True):  # at most MAX_PAIRS pairs
        rows = np.flatnonzero((given == g) & (suggested == t))
        n_flagged.append(int(rows.size))
        first = rows[:EXAMPLES_PER_PAIR]
        examples.append(list(zip(flagged.index[first], texts[first], strict=True)))
    return pd.DataFrame(
        {
            "given": names_a,
            "true": names_b,
            "n_items": table["n_overlapping"].to_numpy(),
            "share": share,
            "n_flagged": n_flagged,
            "examples": examples,
        },
        columns=columns,
    )


def _example_cell(examples: list[tuple[Any, Any]]) -> str:
    if not examples:
        return '<td class="muted">none flagged</td>'
    lines = []
    for item, text in examples:
        line = f"<code>{esc(item)}</code>"
        if text is not None and not (isinstance(text, float) and np.isnan(text)):
            txt = str(text)
            short = txt if len(txt) <= EXAMPLE_TEXT_LIMIT else txt[:EXAMPLE_TEXT_LIMIT] + "…"
            line += f" {esc(short)}"
        lines.append(line)
    return f'<td class="text">{"<br>".join(lines)}</td>'


def pairs_section(pairs: pd.DataFrame) -> str:
    """The "most-confused class pairs" table; empty string when there is no pair."""
    if pairs.empty:
        return ""
    rows = []
    for given, true, n_items, share, n_flagged, examples in zip(
        pairs["given"],
        pairs["true"],
        pairs["n_items"].to_numpy(dtype=np.int64),
        pairs["share"].to_numpy(dtype=np.float64),
        pairs["n_flagged"].to_numpy(dtype=np.int64),
        pairs["examples"],
        strict=True,
    ):
        rows.append(
            f"<tr>{name_cell(given)}{name_cell(true)}"
            f'<td class="num" data-v="{n_items}">{n_items}</td>'
            f'<td class="num" data-v="{share:.6g}">{100 * share:.1f}%</td>'
            f'<td class="num" data-v="{n_flagged}">{n_flagged}</td>'
            f"{_example_cell(list(examples))}</tr>"
        )
    head = "".join(
        f'<th><button type="button">{h}</button></th>'
        for h in ("given label", "likely true label", "estimated items", "share of given")
    )
    head += '<th><button type="button">flagged</button></th><th>flagged examples</th>'
    return (
        '<section id="confused-pairs"><h2>Most-confused class pairs</h2>\n'
        '<p class="muted">Items carrying the given label whose true class is estimated to be '
        "another (confident learning), most items first. A pair that recurs usually means the "
        "labelling guideline does not separate the two classes. <em>flagged</em>: items "
        "flagged as label issues with exactly this given and suggested label.</p>\n"
        '<div class="scroll"><table class="sortable"><thead><tr>'
        f"{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table></div></section>"
    )


def noise_section(summary: Mapping[str, Any], pairs: pd.DataFrame) -> str:
    """The noise-matrix heatmap: all classes up to ``CELL_TEXT_LIMIT``, else the top pairs'."""
    if summary.get("noise_matrix") is None:
        return ""
    classes = [str(c) for c in summary["classes"]]
    matrix = np.asarray(summary["noise_matrix"], dtype=float)
    k = len(classes)
    if k <= CELL_TEXT_LIMIT:
        keep = list(range(k))
        note = ""
    else:
        pair_names = zip(pairs["given"], pairs["true"], strict=True)
        names = list(dict.fromkeys(n for pair in pair_names for n in pair))  # pair by pair
        keep = sorted({classes.index(n) for n in names[:SUBMATRIX_CLASSES]})
        if not keep:
            return ""
        note = (
            f" Only the {len(keep)} classes of the most-confused pairs are shown, of {k}; the "
            "full matrix is <code>summary['noise_matrix']</code> (summary.json)."
        )
    sub = matrix[np.ix_(keep, keep)]
    heat = heatmap_svg(
        sub,
        [classes[i] for i in keep],
        [classes[i] for i in keep],
        title="Noise matrix P(given | true)",
        row_title="given label",
        col_title="true label",
        mask_diagonal=True,
    )
    return (
        '<section id="noise-matrix"><h2>Noise matrix</h2><figure>\n'
        f"{heat}\n<figcaption>Entry (given s, true y) is the estimated probability that an "
        "item whose true class is y carries the given label s. The diagonal (grey) is left "
        f"out of the colour scale, so the confusions stand out.{note}</figcaption></figure>"
        "</section>"
    )


def scores_section(issues: pd.DataFrame) -> str:
    """Label-score histograms: every item on a log count axis, then a zoom on the flagged."""
    scores = issues["label_score"].to_numpy(dtype=float, na_value=np.nan)
    flagged = _flags(issues, "is_label_issue")
    xlabel = "label_score (lower = more likely mislabelled)"
    full = histogram_svg(
        scores,
        bins=40,
        title="Label quality scores, all items",
        xlabel=xlabel,
        highlight_mask=flagged,
        log_scale=True,
    )
    parts = [
        '<section id="scores"><h2>Label score distribution</h2>',
        f"<figure>\n{full}\n<figcaption>Counts on a log scale; in every bin the flagged "
        "items (red) have a bar of their own beside the others.</figcaption></figure>",
    ]
    finite = np.isfinite(scores)
    if (flagged & finite).any():
        lo, hi = float(scores[finite].min()), float(scores[finite].max())
        top = float(scores[flagged & finite].max())
        zoom_hi = min(hi, top + 0.05 * (hi - lo))
        n_above = int((scores[finite] > zoom_hi).sum())
        if hi > lo and n_above >= 0.5 * finite.sum():  # most items sit above the flagged
            zoom = histogram_svg(
                scores,
                bins=30,
                title="Zoom on the flagged range",
                xlabel=xlabel,
                highlight_mask=flagged,
                value_range=(lo, zoom_hi),
            )
            parts.append(
                f"<figure>\n{zoom}\n<figcaption>Scores from {lo:.3f} to {zoom_hi:.3f}, the "
                f"range that holds every flagged item; {n_above} items score higher and are "
                "left out. Flagged items are stacked in red.</figcaption></figure>"
            )
    parts.append("</section>")
    return "\n".join(parts)


def _code(text: str) -> str:
    return f"<code>{esc(text)}</code>"


def next_steps_section(
    issues: pd.DataFrame, summary: Mapping[str, Any], pairs: pd.DataFrame, types: list[str]
) -> str:
    """What to do with the findings, in order, and what the issues.csv columns mean."""
    steps = []
    counts = {
        t: int(_flags(issues, f"is_{t}_issue").sum()) for t in types if f"is_{t}_issue" in issues
    }
    if counts.get("label"):
        steps.append(
            f"Review the {counts['label']} items with {_code('is_label_issue')} = True, worst "
            f"first: sort by {_code('label_score')} ascending (issues.csv is already in that "
            f"order). Compare {_code('given_label')} with {_code('suggested_label')}, then "
            "correct the label or confirm it."
        )
    if len(pairs):
        top = pairs.iloc[0]
        steps.append(
            f"Start with the most-confused pair: {_code(str(top['given']))} given where "
            f"{_code(str(top['true']))} is likely (about {int(top['n_items'])} items). "
            "If the same pairs recur, sharpen the guideline between those classes or merge "
            f"them; in Python, {_code('truelabel.find_overlapping_classes(labels, pred_probs)')}"
            " ranks every pair."
        )
    if counts.get("near_duplicate"):
        n_sets = (
            int(
                issues.loc[
                    _flags(issues, "is_near_duplicate_issue"), "near_duplicate_set"
                ].nunique()
            )
            if "near_duplicate_set" in issues
            else 0
        )
        sets = f" in {n_sets} sets ({_code('near_duplicate_set')} = set id)" if n_sets else ""
        steps.append(
            f"{counts['near_duplicate']} items have {_code('is_near_duplicate_issue')} = True"
            f"{sets}: keep one item per set, and make sure copies carry the same label."
        )
    if counts.get("outlier"):
        steps.append(
            f"{counts['outlier']} items have {_code('is_outlier_issue')} = True (lowest "
            f"{_code('outlier_score')} first): check that they belong in the data at all."
        )
    for t, n in counts.items():
        if n and t not in ("label", "near_duplicate", "outlier"):
            steps.append(
                f"{n} items have {_code(f'is_{t}_issue')} = True; sort by {_code(f'{t}_score')}."
            )
    if not any(counts.values()):
        steps.append("Nothing was flagged: no item needs review by these checks.")
    else:
        steps.append(
            f"Then run the same {_code('truelabel audit')} command on the corrected file with "
            f"a new {_code('--out')} folder and compare: the flagged counts and the estimated "
            "noise rate should go down."
        )
    if "label" in counts:
        steps.append(
            "To label new items automatically with a certified error bound, once the labels "
            "are reviewed: "
            + _code(
                "truelabel certify --pred-probs NEW.npy --calibration-pred-probs pred_probs.npy "
                "--calibration-labels REVIEWED.csv --max-error 0.02 --out certified"
            )
            + f" ({_code('pred_probs.npy')} is written next to issues.csv; REVIEWED.csv holds "
            "the reviewed labels in the same row order)."
        )
    snippet = ""
    if counts.get("label"):
        snippet = (
            "<pre><code>import pandas as pd\n"
            'issues = pd.read_csv("issues.csv", index_col="id")\n'
            'to_review = issues[issues["is_label_issue"]].sort_values("label_score")\n'
            "</code></pre>"
        )
    known = ["id"] + [
        c for c in issues.columns if str(c) in _COLUMN_HELP or str(c).startswith("is_")
    ]
    glossary = "".join(
        f"<tr><td>{_code(str(c))}</td><td>{esc(_COLUMN_HELP.get(str(c), 'True when flagged'))}"
        "</td></tr>"
        for c in known
    )
    return (
        '<section id="next-steps"><h2>Next steps</h2>\n<ol>'
        + "".join(f"<li>{s}</li>" for s in steps)
        + f"</ol>\n{snippet}\n<h3>Columns of issues.csv (<code>result.issues</code> in Python)</h3>"
        f'<table class="glossary"><tbody>{glossary}</tbody></table></section>'
    )
