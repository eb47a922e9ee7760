"""Confident learning: per-class thresholds, the confident joint and the noise matrices.

Northcutt, Jiang & Chuang (2021), "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70. Every statistic here is a per-class sum or a K x K count, computed in one
streaming pass over row chunks, so memory stays O(chunk x K) whatever N is.

Conventions: ``joint[s, y]`` is P(given label = s, true label = y); ``noise_matrix[s, y]``
is P(given = s | true = y) (columns sum to 1); ``inverse_noise_matrix[y, s]`` is
P(true = y | given = s) (columns sum to 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._spill import scratch
from .._validation import check_labels, check_pred_probs
from ..backend import Backend, chunk_ranges, get_backend
from ._confident_passes import _EPS, _confident_chunk, _pass_one_chunk, _PassOne, _projection

__all__ = [
    "NoiseEstimate",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_noise_matrices",
]


def _round_preserving_row_totals(mat: np.ndarray) -> np.ndarray:
    """Round each row to integers whose sum is the rounded row total.

    Round every entry, then move the rows that are short by +1 on the entries rounded
    down the most (or, when over, -1 on those rounded up the most): the same rule as
    cleanlab's ``round_preserving_row_totals``, vectorised over rows.
    """
    ints = np.round(mat)
    missing = np.round(mat.sum(axis=1)) - ints.sum(axis=1)
    frac = mat - ints
    up_order = np.argsort(frac, axis=1, kind="stable")[:, ::-1]
    down_order = np.argsort(frac, axis=1, kind="stable")
    order = np.where((missing >= 0)[:, None], up_order, down_order)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(mat.shape[1])[None, :], axis=1)
    step = np.sign(missing)[:, None] * (ranks < np.abs(missing)[:, None])
    return (ints + step).astype(np.int64)


def _calibrate(confident_joint: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Scale rows so they sum to the given-label counts (Eq. 3 of the paper)."""
    row_sums = confident_joint.sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        cal = np.where(row_sums > 0, confident_joint / row_sums, 0.0) * label_counts[:, None]
    # rows with no confident items keep their count on the diagonal
    empty = row_sums[:, 0] == 0
    cal[empty, empty] = label_counts[empty]
    return cal / max(cal.sum(), 1e-12) * label_counts.sum()  # joint sums to N


@dataclass(frozen=True)
class _ConfidentStats:
    """What one pass of confident learning learns about a labelled set."""

    confident_joint: np.ndarray  # (K, K) int counts, uncalibrated
    calibrated: np.ndarray  # (K, K) float counts, rows sum to label counts
    thresholds: np.ndarray  # (K,)
    label_counts: np.ndarray  # (K,)
    guess: np.ndarray  # (N,) confident true-label guess, -1 if none
    argmax: np.ndarray  # (N,)


@dataclass(frozen=True)
class _CacheEntry:
    key: tuple[object, ...]  # shape, dtype, chunking and CRC-32 of the labels of every chunk
    first: _PassOne  # exact class counts and self-confidence sums
    rows: np.ndarray  # (N,) random projection of every row of pred_probs
    stats: _ConfidentStats
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # by method, read-only


def _remember_scores(stats: _ConfidentStats, method: str, scores: np.ndarray) -> None:
    """Keep ``scores`` of ``method`` with the cached statistics they were computed from."""
    hit = _CACHE.get("last")
    if hit is not None and hit.stats is stats:
        scores.flags.writeable = False
        hit.scores[method] = scores


def _cached_scores(stats: _ConfidentStats, method: str) -> np.ndarray | None:
    """A copy of the scores of ``method`` computed from these very statistics, if kept."""
    hit = _CACHE.get("last")
    if hit is not None and hit.stats is stats and method in hit.scores:
        kept = hit.scores[method]
        out = scratch(kept.shape, kept.dtype)  # an output column: a spill file when large
        np.copyto(out, kept)
        return out
    return None


#: the statistics of the last labelled set and its fingerprint (see _confident_stats)
_CACHE: dict[str, _CacheEntry] = {}


