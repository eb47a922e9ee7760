"""The review sources truelabel ships: audit issues, auto-labels sent to review, annotator
disagreements. Each turns one result into candidate rows (:class:`ReviewSource`); none knows
about the others or about the queue's merging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import ValidationError

__all__ = ["ISSUE_WEIGHTS", "AuditIssueSource", "AutoLabelReviewSource", "DisagreementSource"]

#: priority = weight x (1 - score) per issue type: a suspected label error outranks an
#: outlier or a near-duplicate of the same severity (they may well be right)
ISSUE_WEIGHTS: Mapping[str, float] = {"label": 1.0, "near_duplicate": 0.6, "outlier": 0.5}
_DEFAULT_WEIGHT = 0.5

_WORDS = {
    "label": "the given label looks wrong",
    "near_duplicate": "near-duplicate of another item",
    "outlier": "unusual compared with the rest of the data",
}


def _item_ids(item_ids: Sequence[object] | np.ndarray | None, n: int, arg: str) -> np.ndarray:
    if item_ids is None:
        return np.arange(n)
    ids = np.asarray(item_ids)
    if ids.shape != (n,):
        raise ValidationError(arg, f"has {ids.size} ids, expected {n}", "one id per row")
    return ids


class AuditIssueSource:
    """Flagged rows of an audit (``AuditResult.issues``): one candidate per (item, issue type).

    Parameters
    ----------
    issues : DataFrame
        ``is_<type>_issue`` / ``<type>_score`` columns (+ ``given_label``, ``suggested_label``).
    item_ids : sequence, optional
        The queue's id of each row (default: row positions).
    weights : mapping, optional
        Issue type -> weight (default :data:`ISSUE_WEIGHTS`; others 0.5).
    """

    def __init__(
        self,
        issues: pd.DataFrame,
        *,
        item_ids: Sequence[object] | np.ndarray | None = None,
        weights: Mapping[str, float] | None = None,
        name: str = "audit",
    ) -> None:
        self.issues = issues
        self.item_ids = _item_ids(item_ids, len(issues), "item_ids")
        self.weights = dict(ISSUE_WEIGHTS if weights is None else weights)
        self.name = name

    def candidates(self) -> pd.DataFrame:
        frames = []
        for col in self.issues.columns:
            if not (col.startswith("is_") and col.endswith("_issue")):
                continue
            kind = col[3 : -len("_issue")]
            flagged = self.issues[col].to_numpy(bool)
            score = self.issues[f"{kind}_score"].to_numpy(np.float64)[flagged]
            weight = self.weights.get(kind, _DEFAULT_WEIGHT)
            words = _WORDS.get(kind, kind.replace("_", " "))
            reason = [f"{words} (score {s:.3f}, lower = more suspect)" for s in score]
            suggested = np.full(int(flagged.sum()), None, dtype=object)
            if kind == "label" and "suggested_label" in self.issues:
                suggested = self.issues["suggested_label"].to_numpy(object)[flagged]
                given = self.issues["given_label"].to_numpy(object)[flagged]
                reason = [
                    f"{words}: given {g!r}, the model suggests {s!r} (score {sc:.3f})"
                    for g, s, sc in zip(given, suggested, score, strict=True)
                ]
            frames.append(
                pd.DataFrame(
                    {
                        "item_id": self.item_ids[flagged],
                        "reason": reason,
                        "priority": weight * (1.0 - np.clip(score, 0.0, 1.0)),
                        "suggested_label": suggested,
                    }
                )
            )
        if not frames:
            return pd.DataFrame(columns=["item_id", "reason", "priority", "suggested_label"])
        return pd.concat(frames, ignore_index=True)


class AutoLabelReviewSource:
    """Pool items the auto-labeler did not accept (``AutoLabelResult.decisions``):
    priority = 1 - confidence, suggested label = the prediction."""

    def __init__(
        self,
        decisions: pd.DataFrame,
        *,
        item_ids: Sequence[object] | np.ndarray | None = None,
        name: str = "autolabel",
    ) -> None:
        for col in ("label", "confidence", "accepted"):
            if col not in decisions:
                raise ValidationError(
                    "decisions", f"has no {col!r} column", "pass AutoLabelResult.decisions"
                )
        self.decisions = decisions
        self.item_ids = _item_ids(item_ids, len(decisions), "item_ids")
        self.name = name

    def candidates(self) -> pd.DataFrame:
        review = ~self.decisions["accepted"].to_numpy(bool)
        conf = self.decisions["confidence"].to_numpy(np.float64)[review]
        why = (
            self.decisions["reason"].astype(str).to_numpy(object)[review]
            if "reason" in self.decisions
            else np.full(conf.size, "not certified", dtype=object)
        )
        return pd.DataFrame(
            {
                "item_id": self.item_ids[review],
                "reason": [
                    f"auto-label not certified: {w} (confidence {c:.3f})"
                    for w, c in zip(why, conf, strict=True)
                ],
                "priority": 1.0 - np.clip(conf, 0.0, 1.0),
                "suggested_label": self.decisions["label"].to_numpy(object)[review],
            }
        )


class DisagreementSource:
    """Items whose annotators disagree (a long table ``item_id, annotator_id, label``).

    priority = 1 - share of the most common label among the item's annotations; the
    suggested label is that most common label (ties: the smallest label). Items with a
    single distinct label are not proposed.
    """

    def __init__(self, annotations: pd.DataFrame, *, name: str = "disagreement") -> None:
        missing = [c for c in ("item_id", "annotator_id", "label") if c not in annotations]
        if missing:
            raise ValidationError(
                "annotations",
                f"has no column(s) {missing}",
                "pass a long table item_id, annotator_id, label",
            )
        self.annotations = annotations
        self.name = name

    def candidates(self) -> pd.DataFrame:
        rows = self.annotations.dropna(subset=["label"])
        counts = rows.groupby(["item_id", "label"], sort=True).size().rename("n").reset_index()
        totals = counts.groupby("item_id", sort=True)["n"].transform("sum")
        distinct = counts.groupby("item_id", sort=True)["label"].transform("size")
        counts = counts.assign(total=totals, distinct=distinct)
        counts = counts[counts["distinct"] > 1]
        top = counts.sort_values(
            ["item_id", "n", "label"], ascending=[True, False, True], kind="stable"
        )
        top = top.groupby("item_id", sort=True).head(1)
        share = top["n"].to_numpy(np.float64) / top["total"].to_numpy(np.float64)
        return pd.DataFrame(
            {
                "item_id": top["item_id"].to_numpy(),
                "reason": [
                    f"annotators disagree: {n} of {t} chose {lab!r}"
                    for n, t, lab in zip(top["n"], top["total"], top["label"], strict=True)
                ],
                "priority": 1.0 - share,
                "suggested_label": top["label"].to_numpy(object),
            }
        )
