"""Per reviewer (annotator) statistics from the decision log (no database: a DataFrame in,
a DataFrame out, vectorized)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import ValidationError

__all__ = ["DECISION_COLUMNS", "REVIEWER_COLUMNS", "reviewer_stats"]

#: what ``reviewer_stats`` reads from the decision log
DECISION_COLUMNS = (
    "id",
    "item_id",
    "reviewer",
    "new_label",
    "reason",
    "seconds_spent",
    "undoes_id",
)
#: what it returns, one row per reviewer
REVIEWER_COLUMNS = (
    "reviewer",
    "decisions",
    "undone",
    "undos",
    "accepted",
    "kept",
    "changed",
    "median_seconds",
    "shared_items",
    "agreement_with_others",
    "consensus_items",
    "agreement_with_consensus",
)
_ACCEPT = ("accept", "batch accept")


def reviewer_stats(decisions: pd.DataFrame, consensus: pd.Series | None = None) -> pd.DataFrame:
    """One row per reviewer, sorted by name.

    Live decisions are those not undone and not undos themselves. ``decisions``: the live
    ones; ``undone``: how many of theirs were undone (by anyone); ``undos``: undos they
    made; ``accepted`` / ``kept`` / ``changed``: shares of their live decisions that accepted
    the suggestion (one by one or in a batch), kept the label, or relabeled (NaN when they
    have none); ``median_seconds``: median time spent per live decision that reports it.

    Agreement uses each reviewer's latest live label per item. ``shared_items``: items they
    decided that others decided too; ``agreement_with_others``: over those items, the share
    of (their label, another reviewer's label) pairs that match. ``consensus`` (item id ->
    consensus label, e.g. the project's consensus annotations): ``consensus_items`` are their
    items that have one, ``agreement_with_consensus`` the share where they match it.

    Examples
    --------
    >>> log = pd.DataFrame({"id": [1, 2, 3, 4], "item_id": [7, 7, 8, 8],
    ...                     "reviewer": ["ann", "bo", "ann", "ann"],
    ...                     "new_label": ["a", "a", "b", None],
    ...                     "reason": ["accept", "keep", "relabel", "undo"],
    ...                     "seconds_spent": [2.0, 4.0, 6.0, None],
    ...                     "undoes_id": [None, None, None, 3]})
    >>> row = reviewer_stats(log).set_index("reviewer").loc["ann"]
    >>> int(row.decisions), int(row.undone), int(row.undos), float(row.agreement_with_others)
    (1, 1, 1, 1.0)
    """
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ValidationError("decisions", f"has no column(s) {missing}", "pass the decision log")
    undo_of = pd.to_numeric(decisions["undoes_id"], errors="coerce")
    is_undo = undo_of.notna().to_numpy()
    undone = decisions["id"].isin(undo_of[is_undo]).to_numpy()
    live = decisions[~is_undo & ~undone]
    names = sorted(set(decisions["reviewer"].astype(str)))
    out = pd.DataFrame({"reviewer": names}).set_index("reviewer")
    out["decisions"] = live.groupby("reviewer").size()
    out["undone"] = decisions[undone].groupby("reviewer").size()
    out["undos"] = decisions[is_undo].groupby("reviewer").size()
    out[["decisions", "undone", "undos"]] = out[["decisions", "undone", "undos"]].fillna(0)
    reason = live["reason"].astype(str)
    for col, mask in (
        ("accepted", reason.isin(_ACCEPT)),
        ("kept", reason == "keep"),
        ("changed", reason == "relabel"),
    ):
        out[col] = mask.groupby(live["reviewer"]).mean()
    out["median_seconds"] = live.groupby("reviewer")["seconds_spent"].median()

    latest = live.sort_values("id", kind="stable").drop_duplicates(
        ["item_id", "reviewer"], keep="last"
    )
    per_item = latest.groupby("item_id")["reviewer"].transform("size")
    same = latest.groupby(["item_id", "new_label"], dropna=False)["reviewer"].transform("size")
    others = (per_item - 1).to_numpy(np.float64)
    agree = (same - 1).to_numpy(np.float64)
    frame = pd.DataFrame(
        {"reviewer": latest["reviewer"], "pairs": others, "agree": agree, "shared": others > 0}
    )
    sums = frame.groupby("reviewer")[["pairs", "agree", "shared"]].sum()
    out["shared_items"] = sums["shared"]
    out["agreement_with_others"] = sums["agree"] / sums["pairs"].where(sums["pairs"] > 0)
    if consensus is not None and len(latest):
        truth = latest["item_id"].map(consensus)
        has = truth.notna()
        match = ((latest["new_label"] == truth) & has).astype(np.float64)
        by = latest["reviewer"]
        n = has.astype(np.float64).groupby(by).sum()
        out["consensus_items"] = n
        out["agreement_with_consensus"] = match.groupby(by).sum() / n.where(n > 0)
    else:
        out["consensus_items"] = 0
        out["agreement_with_consensus"] = np.nan
    ints = ["decisions", "undone", "undos", "shared_items", "consensus_items"]
    out[ints] = out[ints].fillna(0).astype(np.int64)
    return out.reset_index()[list(REVIEWER_COLUMNS)]
