"""Neighbours judged in the original space: exact cosine on raw TF-IDF rows or embeddings.

The shared kNN graph is built on the reduced features (LSA for text). A projection collapses
short texts: rare words (names, acronyms) fall outside it, so "What is BPH ?" and
"What is DSL ?" land on the same point. Near-duplicates and outliers are therefore judged on
the original rows. Candidates per item are its neighbours in the shared graph plus, for
sparse rows, the items sharing the most weight on *rare* terms (document frequency at most
``rare_df``), found by a blockwise sparse product whose cost is bounded by
``nnz * rare_df``; every candidate is then re-scored with the exact cosine and the best
``k`` are kept. The pass is a chunk map (one block of rows per chunk) through ``backend``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..exceptions import ValidationError

__all__ = ["OriginalGraph", "check_raw_features", "original_neighbors", "row_cosines"]

#: terms in at most this many items feed the candidate product (bounds its cost)
RARE_DF = 256
#: candidates per item from the rare-term product
RARE_CANDIDATES = 20


@dataclass(frozen=True)
class OriginalGraph:
    """Best candidate neighbours by exact cosine in the original space, most similar first.

    Attributes
    ----------
    indices : ndarray of int (the kNN graph's index type), shape (n_items, k)
    similarities : ndarray of float32, shape (n_items, k)
        Cosine similarity of the L2-normalised original rows (1 = same direction).
    unit : sparse matrix or ndarray
        The L2-normalised original rows (for further exact checks).
    """

    indices: np.ndarray
    similarities: np.ndarray
    unit: Any = None


def check_raw_features(raw: Any, n_items: int, has_features: bool) -> Any:
    """Validate ``raw_features``: a sparse matrix or 2-D array, one row per item."""
    if not has_features:
        raise ValidationError(
            "raw_features",
            "were given without features",
            "pass the features the kNN graph is built on too (e.g. the LSA vectors)",
        )
    if not sp.issparse(raw):
        from .._validation import check_features

        return check_features(raw, n_items=n_items, argument="raw_features")
    if raw.ndim != 2 or raw.shape[0] != n_items:
        raise ValidationError(
            "raw_features",
            f"has shape {raw.shape}, expected {n_items} rows",
            "pass one row per item",
        )
    if not np.isfinite(raw.data).all():
        raise ValidationError("raw_features", "contain NaN or inf", "clean those rows first")
    return raw


def normalize_rows(raw: Any) -> Any:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); CSR float32 or dense float32."""
    if sp.issparse(raw):
        m = sp.csr_matrix(raw, dtype=np.float32, copy=True)
        m.sum_duplicates()
        m.sort_indices()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1), dtype=np.float64).ravel())
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        m.data *= np.repeat(scale, np.diff(m.indptr)).astype(np.float32)
        return m
    x = np.asarray(raw, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (x * scale[:, None]).astype(np.float32)


def row_cosines(unit: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``<unit[a[i]], unit[b[i]]>`` for every pair, float32 (rows already unit-norm)."""
    if a.size == 0:
        return np.zeros(0, dtype=np.float32)
    if sp.issparse(unit):
        prod = unit[a].multiply(unit[b])
        return np.asarray(prod.sum(axis=1), dtype=np.float32).ravel()
    return np.einsum("ij,ij->i", unit[a], unit[b], dtype=np.float64).astype(np.float32)


def _top_per_row(p: sp.csr_matrix, m: int, fill: np.ndarray) -> np.ndarray:
    """Column ids of the ``m`` largest entries of each CSR row (ties: lower id), padded."""
    counts = np.diff(p.indptr)
    rows = np.repeat(np.arange(p.shape[0]), counts)
    order = np.lexsort((p.indices, -p.data, rows))
    rank = np.arange(order.size) - np.repeat(p.indptr[:-1], counts)
    keep = rank < m
    out = np.repeat(fill[:, None], m, axis=1)
    out[rows[order][keep], rank[keep]] = p.indices[order][keep]
    return out


def _neighbors_chunk(chunk: Chunk, shared: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    unit, knn, k = shared["unit"], shared["knn_indices"], shared["k"]
    rows = np.arange(chunk.start, chunk.stop)
    cand = [knn[rows]]
    if shared["rare"] is not None:
        prod = sp.csr_matrix(shared["rare"][rows] @ shared["rare_t"])
        own = np.repeat(rows, np.diff(prod.indptr))
        prod.data[prod.indices == own] = 0  # self
        prod.eliminate_zeros()
        cand.append(_top_per_row(prod, RARE_CANDIDATES, knn[rows, 0]))
    c = np.concatenate(cand, axis=1)
    sims = row_cosines(unit, np.repeat(rows, c.shape[1]), c.ravel()).reshape(c.shape)
    # drop repeated candidates and self, then keep the k most similar (ties: lower id)
    order = np.argsort(c, axis=1, kind="stable")
    c = np.take_along_axis(c, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    repeated = np.zeros(c.shape, dtype=bool)
    repeated[:, 1:] = c[:, 1:] == c[:, :-1]
    sims[repeated | (c == rows[:, None])] = -np.inf
    best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(c, best, axis=1), np.take_along_axis(sims, best, axis=1)


def original_neighbors(
    raw: Any,
    knn_indices: np.ndarray,
    *,
    n_neighbors: int | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> OriginalGraph:
    """Re-rank candidate neighbours by exact cosine in the original space ``raw``.

    Parameters
    ----------
    raw : sparse matrix or array of shape (n_items, n_dims)
        Original rows (raw TF-IDF counts or embeddings); normalised here.
    knn_indices : ndarray of int, shape (n_items, k)
        Neighbours in the shared (reduced-space) kNN graph: the first candidates.
    n_neighbors : int, optional
        Neighbours kept; default ``knn_indices.shape[1]``.
    backend : Backend, "local" or None
    chunk_size : int, optional
        Rows per chunk (default 2048); results do not depend on it.

    Returns
    -------
    OriginalGraph

    Examples
    --------
    >>> import numpy as np
    >>> g = original_neighbors(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]]),
    ...                        np.array([[1], [0], [1]]), backend="local")
    >>> g.indices.ravel().tolist(), [round(float(s), 3) for s in g.similarities.ravel()]
    ([1, 0, 1], [0.0, 0.0, 0.1])
    """
    knn = np.asarray(knn_indices)
    if knn.dtype.kind not in "iu":  # int32 graphs are used as they are (no int64 copy)
        knn = knn.astype(np.int64)
    k = knn.shape[1] if n_neighbors is None else int(n_neighbors)
    unit = normalize_rows(raw)
    rare = rare_t = None
    if sp.issparse(unit):
        df = np.bincount(unit.indices, minlength=unit.shape[1])
        rare = unit.copy()
        rare.data[df[rare.indices] > RARE_DF] = 0
        rare.eliminate_zeros()
        rare_t = sp.csr_matrix(rare.T)
    shared = {"unit": unit, "knn_indices": knn, "k": k, "rare": rare, "rare_t": rare_t}
    chunks = chunk_ranges(knn.shape[0], 2048 if chunk_size is None else chunk_size)
    parts = list(get_backend(backend).map(_neighbors_chunk, chunks, shared))
    idx = np.concatenate([p[0] for p in parts])
    sims = np.concatenate([p[1] for p in parts])
    sims = np.maximum(sims, -1.0).astype(np.float32)
    return OriginalGraph(indices=idx, similarities=sims, unit=unit)
