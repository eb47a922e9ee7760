"""Helpers shared by the approximate kNN graph builders: the PCA projection they search,
and the exact re-rank of their candidates in the original space."""

from __future__ import annotations

import numpy as np

from .._spill import release_free_memory
from .._validation import iter_chunks

__all__ = ["Projection", "finish_rows", "fit_pca", "project_rows", "release_free_memory"]


def _drop_self(
    idx: np.ndarray, dist: np.ndarray, k: int, start: int | np.ndarray = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (row ``start + r``, or ``start[r]`` when ``start`` is an
    array of row ids, wherever it landed) and keep k."""
    if isinstance(start, np.ndarray):
        rows = start[:, None]
    else:
        rows = start + np.arange(idx.shape[0])[:, None]
    is_self = idx == rows
    # when self is absent (ties or approximate search), drop the last column instead
    absent = ~is_self.any(axis=1)
    is_self[absent, -1] = True
    is_self &= np.cumsum(is_self, axis=1) == 1
    keep = ~is_self
    return idx[keep].reshape(idx.shape[0], k), dist[keep].reshape(idx.shape[0], k)


def _exact_distances(X: np.ndarray, idx: np.ndarray, start: int | np.ndarray = 0) -> np.ndarray:
    """||x_i - x_j|| for every (i = start + r, idx[r, m]), summed in float64, in sub-blocks
    of about 2**18 gathered values (1 MiB of float32: the gathered block stays in cache while
    it is differenced and summed). ``start`` may instead be the array of the rows' ids."""
    out = np.empty(idx.shape, dtype=np.float32)
    step = max((1 << 18) // max(idx.shape[1] * X.shape[1], 1), 8)
    for sl in iter_chunks(idx.shape[0], step):
        own = (
            start[sl] if isinstance(start, np.ndarray) else slice(start + sl.start, start + sl.stop)
        )
        diff = X[idx[sl]]
        diff -= X[own][:, None, :]
        out[sl] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.float64))
    return out


def finish_rows(
    X: np.ndarray, idx: np.ndarray, start: int | np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances of candidate neighbours, sorted by (distance, index), self dropped
    (``start``: the first row's id, or the array of the rows' ids)."""
    dist = _exact_distances(X, idx, start)
    order = np.lexsort((idx, dist), axis=1) if idx.shape[1] > 1 else np.zeros_like(idx)
    idx = np.take_along_axis(idx, order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1)
    return _drop_self(idx[:, : k + 1], dist[:, : k + 1], k, start)


def project_rows(
    X: np.ndarray, sl: slice | np.ndarray, pca: Projection | None, out: np.ndarray | None = None
) -> np.ndarray:
    """Rows ``sl`` (a slice or row ids) of the PCA projection (or of X itself), float32
    contiguous; projected 4096 rows at a time, each block gathered once and centred in place,
    so the one full-width temporary stays at a few MiB whatever the number of rows. ``out``
    (float32, C-contiguous, one row per selected row) receives the result when given."""
    if pca is None:
        if out is None:
            return np.ascontiguousarray(X[sl], dtype=np.float32)
        if isinstance(sl, slice):
            out[...] = X[sl]
        else:  # gathered 4096 rows at a time: no copy of all the selected rows besides out
            for sub in iter_chunks(sl.size, 4096):
                out[sub] = X[sl[sub]]
        return out
    # a slice's row ids alone (not np.arange(n)[sl]: an n-row temporary per call)
    rows = np.arange(*sl.indices(X.shape[0])) if isinstance(sl, slice) else sl
    if out is None:
        out = np.empty((rows.size, pca.components.shape[1]), dtype=np.float32)
    for sub in iter_chunks(rows.size, 4096):
        pca.transform_into(X[rows[sub]], out[sub])
    return out


class Projection:
    """x -> (x - mean) @ components: the top principal axes, as float32."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean = mean.astype(np.float32)
        self.components = np.ascontiguousarray(components, dtype=np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray((X - self.mean) @ self.components)

    def transform_into(self, block: np.ndarray, out: np.ndarray) -> None:
        """``transform(block)`` written into ``out``, centring ``block`` (a float32 copy the
        caller owns) in place: the same values, one full-width temporary fewer."""
        if block.dtype != np.float32:  # float64 rows: centred and projected in float64
            out[...] = self.transform(block)
            return
        block -= self.mean
        np.matmul(block, self.components, out=out)


def fit_pca(
    X: np.ndarray, max_dims: int, random_state: int
) -> tuple[Projection | None, np.ndarray]:
    """Principal axes of a sample of at most 20,000 rows (None when X is narrow enough),
    and the sample's row ids (also used to train the index's scalar quantizer).

    From the sample's d x d covariance (exact eigendecomposition, float64): light and fast,
    no randomized SVD iterations.
    """
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.choice(X.shape[0], min(X.shape[0], 20_000), replace=False))
    if X.shape[1] <= max_dims:
        return None, rows
    sample = X[rows].astype(np.float64)
    mean = sample.mean(axis=0)
    sample -= mean
    _, vecs = np.linalg.eigh(sample.T @ sample)
    return Projection(mean, vecs[:, ::-1][:, :max_dims]), rows
