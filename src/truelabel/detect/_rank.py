"""Per-item label quality scores in [0, 1]; lower means look at this label first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_choice, check_labels, check_pred_probs, check_pred_probs_block
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ._confident_learning import (
    _cached_scores,
    _checked_stats,
    _compute_stats,
    _ConfidentStats,
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
    return _smoothed_noise_matrix(stats)


def _score_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, str, Any, bool]) -> np.ndarray:
    labels, pred_probs, method, global_stats, validate = shared
    block = pred_probs[chunk.slice]
    if validate:
        check_pred_probs_block(block, chunk.start)
    return _SCORE_CHUNK[method](labels[chunk.slice], block, global_stats)


def _finish(method: str, scores: np.ndarray) -> np.ndarray:
    """Whole-set step after the chunk pass (confidence_weighted_entropy: largest score = 1)."""
    if method == "confidence_weighted_entropy":
        return np.clip(scores / max(scores.max(), _CLIP), 0.0, 1.0)
    return scores


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
    out = np.empty(labels.shape[0], dtype=np.float64)
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
        right, T[s, s] p_s / sum_y T[s, y] p_y, with T the confident-learning noise
        matrix P(given | true) shrunk towards uniform noise (see docs/ARCHITECTURE.md for
        the measurements behind this default). ``self_confidence`` is p(given label)
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
