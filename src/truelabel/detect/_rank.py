"""Per-item label quality scores in [0, 1]; lower means look at this label first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._spill import scratch
from .._validation import check_choice, check_labels, check_pred_probs, check_pred_probs_block
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ._confident_learning import (
    _cached_scores,
    _checked_stats,
    _compute_stats,
    _ConfidentStats,
    _round_preserving_row_totals,
    _smoothed_noise_matrix,
)

__all__ = ["QUALITY_METHODS", "get_label_quality_scores"]

QUALITY_METHODS = (
    "noise_aware",
    "self_confidence",
    "normalized_margin",
    "confidence_weighted_entropy",
)
_CLIP = 1e-6
_MIN_RATE = 1e-3


# Every score is a pure per-chunk function (labels_chunk, pred_probs_chunk, global_stats)
# -> scores_chunk; global_stats is whatever the formula needs from the whole set (the noise
# matrix for noise_aware, nothing for the others), computed once before the chunk pass.


def _self_confidence_chunk(labels: np.ndarray, pred_probs: np.ndarray, _: object) -> np.ndarray:
    """p[i, labels[i]] as float64."""
    return pred_probs[np.arange(labels.shape[0]), labels].astype(np.float64)


def _normalized_margin_chunk(labels: np.ndarray, pred_probs: np.ndarray, _: object) -> np.ndarray:
    """(p[i, labels[i]] - max_{k != labels[i]} p[i, k] + 1) / 2."""
    self_conf = _self_confidence_chunk(labels, pred_probs, None)
    block = np.array(pred_probs, copy=True)
    block[np.arange(block.shape[0]), labels] = -np.inf
    return (self_conf - block.max(axis=1) + 1.0) / 2.0


def _entropy_ratio_chunk(labels: np.ndarray, pred_probs: np.ndarray, _: object) -> np.ndarray:
    """log(1 + r) / r with r = normalized entropy / self-confidence (not yet rescaled)."""
    self_conf = _self_confidence_chunk(labels, pred_probs, None)
    p = np.clip(pred_probs.astype(np.float64), _CLIP, None)
    entropy = -(p * np.log(p)).sum(axis=1) / np.log(pred_probs.shape[1])
    ratio = entropy / np.clip(self_conf, _CLIP, None)
    return np.asarray(np.log(ratio + 1.0) / np.clip(ratio, _CLIP, None))


def _noise_aware_chunk(
    labels: np.ndarray, pred_probs: np.ndarray, noise_matrix: np.ndarray
) -> np.ndarray:
    """P(given label is right | x) = T[s, s] p_s / sum_y T[s, y] p_y."""
    t = noise_matrix.astype(pred_probs.dtype)  # same precision as the input: half the traffic
    diag = np.diag(noise_matrix)
    num = diag[labels] * pred_probs[np.arange(labels.shape[0]), labels]
    den = np.einsum("ij,ij->i", pred_probs, t[labels])
    return np.clip(num / np.maximum(den, np.finfo(pred_probs.dtype).tiny), 0.0, 1.0)


_SCORE_CHUNK: dict[str, Callable[[np.ndarray, np.ndarray, Any], np.ndarray]] = {
    "noise_aware": _noise_aware_chunk,
    "self_confidence": _self_confidence_chunk,
    "normalized_margin": _normalized_margin_chunk,
    "confidence_weighted_entropy": _entropy_ratio_chunk,
}


def _global_stats(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    method: str,
    stats: _ConfidentStats | None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> Any:
    """What the per-chunk formula of ``method`` needs from the whole set."""
    if method != "noise_aware":
        return None
    if stats is None:
        stats = _compute_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
    return _score_noise_matrix(stats)


def _score_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, str, Any, bool]) -> np.ndarray:
    labels, pred_probs, method, global_stats, validate = shared
    block = pred_probs[chunk.slice]
    if validate:
        check_pred_probs_block(block, chunk.start)
    return _SCORE_CHUNK[method](labels[chunk.slice], block, global_stats)


def _finish(method: str, scores: np.ndarray) -> np.ndarray:
    """Whole-set step after the chunk pass (confidence_weighted_entropy: largest score = 1),
    in place in ``scores`` (the pass's own array: no two more arrays of every item)."""
    if method == "confidence_weighted_entropy":
        np.divide(scores, max(scores.max(), _CLIP), out=scores)
        np.clip(scores, 0.0, 1.0, out=scores)
    return scores


def _structure_dispersion(confident_joint: np.ndarray) -> float:
    """How far the off-diagonal confident counts are from uniform flips, 1 = as by chance.

    Under uniform noise every item of true class y whose given label is wrong carries any
    other label s with the same probability, so column y's ``m_y`` off-diagonal counts are
    multinomial with equal cells. This is Pearson's chi-square of those cells, summed over
    columns, divided by its degrees of freedom (``K - 2`` per column with ``m_y > 0``); its
    expectation is exactly 1 under uniform noise whatever the counts. Pairwise or
    class-conditional noise concentrates each column on few rows and gives values of 5-30.
    NaN when there is nothing to test (``K < 3`` or no off-diagonal counts).
    """
    cj = np.asarray(confident_joint, dtype=np.float64)
    k = cj.shape[0]
    off_cells = ~np.eye(k, dtype=bool)
    m = np.where(off_cells, cj, 0.0).sum(axis=0)  # off-diagonal counts per true class y
    cols = m > 0
    df = float(cols.sum() * (k - 2))
    if df <= 0:
        return float("nan")
    e = m[cols] / (k - 1)  # expected count of each off-diagonal cell of column y
    x2 = float(np.where(off_cells[:, cols], (cj[:, cols] - e) ** 2 / e, 0.0).sum())
    return x2 / df


def _rate_dispersion(confident_joint: np.ndarray) -> float:
    """How far the per-true-class noise rates are from one common rate, 1 = as by chance.

    Column y holds ``n_y`` confident counts, ``o_y`` of them off the diagonal; under one
    common rate r (the pooled ``sum o / sum n``) ``o_y`` is binomial(n_y, r). Pearson's
    chi-square of that 2 x K table over its ``K - 1`` degrees of freedom (columns with no
    counts left out). NaN when there is nothing to test (fewer than two such columns, or
    no noise at all).
    """
    cj = np.asarray(confident_joint, dtype=np.float64)
    n = cj.sum(axis=0)
    cols = n > 0
    n = n[cols]
    o = n - np.diag(cj)[cols]
    r = o.sum() / max(n.sum(), 1.0)
    if n.size < 2 or not 0.0 < r < 1.0:
        return float("nan")
    return float(((o - n * r) ** 2 / (n * r * (1.0 - r))).sum() / (n.size - 1))


def _shrink_factor(dispersion: float) -> float:
    """Positive-part James-Stein weight of the estimate: max(0, 1 - 1/D), 0 if D is NaN."""
    return 0.0 if not dispersion > 1.0 else 1.0 - 1.0 / dispersion


def _score_noise_matrix(stats: _ConfidentStats) -> np.ndarray:
    """The noise matrix the default score uses: empirical-Bayes shrinkage towards uniform.

    Column y of the smoothed confident-learning matrix ``T`` is its noise rate
    ``rho_y = 1 - T[y, y]`` times a distribution ``Q[:, y]`` over the other labels. Each part
    is shrunk separately towards uniform noise at the overall rate r: the rate to
    ``r + lam_rate (rho_y - r)`` and the distribution to ``1/(K-1) + lam_off (Q - 1/(K-1))``,
    with ``lam = max(0, 1 - 1/D)`` for the dispersions D of :func:`_rate_dispersion` and
    :func:`_structure_dispersion`. When the counts look like uniform flips (both D <= 1) the
    score ranks items in self-confidence order; the more structured the estimated noise
    (k -> k + 1 flips, one class mislabelled more often), the more of ``T`` it uses.
    """
    t = _smoothed_noise_matrix(stats)
    k = t.shape[0]
    cj = _round_preserving_row_totals(stats.calibrated)
    total = max(float(cj.sum()), 1.0)
    # floor: at rate 0 the uniform posterior would be 1 for every item (no ranking left)
    rate = min(max((total - float(np.trace(cj))) / total, _MIN_RATE), 1.0 - _MIN_RATE)
    lam_rate = _shrink_factor(_rate_dispersion(stats.confident_joint))
    lam_off = _shrink_factor(_structure_dispersion(stats.confident_joint))
    rho = 1.0 - np.diag(t)
    rates = rate + lam_rate * (rho - rate)
    dist = 1.0 / (k - 1) + lam_off * (t / rho[None, :] - 1.0 / (k - 1))
    out = rates[None, :] * dist
    np.fill_diagonal(out, 1.0 - rates)
    return np.asarray(out)


def _compute_scores(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    method: str,
    stats: _ConfidentStats | None = None,
    *,
    validate: bool = False,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Scores of every item: one chunk pass of the method's per-chunk formula.

    ``validate`` checks the values of ``pred_probs`` in the same pass.
    """
    if stats is not None and (cached := _cached_scores(stats, method)) is not None:
        return cached  # computed by find_label_issues from these very statistics
    g = _global_stats(labels, pred_probs, method, stats, backend, chunk_size)
    chunks = chunk_ranges(labels.shape[0], chunk_size)
    out = scratch(labels.shape[0], np.float64)  # an output column: a spill file when large
    shared = (labels, pred_probs, method, g, validate)
    for chunk, part in zip(
        chunks, get_backend(backend).map(_score_chunk, chunks, shared), strict=True
    ):
        out[chunk.slice] = part
    return _finish(method, out)


def get_label_quality_scores(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    method: str = "noise_aware",
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Score every label: in [0, 1], lower = more likely wrong.

    Parameters
    ----------
    labels : array of shape (n_items,)
        Given labels, integers in ``[0, n_classes)``.
    pred_probs : array of shape (n_items, n_classes)
        Out-of-sample predicted probabilities (e.g. from
        :func:`truelabel.out_of_fold_pred_probs`).
    method : {"noise_aware", "self_confidence", "normalized_margin", "confidence_weighted_entropy"}
        ``noise_aware`` (default) is the posterior probability that the given label s is
        right, T[s, s] p_s / sum_y T[s, y] p_y, with T chosen by the evidence in the data:
        the confident-learning noise matrix P(given | true) (off-diagonals smoothed), whose
        per-class noise rates and whose spread of each class's errors over the other
        labels are each shrunk towards uniform noise by ``max(0, 1 - 1/D)``, D the
        chi-square dispersion of the confident counts around uniform noise (about 1 when
        noise is uniform, 5-30 for pairwise noise). So when the noise looks uniform it
        ranks items in ``self_confidence`` order, and the more structured the noise, the
        more the expected confusions weigh (docs/ARCHITECTURE.md has the measurements).
        ``self_confidence`` is p(given label)
        (cleanlab's default); ``normalized_margin`` is (p(given) - max p(other) + 1) / 2;
        ``confidence_weighted_entropy`` is log(1 + r) / r with r = normalized entropy /
        self-confidence, rescaled so the largest score is 1 (a variant of cleanlab's
        formula, which divides by the unclipped ratio).
    backend : Backend, "local" or None, default None
        Runs the chunked passes (None: threads on every core); see :mod:`truelabel.backend`.
    chunk_size : int or None, default None
        Rows per chunk; the scores do not depend on it nor on the backend.

    Returns
    -------
    ndarray of shape (n_items,), float64 in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import get_label_quality_scores
    >>> p = np.array([[0.9, 0.1], [0.3, 0.7]])
    >>> get_label_quality_scores(np.array([0, 0]), p, method="self_confidence").round(2)
    array([0.9, 0.3])
    """
    method = check_choice("method", method, QUALITY_METHODS)
    if method == "noise_aware":
        # validation is fused into the confident-learning pass, whose statistics are reused
        # when find_label_issues just ran on the same arrays (see _confident_stats)
        y, p, stats = _checked_stats(labels, pred_probs, backend=backend, chunk_size=chunk_size)
        return _compute_scores(y, p, method, stats, backend=backend, chunk_size=chunk_size)
    # the other scores need no statistics: validation is fused into the score pass
    p = check_pred_probs(pred_probs, check_values=False)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    return _compute_scores(y, p, method, validate=True, backend=backend, chunk_size=chunk_size)
