"""The learner's model: logistic regression on the embeddings, fold models for the
out-of-fold probabilities and the model-strength signal, pool probabilities as a chunk map.

Pool probabilities are computed in 256-row blocks aligned to absolute row numbers (a BLAS
product gives a row a different last bit depending on its place in the block), and chunks
are whole blocks, so they are identical for any backend and chunk size.
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Chunk, chunk_ranges, get_backend

__all__ = ["BLOCK", "LinearModel", "fit_linear", "fold_ids", "pool_proba"]

BLOCK = 256


class LinearModel:
    """A fitted multinomial linear model over ``n_classes`` (classes it never saw get -inf)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.coef = coef  # (n_classes, dim) float64
        self.intercept = intercept  # (n_classes,)

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z


def fit_linear(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    C: float,
    sample_weight: np.ndarray | None = None,
    warm: LinearModel | None = None,
) -> LinearModel:
    """L2 logistic regression (scikit-learn lbfgs), warm-started from ``warm``'s weights."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    coef = np.zeros((n_classes, X.shape[1]))
    intercept = np.full(n_classes, -np.inf)
    if present.size == 1:  # one class seen: it always wins
        intercept[present[0]] = 0.0
        return LinearModel(coef, intercept)
    lr = LogisticRegression(C=C, max_iter=300, tol=1e-4, warm_start=warm is not None)
    if warm is not None and present.size > 2:
        lr.coef_ = warm.coef[present].copy()
        lr.intercept_ = np.where(np.isfinite(warm.intercept[present]), warm.intercept[present], 0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny sets: the fit is still used
        lr.fit(np.asarray(X, dtype=np.float64), y, sample_weight=sample_weight)
    if present.size == 2:  # binary: sklearn keeps one row; spread it symmetrically
        w = lr.coef_[0] / 2.0
        b = float(lr.intercept_[0]) / 2.0
        coef[present[0]], coef[present[1]] = -w, w
        intercept[present[0]], intercept[present[1]] = -b, b
    else:
        coef[present] = lr.coef_
        intercept[present] = lr.intercept_
    return LinearModel(coef, intercept)


def fold_ids(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold of each labeled item: a seeded shuffle, then round-robin per class."""
    perm = rng.permutation(y.size)
    order = perm[np.argsort(y[perm], kind="stable")]
    folds = np.empty(y.size, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(y[order])) + 1]
    rank = np.arange(y.size) - np.repeat(starts, np.diff(np.r_[starts, y.size]))
    offset = rng.integers(n_folds)
    folds[order] = (rank + offset) % n_folds
    return folds


def _proba_chunk(chunk: Chunk, shared: tuple[np.ndarray, LinearModel]) -> np.ndarray:
    X, model = shared
    out = np.empty((len(chunk), model.coef.shape[0]), dtype=np.float32)
    for s in range(chunk.start, chunk.stop, BLOCK):
        e = min(s + BLOCK, chunk.stop)
        out[s - chunk.start : e - chunk.start] = model.proba(X[s:e])
    return out


def pool_proba(
    X: np.ndarray,
    model: LinearModel,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """``(n_items, n_classes)`` float32 probabilities of the model on every row (or ``rows``)."""
    if rows is not None:
        return model.proba(X[rows]).astype(np.float32)
    size = None if chunk_size is None else max(BLOCK, -(-int(chunk_size) // BLOCK) * BLOCK)
    chunks = chunk_ranges(X.shape[0], size)
    out = np.empty((X.shape[0], model.coef.shape[0]), dtype=np.float32)
    for chunk, p in zip(
        chunks, get_backend(backend).map(_proba_chunk, chunks, (X, model)), strict=True
    ):
        out[chunk.slice] = p
    return out
