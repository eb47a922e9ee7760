"""Diversity scores and batch pickers on embeddings: typicality (TypiClust-like cold start),
k-center greedy, and BADGE (k-means++ seeding on gradient embeddings).

Every pass over the pool is a chunk map on the backend (:mod:`._distance`), and each pick
is identical for any backend and chunk size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_features, check_pred_probs, check_random_state
from ..backend import Backend, Chunk
from ..exceptions import ValidationError
from ._distance import _gather, nearest_center, sqdist_to_point

__all__ = [
    "badge_select",
    "k_center_greedy",
    "kmeans",
    "typicality_scores",
    "typiclust_select",
]


def check_batch_size(n: Any, available: int, argument: str = "n") -> int:
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValidationError(argument, f"got {n!r}, expected an int >= 1", "e.g. n=10")
    if n > available:
        raise ValidationError(
            argument,
            f"asks for {int(n)} items but only {available} can be picked",
            f"pass n <= {available}",
        )
    return int(n)


def _check_labeled(labeled: Any, n_items: int) -> np.ndarray:
    if labeled is None:
        return np.zeros(0, dtype=np.int64)
    idx = np.unique(np.asarray(labeled).ravel())
    if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n_items):
        raise ValidationError(
            "labeled", f"holds {idx[:5].tolist()}...", f"pass row indices in [0, {n_items})"
        )
    return idx.astype(np.int64)


def typicality_scores(
    features: Any,
    *,
    n_neighbors: int = 20,
    random_state: int = 0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Typicality of each item in (0, 1]: ``1 / (1 + mean distance to its k nearest neighbours)``.

    The inverse of the mean kNN distance is TypiClust's typicality (Hacohen et al. 2022);
    ``1 / (1 + d)`` ranks items the same way and stays in (0, 1]. Higher = denser region =
    a more representative item. The kNN graph is :func:`truelabel.detect.build_knn_graph`
    (exact up to 20k items, the inverted file above), a chunk map on ``backend``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> typicality_scores(X, n_neighbors=1).round(3).tolist()
    [0.5, 0.5, 0.5, 0.111]
    """
    from ..detect import build_knn_graph

    X = check_features(features)
    if not isinstance(n_neighbors, int) or n_neighbors < 1:
        raise ValidationError("n_neighbors", f"got {n_neighbors!r}", "pass an int >= 1, e.g. 20")
    if X.shape[0] < 2:
        raise ValidationError("features", f"has {X.shape[0]} row(s)", "pass at least two items")
    k = min(n_neighbors, X.shape[0] - 1)
    graph = build_knn_graph(
        X, n_neighbors=k, random_state=random_state, backend=backend, chunk_size=chunk_size
    )
    return np.asarray(1.0 / (1.0 + graph.distances.astype(np.float64).mean(axis=1)))


