"""The exact kNN graph as a chunk map: blockwise top-k merged, equal to brute force."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import build_knn_graph
from truelabel.backend import LocalBackend
from truelabel.detect import _knn


def _brute_force(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 distance matrix, self excluded, ordered by (distance, index)."""
    X = X.astype(np.float64)
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(X)), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.mark.parametrize(
    "backend,chunk_size,ref_block",
    [(LocalBackend(1), None, 8192), (LocalBackend(2), 37, 50), (LocalBackend(2), 1, 7)],
)
def test_exact_graph_equals_brute_force_for_every_chunking(
    monkeypatch, backend, chunk_size, ref_block
):
    monkeypatch.setattr(_knn, "_REF_BLOCK", ref_block)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    g = build_knn_graph(X, n_neighbors=5, method="exact", backend=backend, chunk_size=chunk_size)
    want_i, want_d = _brute_force(X, 5)
    np.testing.assert_array_equal(g.indices, want_i)
    np.testing.assert_allclose(g.distances, want_d, rtol=1e-6)
    assert g.exact


def test_exact_graph_with_duplicates_drops_self_and_breaks_ties_by_index(monkeypatch):
    monkeypatch.setattr(_knn, "_REF_BLOCK", 4)
    X = np.repeat(np.arange(5.0), 3)[:, None] * np.ones((1, 2))  # 5 points, 3 copies each
    g = build_knn_graph(X, n_neighbors=2, method="exact", chunk_size=4)
    assert not (g.indices == np.arange(15)[:, None]).any()
    np.testing.assert_array_equal(g.distances, 0.0)
    # each item's neighbours are its two copies, lower index first
    np.testing.assert_array_equal(g.indices[0], [1, 2])
    np.testing.assert_array_equal(g.indices[4], [3, 5])
