"""The n lowest-scoring items of a labelled set: per-chunk top-n, merged exactly.

Each chunk scores its rows with the pure per-chunk formula of :mod:`._rank` and keeps its
``n`` lowest (score, then index); merging two such sets and keeping the ``n`` lowest again
is associative, so any backend and chunk size give the same items.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ._rank import _SCORE_CHUNK

__all__ = ["_keep_lowest", "_lowest_n"]


def _keep_lowest(idx: np.ndarray, val: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` pairs with the lowest ``val``, ties broken by the lower ``idx`` (exact order)."""
    if val.size <= n:
        return idx, val
    if n == 0:
        return idx[:0], val[:0]
    cut = np.partition(val, n - 1)[n - 1]
    keep = val < cut
    tied = np.flatnonzero(val == cut)
    need = n - int(keep.sum())
    keep[tied[np.argsort(idx[tied], kind="stable")[:need]]] = True
    return idx[keep], val[keep]


def _lowest_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, str, Any, int, tuple[str, Any] | None]
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray | None]:
    """The chunk's ``n`` lowest-scoring items (global indices, scores), all its scores, and
    all its scores under the ``also`` (method, global stats) pair when given (same block)."""
    labels, pred_probs, method, global_stats, n, also = shared
    y, block = labels[chunk.slice], pred_probs[chunk.slice]
    scores = _SCORE_CHUNK[method](y, block, global_stats)
    other = None if also is None else _SCORE_CHUNK[also[0]](y, block, also[1])
    return _keep_lowest(np.arange(chunk.start, chunk.stop), scores, n), scores, other


def _lowest_n(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    method: str,
    global_stats: Any,
    n: int,
    backend: Backend | str | None,
    chunk_size: int | None,
    scores_out: np.ndarray | None = None,
    also: tuple[str, Any, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` lowest-scoring items of the whole set: per-chunk top-n, merged in chunk
    order. ``scores_out`` (n_items,) receives every item's score when given; ``also`` =
    (method, global stats, out) scores every item a second way in the same pass, into out
    (the chunks of :func:`._rank._compute_scores`, so the values are the same)."""
    chunks = chunk_ranges(labels.shape[0], chunk_size)
    extra = None if also is None else (also[0], also[1])
    shared = (labels, pred_probs, method, global_stats, n, extra)
    best: tuple[np.ndarray, np.ndarray] | None = None
    results = get_backend(backend).map(_lowest_chunk, chunks, shared)
    for chunk, (low, scores, other) in zip(chunks, results, strict=True):
        if scores_out is not None:
            scores_out[chunk.slice] = scores
        if also is not None:
            also[2][chunk.slice] = other
        if best is None:
            best = low
        else:
            best = _keep_lowest(np.r_[best[0], low[0]], np.r_[best[1], low[1]], n)
    assert best is not None
    return best
