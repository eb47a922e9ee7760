"""The ``near_duplicate`` issue type: pairs judged in the original space, joined by union-find.

Text (and unit-norm embeddings): a pair is a near-duplicate when the exact cosine of the
original rows (raw TF-IDF over every word uni- and bigram) is at least ``threshold``
(default 0.95). Candidates are the neighbours of :func:`original_neighbors` plus rows with
identical content (a 64-bit row hash). Plain tabular features keep the Euclidean rule:
distance at most ``threshold`` (default 0.13) times the median nearest-neighbour distance,
or byte-identical rows. Sets are the connected components of the accepted pairs, built as a
chunk map: each chunk reduces its pairs to a spanning forest, forests are merged.
"""

from __future__ import annotations

from functools import partial
from itertools import pairwise
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._spill import bucket_positions, scratch
from .._validation import check_choice, iter_chunks
from ..backend import Backend, Chunk, chunk_ranges, map_reduce
from ..exceptions import ValidationError
from ._base import AuditContext, Detector, DetectorResult, register_detector
from ._original_space import row_cosines

__all__ = ["NearDuplicateDetector", "near_duplicate_sets"]

#: default cosine similarity (original space) at or above which two texts are near-duplicates
COSINE_THRESHOLD = 0.95
#: default Euclidean radius, as a fraction of the median nearest-neighbour distance
RADIUS_FRACTION = 0.13

_Forest = tuple[np.ndarray, np.ndarray]

#: 32-bit words of the features hashed per block by _exact_groups (16 MiB as uint64)
_HASH_BLOCK_WORDS = 1 << 21
#: _exact_leaders: about 2**_BUCKET_BITS rows per hash bucket and per sorted run of buckets
_BUCKET_BITS = 16


def _hash_multipliers(n_words: int) -> np.ndarray:
    """Fixed random odd 64-bit multipliers, one per 32-bit word of a row."""
    mult = np.random.default_rng(12345).integers(1, 2**63, size=n_words, dtype=np.uint64)
    return mult | np.uint64(1)


