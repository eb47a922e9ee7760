"""Partial labels (a candidate set per item) and complementary labels ("not X")."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from ._soft_em import SoftLabelEM

__all__ = [
    "ComplementaryLabelClassifier",
    "PartialLabelClassifier",
    "candidate_matrix",
    "candidate_posteriors",
]


def candidate_matrix(sets: Iterable[Iterable[Any]], classes: Sequence[Any]) -> np.ndarray:
    """Candidate sets of class names -> boolean matrix (n_items, n_classes).

    A conversion of user input (a Python loop over items); the models take the matrix.

    >>> candidate_matrix([{"cat", "dog"}, ["dog"]], ["cat", "dog", "fox"]).astype(int).tolist()
    [[1, 1, 0], [0, 1, 0]]
    """
    index = {c: i for i, c in enumerate(classes)}
    rows = [list(s) for s in sets]
    out = np.zeros((len(rows), len(index)), dtype=bool)
    for i, row in enumerate(rows):
        for name in row:
            if name not in index:
                raise ValidationError(
                    "sets", f"item {i} names {name!r}, not one of {list(classes)}", "fix the name"
                )
            out[i, index[name]] = True
    return out


def _check_mask(mask: Any, argument: str, n_items: int | None = None) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValidationError(
            argument,
            f"expected a (n_items, n_classes) 0/1 matrix with n_classes >= 2, got shape {arr.shape}",
            "build it with candidate_matrix(sets, classes)",
        )
    if arr.dtype != bool:
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise ValidationError(argument, "holds values other than 0/1", "pass booleans")
        arr = arr.astype(bool)
    if n_items is not None and arr.shape[0] != n_items:
        raise ValidationError(
            argument, f"has {arr.shape[0]} rows, X has {n_items}", "pass one row per item"
        )
    return arr


def candidate_posteriors(pred_probs: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The E-step: ``pred_probs`` restricted to each item's candidates, renormalised.

    >>> candidate_posteriors(np.array([[0.5, 0.3, 0.2]]), np.array([[True, False, True]]))
    array([[0.71428571, 0.        , 0.28571429]])
    """
    q = np.where(candidates, pred_probs, 0.0)
    return np.asarray(q / q.sum(axis=1, keepdims=True))


class PartialLabelClassifier(SoftLabelEM):
    """Learn from candidate sets (the true class is one of them) with a classifier on features.

    EM over candidate sets (see :mod:`truelabel.weak._soft_em`): item probabilities are the
    classifier's restricted to the candidates; the classifier is refitted on them.

    Parameters
    ----------
    estimator : classifier, default LogisticRegression(max_iter=1000)
        Any scikit-learn classifier whose ``fit`` takes ``sample_weight``; cloned.
    max_iter, tol : EM iterations at most; stop when no item probability moves by ``tol``.
    min_weight : soft labels below this are dropped from the refit.

    Attributes
    ----------
    item_probas_ : (n_items, n_classes) item-level probabilities of the training items
    estimator_ : the trained head; ``classes_``, ``n_iter_``, ``converged_``

    Examples
    --------
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [0.05], [1.05]])
    >>> cands = np.array([[1, 0], [1, 1], [0, 1], [1, 1], [1, 0], [0, 1]])
    >>> PartialLabelClassifier().fit(X, cands).item_probas_.argmax(axis=1).tolist()
    [0, 0, 1, 1, 0, 1]
    """

    def fit(self, X: Any, candidates: Any) -> PartialLabelClassifier:
        """Fit on features ``X`` (n_items, n_features) and a candidate matrix (n_items, K)."""
        feats = self._check_features(X)
        mask = _check_mask(candidates, "candidates", feats.shape[0])
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            raise ValidationError(
                "candidates",
                f"item {int(empty[0])} has an empty candidate set ({empty.size} such items)",
                "every item needs at least one candidate class (its true class); drop the item",
            )
        self._run_em(feats, lambda f: candidate_posteriors(f, mask), mask.shape[1])
        return self


class ComplementaryLabelClassifier(SoftLabelEM):
    """Learn from complementary labels: for each item, classes it is known NOT to be.

    Complementary labels become candidate sets (all classes but the excluded ones) and are
    learned by EM as in :class:`PartialLabelClassifier`; with one complementary label drawn
    uniformly from the wrong classes this maximises the candidate-set likelihood, the
    "upper-bound" complementary loss (Feng et al. 2020), which is consistent.

    Parameters
    ----------
    n_classes : int or None, default None
        K when ``complementary`` is a vector of class indices (None: max index + 1).
    estimator, max_iter, tol, min_weight : as :class:`PartialLabelClassifier`.
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        n_classes: int | None = None,
        max_iter: int = 20,
        tol: float = 1e-3,
        min_weight: float = 1e-3,
    ) -> None:
        super().__init__(estimator, max_iter=max_iter, tol=tol, min_weight=min_weight)
        self.n_classes = n_classes

    def fit(self, X: Any, complementary: Any) -> ComplementaryLabelClassifier:
        """Fit on ``X`` and either a vector (n_items,) of one excluded class index per item
        (-1 = none known) or a 0/1 matrix (n_items, K) of excluded classes."""
        feats = self._check_features(X)
        comp = np.asarray(complementary)
        if comp.ndim == 1:
            if comp.shape[0] != feats.shape[0] or comp.dtype.kind not in "iu":
                raise ValidationError(
                    "complementary",
                    f"expected {feats.shape[0]} class indices, got shape {comp.shape} and "
                    f"dtype {comp.dtype}",
                    "pass one excluded class index per item (-1 if none)",
                )
            k = self.n_classes if self.n_classes is not None else max(int(comp.max()) + 1, 2)
            if comp.min() < -1 or comp.max() >= k:
                bad = int(np.flatnonzero((comp < -1) | (comp >= k))[0])
                raise ValidationError(
                    "complementary",
                    f"item {bad} excludes class {int(comp[bad])}, outside [-1, {k})",
                    "pass class indices 0..n_classes-1 (or raise n_classes)",
                )
            excluded = np.zeros((comp.shape[0], k), dtype=bool)
            known = comp >= 0
            excluded[np.flatnonzero(known), comp[known]] = True
        else:
            excluded = _check_mask(comp, "complementary", feats.shape[0])
        full = np.flatnonzero(excluded.all(axis=1))
        if full.size:
            raise ValidationError(
                "complementary",
                f"item {int(full[0])} excludes every class ({full.size} such items)",
                "at least one class must remain possible; drop the item",
            )
        allowed = ~excluded
        self._run_em(feats, lambda f: candidate_posteriors(f, allowed), allowed.shape[1])
        return self
