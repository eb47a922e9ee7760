"""Uncertainty scores on ``pred_probs``: least confidence, margin, entropy.

Each score is a pure per-row formula run as a chunk map on the backend (rows are scored
independently, so the result is identical for any backend and chunk size). Scores are in
[0, 1] and, unlike the audit's label-quality scores, **higher = ask about this item first**
(the priority convention of the review queue): 1 is a uniform prediction, 0 a one-hot one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_choice, check_pred_probs
from ..backend import Backend, Chunk, chunk_ranges, get_backend

__all__ = ["entropy_scores", "least_confidence_scores", "margin_scores", "uncertainty_scores"]

UNCERTAINTY_METHODS = ("least_confidence", "margin", "entropy")


def _least_confidence(p: np.ndarray) -> np.ndarray:
    k = p.shape[1]
    return np.clip((1.0 - p.max(axis=1)) * (k / (k - 1)), 0.0, 1.0)


def _margin(p: np.ndarray) -> np.ndarray:
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top2[:, 0] - top2[:, 1]), 0.0, 1.0)


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0) + 0.0  # + 0.0: no -0.0


_FORMULAS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "least_confidence": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
}


def _score_chunk(chunk: Chunk, shared: tuple[np.ndarray, str]) -> np.ndarray:
    pred_probs, method = shared
    block = np.asarray(pred_probs[chunk.slice], dtype=np.float64)
    return _FORMULAS[method](block)


def compute_uncertainty(
    pred_probs: np.ndarray,
    method: str,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Trusted inputs: the chunk map behind the public functions."""
    n = pred_probs.shape[0]
    out = np.empty(n, dtype=np.float64)
    chunks = chunk_ranges(n, chunk_size)
    for chunk, scores in zip(
        chunks, get_backend(backend).map(_score_chunk, chunks, (pred_probs, method)), strict=True
    ):
        out[chunk.slice] = scores
    return out


def uncertainty_scores(
    pred_probs: Any,
    *,
    method: str = "margin",
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Uncertainty of each prediction in [0, 1], higher = more uncertain.

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
        Predicted class probabilities (rows sum to 1).
    method : {"least_confidence", "margin", "entropy"}, default "margin"
        ``least_confidence``: ``(1 - max p) * K / (K - 1)``; ``margin`` (breaking ties):
        ``1 - (p_(1) - p_(2))``, one minus the gap between the two largest probabilities;
        ``entropy``: ``-sum p log p / log K``.
    backend : Backend, "local" or None
        Runs the row chunks (None: threads on every core).
    chunk_size : int, optional
        Rows per chunk (default 32,768); the result does not depend on it.

    Returns
    -------
    ndarray of float64, shape (n_items,)

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    >>> uncertainty_scores(p, method="margin").round(3).tolist()
    [1.0, 0.2, 0.0]
    """
    method = check_choice("method", method, UNCERTAINTY_METHODS)
    probs = check_pred_probs(pred_probs)
    return compute_uncertainty(probs, method, backend=backend, chunk_size=chunk_size)


def least_confidence_scores(
    pred_probs: Any, *, backend: Backend | str | None = None, chunk_size: int | None = None
) -> np.ndarray:
    """``(1 - max p) * K / (K - 1)``: one minus the top probability, scaled to [0, 1].

    >>> import numpy as np
    >>> least_confidence_scores(np.array([[0.6, 0.4], [0.25, 0.75]])).round(3).tolist()
    [0.8, 0.5]
    """
    return uncertainty_scores(
        pred_probs, method="least_confidence", backend=backend, chunk_size=chunk_size
    )


def margin_scores(
    pred_probs: Any, *, backend: Backend | str | None = None, chunk_size: int | None = None
) -> np.ndarray:
    """``1 - (p_(1) - p_(2))``: one minus the margin between the two most likely classes.

    >>> import numpy as np
    >>> margin_scores(np.array([[0.5, 0.3, 0.2], [0.8, 0.1, 0.1]])).round(3).tolist()
    [0.8, 0.3]
    """
    return uncertainty_scores(pred_probs, method="margin", backend=backend, chunk_size=chunk_size)


def entropy_scores(
    pred_probs: Any, *, backend: Backend | str | None = None, chunk_size: int | None = None
) -> np.ndarray:
    """``-sum p log p / log K``: the entropy of the prediction, normalized to [0, 1].

    >>> import numpy as np
    >>> entropy_scores(np.array([[0.5, 0.5], [1.0, 0.0]])).tolist()
    [1.0, 0.0]
    """
    return uncertainty_scores(pred_probs, method="entropy", backend=backend, chunk_size=chunk_size)
