"""Exact, chunk-invariant distance passes over a pool (the seam under every diversity score).

BLAS matrix products give a row a slightly different result depending on where it sits in
the block, so a k-means assignment or a k-center pick could change with the chunk size.
Here a float64 GEMM only proposes candidates (every centre within a relative ``1e-9`` of
the best); the kept distance is recomputed element-wise per row (``((x - c) ** 2).sum()``,
NumPy's pairwise sum per row), so results are identical for any backend and chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import Backend, Chunk, chunk_ranges, get_backend

__all__ = ["nearest_center", "sqdist_to_point"]

_REL_TOL = 1e-9


def _rows(x: np.ndarray, sl: slice) -> np.ndarray:
    return np.asarray(x[sl], dtype=np.float64)


def _sqdist_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    X, point = shared
    diff = _rows(X, chunk.slice) - point
    return np.asarray((diff * diff).sum(axis=1))


def sqdist_to_point(
    X: np.ndarray,
    point: np.ndarray,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Squared Euclidean distance of every row of ``X`` to ``point`` (float64)."""
    p = np.asarray(point, dtype=np.float64)
    return _gather(X.shape[0], _sqdist_chunk, (X, p), backend, chunk_size)


#: at most this many (row, centre) cells of the float64 proposal matrix at a time (128 MB): a
#: chunk is measured in blocks of ``MAX_CELLS // n_centres`` rows, so memory stays bounded
#: however many centres there are (k-means of a coverage batch has one per taught item); each
#: row's result is its own, so the blocks change nothing
MAX_CELLS = 1 << 24


def _nearest_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    X, C, c_sq = shared
    x_all = _rows(X, chunk.slice)
    step = max(1, MAX_CELLS // max(C.shape[0], 1))
    idx = np.empty(x_all.shape[0], dtype=np.int64)
    dist = np.empty(x_all.shape[0], dtype=np.float64)
    for start in range(0, x_all.shape[0], step):
        block = slice(start, start + step)
        idx[block], dist[block] = _nearest_rows(x_all[block], C, c_sq)
    return idx, dist


def _nearest_rows(x: np.ndarray, C: np.ndarray, c_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (ties: lowest index) and its exact squared distance, for rows ``x``."""
    x_sq = (x * x).sum(axis=1)
    approx = x_sq[:, None] - 2.0 * (x @ C.T) + c_sq[None, :]
    best = approx.min(axis=1)
    scale = x_sq + c_sq.max() + 1.0
    r, c = np.nonzero(approx <= (best + _REL_TOL * scale)[:, None])
    diff = x[r] - C[c]
    exact = (diff * diff).sum(axis=1)
    order = np.lexsort((c, exact, r))  # per row: smallest exact distance, then lowest index
    r, c, exact = r[order], c[order], exact[order]
    first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    return c[first].astype(np.int64), exact[first]


def nearest_center(
    X: np.ndarray,
    centers: np.ndarray,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre of every row (ties: lowest index) and its squared distance."""
    C = np.asarray(centers, dtype=np.float64)
    shared = (X, C, (C * C).sum(axis=1))
    n = X.shape[0]
    idx = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float64)
    chunks = chunk_ranges(n, chunk_size)
    for chunk, (i, d) in zip(
        chunks, get_backend(backend).map(_nearest_chunk, chunks, shared), strict=True
    ):
        idx[chunk.slice] = i
        dist[chunk.slice] = d
    return idx, dist


def _gather(
    n: int,
    fn: Callable[[Chunk, Any], np.ndarray],
    shared: Any,
    backend: Backend | str | None,
    chunk_size: int | None,
) -> np.ndarray:
    """Run a per-row chunk function and write its results in place (row order)."""
    out = np.empty(n, dtype=np.float64)
    chunks = chunk_ranges(n, chunk_size)
    for chunk, values in zip(chunks, get_backend(backend).map(fn, chunks, shared), strict=True):
        out[chunk.slice] = values
    return out
