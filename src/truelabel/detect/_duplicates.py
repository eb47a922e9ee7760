"""The ``near_duplicate`` issue type: exact copies (hash) and near copies (kNN radius)."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pandas as pd

from .._validation import iter_chunks
from ._base import AuditContext, Detector, DetectorResult, register_detector

__all__ = ["NearDuplicateDetector", "near_duplicate_sets"]


def _hash_multipliers(n_words: int) -> np.ndarray:
    """Fixed random odd 64-bit multipliers, one per 32-bit word of a row."""
    mult = np.random.default_rng(12345).integers(1, 2**63, size=n_words, dtype=np.uint64)
    return mult | np.uint64(1)


def _exact_groups(features: np.ndarray) -> np.ndarray:
    """Group id per row; rows with identical bytes share an id.

    Rows are hashed to 64 bits (a random linear hash of their 32-bit words, streamed in
    chunks), then every member of a hash group is compared with the group's first row,
    so a hash collision can never merge different rows.
    """
    rows = np.ascontiguousarray(features)
    words = rows.view(np.uint32).reshape(rows.shape[0], -1)
    mult = _hash_multipliers(words.shape[1])
    h = np.empty(rows.shape[0], dtype=np.uint64)
    for sl in iter_chunks(rows.shape[0]):
        h[sl] = (words[sl].astype(np.uint64) * mult).sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    leader = first[inverse]
    check = np.flatnonzero(leader != np.arange(rows.shape[0]))
    same = np.empty(check.size, dtype=bool)
    for sl in iter_chunks(check.size):
        c = check[sl]
        same[sl] = (words[c] == words[leader[c]]).all(axis=1)
    clash = check[~same]
    inverse[clash] = inverse.max() + 1 + np.arange(clash.size)
    return inverse


def near_duplicate_sets(
    features: np.ndarray, indices: np.ndarray, distances: np.ndarray, radius: float
) -> np.ndarray:
    """Set id per item (-1 = no duplicate), joining exact copies and kNN pairs within radius."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = features.shape[0]
    rows, cols = np.nonzero(distances <= radius)
    src = [rows]
    dst = [indices[rows, cols]]
    groups = _exact_groups(features)
    order = np.argsort(groups, kind="stable")
    same = groups[order][1:] == groups[order][:-1]
    src.append(order[1:][same])
    dst.append(order[:-1][same])
    a = np.concatenate(src)
    b = np.concatenate(dst)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    in_set = sizes[comp] > 1
    # renumber sets 0..m-1 in order of first appearance
    set_ids = np.full(n, -1, dtype=np.int64)
    if in_set.any():
        _, first = np.unique(comp[in_set], return_inverse=True)
        set_ids[in_set] = first.ravel()
    return set_ids


@register_detector
class NearDuplicateDetector(Detector):
    """Items that are (near) copies of each other.

    Two items are joined when their feature rows are byte-identical or their distance is
    at most ``threshold`` (default 0.13) times the median nearest-neighbour distance;
    sets are connected components. ``near_duplicate_score = 1 - exp(-d1 / median(d1))``
    with ``d1`` the distance to the nearest neighbour (0 for an exact copy).
    """

    name = "near_duplicate"
    requires_all = ("features",)
    settings = MappingProxyType({"threshold": 0.13})

    def detect(self, ctx: AuditContext) -> DetectorResult:
        threshold = float(self.params.get("threshold", 0.13))
        assert ctx.knn is not None and ctx.features is not None
        d1 = ctx.knn.distances[:, 0].astype(np.float64)
        med = float(np.median(d1))
        scale = med if med > 0 else float(d1[d1 > 0].mean()) if (d1 > 0).any() else 1.0
        sets = near_duplicate_sets(
            ctx.features, ctx.knn.indices, ctx.knn.distances, threshold * scale
        )
        cols = pd.DataFrame(
            {
                "is_near_duplicate_issue": sets >= 0,
                "near_duplicate_score": 1.0 - np.exp(-d1 / scale),
                "near_duplicate_set": sets,
            }
        )
        return DetectorResult(
            columns=cols, info={"radius": threshold * scale, "n_sets": int(sets.max() + 1)}
        )
