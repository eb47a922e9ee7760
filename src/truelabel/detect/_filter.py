"""find_label_issues: which given labels are probably wrong.

All methods run per class on row chunks, with per-column top-n merged across chunks, so
memory is O(chunk x n_classes + issues), never O(N x K) beyond the input itself.
"""

from __future__ import annotations

import numpy as np

from .._spill import bucket_positions, scratch
from .._validation import CHUNK_ROWS, ValidationError, check_choice
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ._confident_learning import (
    _checked_stats,
    _compute_stats,
    _ConfidentStats,
    _remember_scores,
    _round_preserving_row_totals,
    _smoothed_noise_matrix,
)
from ._rank import _SCORE_CHUNK, QUALITY_METHODS, _compute_scores, _global_stats
from ._topn import _lowest_n

__all__ = ["FILTER_METHODS", "find_label_issues"]

#: filters that flag the estimated number of errors with the lowest score:
#: (score method, restrict to items whose argmax differs from the label)
_LOW_SCORE = {
    "noise_aware": ("noise_aware", True),
    "low_self_confidence": ("self_confidence", False),
    "low_normalized_margin": ("normalized_margin", False),
}

#: elements of pred_probs read per block in the per-class passes (16 MiB of float32)
_BLOCK_ELEMENTS = 1 << 22
#: labels per block of the grouping by class (:func:`_class_slices`)
_CLASS_BLOCK = 1 << 18

FILTER_METHODS = (
    "noise_aware",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_self_confidence",
    "low_normalized_margin",
)


def _prune_counts(
    stats: _ConfidentStats, min_examples_per_class: int, frac_noise: float
) -> np.ndarray:
    """Integer (K, K) counts to remove: ``[s, y]`` = items given s whose true label is y.

    From the calibrated confident joint, rounded per given label: the diagonal is raised
    to at least ``min_examples_per_class`` by taking the difference evenly from that
    label's non-zero off-diagonal counts; off-diagonals are then scaled by ``frac_noise``
    (the diagonal absorbing the rest) and rounded preserving totals, as cleanlab does.
    """
    cj = _round_preserving_row_totals(stats.calibrated).astype(np.float64)
    # work on the transpose, [y, s], whose columns are given labels
    pcm = cj.T
    diag = np.diag(pcm).copy()
    new_diag = np.maximum(diag, min_examples_per_class)
    n_rates = np.maximum(np.count_nonzero(pcm, axis=0) - 1.0, 1.0)
    new = pcm - ((new_diag - diag) / n_rates)[None, :]
    new[new < 0] = 0.0
    np.fill_diagonal(new, new_diag)
    if frac_noise != 1.0:
        off = ~np.eye(new.shape[0], dtype=bool)
        removed = (new * off).sum(axis=0) * (1.0 - frac_noise)
        new[off] *= frac_noise
        np.fill_diagonal(new, new_diag + removed)
    counts = _round_preserving_row_totals(new).T.copy()
    np.fill_diagonal(counts, 0)
    return counts


