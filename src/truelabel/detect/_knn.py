"""One shared k-nearest-neighbour graph, built once per audit and read by every detector.

Small sets (``n_items <= exact_max``) get the exact graph: a chunk map over query rows on
the backend, each chunk comparing itself with the reference rows block by block (GEMM
squared distances), keeping and merging its top k + 1 + spare candidates, then re-ranking
them by exact distance, ties by index. Larger sets get an approximate graph from an inverted
file (``method="ivf"``, :mod:`._ivf`, NumPy only): k-means cells of about 1024 rows of a PCA
projection (at most ``max_dims`` dimensions), each row compared exactly (blockwise GEMM) with
the rows of its own cell and of the 2 cells nearest to it, 32 candidates kept. Every row does
a fixed amount of work, so the cost is linear in N; cells are a chunk map on the backend.
``method="hnsw"`` (faiss, ``truelabel[ann]``) remains available: rows inserted and searched
in a spatially coherent order (coarse k-means cells of the projection; index node p is row
``order[p]``), 8-bit codes in the index, each row's search entered at its own node, insertion
on one faiss thread so the graph is deterministic for a seed; its cost per row grows with N
(cache misses, one more level) and its recall is lower than the inverted file's.
Both approximate methods re-rank their candidates by exact distance in the original space,
so distance thresholds (near-duplicates, outliers) keep their meaning.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._progress import progress
from .._spill import scratch
from .._validation import check_choice, check_features, iter_chunks
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..exceptions import MissingDependencyError, ValidationError
from . import _ivf
from ._knn_common import Projection, finish_rows, fit_pca, project_rows, release_free_memory

__all__ = ["KNNGraph", "build_knn_graph"]

KNN_METHODS = ("auto", "exact", "ivf", "hnsw")


@dataclass(frozen=True)
class KNNGraph:
    """Neighbours of every item, self excluded, nearest first.

    Attributes
    ----------
    indices : ndarray of int32, shape (n_items, n_neighbors)
        int64 only above 2**31 - 1 items (4 bytes per neighbour, not 8: at 1e6 items and
        k = 10, 38 MiB less held by every audit).
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


def index_dtype(n_items: int) -> type[np.signedinteger[Any]]:
    """The graph's index type: int32 while every row id fits in it, else int64."""
    return np.int32 if n_items <= np.iinfo(np.int32).max else np.int64


def _faiss() -> Any | None:
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


#: rows of the reference set compared with a query chunk at once (with 1024 query rows,
#: a 32 MiB float32 distance block)
_REF_BLOCK = 8192
#: candidates kept per row beyond k + 1 by the fast (GEMM) distance, re-ranked exactly, so
#: rounding in the fast distance cannot change which neighbours win
_SPARE = 4


