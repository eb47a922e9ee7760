"""Approximate kNN candidates from an inverted file of constant-size cells: cost linear in N.

The rows' PCA projection is cut into k-means cells of about ``_CELL_ROWS`` rows, in two
levels (top cells of about ``_TOP_ROWS`` rows, each split into cells trained and assigned on
its own rows), so training and assigning a row costs about the same whatever N. Cells
smaller than ``_MIN_CELL_ROWS`` (and than the candidate count) are merged into their nearest
neighbour. The projection is stored once, cell after cell.

Each query row is compared exactly (blockwise GEMM, in the projection) with the rows of its
own cell and of the ``_N_PROBE - 1`` cells whose centroids are nearest to it among the
``_CELL_LINKS - 1`` cells nearest its own; it keeps its ``m`` best candidates, which the
caller re-ranks by exact distance in the original space. The own cell gives each row a
threshold (its m-th best there), so the other cells' blocks only pass the few rows below it.
Each row's work is a fixed number of cells of a fixed size: the cost per row does not depend
on N (only the top-level assignment, ~N/65536 centroids per row, and the cell graph, about
(N/1024)^2 centroid pairs, grow faster; both stay well under 1% of the work up to 1e8 rows).
The search is a chunk map over runs of whole cells; its GEMMs are per cell (and in fixed
512-row sub-blocks), so rounding, hence the graph, does not depend on the backend or the
chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._spill import bucket_positions, scratch
from .._validation import iter_chunks
from ..backend import Backend, Chunk, LocalBackend
from ._knn_common import Projection, finish_rows, project_rows

__all__ = ["Cells", "build_cells", "cell_chunks", "search_cells_chunk"]

#: target rows per cell (a query compares itself with about _N_PROBE x _CELL_ROWS rows)
_CELL_ROWS = 1024
#: cells with fewer rows are merged into their nearest neighbour
_MIN_CELL_ROWS = 256
#: target rows per top-level cell (each split into cells on its own rows)
_TOP_ROWS = 65536
#: cells compared with each row, its own included
_N_PROBE = 3
#: a row's probes are chosen among its own cell's nearest cells (own included)
_CELL_LINKS = 16
#: projected candidates per row re-ranked by exact distance (at least k + 5)
_CANDIDATES = 32
#: Lloyd steps of each k-means
_STEPS = 8
#: query rows per GEMM sub-block
_SUB = 512
#: rows of a sub-block selected (argpartition) at once
_PART = 128
#: cells whose rows are gathered (as float64) at once to sum them
_MEAN_CELLS = 4


@dataclass(frozen=True)
class Cells:
    """The inverted file: rows grouped by cell ("positions"), cells in a fixed order.

    Attributes
    ----------
    order : int64 (n,)
        Row id at each position.
    offsets : int64 (n_cells + 1,)
        Cell c holds positions ``offsets[c]:offsets[c + 1]``.
    centroids : float32 (n_cells, d)
    links : int64 (n_cells, L)
        Each cell first, then its L - 1 nearest other cells (by centroid distance, ties by id).
    z : float32 (n, d)
        The projection of the row at each position.
    half_sq : float32 (n,)
        Half the squared norm of each ``z`` row.
    """

    order: np.ndarray
    offsets: np.ndarray
    centroids: np.ndarray
    links: np.ndarray
    z: np.ndarray
    half_sq: np.ndarray


def _half_sq(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Half the squared norm of each row (float64 sums, stored as float32), 65536 rows at a
    time into ``out`` when given (row sums do not depend on the blocks)."""
    if out is None:
        return (0.5 * np.einsum("ij,ij->i", z, z, dtype=np.float64)).astype(np.float32)
    for sl in iter_chunks(z.shape[0], 65536):
        out[sl] = 0.5 * np.einsum("ij,ij->i", z[sl], z[sl], dtype=np.float64)
    return out


#: rows sorted at once by :func:`_group_order`
_ORDER_BLOCK = 1 << 20


