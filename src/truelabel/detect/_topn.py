"""The n lowest-scoring items of a labelled set: every item scored per chunk, then selected.

Each chunk scores its rows with the pure per-chunk formula of :mod:`._rank` (any backend and
chunk size give the same scores); the scores go into one array (the caller's, or a scratch
array: a spill file when large) and the ``n`` lowest (score, then index) are selected from it
by a threshold (a partition of a scratch copy) and one pass over blocks, so the selection
holds nothing of the full size in anonymous memory besides its result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._spill import scratch
from .._validation import iter_chunks
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ._rank import _SCORE_CHUNK

__all__ = ["_lowest_n", "_lowest_of"]

#: values compared at once by :func:`_lowest_of`
_BLOCK = 1 << 16


def _lowest_of(vals: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the ``n`` lowest ``vals`` (ties: lower index first), ascending, and
    their values: the ``n``-th lowest value from an in-place partition of a scratch copy,
    then the items below it and the first tied ones, a block at a time."""
    size = vals.shape[0]
    if n >= size:
        return np.arange(size), np.array(vals)
    if n <= 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=vals.dtype)
    work = scratch(size, vals.dtype)  # a spill file when large
    np.copyto(work, vals)
    work.partition(n - 1)
    cut = work[n - 1]
    del work
    need = n - sum(int(np.count_nonzero(vals[sl] < cut)) for sl in iter_chunks(size, _BLOCK))
    parts = []
    for sl in iter_chunks(size, _BLOCK):
        v = vals[sl]
        keep = v < cut
        if need > 0:
            tied = np.flatnonzero(v == cut)[:need]
            keep[tied] = True
            need -= tied.size
        parts.append(sl.start + np.flatnonzero(keep))
    idx = np.concatenate(parts)
    return idx, vals[idx]


def _ranked_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, str, Any, tuple[str, Any] | None]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The chunk's scores, and its scores under the ``also`` (method, global stats) pair when
    given (same block)."""
    labels, pred_probs, method, global_stats, also = shared
    y, block = labels[chunk.slice], pred_probs[chunk.slice]
    scores = _SCORE_CHUNK[method](y, block, global_stats)
    other = None if also is None else _SCORE_CHUNK[also[0]](y, block, also[1])
    return scores, other


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
    """The ``n`` lowest-scoring items of the whole set (ascending index) and their scores.
    ``scores_out`` (n_items,) receives every item's score when given (else a scratch array
    does, freed on return); ``also`` = (method, global stats, out) scores every item a second
    way in the same pass, into out (the chunks of :func:`._rank._compute_scores`, so the
    values are the same)."""
    chunks = chunk_ranges(labels.shape[0], chunk_size)
    extra = None if also is None else (also[0], also[1])
    shared = (labels, pred_probs, method, global_stats, extra)
    vals: np.ndarray | None = None  # the scores in their own dtype (every chunk's)
    results = get_backend(backend).map(_ranked_chunk, chunks, shared)
    for chunk, (scores, other) in zip(chunks, results, strict=True):
        if vals is None:
            same = scores_out is not None and scores_out.dtype == scores.dtype
            vals = scores_out if same else scratch(labels.shape[0], scores.dtype)
        assert vals is not None
        vals[chunk.slice] = scores
        if scores_out is not None and scores_out is not vals:
            scores_out[chunk.slice] = scores
        if also is not None:
            also[2][chunk.slice] = other
    if vals is None:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
    return _lowest_of(vals, n)
