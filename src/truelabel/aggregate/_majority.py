"""Majority vote and weighted majority vote."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._spill import scratch
from ..exceptions import ValidationError
from ._base import Aggregator, check_positive_int
from ._table import Annotations

__all__ = ["MajorityVote", "WeightedMajorityVote", "agreement_with", "clamp_gold"]


def clamp_gold(posteriors: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Rows of gold items (code >= 0) become one-hot at their gold class (in place)."""
    rows = np.flatnonzero(gold >= 0)
    posteriors[rows] = 0.0
    posteriors[rows, gold[rows]] = 1.0
    return posteriors


def agreement_with(table: Annotations, posteriors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator: expected number of answers that match the consensus, and answers given.

    ``sum over the annotator's answers (i, l) of posteriors[i, l]`` (soft agreement).
    """
    hit = posteriors[table.item_codes, table.label_codes]
    agree = np.bincount(table.annotator_codes, weights=hit, minlength=table.n_annotators)
    n = np.bincount(table.annotator_codes, minlength=table.n_annotators).astype(np.float64)
    return agree, n


def vote_shares(votes: np.ndarray) -> np.ndarray:
    """``votes / votes.sum(axis=1, keepdims=True)`` in a scratch array (the posteriors: an
    (n_items, n_classes) output, a spill file when large)."""
    post = scratch(votes.shape, np.float64)
    np.divide(votes, votes.sum(axis=1, keepdims=True), out=post)
    return post


class MajorityVote(Aggregator):
    """Each item gets the label most annotators gave it.

    ``probas_`` are the vote shares. Ties are broken at random among the tied labels, with
    draws from ``random_state`` taken in sorted item order, so a seed reproduces the labels
    whatever the row order (crowd-kit instead takes the first label column, which biases ties
    towards one class). ``skills_``: each annotator's share of answers that agree with the
    consensus (the soft vote shares). Gold items are clamped to their gold label.

    Parameters
    ----------
    random_state : int, Generator or None, default 0

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2], "annotator_id": list("abcab"),
    ...                    "label": ["x", "x", "y", "y", "y"]})
    >>> MajorityVote().fit_predict(df).tolist()
    ['x', 'y']
    """

    def __init__(self, *, random_state: Any = 0) -> None:
        self.random_state = random_state

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        post = clamp_gold(vote_shares(table.vote_counts()), table.gold_codes)
        agree, n = agreement_with(table, post)
        return post, agree / np.maximum(n, 1)


class WeightedMajorityVote(Aggregator):
    """Majority vote with one weight per annotator.

    With ``weights`` given, ``probas_`` are the weighted vote shares. With ``weights=None`` the
    weights are estimated: each annotator's accuracy ``p`` is its smoothed agreement with the
    current consensus, ``(agree + 1) / (n + 2)``, and its weight is the log-odds
    ``max(0, log((K - 1) p / (1 - p)))`` (the optimal vote weight when errors are spread evenly
    over the other labels); ``probas_`` is then the softmax of the weighted votes, repeated for
    ``n_rounds`` rounds starting from plain majority vote.

    Parameters
    ----------
    weights : mapping or Series annotator_id -> float >= 0, optional
    n_rounds : int, default 2
    random_state : int, Generator or None, default 0
        Tie-breaking.
    """

    def __init__(self, *, weights: Any = None, n_rounds: int = 2, random_state: Any = 0) -> None:
        self.weights = weights
        self.n_rounds = n_rounds
        self.random_state = random_state

    def _given_weights(self, table: Annotations) -> np.ndarray:
        w = pd.Series(self.weights) if not isinstance(self.weights, pd.Series) else self.weights
        values = w.reindex(table.annotators)
        if values.isna().any():
            missing = table.annotators[values.isna().to_numpy()]
            raise ValidationError(
                "weights",
                f"has no weight for annotator {missing[0]!r} ({len(missing)} missing)",
                "give every annotator of the table a weight",
            )
        arr = values.to_numpy(dtype=float)
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValidationError("weights", "must be finite and >= 0", "pass weights >= 0")
        return arr

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        k, gold = table.n_classes, table.gold_codes
        onehot = np.tile(np.eye(k), (table.n_annotators, 1))
        if self.weights is not None:
            w = self._given_weights(table)
            votes = np.asarray(table.counts @ (onehot * np.repeat(w, k)[:, None]))
            total = votes.sum(axis=1, keepdims=True)
            # np.where(total > 0, votes / where(total > 0, total, 1), 1 / k), in a scratch array
            post = scratch(votes.shape, np.float64)
            np.divide(votes, np.where(total > 0, total, 1.0), out=post)
            post[total[:, 0] <= 0] = 1.0 / k
            post = clamp_gold(post, gold)
            agree, n = agreement_with(table, post)
            return post, agree / np.maximum(n, 1)
        rounds = check_positive_int("n_rounds", self.n_rounds)
        post = clamp_gold(vote_shares(table.vote_counts()), gold)
        for _ in range(rounds):  # each round's softmax in place in post (a scratch array)
            agree, n = agreement_with(table, post)
            p = (agree + 1.0) / (n + 2.0)
            w = np.maximum(0.0, np.log((k - 1) * p / (1.0 - p)))
            logits = np.asarray(table.counts @ (onehot * np.repeat(w, k)[:, None]))
            np.subtract(logits, logits.max(axis=1, keepdims=True), out=post)
            del logits
            np.exp(post, out=post)
            clamp_gold(np.divide(post, post.sum(axis=1, keepdims=True), out=post), gold)
        agree, n = agreement_with(table, post)
        return post, agree / np.maximum(n, 1)