def _class_slices(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by given class, in row order within a class (``np.argsort(labels,
    kind="stable")``), and the classes' bounds (``k + 1``): a counting sort block by block
    into a scratch array (a spill file when large), no n-row argsort."""
    return bucket_positions(labels.shape[0], lambda sl: labels[sl], k, block=_CLASS_BLOCK)


def _grouped_top(col: np.ndarray, val: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``n`` largest values of each column id (pairs ``(col, val)``), sorted."""
    order = np.lexsort((-val, col))
    col, val = col[order], val[order]
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    rank = np.arange(col.size) - np.repeat(starts, np.diff(np.r_[starts, col.size]))
    keep = rank < n
    return col[keep], val[keep]


def _top_candidates(mt: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(column, value) pairs that include the ``nmax`` largest values of every row of ``mt``.

    A strided 1/16 sample gives each row a cut-off expected to leave ~2 x nmax values
    above it; one vectorised comparison then finds them. Rows where the cut-off leaves
    fewer than ``nmax`` fall back to a full partition. Exact either way.
    """
    n_rows, m = mt.shape
    stride = 16
    sample_k = max(1, (2 * nmax) // stride)
    parts_c: list[np.ndarray] = []
    parts_v: list[np.ndarray] = []
    short = np.arange(n_rows)
    if m >= stride * 4 * nmax:
        sample = mt[:, ::stride]
        cut = np.partition(sample, sample.shape[1] - sample_k, axis=1)[:, -sample_k]
        above = mt >= cut[:, None]
        enough = above.sum(axis=1) >= nmax
        r, c = np.nonzero(above)
        ok = enough[r]
        parts_c.append(r[ok])
        parts_v.append(mt[r[ok], c[ok]])
        short = np.flatnonzero(~enough)
    if short.size:
        sub = mt[short]
        if sub.shape[1] > nmax:
            sub = np.partition(sub, sub.shape[1] - nmax, axis=1)[:, -nmax:]
        parts_c.append(np.repeat(short, sub.shape[1]))
        parts_v.append(sub.ravel())
    return np.concatenate(parts_c), np.concatenate(parts_v)


def _column_thresholds(
    pred_probs: np.ndarray, rows: np.ndarray, s: int, cols: np.ndarray, n_cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per column y in ``cols``: the n_cols[y]-th largest margin p_y - p_s over ``rows``,
    and how many items with a margin equal to it still fit in the top n_cols[y].

    Streams ``rows`` in chunks and keeps only the top max(n_cols) margins per column, so
    memory is O(chunk x len(cols)).
    """
    nmax = int(n_cols.max())
    step = max(CHUNK_ROWS, _BLOCK_ELEMENTS // max(cols.size, 1))
    kept_col = np.empty(0, dtype=np.int64)
    kept_val = np.empty(0, dtype=pred_probs.dtype)
    for start in range(0, rows.size, step):
        blk = pred_probs[rows[start : start + step]]
        mt = np.subtract(blk[:, cols].T, blk[:, s], order="C")  # (len(cols), chunk)
        c, v = _top_candidates(mt, nmax)
        kept_col, kept_val = _grouped_top(np.r_[kept_col, c], np.r_[kept_val, v], nmax)
    thr = np.full(cols.size, np.inf, dtype=pred_probs.dtype)
    starts = np.flatnonzero(np.r_[True, kept_col[1:] != kept_col[:-1]])
    sizes = np.diff(np.r_[starts, kept_col.size])
    ids = kept_col[starts]
    pick = starts + np.minimum(n_cols[ids], sizes) - 1
    thr[ids] = kept_val[pick]
    # all values above the threshold are among the kept ones: how many tied slots remain
    above = np.bincount(kept_col[kept_val > thr[kept_col]], minlength=cols.size)
    return thr, n_cols - above


def _prune_class_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Items flagged by ``prune_by_noise_rate`` among those given class ``s = chunk.start``."""
    pred_probs, counts, argmax, order, bounds = shared
    s = chunk.start
    cols = np.flatnonzero(counts[s] > 0)
    if cols.size == 0:
        return np.empty(0, dtype=np.int64)
    rows = order[bounds[s] : bounds[s + 1]]
    disagree = rows[argmax[rows] != s]
    if disagree.size == 0:
        return np.empty(0, dtype=np.int64)
    n_cols = counts[s, cols]
    thr, ties_left = _column_thresholds(pred_probs, disagree, s, cols, n_cols)
    hard = np.flatnonzero(~(thr > 0))
    if hard.size:
        thr[hard], ties_left[hard] = _column_thresholds(
            pred_probs, rows, s, cols[hard], n_cols[hard]
        )
    flagged = []
    for start in range(0, disagree.size, CHUNK_ROWS):
        d = disagree[start : start + CHUNK_ROWS]
        blk = pred_probs[d]
        margins = blk[:, cols] - blk[:, s : s + 1]
        hit = (margins > thr[None, :]).any(axis=1)
        # ties at a column's threshold fill its remaining slots in row order; they are few
        # (about one per column), so rank them sparsely instead of a cumsum over the block
        r, c = np.nonzero(margins == thr[None, :])
        if r.size:
            order = np.lexsort((r, c))
            r, c = r[order], c[order]
            rank = np.arange(c.size) - np.searchsorted(c, c, side="left")
            ok = rank < ties_left[c]
            hit[r[ok]] = True
            ties_left = ties_left - np.bincount(c[ok], minlength=cols.size)
        flagged.append(d[hit])
    return np.concatenate(flagged)


def _prune_by_noise_rate(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    counts: np.ndarray,
    argmax: np.ndarray,
    backend: Backend | str | None = None,
) -> np.ndarray:
    """For each (given s, true y): the counts[s, y] items given s with the largest p_y - p_s,
    among those whose argmax differs from s.

    Per class, the threshold of column y is the counts[s, y]-th largest margin over all
    items given s. Items whose argmax is s have every margin <= 0, so wherever the
    disagreeing items alone give a positive threshold it is exact and the agreeing items
    are never read; the remaining columns are thresholded over the whole class. Items at
    or above a threshold are flagged (ties at it fill the remaining slots in index
    order). Same result as ranking each column in full. Classes are independent: one
    chunk map over class ids (chunk ``s`` = class ``s``) on ``backend``.
    """
    k = pred_probs.shape[1]
    order, bounds = _class_slices(labels, k)
    mask = np.zeros(labels.shape[0], dtype=bool)
    classes = chunk_ranges(k, 1)
    shared = (pred_probs, counts, argmax, order, bounds)
    for flagged in get_backend(backend).map(_prune_class_chunk, classes, shared):
        mask[flagged] = True
    return mask


def _lowest_per_class(
    labels: np.ndarray, scores: np.ndarray, n_per_class: np.ndarray
) -> np.ndarray:
    """Mask of the n_per_class[s] lowest-scoring items within each given class s."""
    k = n_per_class.shape[0]
    order = np.lexsort((scores, labels))  # by class, then score ascending
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    rank_in_class = np.arange(labels.shape[0]) - bounds[labels[order]]
    mask = np.zeros(labels.shape[0], dtype=bool)
    mask[order[rank_in_class < n_per_class[labels[order]]]] = True
    return mask


def _compute_issue_mask(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    filter_by: str,
    *,
    stats: _ConfidentStats | None = None,
    min_examples_per_class: int = 1,
    frac_noise: float = 1.0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    if stats is None:
        stats = _compute_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
    if filter_by == "predicted_neq_given":
        return stats.argmax != labels
    if filter_by == "confident_learning":
        return (stats.guess >= 0) & (stats.guess != labels) & (stats.argmax != labels)
    counts = _prune_counts(stats, min_examples_per_class, frac_noise)
    if filter_by in _LOW_SCORE:
        # the estimated number of errors with the lowest score
        score_method, only_disagreeing = _LOW_SCORE[filter_by]
        # the scores kept for a later get_label_quality_scores (they live as long as the
        # cached statistics): a scratch array, a spill file when large (truelabel._spill)
        kept = scratch(labels.shape[0], np.float64)
        all_scores: np.ndarray | None = kept
        also = None
        if filter_by == "noise_aware":
            # among disagreeing items the full estimated matrix ranks best (no shrinkage by
            # regime, unlike the default score): see docs/ARCHITECTURE.md. The default score
            # (shrunk matrix) is computed in the same pass and remembered instead; the
            # full-matrix scores of every item are not kept (only the lowest n are needed)
            g = _smoothed_noise_matrix(stats)
            default = _global_stats(labels, pred_probs, score_method, stats)
            also = (score_method, default, kept)
            all_scores = None
        else:
            g = _global_stats(labels, pred_probs, score_method, stats)
        idx, scores = _lowest_n(
            labels,
            pred_probs,
            score_method,
            g,
            int(counts.sum()),
            backend,
            chunk_size,
            scores_out=all_scores,
            also=also,
        )
        # a get_label_quality_scores call on the same arrays returns these
        _remember_scores(stats, score_method, kept)
        del kept, all_scores, also
        if only_disagreeing:  # the selected rows only: no mask of every item
            keep = stats.argmax[idx] != labels[idx]
            idx, scores = idx[keep], scores[keep]
        # leave at least min_examples_per_class items of every given class unflagged
        n_per_class = stats.label_counts.astype(np.int64)
        allowed = np.maximum(n_per_class - min_examples_per_class, 0)
        mask = scratch(labels.shape[0], bool, fill=False)  # the output: a spill file when large
        over = np.bincount(labels[idx], minlength=allowed.size) > allowed
        if not over.any():  # the limit binds nowhere: no ranking needed
            mask[idx] = True
            return mask
        order = np.lexsort((idx, scores, labels[idx]))  # by class, score, then index
        idx, cls = idx[order], labels[idx[order]]
        starts = np.searchsorted(cls, cls, side="left")
        mask[idx[np.arange(idx.size) - starts < allowed[cls]]] = True
        return mask
    mask = np.zeros(labels.shape[0], dtype=bool)
    if filter_by in ("prune_by_class", "both"):
        self_conf = _compute_scores(
            labels, pred_probs, "self_confidence", backend=backend, chunk_size=chunk_size
        )
        mask = _lowest_per_class(labels, self_conf, counts.sum(axis=1))
    if filter_by in ("prune_by_noise_rate", "both"):
        by_rate = _prune_by_noise_rate(labels, pred_probs, counts, stats.argmax, backend)
        mask = mask & by_rate if filter_by == "both" else by_rate
    return mask & (stats.argmax != labels)


def find_label_issues(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    filter_by: str = "noise_aware",
    return_ranked: bool = False,
    rank_by: str = "noise_aware",
    min_examples_per_class: int = 1,
    frac_noise: float = 1.0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Find items whose given label is probably wrong (confident learning).

    Parameters
    ----------
    labels : array of shape (n_items,)
        Given labels, integers in ``[0, n_classes)``.
    pred_probs : array of shape (n_items, n_classes)
        Out-of-sample predicted probabilities, float32 or float64.
    filter_by : str, default "noise_aware"
        ``noise_aware``: the estimated number of errors (from the calibrated confident
        joint) with the lowest posterior that the given label is right, under the
        smoothed confident-learning noise matrix (not shrunk by regime, unlike the
        ``noise_aware`` score: among disagreeing items it ranked best), among items whose
        argmax differs from their label. ``prune_by_noise_rate`` (cleanlab's default): for each off-diagonal cell (s, y) of the calibrated
        confident joint, flag that many items given s with the largest margin p_y - p_s.
        ``prune_by_class``: for each given class, flag the estimated number of errors with
        the lowest self-confidence. ``both``: items flagged by both.
        ``confident_learning``: items counted off the diagonal of the confident joint.
        ``predicted_neq_given``: argmax differs from the given label.
        ``low_self_confidence`` / ``low_normalized_margin``: the estimated number of
        errors with the lowest score. Except for the last two, an item is only flagged if
        the model's argmax differs from its given label.
    return_ranked : bool, default False
        Return indices of the flagged items, worst first (by ``rank_by``), instead of a mask.
    rank_by : str, default "noise_aware"
        Quality score used to order the ranked output.
    min_examples_per_class : int, default 1
        Leave at least this many items in each given class unflagged.
    frac_noise : float in (0, 1], default 1.0
        Flag only this fraction of the estimated number of errors.
    backend : Backend, "local" or None, default None
        Runs the chunked passes (None: threads on every core); see :mod:`truelabel.backend`.
    chunk_size : int or None, default None
        Rows per chunk; the result does not depend on it nor on the backend.

    Returns
    -------
    ndarray
        Boolean mask of shape (n_items,), or int64 indices when ``return_ranked``.

    Notes
    -----
    Every pass is a chunk map on ``backend`` (threads by default), with the checks of
    ``pred_probs`` fused into the first one. The confident-learning statistics of the last
    call are kept (about 12 bytes per item) under a fingerprint that every later call
    recomputes in its first pass (a checksum of the labels, exact class sums, the argmax and
    a random projection of every row): :func:`get_label_quality_scores` on the same arrays
    then skips the second pass, and an array changed in place is recomputed.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import find_label_issues
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.9, 0.1], [0.2, 0.8]])
    >>> find_label_issues(np.array([0, 0, 1, 1, 1]), p)
    array([False, False, False,  True, False])
    """
    filter_by = check_choice("filter_by", filter_by, FILTER_METHODS)
    rank_by = check_choice("rank_by", rank_by, QUALITY_METHODS)
    if not 0.0 < frac_noise <= 1.0:
        raise ValidationError(
            "frac_noise", f"got {frac_noise}, expected a value in (0, 1]", "e.g. frac_noise=1.0"
        )
    if min_examples_per_class < 0:
        raise ValidationError(
            "min_examples_per_class", f"got {min_examples_per_class}", "pass a value >= 0"
        )
    # validation fused into the first confident-learning pass; its statistics are shared
    # by the mask, the ranking and a get_label_quality_scores call on the same arrays
    y, p, stats = _checked_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
    mask = _compute_issue_mask(
        y,
        p,
        filter_by,
        stats=stats,
        min_examples_per_class=min_examples_per_class,
        frac_noise=frac_noise,
        backend=backend,
        chunk_size=chunk_size,
    )
    if not return_ranked:
        return mask
    idx = np.flatnonzero(mask)
    if rank_by == "confidence_weighted_entropy":  # rescaled by the whole set's maximum
        scores = _compute_scores(y, p, rank_by, stats, backend=backend, chunk_size=chunk_size)
        scores = scores[idx]
    else:
        scores = _SCORE_CHUNK[rank_by](y[idx], p[idx], _global_stats(y, p, rank_by, stats))
    return idx[np.argsort(scores, kind="stable")]