def kmeans(
    X: np.ndarray,
    n_clusters: int,
    rng: np.random.Generator,
    *,
    weights: np.ndarray | None = None,
    n_iter: int = 20,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (k-means++ start, Lloyd steps) -> ``(centers, assignment)``.

    Assignments are the chunk map of :func:`nearest_center`; the centres are one sparse
    product (cluster one-hot x rows), so the result does not depend on the chunking.
    """
    n = X.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    centers = X[_kmeanspp(X, n_clusters, rng, w, backend, chunk_size)].astype(np.float64)
    assign = np.full(n, -1, dtype=np.int64)
    for _ in range(n_iter):
        new, _ = nearest_center(X, centers, backend=backend, chunk_size=chunk_size)
        if np.array_equal(new, assign):
            break
        assign = new
        onehot = sp.csr_matrix((w, (assign, np.arange(n))), shape=(n_clusters, n))
        mass = np.asarray(onehot.sum(axis=1)).ravel()
        sums = np.asarray(onehot @ np.asarray(X, dtype=np.float64))
        filled = mass > 0
        centers[filled] = sums[filled] / mass[filled, None]
    return centers, assign


def _kmeanspp(
    X: np.ndarray,
    k: int,
    rng: np.random.Generator,
    w: np.ndarray,
    backend: Backend | str | None,
    chunk_size: int | None,
) -> np.ndarray:
    first = int(rng.choice(X.shape[0], p=w / w.sum()))
    picks = [first]
    d2 = sqdist_to_point(X, X[first], backend=backend, chunk_size=chunk_size)
    for _ in range(1, k):
        mass = d2 * w
        if mass.sum() <= 0:  # fewer distinct points than clusters: take unpicked ones in order
            rest = np.setdiff1d(np.arange(X.shape[0]), picks)
            picks.append(int(rest[0]))
        else:
            picks.append(int(rng.choice(X.shape[0], p=mass / mass.sum())))
        d2 = np.minimum(
            d2, sqdist_to_point(X, X[picks[-1]], backend=backend, chunk_size=chunk_size)
        )
    return np.asarray(picks, dtype=np.int64)


def typiclust_select(
    features: Any,
    n: int,
    *,
    labeled: Any = None,
    typicality: Any = None,
    random_state: Any = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Cold-start picks (TypiClust-like): k-means into ``len(labeled) + n`` clusters, then the
    most typical unlabeled item of each of the ``n`` largest clusters holding the fewest
    labeled items.

    Typicality is the global kNN one (:func:`typicality_scores`; TypiClust computes it
    within each cluster). Returns ``n`` row indices, best cluster first.
    """
    X = check_features(features)
    lab = _check_labeled(labeled, X.shape[0])
    free = np.setdiff1d(np.arange(X.shape[0]), lab)
    n = check_batch_size(n, free.size)
    typ = (
        typicality_scores(X, backend=backend, chunk_size=chunk_size)
        if typicality is None
        else np.asarray(typicality, dtype=np.float64)
    )
    rng = check_random_state(random_state)
    k = min(lab.size + n, X.shape[0])
    _, assign = kmeans(X, k, rng, backend=backend, chunk_size=chunk_size)
    size = np.bincount(assign, minlength=k)
    covered = np.bincount(assign[lab], minlength=k)
    has_free = np.bincount(assign[free], minlength=k) > 0
    order = np.lexsort((np.arange(k), -size, covered))
    picks: list[int] = []
    for c in order[has_free[order]]:
        members = free[assign[free] == c]
        picks.append(int(members[np.lexsort((members, -typ[members]))[0]]))
        if len(picks) == n:
            break
    if len(picks) < n:  # fewer non-empty clusters than n: fill with the most typical left
        rest = np.setdiff1d(free, picks)
        picks.extend(rest[np.lexsort((rest, -typ[rest]))][: n - len(picks)].tolist())
    return np.asarray(picks, dtype=np.int64)


def k_center_greedy(
    features: Any,
    n: int,
    *,
    labeled: Any = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Core-set picks (Sener & Savarese 2018): repeatedly the item farthest from every
    labeled or already picked item (ties: lowest index). With nothing labeled, the first
    pick is the item nearest the pool mean.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [5.0], [9.0], [10.0]])
    >>> k_center_greedy(X, 2, labeled=[0]).tolist()
    [4, 2]
    """
    X = check_features(features)
    lab = _check_labeled(labeled, X.shape[0])
    n = check_batch_size(n, X.shape[0] - lab.size)
    picks: list[int] = []
    if lab.size:
        _, d2 = nearest_center(X, X[lab], backend=backend, chunk_size=chunk_size)
        d2[lab] = -1.0
    else:
        mean = np.asarray(X, dtype=np.float64).mean(axis=0)
        first = int(np.argmin(sqdist_to_point(X, mean, backend=backend, chunk_size=chunk_size)))
        picks.append(first)
        d2 = sqdist_to_point(X, X[first], backend=backend, chunk_size=chunk_size)
        d2[first] = -1.0
    while len(picks) < n:
        i = int(np.argmax(d2))
        picks.append(i)
        d2 = np.minimum(d2, sqdist_to_point(X, X[i], backend=backend, chunk_size=chunk_size))
        d2[lab] = -1.0
        d2[picks] = -1.0
    return np.asarray(picks, dtype=np.int64)


def _grad_sqdist_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]
) -> np.ndarray:
    X, A, x_c, a_c, g_c_sq = shared
    x = np.asarray(X[chunk.slice], dtype=np.float64)
    a = A[chunk.slice]
    xx = (x * x).sum(axis=1)
    aa = (a * a).sum(axis=1)
    cross = (a * a_c).sum(axis=1) * (x * x_c).sum(axis=1)
    return np.maximum(aa * xx + g_c_sq - 2.0 * cross, 0.0)


def gradient_factors(pred_probs: np.ndarray) -> np.ndarray:
    """BADGE's gradient embedding of item i is ``(p_i - onehot(argmax p_i)) (x) x_i``; this is
    the first factor, ``p_i - onehot(argmax p_i)`` (ties: lowest class)."""
    a = np.asarray(pred_probs, dtype=np.float64).copy()
    a[np.arange(a.shape[0]), np.argmax(a, axis=1)] -= 1.0
    return a


def badge_select(
    features: Any,
    pred_probs: Any,
    n: int,
    *,
    labeled: Any = None,
    random_state: Any = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """BADGE (Ash et al. 2020): k-means++ seeding on the gradient embeddings
    ``g_i = (p_i - onehot(argmax p_i)) (x) x_i`` of the last layer's cross-entropy.

    The ``(n_items, n_classes * dim)`` embeddings are never built:
    ``<g_i, g_j> = <a_i, a_j> <x_i, x_j>``, so each distance pass costs
    ``O(n_items * (n_classes + dim))`` per pick. The first pick is the largest gradient
    (as BADGE's code does), then D^2 sampling from ``random_state``.
    """
    X = check_features(features)
    probs = check_pred_probs(pred_probs, n_items=X.shape[0])
    lab = _check_labeled(labeled, X.shape[0])
    n = check_batch_size(n, X.shape[0] - lab.size)
    rng = check_random_state(random_state)
    A = gradient_factors(probs)
    norms = (A * A).sum(axis=1) * _gather(
        X.shape[0], _sqnorm_chunk, X, backend=backend, chunk_size=chunk_size
    )
    first_pick = norms.copy()
    first_pick[lab] = -1.0
    picks = [int(np.argmax(first_pick))]
    d2 = np.full(X.shape[0], np.inf)
    for _ in range(n):
        i = picks[-1]
        shared = (X, A, np.asarray(X[i], dtype=np.float64), A[i], float(norms[i]))
        d2 = np.minimum(d2, _gather(X.shape[0], _grad_sqdist_chunk, shared, backend, chunk_size))
        d2[lab] = 0.0
        d2[picks] = 0.0
        if len(picks) == n:
            break
        total = d2.sum()
        if total <= 0:
            rest = np.setdiff1d(np.setdiff1d(np.arange(X.shape[0]), lab), picks)
            picks.append(int(rest[0]))
        else:
            picks.append(int(rng.choice(X.shape[0], p=d2 / total)))
    return np.asarray(picks, dtype=np.int64)


def _sqnorm_chunk(chunk: Chunk, X: np.ndarray) -> np.ndarray:
    x = np.asarray(X[chunk.slice], dtype=np.float64)
    return np.asarray((x * x).sum(axis=1))
