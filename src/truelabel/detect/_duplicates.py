"""The ``near_duplicate`` issue type: exact copies (hash) and near copies (kNN radius)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ._base import AuditContext, Detector, DetectorResult, register_detector

__all__ = ["NearDuplicateDetector", "near_duplicate_sets"]


def _exact_groups(features: np.ndarray) -> np.ndarray:
    """Group id per row; rows with identical bytes share an id."""
    rows = np.ascontiguousarray(features)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, inverse = np.unique(view, return_inverse=True)
    return inverse.ravel()


def near_duplicate_sets(
    features: np.ndarray, indices: np.ndarray, distances: np.ndarray, radius: float
) -> np.ndarray:
    """Set id per item (-1 = no duplicate), joining exact copies and kNN pairs within radius."""
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