def _group_order(lab: np.ndarray, n_groups: int) -> np.ndarray:
    """``np.argsort(lab, kind="stable")`` for labels in ``[0, n_groups)``: the counting sort
    of :func:`truelabel._spill.bucket_positions` (a scratch array, spilled when large; the
    temporaries one block)."""
    order, _ = bucket_positions(
        lab.size, lambda rows: np.asarray(lab[rows]), n_groups, block=_ORDER_BLOCK
    )
    return order


def _nearest(z: np.ndarray, cent: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row (ties: lower id), in 4096-row sub-blocks."""
    hs = _half_sq(cent)
    out = np.empty(z.shape[0], dtype=np.int64)
    for sl in iter_chunks(z.shape[0], 4096):
        out[sl] = np.argmin(hs[None, :] - z[sl] @ cent.T, axis=1)
    return out


def _means(
    z: np.ndarray, lab: np.ndarray, prev: np.ndarray, srt: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each cell's rows (float64 sums; an empty cell keeps ``prev``), and the counts.
    ``srt``: the stable argsort of ``lab`` if already known. The rows are gathered and
    widened a few cells at a time (each cell summed alone, in the same order: the same sums
    as one pass over the sorted copy, without its two full-size temporaries)."""
    counts = np.bincount(lab, minlength=prev.shape[0])
    full = counts > 0
    if srt is None:
        srt = np.argsort(lab, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[full]
    stops = np.append(starts[1:], lab.size)
    sums = np.empty((starts.size, z.shape[1]), dtype=np.float64)
    for sl in iter_chunks(starts.size, _MEAN_CELLS):
        a, b = int(starts[sl.start]), int(stops[sl.stop - 1])
        sums[sl] = np.add.reduceat(z[srt[a:b]].astype(np.float64), starts[sl] - a, axis=0)
    out = prev.copy()
    out[full] = (sums / counts[full, None]).astype(np.float32)
    return out, counts


def _kmeans(train: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``_STEPS`` Lloyd steps from k distinct training rows."""
    cent = train[np.sort(rng.choice(train.shape[0], k, replace=False))].copy()
    for _ in range(_STEPS):
        cent, _ = _means(train, _nearest(train, cent), cent)
    return cent


def _kept(counts: np.ndarray, min_rows: int) -> np.ndarray:
    """Cells with at least ``min_rows`` rows, and the largest one in any case."""
    keep = counts >= min_rows
    keep[np.argmax(counts)] = True
    return keep


def _merge_small(
    z: np.ndarray, lab: np.ndarray, cent: np.ndarray, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Send the rows of cells below ``min_rows`` to the nearest remaining cell (the largest
    cell stays if all are small); labels renumbered 0.. over the remaining cells."""
    keep = _kept(np.bincount(lab, minlength=cent.shape[0]), min_rows)
    if not keep.all():
        kept = np.flatnonzero(keep)
        moved = ~keep[lab]
        lab = lab.copy()
        lab[moved] = kept[_nearest(z[moved], cent[kept])]
    return (np.cumsum(keep) - 1)[lab], cent[keep]


def _top_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, Projection | None, np.ndarray]
) -> np.ndarray:
    """Nearest top-level centroid of rows ``chunk``, projected and assigned 4096 rows at a time
    (the blocks ``project_rows`` and ``_nearest`` use: the same labels, no chunk-sized copy)."""
    X, pca, top = shared
    out = np.empty(len(chunk), dtype=np.int64)
    for sl in iter_chunks(len(chunk), 4096):
        out[sl] = _nearest(
            project_rows(X, slice(chunk.start + sl.start, chunk.start + sl.stop), pca), top
        )
    return out


def _split_chunk(
    chunk: Chunk, shared: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cells of top-level cell ``chunk.index``: its rows (ascending ids) projected, k-means on
    a sample of them (seeded by the cell's index), small cells merged, then sorted by cell.
    Returns the row ids in cell order, the projection (in ``rows`` order) and the order that
    sorts it by cell (the caller gathers it straight into place: no sorted copy here), the
    counts in cell order, and the centroids.

    ``shared`` is ``(X, pca, members, min_rows, seed)``, optionally followed by ``scratch``,
    an array of shape (slots, >= rows, d): the projection is then written into (and returned
    as a view of) slot ``chunk.index % slots`` rather than a new array (the same values)."""
    X, pca, members, min_rows, seed = shared[:5]
    scratch = shared[5] if len(shared) > 5 else None
    rows = members[chunk.index]
    out = None if scratch is None else scratch[chunk.index % scratch.shape[0], : rows.size]
    z = project_rows(X, rows, pca, out=out)
    cells = max(1, round(rows.size / _CELL_ROWS))
    rng = np.random.default_rng([seed, chunk.index])
    train = z[np.sort(rng.choice(rows.size, min(rows.size, 64 * cells), replace=False))]
    cent = _kmeans(train, cells, rng)
    lab, cent = _merge_small(z, _nearest(z, cent), cent, min_rows)
    srt = np.argsort(lab, kind="stable")
    cent, counts = _means(z, lab, cent, srt)
    return rows[srt], z, srt, counts, cent


#: cell-to-cell distances computed at once by :func:`_links` (4 MiB of float32; with the
#: argpartition's int64 ids about 16 MiB, the same at 1e6 rows as at 1e8)
_LINK_BLOCK = 1 << 20


def _links(cent: np.ndarray, n_links: int) -> np.ndarray:
    """Each cell, then its ``n_links - 1`` nearest other cells (ties by id), a block of cells
    at a time: at most 1024 and at most ``_LINK_BLOCK / n`` (the block of distances, and its
    int64 argpartition, stay bounded as the number of cells grows with N; rows are
    independent, so the links do not depend on the block)."""
    n = cent.shape[0]
    n_links = min(n_links, n)
    hs = _half_sq(cent)
    out = np.empty((n, n_links), dtype=np.int64)
    for sl in iter_chunks(n, max(1, min(1024, _LINK_BLOCK // max(n, 1)))):
        d = hs[None, :] - cent[sl] @ cent.T
        d[np.arange(d.shape[0]), np.arange(sl.start, sl.stop)] = -np.inf
        ids = np.broadcast_to(np.arange(n), d.shape)
        if n > n_links:
            ids = np.argpartition(d, n_links - 1, axis=1)[:, :n_links]
        dd = np.take_along_axis(d, ids, axis=1)
        out[sl] = np.take_along_axis(ids, np.lexsort((ids, dd), axis=1), axis=1)
    return out


def build_cells(
    X: np.ndarray,
    pca: Projection | None,
    sample: np.ndarray,
    min_rows: int,
    random_state: int,
    backend: Backend,
) -> Cells:
    """Two-level k-means cells of the projection of ``X`` (see the module docstring); the
    projection passes run on ``backend`` in fixed chunks (same cells for any backend)."""
    n = X.shape[0]
    n_top = int(min(max(1, round(n / _TOP_ROWS)), sample.size // 64 or 1))
    top_lab = scratch(n, np.int64, fill=0)
    if n_top > 1:
        rng = np.random.default_rng([random_state, 1 << 20])
        top = _kmeans(project_rows(X, sample, pca), n_top, rng)
        chunks = [Chunk(i, s.start, s.stop) for i, s in enumerate(iter_chunks(n, 65536))]
        for c, lab in zip(chunks, backend.map(_top_chunk, chunks, (X, pca, top)), strict=True):
            top_lab[c.slice] = lab
        keep = _kept(np.bincount(top_lab, minlength=n_top), min_rows)
        if not keep.all():  # rows of tiny top cells join the nearest remaining one
            blocks = list(iter_chunks(n, _ORDER_BLOCK))
            small = np.concatenate([b.start + np.flatnonzero(~keep[top_lab[b]]) for b in blocks])
            kept = np.flatnonzero(keep)
            top_lab[small] = kept[_nearest(project_rows(X, small, pca), top[kept])]
            renumber = np.cumsum(keep) - 1
            for b in blocks:  # in place, a block at a time
                top_lab[b] = renumber[top_lab[b]]
            n_top = int(keep.sum())
    srt = _group_order(top_lab, n_top)
    members = np.split(srt, np.cumsum(np.bincount(top_lab, minlength=n_top))[:-1])
    del srt, top_lab
    # the arrays that grow with n are scratch arrays: memory-mapped files above the spill
    # threshold (truelabel._spill), so the build's anonymous memory is its chunks
    order = scratch(n, np.int64)
    z_all: np.ndarray | None = None
    counts_all, cents = [], []
    pos = 0
    chunks = [Chunk(t, t, t + 1) for t in range(n_top)]
    # one top cell per worker at a time: each result holds its cell's projection (16 MiB),
    # so a deeper queue of finished results would only add to the peak next to z_all
    per_batch = max(1, backend.n_workers)
    batches = [chunks[sl] for sl in iter_chunks(n_top, per_batch)]
    # a local backend's workers project into one preallocated slot each (a batch's chunks
    # have consecutive ids, so distinct slots; the next batch starts after the last result
    # was gathered): no ~16 MiB array per top cell made on a worker and freed here, whose
    # free would raise glibc's mmap threshold and leave its later copies in the workers'
    # heaps (about 100 MiB held at 1e6 rows that malloc_trim does not return)
    dims = X.shape[1] if pca is None else pca.components.shape[1]
    widest = max(m.size for m in members)
    # (a scratch array: the widest top cell grows slowly with n, 96k rows at 1e6 and 175k at
    # 1e7, so the slots, 49 and 90 MB at 64 dims, are spill files rather than anonymous)
    slots = (
        scratch((min(per_batch, n_top), widest, dims), np.float32)
        if isinstance(backend, LocalBackend)
        else None
    )
    shared = (X, pca, members, min_rows, random_state, slots)
    results = (r for batch in batches for r in backend.map(_split_chunk, batch, shared))
    for rows, z, srt, counts, cent in results:
        if z_all is None:
            z_all = scratch((n, z.shape[1]), np.float32)
        order[pos : pos + rows.size] = rows
        np.take(z, srt, axis=0, out=z_all[pos : pos + rows.size])
        del z, srt  # the in-flight chunks hold the only other copies (or the scratch slot)
        pos += rows.size
        counts_all.append(counts)
        cents.append(cent)
    assert z_all is not None
    del slots, shared
    centroids = np.vstack(cents)
    offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts_all))]).astype(np.int64)
    return Cells(
        order=order,
        offsets=offsets,
        centroids=centroids,
        links=_links(centroids, _CELL_LINKS),
        z=z_all,
        half_sq=_half_sq(z_all, scratch(n, np.float32)),
    )


def cell_chunks(cells: Cells, rows_per_chunk: int) -> list[Chunk]:
    """Runs of whole cells, a new run starting at the first cell past each multiple of
    ``rows_per_chunk`` positions (``Chunk.start``/``stop`` are cell ids)."""
    first = cells.offsets[:-1] // rows_per_chunk
    starts = np.flatnonzero(np.diff(first, prepend=-1))
    stops = np.append(starts[1:], first.size)
    return [Chunk(i, int(a), int(b)) for i, (a, b) in enumerate(zip(starts, stops, strict=True))]


def _cell_candidates(cells: Cells, c: int, m: int, n_probe: int) -> np.ndarray:
    """Positions of the ``m`` best candidates of each row of cell ``c`` (smallest projected
    distance; unordered) among its own cell and its probed cells, shape (rows, m).
    Every cell holds at least ``m`` rows (see ``build_cells``'s ``min_rows``)."""
    z, hs, off = cells.z, cells.half_sq, cells.offsets
    a, b = int(off[c]), int(off[c + 1])
    zq, nq = z[a:b], b - a
    # h(q, r) = |r|^2 / 2 - q.r orders each row's candidates as the squared distance does
    own_h = np.empty((nq, m), dtype=np.float32)
    own_p = np.empty((nq, m), dtype=np.int64)
    for sl in iter_chunks(nq, _SUB):
        g = zq[sl] @ zq.T
        np.subtract(hs[None, a:b], g, out=g)  # in place: the same values, no second block
        # the selection is row by row, so done on _PART rows at a time: argpartition's int64
        # index block (8 bytes per row pair, 12 MiB for a 512-row block of a 2930-row cell)
        # stays a quarter of that, with the same result
        for part in iter_chunks(g.shape[0], _PART):
            gp, out = g[part], slice(sl.start + part.start, sl.start + part.stop)
            ids = np.argpartition(gp, m - 1, axis=1)[:, :m] if nq > m else np.indices(gp.shape)[1]
            own_h[out], own_p[out] = np.take_along_axis(gp, ids, axis=1), a + ids
        del g, gp, ids  # before the next block's product: one block alive at a time
    thr = own_h.max(axis=1)  # each row's m-th best so far: other cells pass only rows below
    qs: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    hh: list[np.ndarray] = []
    others = cells.links[c, 1:]
    n_other = min(n_probe - 1, others.size)
    if n_other > 0:
        cent = cells.centroids[others]
        near = np.argsort(_half_sq(cent)[None, :] - zq @ cent.T, axis=1, kind="stable")
        probe = others[near[:, :n_other]].ravel()
        qid = np.repeat(np.arange(nq), n_other)
        srt = np.argsort(probe, kind="stable")
        probe, qid = probe[srt], qid[srt]
        cuts = np.flatnonzero(np.diff(probe)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, probe.size], strict=True):
            ja, jb = int(off[probe[lo]]), int(off[probe[lo] + 1])
            for sl in iter_chunks(hi - lo, _SUB):
                q = qid[lo + sl.start : lo + sl.stop]
                g = zq[q] @ z[ja:jb].T
                np.subtract(hs[None, ja:jb], g, out=g)
                r, col = np.nonzero(g < thr[q, None])
                qs.append(q[r])
                ps.append(ja + col)
                hh.append(g[r, col])
                del g, r, col  # likewise
    if not qs:
        return own_p
    # the rows' own m candidates and the other cells' (few) passes side by side, padded
    qi = np.concatenate(qs)
    srt = np.argsort(qi, kind="stable")
    qi = qi[srt]
    slot = m + np.arange(qi.size) - np.searchsorted(qi, np.arange(nq))[qi]
    width = int(slot.max(initial=m - 1)) + 1
    h_all = np.full((nq, width), np.inf, dtype=np.float32)
    p_all = np.zeros((nq, width), dtype=np.int64)
    h_all[:, :m], p_all[:, :m] = own_h, own_p
    h_all[qi, slot], p_all[qi, slot] = np.concatenate(hh)[srt], np.concatenate(ps)[srt]
    best = np.argpartition(h_all, m - 1, axis=1)[:, :m] if width > m else np.indices(own_p.shape)[1]
    return np.take_along_axis(p_all, best, axis=1)


def search_cells_chunk(
    chunk: Chunk, shared: tuple[Cells, np.ndarray, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of cells ``chunk.start:chunk.stop`` (ids), and their k nearest neighbours among
    their candidates, re-ranked by exact distance in ``X`` (ids, distances)."""
    cells, X, k, m, n_probe = shared
    a, b = int(cells.offsets[chunk.start]), int(cells.offsets[chunk.stop])
    cand = np.empty((b - a, m), dtype=np.int64)
    for c in range(chunk.start, chunk.stop):  # over cells (~1000 rows each), not rows
        cand[cells.offsets[c] - a : cells.offsets[c + 1] - a] = _cell_candidates(
            cells, c, m, n_probe
        )
    rows = cells.order[a:b]
    idx, dist = finish_rows(X, cells.order[cand], rows, k)
    return rows, idx, dist
