"""LLMJudge: how likely each given label is right, by an LLM (one score per item)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ..model._textbase import check_texts
from ._classifier import LLMClassifier

__all__ = ["LLMJudge", "recheck_issues"]


class LLMJudge(LLMClassifier):
    """Label-quality scores from an LLM, in [0, 1], lower = more likely wrong.

    ``score(texts, labels)`` is the calibrated probability the LLM gives the given label,
    ``p(y | x)`` from the classification prompt of :class:`LLMClassifier` (same settings,
    same scoring, calibration and cache), so ``1 - score`` is the judge's probability
    that the label is wrong. Fit the temperature on labels that were checked, never on
    the labels being judged (they would teach it to trust them).

    Examples
    --------
    >>> from truelabel.llm import LLMJudge
    >>> judge = LLMJudge(["spam", "ham"], base_url="http://127.0.0.1:8080/v1", model="m")
    >>> judge.score(["WIN a prize now"], ["ham"])  # doctest: +SKIP
    array([0.08])
    """

    def score(self, texts: Any, labels: Any) -> np.ndarray:
        """``p(label | text)`` per item, shape (n_items,), float64 in [0, 1]."""
        items = check_texts(texts)
        y = self._label_indices(labels, len(items))
        return self.predict_proba(items)[np.arange(len(items)), y]


def recheck_issues(
    issues: pd.DataFrame, texts: Sequence[str], judge: LLMJudge, *, top: int = 50
) -> pd.Series:
    """The judge's score for the ``top`` labels an audit found most likely wrong.

    Parameters
    ----------
    issues : DataFrame
        An audit's issues (``AuditResult.issues``): one row per item in input order, with
        ``given_label`` and ``label_score`` (lower = more likely wrong).
    texts : sequence of str
        The items' texts, in the same order.
    judge : LLMJudge
    top : int, default 50
        How many labels to re-check: the ``top`` lowest ``label_score`` among labelled rows
        (ties by position), so the LLM's cost is bounded whatever the data size.

    Returns
    -------
    Series ``judge_score`` on ``issues.index``: ``p(given label | text)`` from the judge for
    the re-checked rows (lower = the judge doubts the label too), NaN for the others.
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValidationError("top", f"got {top!r}", "pass an int >= 1, e.g. 50")
    missing = [c for c in ("given_label", "label_score") if c not in issues]
    if missing:
        raise ValidationError(
            "issues", f"has no column(s) {missing}", "pass an audit's issues with label issues"
        )
    if len(texts) != len(issues):
        raise ValidationError(
            "texts",
            f"has {len(texts)} texts for {len(issues)} issue rows",
            "pass one text per item, in the audit's input order",
        )
    labelled = issues["given_label"].notna().to_numpy()
    score = issues["label_score"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(labelled & ~np.isnan(score))
    pick = rows[np.argsort(score[rows], kind="stable")[:top]]
    values = np.full(len(issues), np.nan)
    if pick.size:
        given = issues["given_label"].to_numpy(dtype=object)[pick]
        values[pick] = judge.score([str(texts[i]) for i in pick], [str(g) for g in given])
    return pd.Series(values, index=issues.index, name="judge_score")