def _row_hashes(words: np.ndarray) -> np.ndarray:
    """64-bit hash of each row of 32-bit words (a random linear hash, streamed in blocks of
    about 2**21 words, so the 64-bit temporary is 16 MiB whatever the size); a scratch array."""
    mult = _hash_multipliers(words.shape[1])
    step = max(1, _HASH_BLOCK_WORDS // max(words.shape[1], 1))
    h = scratch(words.shape[0], np.uint64)
    for sl in iter_chunks(words.shape[0], step):
        block = words[sl].astype(np.uint64)
        block *= mult  # in place: wraps modulo 2**64 exactly as the out-of-place product
        h[sl] = block.sum(axis=1, dtype=np.uint64)
    return h


def _exact_groups(features: np.ndarray) -> np.ndarray:
    """Group id per row; rows with identical bytes share an id.

    Rows are hashed to 64 bits (:func:`_row_hashes`), then every member of a hash group is
    compared with the group's first row, so a hash collision can never merge different rows.
    """
    rows = np.ascontiguousarray(features)
    words = rows.view(np.uint32).reshape(rows.shape[0], -1)
    step = max(1, _HASH_BLOCK_WORDS // max(words.shape[1], 1))
    h = _row_hashes(words)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    del h
    inverse = inverse.ravel()
    leader = first[inverse]
    check = np.flatnonzero(leader != np.arange(rows.shape[0]))
    same = np.empty(check.size, dtype=bool)
    for sl in iter_chunks(check.size, step):
        c = check[sl]
        same[sl] = (words[c] == words[leader[c]]).all(axis=1)
    clash = check[~same]
    inverse[clash] = inverse.max() + 1 + np.arange(clash.size)
    return inverse


def _bucket_of(h: np.ndarray, bits: int) -> np.ndarray:
    """The top ``bits`` bits of 64-bit hashes, as bucket numbers (0 when ``bits`` is 0)."""
    if bits == 0:
        return np.zeros(h.shape[0], dtype=np.intp)
    return (h >> np.uint64(64 - bits)).astype(np.intp)


def _bucket_rows(h: np.ndarray, bits: int, rows: slice) -> np.ndarray:
    """:func:`_bucket_of` the hashes of a slice of rows."""
    return _bucket_of(h[rows], bits)


def _exact_leaders(features: np.ndarray) -> np.ndarray:
    """First row with the same bytes, per row (``_leaders(_exact_groups(features))``),
    with memory bounded by blocks: int64, a scratch array (a spill file when large).

    Rows are hashed (:func:`_row_hashes`, a scratch array) and partitioned, block by block, into
    buckets by the hash's top bits (about 2**:data:`_BUCKET_BITS` rows per bucket; the counting sort
    :func:`truelabel._spill.bucket_positions`), keeping row order within a
    bucket (a scratch array of row numbers); each run of whole buckets is then sorted by hash
    on its own (stable, so a hash group's first row is its smallest), and every member of a
    hash group is compared with that first row, so a hash collision never joins different rows:
    a member that differs leads itself, as in :func:`_exact_groups`. No array of the full size
    other than these three is made, so nothing beyond blocks lives in anonymous memory.
    """
    rows = np.ascontiguousarray(features)
    n = rows.shape[0]
    words = rows.view(np.uint32).reshape(n, -1)
    step = max(1, _HASH_BLOCK_WORDS // max(words.shape[1], 1))
    block = 1 << _BUCKET_BITS
    h = _row_hashes(words)
    bits = min(63, max(0, (max(n, 1) - 1).bit_length() - _BUCKET_BITS))
    # row numbers, bucket by bucket, in row order within one (a counting sort by bucket)
    part, starts = bucket_positions(n, partial(_bucket_rows, h, bits), 1 << bits, block=block)
    leader = scratch(n, np.int64)
    # runs of whole buckets of about `block` rows: a hash group never spans two runs
    cuts = np.unique(np.searchsorted(starts, np.arange(0, n, block), side="right") - 1)
    edges = np.append(starts[cuts], n)
    for lo, hi in pairwise(edges.tolist()):
        r = part[lo:hi]
        hh = h[r]
        order = np.argsort(hh, kind="stable")  # hash, then row (rows are in order)
        hs, rs = hh[order], r[order]
        new = np.ones(hs.size, dtype=bool)
        np.not_equal(hs[1:], hs[:-1], out=new[1:])
        first = rs[new]
        leader[rs] = first[np.cumsum(new) - 1]
    del part, h
    for sl in iter_chunks(n, step):
        own = np.arange(sl.start, sl.stop)
        c = own[leader[sl] != own]
        differ = c[~(words[c] == words[leader[c]]).all(axis=1)]
        leader[differ] = differ  # a hash collision: not a copy of its group's first row
    return leader


def _float32_at_most(x: float) -> np.float32:
    """The largest float32 <= ``x``: for float32 ``d``, ``d <= x`` exactly when ``d <= it``."""
    r = np.float32(x)
    if float(r) > x:
        r = np.nextafter(r, np.float32(-np.inf))
    return r


def _sparse_row_hash(m: sp.csr_matrix) -> np.ndarray:
    """64-bit hash of each CSR row's (column, value) entries; empty rows get distinct ids."""
    mult = _hash_multipliers(2)
    cols = m.indices.astype(np.uint64)
    vals = np.ascontiguousarray(m.data, dtype=np.float32).view(np.uint32).astype(np.uint64)
    per_entry = (cols * mult[0]) ^ (vals * mult[1] + cols)
    csum = np.concatenate([[np.uint64(0)], np.cumsum(per_entry, dtype=np.uint64)])
    h = csum[m.indptr[1:]] - csum[m.indptr[:-1]]
    empty = np.flatnonzero(np.diff(m.indptr) == 0)
    h[empty] = np.uint64(2**63) + empty.astype(np.uint64)  # never grouped
    return h


def _leaders(groups: np.ndarray) -> np.ndarray:
    """First row of each group, per row (a row alone in its group leads itself)."""
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def _forest(a: np.ndarray, b: np.ndarray) -> _Forest:
    """Canonical spanning forest of the pairs (a, b): every non-root node -> its set's min."""
    from scipy.sparse.csgraph import connected_components

    if a.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    inv = inv.ravel()
    graph = sp.coo_matrix(
        (np.ones(a.size, dtype=np.int8), (inv[: a.size], inv[a.size :])),
        shape=(nodes.size, nodes.size),
    )
    n_comp, comp = connected_components(graph, directed=False)
    root = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(root, comp, nodes)
    r = root[comp]
    keep = nodes != r
    return nodes[keep].astype(np.int64), r[keep]


def _merge_forests(f: _Forest, g: _Forest) -> _Forest:
    return _forest(np.concatenate([f[0], g[0]]), np.concatenate([f[1], g[1]]))


def _pairs_chunk(chunk: Chunk, shared: dict[str, Any]) -> _Forest:
    """Accepted pairs of the chunk's rows, reduced to a spanning forest."""
    sl = chunk.slice
    rows, cols = np.nonzero(shared["similarities"][sl] >= shared["threshold"])
    a = [rows + chunk.start]
    b = [shared["indices"][sl][rows, cols]]
    if shared["leaders"] is not None:
        lead = shared["leaders"][sl]
        own = np.arange(chunk.start, chunk.stop)
        a.append(own[lead != own])
        b.append(lead[lead != own])
    return _forest(np.concatenate(a).astype(np.int64), np.concatenate(b).astype(np.int64))


def near_duplicate_sets(
    indices: np.ndarray,
    similarities: np.ndarray,
    threshold: float,
    *,
    leaders: np.ndarray | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Set id per item (-1 = no duplicate): components of the accepted pairs.

    Parameters
    ----------
    indices : ndarray of int, shape (n_items, k)
        Candidate partners of each item.
    similarities : ndarray, shape (n_items, k)
        Similarity to each candidate; a pair is accepted when it is ``>= threshold``
        (pass negated distances and a negated radius for a distance rule).
    threshold : float
    leaders : ndarray of int, shape (n_items,), optional
        Extra accepted pairs ``(i, leaders[i])`` (exact copies); ``leaders[i] == i`` adds none.
    backend : Backend, "local" or None
    chunk_size : int, optional
        Rows per chunk; the sets do not depend on it.

    Returns
    -------
    ndarray of int64, shape (n_items,)
        Sets numbered 0, 1, ... in order of their first item.

    Examples
    --------
    >>> import numpy as np
    >>> idx = np.array([[1], [0], [3], [2], [3]])
    >>> sim = np.array([[0.99], [0.99], [0.90], [0.97], [0.5]])
    >>> near_duplicate_sets(idx, sim, 0.95, backend="local").tolist()
    [0, 0, 1, 1, -1]
    """
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":  # int32 graphs are used as they are (no int64 copy)
        idx = idx.astype(np.int64)
    n = idx.shape[0]
    # no leaders: no extra pairs (not an arange of every item, 8 bytes each)
    lead = None if leaders is None else np.asarray(leaders, dtype=np.int64)
    shared = {"indices": idx, "similarities": similarities, "threshold": threshold, "leaders": lead}
    chunks = chunk_ranges(n, chunk_size)
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    child, root = map_reduce(
        _pairs_chunk, chunks, shared, combine=_merge_forests, backend=backend, initial=empty
    )
    set_ids = scratch(n, np.int64, fill=-1)  # an output column: a spill file when large
    roots = np.unique(root)  # a set's root is its smallest item: numbering by first item
    set_ids[roots] = np.arange(roots.size)
    set_ids[child] = set_ids[root]
    return set_ids


def _in_a_set(sets: np.ndarray) -> np.ndarray:
    """``sets >= 0`` as a scratch array (a spill file when large)."""
    out = scratch(sets.shape, bool)
    np.greater_equal(sets, 0, out=out)
    return out


@register_detector
class NearDuplicateDetector(Detector):
    """Items that are (near) copies of each other.

    Settings: ``threshold`` and ``metric`` (``"auto"``, ``"cosine"``, ``"euclidean"``).
    With ``cosine`` (auto when raw rows such as text TF-IDF are given, or the features are
    unit-norm embeddings) two items are joined when the exact cosine of their original rows
    is at least ``threshold`` (default 0.95); ``near_duplicate_score = 1 - max cosine``
    (0 for an exact copy). With ``euclidean`` they are joined when their distance is at most
    ``threshold`` (default 0.13) times the median nearest-neighbour distance or the rows are
    byte-identical; ``near_duplicate_score = 1 - exp(-d1 / median(d1))``. Sets are connected
    components.
    """

    name = "near_duplicate"
    requires_all = ("features",)
    # threshold None = the metric's default (0.95 cosine, 0.13 euclidean); its range is
    # checked by _threshold once the metric is known
    settings = MappingProxyType({"metric": "auto", "threshold": None})

    def detect(self, ctx: AuditContext) -> DetectorResult:
        metric = check_choice("metric", self.params.get("metric", "auto"), _METRICS)
        if metric == "cosine" or (metric == "auto" and ctx.uses_cosine):
            return self._cosine(ctx)
        return self._euclidean(ctx)

    def _threshold(self, default: float, low: float, high: float) -> float:
        t = self.params.get("threshold")
        t = default if t is None else t
        if isinstance(t, bool) or not isinstance(t, int | float) or not low < t <= high:
            raise ValidationError(
                "threshold", f"must be in ({low}, {high}], got {t!r}", f"pass e.g. {default}"
            )
        return float(t)

    def _cosine(self, ctx: AuditContext) -> DetectorResult:
        threshold = self._threshold(COSINE_THRESHOLD, 0.0, 1.0)
        graph = ctx.original_graph
        assert graph is not None
        unit = graph.unit
        lead = _leaders(_sparse_row_hash(unit)) if sp.issparse(unit) else _exact_leaders(unit)
        # the rows led by another, the cosine to it and the leaders kept: blocks into scratch
        # arrays (spill files when large), the values of the whole-array expressions
        n = lead.size
        copy = np.concatenate(
            [
                sl.start + np.flatnonzero(lead[sl] != np.arange(sl.start, sl.stop))
                for sl in iter_chunks(n, 1 << 16)
            ]
            or [np.zeros(0, dtype=np.intp)]
        )
        lead_sim = scratch(n, np.float32, fill=0.0)
        lead_sim[copy] = row_cosines(unit, copy, lead[copy])
        kept = scratch(n, np.int64)
        for sl in iter_chunks(n, 1 << 16):  # a hash collision never joins
            own = np.arange(sl.start, sl.stop)
            kept[sl] = np.where(lead_sim[sl] >= threshold, lead[sl], own)
        lead = kept
        sets = near_duplicate_sets(
            graph.indices,
            graph.similarities,
            threshold,
            leaders=lead,
            backend=ctx.backend,
            chunk_size=ctx.chunk_size,
        )
        # the output columns are scratch arrays (spill files when large) filled in place:
        # the values of max(...).astype(float64) (a max is exact) and clip(1 - best, 0, 1)
        best = scratch(lead.size, np.float64)
        np.maximum(graph.similarities[:, 0], lead_sim, out=best)
        np.maximum.at(best, lead[copy], lead_sim[copy])  # a group's first row: its copies
        np.subtract(1.0, best, out=best)
        np.clip(best, 0.0, 1.0, out=best)
        cols = pd.DataFrame(
            {
                "is_near_duplicate_issue": _in_a_set(sets),
                "near_duplicate_score": best,
                "near_duplicate_set": sets,
            },
            copy=False,  # the frame holds these arrays, not a copy of them
        )
        info = {"metric": "cosine", "threshold": threshold, "n_sets": int(sets.max() + 1)}
        return DetectorResult(columns=cols, info=info)

    def _euclidean(self, ctx: AuditContext) -> DetectorResult:
        threshold = self._threshold(RADIUS_FRACTION, 0.0, np.inf)
        assert ctx.knn is not None and ctx.features is not None
        # the nearest distance as float64, and the median's copy: scratch arrays (spill files
        # when large), filled a block at a time; the values of the whole-array expressions
        d1 = scratch(ctx.knn.distances.shape[0], np.float64)
        for sl in iter_chunks(d1.size, 1 << 16):
            d1[sl] = ctx.knn.distances[sl, 0]
        work = scratch(d1.size, np.float64)
        np.copyto(work, d1)
        med = float(np.median(work, overwrite_input=True))  # = np.median(d1)
        del work
        scale = med if med > 0 else float(d1[d1 > 0].mean()) if (d1 > 0).any() else 1.0
        radius = threshold * scale
        leaders = _exact_leaders(ctx.features)  # before the copy below: lower peak
        # float32 distances against the largest float32 <= radius: the same pairs as comparing
        # them in float64, with a float32 copy (4 bytes per neighbour, not 8)
        r32 = _float32_at_most(radius)
        neg = scratch(ctx.knn.distances.shape, np.float32)  # a spill file when large
        for sl in iter_chunks(neg.shape[0], 1 << 16):
            np.negative(ctx.knn.distances[sl], out=neg[sl])
        sets = near_duplicate_sets(
            ctx.knn.indices,
            neg,
            -float(r32),
            leaders=leaders,
            backend=ctx.backend,
            chunk_size=ctx.chunk_size,
        )
        del neg, leaders
        score = np.negative(d1, out=d1)  # 1 - exp(-d1 / scale), in d1 (a scratch array)
        np.divide(score, scale, out=score)
        np.exp(score, out=score)
        np.subtract(1.0, score, out=score)
        del d1
        cols = pd.DataFrame(
            {
                "is_near_duplicate_issue": _in_a_set(sets),
                "near_duplicate_score": score,
                "near_duplicate_set": sets,
            },
            copy=False,  # the frame holds these arrays, not a copy of them
        )
        info = {"metric": "euclidean", "radius": radius, "n_sets": int(sets.max() + 1)}
        return DetectorResult(columns=cols, info=info)


_METRICS = ("auto", "cosine", "euclidean")
