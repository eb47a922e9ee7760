"""LLMJudge: how likely each given label is right, by an LLM (one score per item)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model._textbase import check_texts
from ._classifier import LLMClassifier

__all__ = ["LLMJudge"]


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
