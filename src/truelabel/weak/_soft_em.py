"""EM with a classifier on features, for labels known only through constraints.

Shared by learning from label proportions and by partial / complementary labels. The
weak labels say which item-level class distributions ``q`` are possible; the classifier
supplies ``f(x) = p(y | x)``. EM alternates

- E-step: ``q`` = the constraint-respecting distribution closest (in KL) to ``f``
  (candidate sets: ``f`` restricted to the set and renormalised; bag proportions: ``f``
  scaled per bag and class until every bag's mean matches its proportions);
- M-step: refit the classifier on the items with soft labels ``q`` (each item once per class,
  weighted by ``q``; weights below ``min_weight`` dropped).

The classifier is what smooths labels across similar items: an item's ``q`` moves towards
the classes of items near it in feature space. For candidate sets the fixed point maximises
``sum_i log sum_{y in S_i} p(y | x_i)``, the candidate-set likelihood (for one complementary
label it is the "upper-bound" loss ``-log(1 - p(not-class | x))`` of Feng et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from .._validation import check_features
from ..exceptions import NotFittedError, ValidationError

__all__ = ["SoftLabelEM", "fit_soft_labels", "proba_in_class_order"]

_FLOOR = 1e-12


def fit_soft_labels(estimator: Any, X: np.ndarray, q: np.ndarray, min_weight: float) -> Any:
    """``estimator`` fitted in place on every (item, class) pair with weight ``q >= min_weight``."""
    rows, cls = np.nonzero(q >= min_weight)
    fitted = estimator
    try:
        fitted.fit(X[rows], cls, sample_weight=q[rows, cls])
    except TypeError as exc:
        raise ValidationError(
            "estimator",
            f"{type(estimator).__name__}.fit does not take sample_weight ({exc})",
            "pass a classifier whose fit accepts sample_weight, e.g. LogisticRegression()",
        ) from None
    return fitted


def proba_in_class_order(estimator: Any, X: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` as (n_items, n_classes) in class-index order, floored and renormalised
    (a class the classifier never saw gets the floor)."""
    p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    out = np.full((X.shape[0], n_classes), _FLOOR)
    out[:, np.asarray(estimator.classes_, dtype=np.intp)] += p
    return np.asarray(out / out.sum(axis=1, keepdims=True))


class SoftLabelEM(BaseEstimator):
    """Base: the EM loop, ``predict_proba`` and ``predict``; subclasses build the E-step."""

    def __init__(
        self,
        estimator: Any = None,
        *,
        max_iter: int = 20,
        tol: float = 1e-3,
        min_weight: float = 1e-3,
    ) -> None:
        self.estimator = estimator
        self.max_iter = max_iter
        self.tol = tol
        self.min_weight = min_weight

    def _base_estimator(self) -> Any:
        if self.estimator is not None:
            return self.estimator
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000)

    def _check_features(self, X: Any, n_items: int | None = None) -> np.ndarray:
        return check_features(X, n_items=n_items, argument="X")

    def _run_em(
        self, X: np.ndarray, estep: Callable[[np.ndarray], np.ndarray], n_classes: int
    ) -> None:
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValidationError("max_iter", f"got {self.max_iter!r}", "pass e.g. 30")
        if not (0.0 <= float(self.min_weight) < 1.0):
            raise ValidationError("min_weight", f"got {self.min_weight!r}", "pass e.g. 1e-3")
        base = clone(self._base_estimator())
        if "warm_start" in base.get_params():  # each refit starts from the last solution
            base.set_params(warm_start=True)
        q = estep(np.full((X.shape[0], n_classes), 1.0 / n_classes))
        fitted, converged, n_iter = None, False, 0
        for it in range(1, self.max_iter + 1):
            n_iter = it
            fitted = fit_soft_labels(base, X, q, float(self.min_weight))
            new_q = estep(proba_in_class_order(fitted, X, n_classes))
            delta = float(np.abs(new_q - q).max())
            q = new_q
            if delta < self.tol:
                converged = True
                break
        self.estimator_ = fitted
        self.item_probas_ = q
        self.n_classes_ = n_classes
        self.classes_ = np.arange(n_classes)
        self.n_iter_ = n_iter
        self.converged_ = converged

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_items, n_classes) of new items from the trained classifier."""
        self._check_fitted()
        return proba_in_class_order(self.estimator_, self._check_features(X), self.n_classes_)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each item (an entry of ``classes_``)."""
        self._check_fitted()
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])
