"""Out-of-fold predicted probabilities with any scikit-learn classifier."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._progress import progress
from .._validation import check_labels
from ..exceptions import ValidationError

__all__ = ["default_estimator", "out_of_fold_pred_probs"]


def default_estimator(random_state: int | None = None) -> Any:
    """Standardized, L2-regularized multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(with_mean=True),
        LogisticRegression(C=0.1, max_iter=300, random_state=random_state),
    )


def _fold_ids(labels: np.ndarray, cv: int, random_state: int | None) -> np.ndarray:
    """Stratified folds; classes with fewer items than folds are spread round-robin."""
    from sklearn.model_selection import StratifiedKFold

    n = labels.shape[0]
    folds = np.full(n, -1, dtype=np.int64)
    counts = np.bincount(labels)
    rare = counts[labels] < cv
    rng = np.random.default_rng(random_state)
    common = np.flatnonzero(~rare)
    if common.size:
        skf = StratifiedKFold(
            n_splits=cv, shuffle=True, random_state=None if random_state is None else random_state
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for f, (_, test) in enumerate(skf.split(np.zeros(common.size), labels[common])):
                folds[common[test]] = f
    rare_idx = np.flatnonzero(rare)
    if rare_idx.size:
        rare_idx = rare_idx[rng.permutation(rare_idx.size)]
        order = np.argsort(labels[rare_idx], kind="stable")
        folds[rare_idx[order]] = np.arange(rare_idx.size) % cv
    return folds


def out_of_fold_pred_probs(
    X: Any,
    labels: np.typing.ArrayLike,
    *,
    estimator: Any = None,
    cv: int = 5,
    random_state: int | None = None,
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted probabilities for every item from a model that never saw its label.

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_items, n_features)
    labels : array of shape (n_items,)
        Integer labels in ``[0, n_classes)``.
    estimator : scikit-learn classifier, optional
        Any estimator with ``fit`` and ``predict_proba``; cloned for every fold. Default:
        :func:`default_estimator` (standardized logistic regression, C=0.1).
    cv : int, default 5
        Number of stratified folds (>= 2).
    random_state : int, optional
        Seed for the fold split and the default estimator.
    n_classes : int, optional
        Number of classes (columns of the result); default ``labels.max() + 1``.

    Returns
    -------
    pred_probs : ndarray of shape (n_items, n_classes)
        Rows sum to 1. A class absent from a fold's training part gets probability 0
        from that fold's model.
    folds : ndarray of shape (n_items,)
        The fold each item was predicted in.

    Notes
    -----
    Classes with fewer examples than folds do not crash the split: their items are
    spread over the folds round-robin, so the model of a fold may not know that class.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from truelabel import out_of_fold_pred_probs
    >>> X, y = load_iris(return_X_y=True)
    >>> p, folds = out_of_fold_pred_probs(X, y, cv=3, random_state=0)
    >>> p.shape, sorted(set(folds.tolist()))
    ((150, 3), [0, 1, 2])
    """
    if not isinstance(cv, int | np.integer) or cv < 2:
        raise ValidationError("cv", f"got {cv!r}", "pass an integer number of folds >= 2")
    n_items = X.shape[0] if hasattr(X, "shape") else len(X)
    y = check_labels(labels, n_items=n_items)
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if y.max() >= k:
        raise ValidationError("n_classes", f"got {k} but labels go up to {y.max()}", "raise it")
    if np.unique(y).size < 2:
        raise ValidationError(
            "labels", "contain a single class", "a classifier needs at least two classes"
        )
    if y.shape[0] < cv:
        raise ValidationError(
            "cv", f"{cv} folds for {y.shape[0]} items", "use fewer folds or more items"
        )
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    est = default_estimator(random_state) if estimator is None else estimator
    folds = _fold_ids(y, int(cv), random_state)
    out = np.zeros((y.shape[0], k), dtype=np.float64)
    with progress(int(cv), "out-of-fold probabilities") as advance:
        for f in range(int(cv)):
            test = folds == f
            train = ~test
            model = clone(est)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X[train], y[train])
                proba = model.predict_proba(X[test])
            classes = np.asarray(getattr(model, "classes_", np.unique(y[train])), dtype=np.int64)
            out[np.ix_(np.flatnonzero(test), classes)] = proba
            advance(1)
    out /= out.sum(axis=1, keepdims=True)
    return out, folds
