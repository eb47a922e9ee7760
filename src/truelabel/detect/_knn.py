"""One shared k-nearest-neighbour graph, built once per audit and read by every detector.

Small sets (``n_items <= exact_max``) get the exact graph (faiss ``IndexFlatL2`` when
installed, else scikit-learn's brute force, both BLAS-backed and chunked). Larger sets get
an approximate HNSW graph (faiss, ``truelabel[ann]``) built on a PCA projection of the
features when they have more than ``max_dims`` dimensions; the distances of the returned
neighbours are then recomputed exactly in the original space, so distance thresholds
(near-duplicates, outliers) keep their meaning. Cost grows as N log N instead of N^2.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._progress import progress
from .._validation import CHUNK_ROWS, check_choice, check_features, iter_chunks
from ..exceptions import MissingDependencyError, ValidationError

__all__ = ["KNNGraph", "build_knn_graph"]

KNN_METHODS = ("auto", "exact", "hnsw")


@dataclass(frozen=True)
class KNNGraph:
    """Neighbours of every item, self excluded, nearest first.

    Attributes
    ----------
    indices : ndarray of int64, shape (n_items, n_neighbors)
    distances : ndarray of float32, shape (n_items, n_neighbors)
        Euclidean distances in the original feature space.
    exact : bool
        Whether the graph is exact or approximate (HNSW).
    """

    indices: np.ndarray
    distances: np.ndarray
    exact: bool

    @property
    def n_neighbors(self) -> int:
        return int(self.indices.shape[1])


def _faiss() -> Any | None:
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


def _drop_self(idx: np.ndarray, dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (wherever it landed) and keep k neighbours."""
    rows = np.arange(idx.shape[0])[:, None]
    is_self = idx == rows
    # when self is absent (ties or approximate search), drop the last column instead
    absent = ~is_self.any(axis=1)
    is_self[absent, -1] = True
    is_self &= np.cumsum(is_self, axis=1) == 1
    keep = ~is_self
    return idx[keep].reshape(idx.shape[0], k), dist[keep].reshape(idx.shape[0], k)


def _exact_distances(X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """||x_i - x_j|| for every (i, idx[i, m]), chunked."""
    out = np.empty(idx.shape, dtype=np.float32)
    step = max(CHUNK_ROWS // max(idx.shape[1], 1), 256)
    for sl in iter_chunks(idx.shape[0], step):
        diff = X[idx[sl]] - X[sl][:, None, :]
        out[sl] = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.float64))
    return out


def _reduce(X: np.ndarray, max_dims: int, random_state: int) -> np.ndarray:
    if X.shape[1] <= max_dims:
        return np.ascontiguousarray(X, dtype=np.float32)
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(random_state)
    sample = X[np.sort(rng.choice(X.shape[0], min(X.shape[0], 20_000), replace=False))]
    pca = PCA(max_dims, svd_solver="randomized", random_state=random_state).fit(sample)
    out = np.empty((X.shape[0], max_dims), dtype=np.float32)
    for sl in iter_chunks(X.shape[0]):
        out[sl] = pca.transform(X[sl])
    return out


def build_knn_graph(
    features: Any,
    *,
    n_neighbors: int = 10,
    method: str = "auto",
    exact_max: int = 20_000,
    max_dims: int = 64,
    random_state: int = 0,
) -> KNNGraph:
    """Build the k-nearest-neighbour graph of ``features`` (self excluded).

    Parameters
    ----------
    features : array of shape (n_items, n_dims)
    n_neighbors : int, default 10
    method : {"auto", "exact", "hnsw"}
        ``auto`` is exact up to ``exact_max`` items, HNSW above when faiss is installed.
    exact_max : int, default 20000
    max_dims : int, default 64
        HNSW searches a PCA projection to this many dimensions (exact distances are
        recomputed afterwards).
    random_state : int, default 0

    Returns
    -------
    KNNGraph

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.detect import build_knn_graph
    >>> g = build_knn_graph(np.array([[0.0], [1.0], [3.0]]), n_neighbors=1)
    >>> g.indices.ravel().tolist(), g.distances.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    method = check_choice("method", method, KNN_METHODS)
    X = check_features(features)
    n = X.shape[0]
    if not isinstance(n_neighbors, int | np.integer) or n_neighbors < 1:
        raise ValidationError("n_neighbors", f"got {n_neighbors!r}", "pass an integer >= 1")
    if n <= n_neighbors:
        raise ValidationError(
            "n_neighbors",
            f"{n_neighbors} neighbours for {n} items",
            f"pass n_neighbors < {n} or more items",
        )
    k = int(n_neighbors)
    faiss = _faiss()
    if method == "auto":
        method = "exact" if n <= exact_max or faiss is None else "hnsw"
        if method == "exact" and n > 4 * exact_max:
            warnings.warn(
                f"exact kNN graph over {n} items grows quadratically; install faiss "
                "(pip install 'truelabel[ann]') for the near-linear HNSW graph",
                RuntimeWarning,
                stacklevel=2,
            )
    if method == "hnsw" and faiss is None:
        raise MissingDependencyError("faiss-cpu", "ann", "the HNSW kNN graph")
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    with progress(n, f"kNN graph ({method}, k={k})") as advance:
        if method == "exact":
            if faiss is not None:
                index = faiss.IndexFlatL2(Xf.shape[1])
                index.add(Xf)
                idx = np.empty((n, k + 1), dtype=np.int64)
                for sl in iter_chunks(n, 4096):
                    _, idx[sl] = index.search(Xf[sl], k + 1)
                    advance(sl.stop - sl.start)
            else:
                from sklearn.neighbors import NearestNeighbors

                nn = NearestNeighbors(n_neighbors=k + 1, algorithm="auto").fit(Xf)
                idx = np.empty((n, k + 1), dtype=np.int64)
                for sl in iter_chunks(n, 4096):
                    idx[sl] = nn.kneighbors(Xf[sl], return_distance=False)
                    advance(sl.stop - sl.start)
        else:
            assert faiss is not None
            Z = _reduce(Xf, max_dims, random_state)
            index = faiss.IndexHNSWFlat(Z.shape[1], 16)
            index.hnsw.efConstruction = 40
            index.add(Z)
            index.hnsw.efSearch = max(32, 2 * (k + 1))
            idx = np.empty((n, k + 1), dtype=np.int64)
            for sl in iter_chunks(n, 8192):
                _, idx[sl] = index.search(Z[sl], k + 1)
                advance(sl.stop - sl.start)
        missing = idx < 0
        if missing.any():  # HNSW may return fewer than k+1: pad with the nearest found
            idx = np.where(missing, idx[:, :1], idx)
        dist = _exact_distances(Xf, idx)
        order = np.argsort(dist, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
        idx, dist = _drop_self(idx, dist, k)
    return KNNGraph(indices=idx, distances=dist, exact=method == "exact")