def _smallest(d: np.ndarray, i: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``m`` smallest ``d`` (ties: lower index), unsorted."""
    if d.shape[1] > m:
        part = np.argpartition(d, m - 1, axis=1)[:, :m]
        d = np.take_along_axis(d, part, axis=1)
        i = np.take_along_axis(i, part, axis=1)
    return d, i


def _exact_knn_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of one chunk of rows: blockwise top-k merged over the
    reference blocks (fast squared distances), then re-ranked by exact distance."""
    X, sq, k = shared
    q = X[chunk.slice]
    m = min(k + 1 + _SPARE, X.shape[0])
    best_d = np.empty((len(chunk), 0), dtype=np.float32)
    best_i = np.empty((len(chunk), 0), dtype=np.int64)
    for ref in range(0, X.shape[0], _REF_BLOCK):
        stop = min(ref + _REF_BLOCK, X.shape[0])
        d = sq[chunk.slice, None] + sq[None, ref:stop] - 2.0 * (q @ X[ref:stop].T)
        ids = np.broadcast_to(np.arange(ref, stop), d.shape)
        d, ids = _smallest(d.astype(np.float32, copy=False), ids, m)
        best_d, best_i = _smallest(np.hstack([best_d, d]), np.hstack([best_i, ids]), m)
    return finish_rows(X, best_i, chunk.start, k)


#: most rows projected and added to the HNSW index at once (16 MiB of float32 at 64 dims)
_ADD_BLOCK = 65536
#: largest number of k-means cells of the insertion order (cells of ~ n / 256 rows at most)
_ORDER_CELLS = 256


def _coherent_order(
    Xf: np.ndarray, pca: Projection | None, sample: np.ndarray, random_state: int
) -> np.ndarray:
    """A permutation of the rows that keeps near items near each other in memory.

    Coarse k-means (at most ``_ORDER_CELLS`` cells, 8 Lloyd steps on the PCA sample) in the
    projected space; rows are ordered by cell, cells by a greedy nearest-centroid chain, and
    within a cell by the leading projected coordinate, ties by row id. HNSW nodes inserted and
    searched in this order have their graph neighbours close by in the index's storage: the
    working set of a run of consecutive rows stays in cache at 1e6 items.
    """
    n = Xf.shape[0]
    cells = int(min(_ORDER_CELLS, max(1, n // 256)))
    train = project_rows(Xf, sample, pca)
    rng = np.random.default_rng(random_state)
    cent = train[np.sort(rng.choice(train.shape[0], cells, replace=False))].copy()

    def assign(block: np.ndarray) -> np.ndarray:
        """Nearest centroid of each row, 4096 rows at a time (4 MiB distance blocks)."""
        out = np.empty(block.shape[0], dtype=np.int64)
        sq = (cent * cent).sum(axis=1)
        for sl in iter_chunks(block.shape[0], 4096):
            out[sl] = np.argmin(sq[None, :] - 2.0 * (block[sl] @ cent.T), axis=1)
        return out

    for _ in range(8):
        lab = assign(train)
        counts = np.bincount(lab, minlength=cells)
        sums = np.zeros_like(cent, dtype=np.float64)
        np.add.at(sums, lab, train)
        filled = counts > 0
        cent[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    # chain the cells: from cell 0, always on to the nearest cell not yet visited
    sq = (cent * cent).sum(axis=1, dtype=np.float64)
    gap = sq[:, None] + sq[None, :] - 2.0 * (cent.astype(np.float64) @ cent.T)
    rank = np.empty(cells, dtype=np.int64)
    seen = np.zeros(cells, dtype=bool)
    cur = 0
    for r in range(cells):  # over cells (<= 256), not items
        rank[cur], seen[cur] = r, True
        if r + 1 < cells:
            cur = int(np.argmin(np.where(seen, np.inf, gap[cur])))
    cell = np.empty(n, dtype=np.int32)
    lead = np.empty(n, dtype=np.float32)
    for sl in iter_chunks(n, 65536):
        block = project_rows(Xf, sl, pca)
        cell[sl] = rank[assign(block)]
        lead[sl] = block[:, 0]
    return np.lexsort((np.arange(n), lead, cell))


def _search_from_self(faiss: Any, index: Any, q: np.ndarray, start: int, m: int) -> np.ndarray:
    """Candidate neighbours of rows ``start ..`` (projected as ``q``), all already in ``index``:
    HNSW's level-0 beam search (``efSearch`` wide) entered at each row's own node.

    A query that is in the graph needs no greedy descent through the upper levels to find
    where to start: its own node is the best entry point, so this skips that descent (about
    a fifth of the search time at 1e6 items, whose upper levels no longer fit in cache) and
    starts the beam where its neighbours are (recall at least that of a plain search).
    """
    n = q.shape[0]
    entry = np.arange(start, start + n, dtype=np.int32)[:, None]  # faiss storage ids: int32
    entry_d = np.zeros((n, 1), dtype=np.float32)
    dist = np.empty((n, m), dtype=np.float32)
    cand = np.empty((n, m), dtype=np.int64)
    q = np.ascontiguousarray(q, dtype=np.float32)
    sp = faiss.swig_ptr
    index.search_level_0(n, sp(q), m, sp(entry), sp(entry_d), sp(dist), sp(cand), 1, 1)
    return cand


def _blas_threads(n: int) -> Any:
    """Limit BLAS threads while the backend's own threads run (no oversubscription)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def _hnsw_graph(
    faiss: Any,
    Xf: np.ndarray,
    k: int,
    max_dims: int,
    random_state: int,
    out: tuple[np.ndarray, np.ndarray],
    advance: Any,
) -> None:
    """The HNSW graph (see the module docstring), written into ``out`` = (idx, dist)."""
    idx, dist = out
    n = Xf.shape[0]
    pca, sample = fit_pca(Xf, max_dims, random_state)
    # 8-bit codes: a quarter of a float32 copy (candidates are re-ranked exactly)
    dims = min(Xf.shape[1], max_dims)
    index = faiss.IndexHNSWSQ(dims, faiss.ScalarQuantizer.QT_8bit, 16)
    index.hnsw.efConstruction = 40
    index.train(project_rows(Xf, sample, pca))
    # rows are inserted and searched in a spatially coherent order: node p of the
    # index is row order[p] (mapped back exactly below)
    # The first add() call is a stride of that order spanning the whole space (a
    # skeleton: faiss builds each call's upper levels first, and calls that each held
    # only a few cells would cut the links between regions); the rest follow in
    # order, each call inserting near the nodes it links to (cache-friendly).
    coherent = _coherent_order(Xf, pca, sample, random_state)
    calls = -(-n // _ADD_BLOCK)
    rest = np.delete(coherent, np.s_[::calls])
    groups = [coherent[::calls]] + [rest[sl] for sl in iter_chunks(rest.size, _ADD_BLOCK)]
    order = np.concatenate(groups)
    del coherent, rest
    # the projection is added and searched chunk by chunk, never held whole; faiss
    # inserts on one thread (concurrent insertion races on the links: the graph would
    # change from run to run); the search, one query per thread, is deterministic
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for group in groups:
            index.add(project_rows(Xf, group, pca))
    finally:
        faiss.omp_set_num_threads(threads)
    del groups
    index.hnsw.efSearch = max(32, 2 * (k + 1))
    for sl in iter_chunks(n, 8192):
        rows = order[sl]
        pos = _search_from_self(faiss, index, project_rows(Xf, rows, pca), sl.start, k + 1)
        missing = pos < 0
        if missing.any():  # HNSW may return fewer than k+1: pad with the nearest found
            pos = np.where(missing, pos[:, :1], pos)
        idx[rows], dist[rows] = finish_rows(Xf, order[pos], rows, k)
        advance(sl.stop - sl.start)
    del index


def build_knn_graph(
    features: Any,
    *,
    n_neighbors: int = 10,
    method: str = "auto",
    exact_max: int = 20_000,
    max_dims: int = 64,
    random_state: int = 0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> KNNGraph:
    """Build the k-nearest-neighbour graph of ``features`` (self excluded).

    Parameters
    ----------
    features : array of shape (n_items, n_dims)
    n_neighbors : int, default 10
    method : {"auto", "exact", "ivf", "hnsw"}
        ``auto`` is ``exact`` up to ``exact_max`` items and ``ivf`` above (the inverted
        file: linear cost, NumPy only). ``hnsw`` needs faiss (``truelabel[ann]``).
    exact_max : int, default 20000
    max_dims : int, default 64
        ``ivf`` and ``hnsw`` search a PCA projection to this many dimensions (exact
        distances are recomputed afterwards).
    random_state : int, default 0
        Seeds the PCA sample and the k-means cells (the graph is deterministic for a seed).
    backend : Backend, "local" or None, default None
        Runs the exact path's query chunks and the inverted file's projection passes and
        cells (None: threads on every core). ``ivf`` runs BLAS on one thread per worker.
    chunk_size : int or None, default None
        Query rows per chunk (exact path: default 1024; ``ivf``: runs of whole cells of
        about this many rows, default 8192); the graph does not depend on it nor on the
        backend.

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
    for name, value, low in (("exact_max", exact_max, 0), ("max_dims", max_dims, 1)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise ValidationError(name, f"got {value!r}", f"pass an integer >= {low}")
    if chunk_size is not None and (
        not isinstance(chunk_size, int | np.integer)
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        raise ValidationError("chunk_size", f"got {chunk_size!r}", "pass None or an integer >= 1")
    if not isinstance(random_state, int | np.integer) or isinstance(random_state, bool):
        raise ValidationError("random_state", f"got {random_state!r}", "pass an integer seed")
    k = int(n_neighbors)
    faiss = _faiss()
    if method == "auto":
        method = "exact" if n <= exact_max else "ivf"
    if method == "hnsw" and faiss is None:
        raise MissingDependencyError("faiss-cpu", "ann", "the HNSW kNN graph")
    Xf = np.ascontiguousarray(X, dtype=np.float32)
    # the final graph is written chunk by chunk: no (n, k + 1) intermediate copies
    # (in a memory-mapped spill file above the spill threshold: truelabel._spill)
    idx = scratch((n, k), index_dtype(n))
    dist = scratch((n, k), np.float32)
    with progress(n, f"kNN graph ({method}, k={k})") as advance:
        if method == "exact":
            be = get_backend(backend)
            sq = np.einsum("ij,ij->i", Xf, Xf, dtype=np.float64).astype(np.float32)
            chunks = chunk_ranges(n, chunk_size or 1024)
            with _blas_threads(1 if be.n_workers > 1 else max(1, os.cpu_count() or 1)):
                results = be.map(_exact_knn_chunk, chunks, (Xf, sq, k))
                for chunk, (ci, cd) in zip(chunks, results, strict=True):
                    idx[chunk.slice], dist[chunk.slice] = ci, cd
                    advance(len(chunk))
        elif method == "ivf":
            be = get_backend(backend)
            # every cell holds >= m rows; one BLAS thread per worker (the cells' GEMM rounding,
            # hence the graph, is then the same for any backend)
            m = min(max(_ivf._CANDIDATES, k + 1 + _SPARE), n)
            with _blas_threads(1):
                pca, sample = fit_pca(Xf, max_dims, random_state)
                min_rows = max(_ivf._MIN_CELL_ROWS, m)
                cells = _ivf.build_cells(Xf, pca, sample, min_rows, random_state, be)
                release_free_memory()  # the build's freed blocks, before the search's peak
                chunks = _ivf.cell_chunks(cells, chunk_size or 8192)
                shared = (cells, Xf, k, m, _ivf._N_PROBE)
                for rows, ci, cd in be.map(_ivf.search_cells_chunk, chunks, shared):
                    idx[rows], dist[rows] = ci, cd
                    advance(rows.size)
        else:
            assert faiss is not None
            _hnsw_graph(faiss, Xf, k, max_dims, random_state, (idx, dist), advance)
    return KNNGraph(indices=idx, distances=dist, exact=method == "exact")
