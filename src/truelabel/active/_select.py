"""Picking a batch of new items: candidates by uncertainty, spread by clustering.

The model-strength signal ``weakness`` (the share of held-back predictions that change when a
fold of the labels is left out) sets how wide the net is. The candidates are the
``max(4 n, weakness * n_unlabeled)`` most uncertain unlabeled items per unit of cost: while
the model is weak (its predictions hinge on which labels it saw) that is much of the pool
and the batch is chosen for coverage and typicality (TypiClust-like); once it is strong the
net shrinks to the few items near its decision boundaries (uncertainty, kept diverse as in
cluster-margin). The candidates are clustered into ``n`` groups (k-means, weighted towards
classes with fewer labels) and each group gives its best item, scored
``weakness * typicality rank + (1 - weakness) * uncertainty rank``. A batch never holds two
near-duplicates (cosine >= ``duplicate_cosine``) nor more than ``ceil(2 n / K)`` items of
one predicted class, unless nothing else is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backend import Backend
from ._diversity import kmeans

__all__ = ["Pick", "pick_new"]

#: candidates per requested item when the model is strong (a few per cluster)
CANDIDATES_PER_PICK = 4
#: at most this many candidates are clustered (a seeded sample of them above)
MAX_CANDIDATES = 10_000


@dataclass
class Pick:
    index: np.ndarray
    score: np.ndarray
    cluster_size: np.ndarray
    n_candidates: int


def _rank01(values: np.ndarray) -> np.ndarray:
    if values.size <= 1:
        return np.ones(values.size)
    order = np.lexsort((np.arange(values.size), values))
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    return ranks / (values.size - 1)


def pick_new(
    X: np.ndarray,
    unlabeled: np.ndarray,
    m: int,
    *,
    value: np.ndarray,
    typicality: np.ndarray,
    weakness: float,
    predicted: np.ndarray | None,
    class_counts: np.ndarray | None,
    duplicate_cosine: float,
    rng: np.random.Generator,
    backend: Backend | str | None,
    chunk_size: int | None,
) -> Pick:
    """``m`` new items from ``unlabeled`` (row indices); ``value`` = uncertainty per cost."""
    n_u = unlabeled.size
    size = int(min(n_u, max(CANDIDATES_PER_PICK * m, np.ceil(weakness * n_u))))
    order = np.lexsort((unlabeled, -value))
    cand = unlabeled[order[:size]]
    v = value[order[:size]]
    if cand.size > MAX_CANDIDATES:
        keep = np.sort(rng.choice(cand.size, size=MAX_CANDIDATES, replace=False))
        cand, v = cand[keep], v[keep]
    score = weakness * _rank01(typicality[cand]) + (1.0 - weakness) * _rank01(v)
    weights = np.ones(cand.size)
    cap = m
    pred = None
    if predicted is not None and class_counts is not None:
        pred = predicted[cand]
        weights = 1.0 / np.sqrt(1.0 + class_counts[pred])
        cap = int(np.ceil(2 * m / class_counts.size))
    k = min(m, cand.size)
    _, assign = kmeans(X[cand], k, rng, weights=weights, backend=backend, chunk_size=chunk_size)
    mass = np.bincount(assign, weights=weights, minlength=k)
    sizes = np.bincount(assign, minlength=k)
    # members ordered by cluster (heaviest first), then by score
    cluster_rank = np.empty(k, dtype=np.int64)
    cluster_rank[np.lexsort((np.arange(k), -mass))] = np.arange(k)
    by_score = np.lexsort((cand, -score))
    first_in_cluster = by_score[
        np.lexsort((np.arange(by_score.size), cluster_rank[assign[by_score]]))
    ]
    starts = np.r_[True, np.diff(assign[first_in_cluster]) != 0]
    heads = first_in_cluster[starts]
    rest = by_score[~np.isin(by_score, heads)]

    unit = np.asarray(X[cand], dtype=np.float64)
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    chosen: list[int] = []
    per_class: dict[int, int] = {}

    def take(pool: np.ndarray, check_cap: bool, check_dup: bool) -> None:
        for j in pool:
            if len(chosen) == m:
                return
            if j in taken:
                continue
            if check_cap and pred is not None and per_class.get(int(pred[j]), 0) >= cap:
                continue
            if check_dup and chosen and float((unit[chosen] @ unit[j]).max()) >= duplicate_cosine:
                continue
            chosen.append(int(j))
            taken.add(int(j))
            if pred is not None:
                per_class[int(pred[j])] = per_class.get(int(pred[j]), 0) + 1

    taken: set[int] = set()
    take(heads, True, True)
    take(rest, True, True)
    take(by_score, False, True)
    idx = cand[chosen] if chosen else np.zeros(0, dtype=np.int64)
    if len(chosen) < m:  # candidates exhausted: the best remaining unlabeled items
        extra = unlabeled[order][~np.isin(unlabeled[order], idx)][: m - len(chosen)]
        idx = np.r_[idx, extra]
        sc = np.r_[score[chosen], np.zeros(extra.size)]
        cs = np.r_[sizes[assign[chosen]], np.ones(extra.size, dtype=np.int64)]
        return Pick(idx.astype(np.int64), sc, cs, int(cand.size))
    return Pick(idx.astype(np.int64), score[chosen], sizes[assign[chosen]], int(cand.size))
