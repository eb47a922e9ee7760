"""Out-of-fold predicted probabilities with any scikit-learn classifier."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._progress import progress
from .._validation import check_labels
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller

__all__ = ["default_estimator", "fit_predict_fold", "out_of_fold_pred_probs"]


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


#: small classes named in one warning message
_MAX_NAMED = 10
#: scikit-learn's own note on many classes per item, covered by the small-class warning
_MANY_CLASSES_NOTE = "number of unique classes is greater than 50%"


def _warn_small_classes(y: np.ndarray, k: int, cv: int, class_names: Sequence[str] | None) -> None:
    """Warn when some classes have fewer labelled items than folds."""
    counts = np.bincount(y, minlength=k)
    small = np.flatnonzero((counts > 0) & (counts < cv))
    if small.size == 0:
        return
    order = small[np.argsort(counts[small], kind="stable")].tolist()
    names = [repr(str(c)) for c in class_names] if class_names is not None else None
    shown = ", ".join(
        f"{names[c] if names is not None else c}: {counts[c]}" for c in order[:_MAX_NAMED]
    )
    more = f" and {small.size - _MAX_NAMED} more" if small.size > _MAX_NAMED else ""
    warn_at_caller(
        f"{small.size} of {int((counts > 0).sum())} classes have fewer labelled items than "
        f"the {cv} folds ({shown}{more}): a fold's model sees at most n - 1 items of such a "
        "class (none when it has a single item), so their out-of-fold probabilities and the "
        f"label issues and noise rate estimated from them are unreliable. Give every class at "
        f"least {cv} labelled items (more is better), merge or drop the small classes, or pass "
        "pred_probs from a model trained elsewhere",
        TruelabelWarning,
    )


def _check_estimator(est: Any) -> None:
    missing = [m for m in ("fit", "predict_proba") if not callable(getattr(est, m, None))]
    if missing:
        raise ValidationError(
            "estimator",
            f"{type(est).__name__} has no {' or '.join(missing)}",
            "pass a scikit-learn classifier with predict_proba, e.g. LogisticRegression()",
        )


def _kept(w: warnings.WarningMessage) -> bool:
    """Whether an estimator warning is worth relaying (see :func:`_translate`)."""
    from sklearn.exceptions import ConvergenceWarning

    return not (issubclass(w.category, ConvergenceWarning) or _MANY_CLASSES_NOTE in str(w.message))


def _translate(caught: list[tuple[str, str]], cv: int) -> None:
    """Re-emit the estimator's warnings ``(category name, message)`` once each, as
    TruelabelWarning.

    Convergence warnings are dropped on purpose (:func:`_kept`): a fold model stopped at
    ``max_iter`` still gives usable probabilities, and the user of the default estimator
    cannot act on them.
    """
    seen: dict[tuple[str, str], int] = {}
    for key in caught:
        seen[key] = seen.get(key, 0) + 1
    for (category, message), times in seen.items():
        warn_at_caller(
            f"the estimator warned while fitting the out-of-fold models ({times} time(s) "
            f"over {cv} folds): {category}: {message}",
            TruelabelWarning,
        )


class _FoldInputs(NamedTuple):
    """What every fold task reads: sent to each worker once (``shared``)."""

    X: Any
    y: np.ndarray
    folds: np.ndarray
    estimator: Any
    driver_pid: int


def fit_predict_fold(
    chunk: Chunk, shared: _FoldInputs
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Fold ``chunk.index``: fit a clone of the estimator on the other folds, predict the
    held-out rows. Returns (held-out rows, the model's classes, their probabilities, the
    warnings it raised when run in another process than the driver's).

    A pure top-level function (a thread of the local backend or a Ray task runs it).
    """
    from sklearn.base import clone

    f = chunk.index
    test = shared.folds == f
    train = ~test
    rows = np.flatnonzero(test)

    def fit() -> tuple[np.ndarray, np.ndarray]:
        model = clone(shared.estimator)
        model.fit(shared.X[train], shared.y[train])
        proba = np.asarray(model.predict_proba(shared.X[test]))
        classes = np.asarray(getattr(model, "classes_", np.unique(shared.y[train])), np.int64)
        return classes, proba

    if os.getpid() == shared.driver_pid:  # the driver records warnings of its threads
        classes, proba = fit()
        return rows, classes, proba, []
    with warnings.catch_warnings(record=True) as caught:  # one fold per process at a time
        warnings.simplefilter("always")
        classes, proba = fit()
    return rows, classes, proba, [(w.category.__name__, str(w.message)) for w in caught if _kept(w)]


def out_of_fold_pred_probs(
    X: Any,
    labels: np.typing.ArrayLike,
    *,
    estimator: Any = None,
    cv: int = 5,
    random_state: int | None = None,
    n_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    backend: Backend | str | None = None,
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
    class_names : sequence of str, optional
        Class names (in index order) used in warnings instead of class indices.
    backend : Backend, "local" or None
        Runs one task per fold (:func:`fit_predict_fold`; ``X``, the labels, the folds and
        the estimator are the shared inputs). None: :class:`~truelabel.backend.LocalBackend`
        on every core. The result does not depend on the backend: each fold's model is a
        clone fitted on the same rows, and its rows are written where they belong.
        Each running fold holds its own copy of its training rows (``X[train]``), so a
        local backend with ``n`` threads needs up to ``n`` such copies at once; pass
        ``LocalBackend(1)`` when memory is tighter than time.

    Returns
    -------
    pred_probs : ndarray of shape (n_items, n_classes)
        Rows sum to 1. A class absent from a fold's training part gets probability 0
        from that fold's model.
    folds : ndarray of shape (n_items,)
        The fold each item was predicted in.

    Warns
    -----
    TruelabelWarning
        When classes have fewer labelled items than ``cv`` (naming them and their counts),
        and, once per distinct message, for any warning the estimator raised while fitting
        (scikit-learn's ``ConvergenceWarning`` is dropped on purpose: the probabilities of a
        model stopped at ``max_iter`` are still usable).

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
    if class_names is not None and len(class_names) != k:
        raise ValidationError(
            "class_names", f"{len(class_names)} names for {k} classes", "pass one name per class"
        )
    est = default_estimator(random_state) if estimator is None else estimator
    _check_estimator(est)
    _warn_small_classes(y, k, int(cv), class_names)
    folds = _fold_ids(y, int(cv), random_state)
    out = np.zeros((y.shape[0], k), dtype=np.float64)
    shared = _FoldInputs(X, y, folds, est, os.getpid())
    caught: list[tuple[str, str]] = []
    with progress(int(cv), "out-of-fold probabilities") as advance:
        # warnings raised on this process's threads are recorded here; a fold run in
        # another process (a Ray task) records its own and returns them with its result
        with warnings.catch_warnings(record=True) as here:
            warnings.simplefilter("always")
            fold_chunks = chunk_ranges(int(cv), 1)  # chunk f = fold f
            for test, classes, proba, theirs in get_backend(backend).map(
                fit_predict_fold, fold_chunks, shared
            ):
                out[np.ix_(test, classes)] = proba
                caught.extend(theirs)
                advance(1)
        caught = [(w.category.__name__, str(w.message)) for w in here if _kept(w)] + caught
    _translate(caught, int(cv))
    out /= out.sum(axis=1, keepdims=True)
    return out, folds