def _confident_stats(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    validate: bool = False,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> _ConfidentStats:
    """Thresholds, confident joint, guesses and argmax in two chunked passes on ``backend``.

    Pass one (validation when ``validate``, class counts, exact self-confidence sums,
    argmax, a CRC-32 of the labels and a random projection of every row of ``pred_probs``)
    always runs. When all of these equal those of the previous call, the statistics of that
    call are returned without pass two: ``get_label_quality_scores`` after
    ``find_label_issues`` on the same arrays pays one pass. Any change to the labels, to
    the self-confidences or to the argmax of a row is always seen; any other change of a
    row unless it moves that row's projection by less than its rounding (about 1e-7 for
    float32 input, 1e-16 for float64), which cannot move an item across a class threshold
    unless it lies within that distance of it.
    """
    be = get_backend(backend)
    y = np.ascontiguousarray(labels)
    chunks = chunk_ranges(y.shape[0], chunk_size)
    # per-item arrays kept with the cache: spill files when large (truelabel._spill)
    argmax = scratch(y.shape[0], np.int32)
    rows = scratch(y.shape[0], pred_probs.dtype)
    first: _PassOne | None = None
    shared = (y, pred_probs, _projection(pred_probs.shape[1], pred_probs.dtype), validate)
    for chunk, (part, am, fp) in zip(chunks, be.map(_pass_one_chunk, chunks, shared), strict=True):
        argmax[chunk.slice] = am
        rows[chunk.slice] = fp
        first = part if first is None else first.merge(part)
    assert first is not None
    key = (pred_probs.shape, pred_probs.dtype.str, first.label_crcs)
    hit = _CACHE.get("last")
    if (
        hit is not None
        and hit.key == key
        and np.array_equal(hit.first.counts, first.counts)
        and np.array_equal(hit.first.sums, first.sums)
        and np.array_equal(hit.stats.argmax, argmax)
        and np.array_equal(hit.rows, rows)
    ):
        return hit.stats
    thresholds = first.thresholds()
    t = (thresholds - _EPS).astype(pred_probs.dtype)
    k = pred_probs.shape[1]
    guess = scratch(y.shape[0], np.int32)
    cj = np.zeros((k, k), dtype=np.int64)
    for chunk, (part_cj, g) in zip(
        chunks, be.map(_confident_chunk, chunks, (y, pred_probs, t)), strict=True
    ):
        guess[chunk.slice] = g
        cj += part_cj
    counts = first.counts.astype(np.float64)
    stats = _ConfidentStats(
        confident_joint=cj,
        calibrated=_calibrate(cj, counts),
        thresholds=thresholds,
        label_counts=counts,
        guess=guess,
        argmax=argmax,
    )
    for arr in (guess, argmax):
        arr.flags.writeable = False  # shared through the cache
    _CACHE["last"] = _CacheEntry(key, first, rows, stats)
    return stats


def _compute_stats(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> _ConfidentStats:
    """Confident-learning statistics of already validated input."""
    return _confident_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)


def _checked_stats(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, _ConfidentStats]:
    """Validate at the public edge and compute the statistics, values checked in pass one."""
    p = check_pred_probs(pred_probs, check_values=False)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    stats = _confident_stats(y, p, validate=True, backend=backend, chunk_size=chunk_size)
    return y, p, stats


def compute_confident_joint(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    calibrate: bool = True,
    return_indices_of_off_diagonals: bool = False,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Count items by (given label, confidently predicted true label).

    An item counts towards ``[s, y]`` when its given label is ``s`` and ``y`` is the most
    probable class among those whose probability reaches the class threshold ``t_y`` (the
    mean probability of ``y`` over items given ``y``). Items confident in no class are not
    counted.

    Parameters
    ----------
    labels : array of shape (n_items,)
        Given labels, integers in ``[0, n_classes)``.
    pred_probs : array of shape (n_items, n_classes)
        Out-of-sample predicted probabilities.
    calibrate : bool, default True
        Rescale rows so each sums to the number of items given that label, and round to
        integers preserving row totals.
    return_indices_of_off_diagonals : bool, default False
        Also return the indices of items counted off the diagonal.
    backend : Backend, "local" or None, default None
        Runs the chunked passes (None: threads on every core); see :mod:`truelabel.backend`.
    chunk_size : int or None, default None
        Rows per chunk (default :data:`truelabel.backend.DEFAULT_CHUNK_ROWS`). The result
        does not depend on it nor on the backend.

    Returns
    -------
    confident_joint : ndarray of shape (n_classes, n_classes)
        Rows are given labels, columns are (estimated) true labels.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.detect import compute_confident_joint
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.9, 0.1]])
    >>> compute_confident_joint(np.array([0, 0, 1, 1]), p, calibrate=False)
    array([[1, 0],
           [1, 1]])
    """
    y, _, stats = _checked_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
    cj = (
        _round_preserving_row_totals(stats.calibrated)
        if calibrate
        else stats.confident_joint.copy()
    )
    if return_indices_of_off_diagonals:
        off = np.flatnonzero((stats.guess >= 0) & (stats.guess != y))
        return cj, off
    return cj


def _smoothed_noise_matrix(stats: _ConfidentStats, strength: float = 10.0) -> np.ndarray:
    """P(given = s | true = y) from the confident joint, off-diagonals shrunk to uniform.

    Every off-diagonal cell gets ``strength * r`` pseudo-counts, r being the estimated
    noise rate: with many classes and few items per class the per-cell counts are too
    sparse to trust, and the matrix tends to uniform noise; with few classes the counts
    dominate and structured noise (k -> k+1) shows.
    """
    cj = _round_preserving_row_totals(stats.calibrated).astype(np.float64)
    k = cj.shape[0]
    total = max(cj.sum(), 1.0)
    rate = (total - np.trace(cj)) / total
    smoothed = cj + strength * rate * (1.0 - np.eye(k)) + 1e-9
    joint = smoothed / smoothed.sum()
    return np.asarray(joint / joint.sum(axis=0, keepdims=True))


@dataclass(frozen=True)
class NoiseEstimate:
    """Estimated label-noise statistics of a labelled set.

    Attributes
    ----------
    joint : ndarray (n_classes, n_classes)
        P(given = s, true = y); sums to 1.
    noise_matrix : ndarray (n_classes, n_classes)
        P(given = s | true = y); columns sum to 1.
    inverse_noise_matrix : ndarray (n_classes, n_classes)
        P(true = y | given = s), indexed ``[y, s]``; columns sum to 1.
    py : ndarray (n_classes,)
        Estimated prior of the true labels.
    ps : ndarray (n_classes,)
        Observed prior of the given labels.
    confident_joint : ndarray (n_classes, n_classes)
        Calibrated confident joint (integer counts).
    """

    joint: np.ndarray
    noise_matrix: np.ndarray
    inverse_noise_matrix: np.ndarray
    py: np.ndarray
    ps: np.ndarray
    confident_joint: np.ndarray

    @property
    def noise_rate(self) -> float:
        """Estimated fraction of items whose given label is wrong."""
        return float(1.0 - np.trace(self.joint))


def _estimate_from_stats(stats: _ConfidentStats) -> NoiseEstimate:
    cal = stats.calibrated
    total = cal.sum()
    joint = cal / total if total > 0 else cal
    ps = joint.sum(axis=1)
    py = joint.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        noise = np.where(py[None, :] > 0, joint / py[None, :], 0.0)
        inv = np.where(ps[None, :] > 0, joint.T / ps[None, :], 0.0)
    k = joint.shape[0]
    # classes never predicted: identity columns keep the matrices column-stochastic
    noise[:, py == 0] = np.eye(k)[:, py == 0]
    inv[:, ps == 0] = np.eye(k)[:, ps == 0]
    return NoiseEstimate(
        joint=joint,
        noise_matrix=noise,
        inverse_noise_matrix=inv,
        py=py,
        ps=ps,
        confident_joint=_round_preserving_row_totals(cal),
    )


def estimate_noise_matrices(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> NoiseEstimate:
    """Estimate the joint, noise matrix, inverse noise matrix and class priors.

    Parameters
    ----------
    labels : array of shape (n_items,)
    pred_probs : array of shape (n_items, n_classes)
    backend, chunk_size
        As in :func:`compute_confident_joint`.

    Returns
    -------
    NoiseEstimate

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.detect import estimate_noise_matrices
    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.9, 0.1]])
    >>> est = estimate_noise_matrices(np.array([0, 0, 1, 1]), p)
    >>> round(est.noise_rate, 2)
    0.25
    """
    _, _, stats = _checked_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
    return _estimate_from_stats(stats)


def estimate_joint(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """P(given label, true label) as a (n_classes, n_classes) array summing to 1."""
    return estimate_noise_matrices(labels, pred_probs, backend=backend, chunk_size=chunk_size).joint
