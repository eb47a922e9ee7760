"""find_label_issues: which given labels are probably wrong.

All methods run per class on row chunks, with per-column top-n merged across chunks, so
memory is O(chunk x n_classes + issues), never O(N x K) beyond the input itself.
"""

from __future__ import annotations

import numpy as np

from .._validation import CHUNK_ROWS, ValidationError, check_choice, check_labels, check_pred_probs
from ._confident_learning import _compute_stats, _ConfidentStats, _round_preserving_row_totals
from ._rank import QUALITY_METHODS, _compute_scores

__all__ = ["FILTER_METHODS", "find_label_issues"]

FILTER_METHODS = (
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

    Off-diagonals are reduced evenly so that at least ``min_examples_per_class`` items keep
    each given label, then scaled by ``frac_noise``.
    """
    cal = stats.calibrated.copy()
    k = cal.shape[0]
    diag = np.diag(cal).copy()
    new_diag = np.maximum(diag, min_examples_per_class)
    off = ~np.eye(k, dtype=bool)
    nonzero_off = np.maximum(((cal > 0) & off).sum(axis=1), 1)
    cal = np.where(off, cal - ((new_diag - diag) / nonzero_off)[:, None], cal)
    cal[cal < 0] = 0.0
    cal[off] *= frac_noise
    np.fill_diagonal(cal, 0.0)
    np.fill_diagonal(cal, np.maximum(stats.label_counts - cal.sum(axis=1), 0.0))
    counts = _round_preserving_row_totals(cal)
    np.fill_diagonal(counts, 0)
    return counts


def _class_slices(labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
    return order, bounds


def _top_rows_per_column(
    rows: np.ndarray,
    values_fn,
    n_per_col: np.ndarray,
) -> np.ndarray:
    """Rows holding the ``n_per_col[c]`` largest values of each column, merged over chunks.

    ``values_fn(chunk_rows)`` returns the (len(chunk_rows), n_cols) values of a chunk.
    """
    nmax = int(n_per_col.max())
    if nmax == 0 or rows.size == 0:
        return np.empty(0, dtype=np.int64)
    best_v: np.ndarray | None = None
    best_r: np.ndarray | None = None
    for start in range(0, rows.size, CHUNK_ROWS):
        r = rows[start : start + CHUNK_ROWS]
        v = values_fn(r)
        rr = np.broadcast_to(r[:, None], v.shape)
        if best_v is not None and best_r is not None:
            v = np.concatenate([best_v, v])
            rr = np.concatenate([best_r, rr])
        if v.shape[0] > nmax:
            part = np.argpartition(-v, nmax - 1, axis=0)[:nmax]
            v = np.take_along_axis(v, part, axis=0)
            rr = np.take_along_axis(rr, part, axis=0)
        best_v, best_r = v, np.ascontiguousarray(rr)
    assert best_v is not None and best_r is not None
    order = np.argsort(-best_v, axis=0, kind="stable")
    ranked_rows = np.take_along_axis(best_r, order, axis=0)
    keep = np.arange(ranked_rows.shape[0])[:, None] < n_per_col[None, :]
    return np.unique(ranked_rows[keep])


def _prune_by_noise_rate(
    labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """For each (given s, true y): the counts[s, y] items given s with the largest p_y - p_s."""
    k = pred_probs.shape[1]
    order, bounds = _class_slices(labels, k)
    flagged = []
    for s in range(k):
        cols = np.flatnonzero(counts[s] > 0)
        if cols.size == 0:
            continue
        rows = order[bounds[s] : bounds[s + 1]]

        def margins(r: np.ndarray, s: int = s, cols: np.ndarray = cols) -> np.ndarray:
            block = pred_probs[r]
            return block[:, cols] - block[:, s : s + 1]

        flagged.append(_top_rows_per_column(rows, margins, counts[s, cols]))
    mask = np.zeros(labels.shape[0], dtype=bool)
    if flagged:
        mask[np.concatenate(flagged)] = True
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
) -> np.ndarray:
    if stats is None:
        stats = _compute_stats(labels, pred_probs)
    disagrees = stats.argmax != labels
    if filter_by == "predicted_neq_given":
        return disagrees
    if filter_by == "confident_learning":
        return (stats.guess >= 0) & (stats.guess != labels) & disagrees
    counts = _prune_counts(stats, min_examples_per_class, frac_noise)
    if filter_by in ("low_self_confidence", "low_normalized_margin"):
        method = "self_confidence" if filter_by == "low_self_confidence" else "normalized_margin"
        scores = _compute_scores(labels, pred_probs, method)
        n_issues = int(counts.sum())
        mask = np.zeros(labels.shape[0], dtype=bool)
        if n_issues:
            mask[np.argpartition(scores, n_issues - 1)[:n_issues]] = True
        return mask
    mask = np.zeros(labels.shape[0], dtype=bool)
    if filter_by in ("prune_by_class", "both"):
        self_conf = _compute_scores(labels, pred_probs, "self_confidence")
        mask = _lowest_per_class(labels, self_conf, counts.sum(axis=1))
    if filter_by in ("prune_by_noise_rate", "both"):
        by_rate = _prune_by_noise_rate(labels, pred_probs, counts)
        mask = mask & by_rate if filter_by == "both" else by_rate
    return mask & disagrees


def find_label_issues(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    filter_by: str = "prune_by_noise_rate",
    return_ranked: bool = False,
    rank_by: str = "self_confidence",
    min_examples_per_class: int = 1,
    frac_noise: float = 1.0,
) -> np.ndarray:
    """Find items whose given label is probably wrong (confident learning).

    Parameters
    ----------
    labels : array of shape (n_items,)
        Given labels, integers in ``[0, n_classes)``.
    pred_probs : array of shape (n_items, n_classes)
        Out-of-sample predicted probabilities, float32 or float64.
    filter_by : str, default "prune_by_noise_rate"
        ``prune_by_noise_rate``: for each off-diagonal cell (s, y) of the calibrated
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
    rank_by : str, default "self_confidence"
        Quality score used to order the ranked output.
    min_examples_per_class : int, default 1
        Leave at least this many items in each given class unflagged.
    frac_noise : float in (0, 1], default 1.0
        Flag only this fraction of the estimated number of errors.

    Returns
    -------
    ndarray
        Boolean mask of shape (n_items,), or int64 indices when ``return_ranked``.

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
    p = check_pred_probs(pred_probs)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    mask = _compute_issue_mask(
        y, p, filter_by, min_examples_per_class=min_examples_per_class, frac_noise=frac_noise
    )
    if not return_ranked:
        return mask
    idx = np.flatnonzero(mask)
    scores = _compute_scores(y[idx], p[idx], rank_by)
    return idx[np.argsort(scores, kind="stable")]
