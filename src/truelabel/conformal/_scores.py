"""Conformity scores for classification: LAC, APS and RAPS, for every candidate label at once.

A conformity (nonconformity) score is large when a label fits the item badly. Scores of
every candidate label are computed together, shape ``(n_items, n_classes)``; the score of
the true label is one column of that matrix, so calibration and prediction share exactly
the same arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import (
    check_choice,
    check_labels,
    check_pred_probs,
    check_random_state,
    iter_chunks,
)
from ..exceptions import ValidationError

__all__ = ["SCORE_METHODS", "conformity_scores", "label_scores"]

SCORE_METHODS = ("lac", "aps", "raps")


def check_score_params(method: Any, lam: Any, k_reg: Any) -> tuple[str, float, int]:
    """Validate the score settings shared by every conformal classifier."""
    method = check_choice("method", method, SCORE_METHODS)
    numeric = isinstance(lam, int | float | np.number) and not isinstance(lam, bool)
    if not numeric or not np.isfinite(lam) or lam < 0:
        raise ValidationError(
            "lam", f"got {lam!r}, expected a finite number >= 0", "pass e.g. lam=0.01"
        )
    if isinstance(k_reg, bool) or not isinstance(k_reg, int | np.integer) or k_reg < 0:
        raise ValidationError(
            "k_reg", f"got {k_reg!r}, expected an integer >= 0", "pass e.g. k_reg=1"
        )
    return method, float(lam), int(k_reg)


def _compute_scores(
    pred_probs: np.ndarray,
    method: str,
    u: np.ndarray | None,
    lam: float,
    k_reg: int,
) -> np.ndarray:
    """Scores of every candidate label, (n_items, n_classes) float64. Trusts its input.

    ``u`` is None (non-randomized) or one Uniform(0, 1) draw per item, shared by all its
    candidate labels so the prediction sets stay nested in the threshold.
    """
    p = pred_probs.astype(np.float64, copy=False)
    if method == "lac":
        return np.asarray(1.0 - p)
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    cum = np.cumsum(sorted_p, axis=1)
    sorted_scores = cum if u is None else cum - sorted_p + u[:, None] * sorted_p
    if method == "raps":
        ranks = np.arange(1, p.shape[1] + 1, dtype=np.float64)
        sorted_scores = sorted_scores + lam * np.maximum(0.0, ranks - k_reg)
    out = np.empty_like(sorted_scores)
    np.put_along_axis(out, order, sorted_scores, axis=1)
    return out


def _draw_u(rng: np.random.Generator | None, n: int) -> np.ndarray | None:
    return None if rng is None else rng.random(n)


def _scores_chunked(
    pred_probs: np.ndarray, method: str, u: np.ndarray | None, lam: float, k_reg: int
) -> np.ndarray:
    out = np.empty(pred_probs.shape, dtype=np.float64)
    for sl in iter_chunks(pred_probs.shape[0]):
        out[sl] = _compute_scores(pred_probs[sl], method, None if u is None else u[sl], lam, k_reg)
    return out


def _label_scores_chunked(
    pred_probs: np.ndarray,
    labels: np.ndarray,
    method: str,
    u: np.ndarray | None,
    lam: float,
    k_reg: int,
) -> np.ndarray:
    out = np.empty(pred_probs.shape[0], dtype=np.float64)
    for sl in iter_chunks(pred_probs.shape[0]):
        block = _compute_scores(pred_probs[sl], method, None if u is None else u[sl], lam, k_reg)
        out[sl] = block[np.arange(block.shape[0]), labels[sl]]
    return out


def conformity_scores(
    pred_probs: np.typing.ArrayLike,
    *,
    method: str = "lac",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Nonconformity score of every candidate label of every item (larger = fits worse).

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
        Predicted probabilities, rows summing to 1.
    method : {"lac", "aps", "raps"}
        ``lac``: ``1 - p_y``. ``aps``: the total probability of the classes ranked above
        ``y`` plus ``p_y`` (or ``U * p_y`` when randomized). ``raps``: APS plus
        ``lam * max(0, rank_y - k_reg)`` with 1-based ranks.
    randomized : bool, default True
        For APS/RAPS, draw ``U ~ Uniform(0, 1)`` once per item (shared by its labels).
        Ignored by LAC.
    lam, k_reg : float, int
        RAPS penalty weight and the number of top classes that are not penalized.
    random_state : int, Generator or None
        Seed for ``U``.

    Returns
    -------
    ndarray of shape (n_items, n_classes), float64

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import conformity_scores
    >>> p = np.array([[0.6, 0.3, 0.1]])
    >>> conformity_scores(p, method="lac").round(2)
    array([[0.4, 0.7, 0.9]])
    >>> conformity_scores(p, method="aps", randomized=False).round(2)
    array([[0.6, 0.9, 1. ]])
    >>> conformity_scores(p, method="raps", randomized=False, lam=0.1, k_reg=1).round(2)
    array([[0.6, 1. , 1.2]])
    """
    method, lam, k_reg = check_score_params(method, lam, k_reg)
    p = check_pred_probs(pred_probs)
    rng = check_random_state(random_state) if randomized and method != "lac" else None
    return _scores_chunked(p, method, _draw_u(rng, p.shape[0]), lam, k_reg)


def label_scores(
    pred_probs: np.typing.ArrayLike,
    labels: np.typing.ArrayLike,
    *,
    method: str = "lac",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Nonconformity score of the given label of every item.

    Equal to ``conformity_scores(...)[np.arange(n_items), labels]`` with the same seed.

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
    labels : array of shape (n_items,)
        Integer labels in ``[0, n_classes)``.
    method, randomized, lam, k_reg, random_state
        As in :func:`conformity_scores`.

    Returns
    -------
    ndarray of shape (n_items,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import label_scores
    >>> p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    >>> label_scores(p, [1, 1], method="aps", randomized=False).round(2)
    array([0.9, 0.5])
    """
    method, lam, k_reg = check_score_params(method, lam, k_reg)
    p = check_pred_probs(pred_probs)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    rng = check_random_state(random_state) if randomized and method != "lac" else None
    return _label_scores_chunked(p, y, method, _draw_u(rng, p.shape[0]), lam, k_reg)
