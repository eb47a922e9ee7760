"""The pieces of self-training, each vectorized and testable alone: class-balanced
pseudo-label selection, the training-free kNN similarity cache, stratified folds and the
temperature fitted on cross-fitted probabilities."""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Chunk, chunk_ranges, get_backend

__all__ = [
    "fit_temperature",
    "knn_cache_probs",
    "select_balanced",
    "stratified_folds",
    "temper",
    "unit_rows",
]

_TINY = 1e-12


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def select_balanced(
    probs: np.ndarray, quota: np.ndarray, min_confidence: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The ``quota[k]`` most confident items predicted as class ``k``, for every class.

    Each class is ranked on its own (items whose arg-max is ``k``, by ``probs[:, k]``,
    ties by index), so a hard class with low confidences still gets its share instead of
    being starved by one global threshold. Items below ``min_confidence`` are never taken.

    Returns
    -------
    indices : ndarray of int64, sorted
    labels : ndarray of int64, the arg-max class of each selected item

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[.9, .1], [.8, .2], [.7, .3], [.4, .6], [.45, .55]])
    >>> select_balanced(p, np.array([1, 1]))  # class 1 gets one item despite low scores
    (array([0, 3]), array([0, 1]))
    """
    n, k = probs.shape
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(n), pred]
    order = np.lexsort((-conf, pred))  # by class, then confidence descending (stable)
    cls = pred[order]
    rank = np.arange(n) - np.searchsorted(cls, np.arange(k))[cls]
    keep = (rank < quota[cls]) & (conf[order] >= min_confidence)
    idx = np.sort(order[keep])
    return idx, pred[idx].astype(np.int64)


def _knn_chunk(
    chunk: Chunk,
    shared: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int, float, int],
) -> np.ndarray:
    """Cache probabilities of one chunk of queries: a similarity-weighted vote of the
    ``k`` most similar memory items (one row per query), returned."""
    queries, memory, mem_labels, exclude, k, sharpness, n_classes = shared
    q = queries[chunk.slice]
    sims = q @ memory.T
    rows = np.arange(q.shape[0])
    if exclude is not None:  # a pool item never votes for itself
        pos = exclude[chunk.slice]
        own = pos >= 0
        sims[rows[own], pos[own]] = -np.inf
    kk = min(k, memory.shape[0])
    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    s = np.take_along_axis(sims, top, axis=1).astype(np.float64)
    w = np.exp(sharpness * (s - 1.0))  # exp(-beta (1 - cos)); -inf (self) -> 0
    flat = (rows[:, None] * n_classes + mem_labels[top]).ravel()
    votes = np.bincount(flat, weights=w.ravel(), minlength=q.shape[0] * n_classes)
    votes = votes.reshape(q.shape[0], n_classes)
    total = votes.sum(axis=1, keepdims=True)
    uniform = np.full_like(votes, 1.0 / n_classes)
    return np.where(total > 0, votes / np.maximum(total, _TINY), uniform)


def knn_cache_probs(
    queries: np.ndarray,
    memory: np.ndarray,
    memory_labels: np.ndarray,
    n_classes: int,
    *,
    n_neighbors: int = 10,
    sharpness: float = 10.0,
    exclude: np.ndarray | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Training-free label propagation from a memory of (pseudo-)labeled items.

    Each query's class distribution is the vote of its ``n_neighbors`` most cosine-similar
    memory items, each weighted by ``exp(-sharpness * (1 - cos))`` (a Tip-Adapter style
    affinity). ``queries`` and ``memory`` must have unit rows. ``exclude[i] >= 0`` names the
    memory row that query ``i`` itself is (it is skipped). Rows are computed independently,
    so the result does not depend on the chunking or the backend.

    Examples
    --------
    >>> import numpy as np
    >>> mem = np.eye(2, dtype=np.float32)
    >>> knn_cache_probs(np.array([[1.0, 0.0]], np.float32), mem, np.array([0, 1]), 2,
    ...                 n_neighbors=2, sharpness=1.0).round(3)
    array([[0.731, 0.269]])
    """
    n = queries.shape[0]
    out = np.empty((n, n_classes), dtype=np.float64)
    shared = (
        queries,
        memory,
        memory_labels,
        exclude,
        int(n_neighbors),
        float(sharpness),
        n_classes,
    )
    chunks = chunk_ranges(n, chunk_size or 4096)
    for chunk, block in zip(
        chunks, get_backend(backend).map(_knn_chunk, chunks, shared), strict=True
    ):
        out[chunk.slice] = block
    return out


def stratified_folds(labels: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold id per item: each class's items shuffled, then dealt round-robin."""
    n = labels.shape[0]
    perm = rng.permutation(n)
    order = perm[np.argsort(labels[perm], kind="stable")]
    cls = labels[order]
    rank = np.arange(n) - np.searchsorted(cls, cls, side="left")
    folds = np.empty(n, dtype=np.int64)
    folds[order] = rank % n_folds
    return folds


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), rows summing to 1."""
    z = np.log(np.maximum(probs, _TINY)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T in [0.005, 20] minimising the log loss of softmax(log p / T).

    Searched on log T: heads on frozen embeddings can be very under-confident (T ~ 0.03).
    """
    from scipy.optimize import minimize_scalar

    rows = np.arange(labels.shape[0])

    def loss(log_t: float) -> float:
        return float(-np.log(temper(probs, np.exp(log_t))[rows, labels] + _TINY).mean())

    bounds = (np.log(0.005), np.log(20.0))
    res = minimize_scalar(loss, bounds=bounds, method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))
