"""The finite-sample conformal quantile and the calibration-size rule it implies.

With ``n`` exchangeable calibration scores, the threshold
``q = the ceil((n + 1)(1 - alpha))-th smallest score`` (no interpolation) gives
``P(test score <= q) >= 1 - alpha``. When that rank exceeds ``n`` the threshold is
``+inf``: every label is in every set. That happens exactly when
``n < 1/alpha - 1``, so the public functions refuse such a calibration set.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import ValidationError

__all__ = ["conformal_quantile", "min_calibration_size"]

# (n + 1)(1 - alpha) is often an integer in exact arithmetic (n=99, alpha=0.1) but lands
# a hair above it in floating point; shave a relative epsilon so ceil() sees the integer.
_REL_EPS = 1e-10


def check_alpha(alpha: Any, argument: str = "alpha") -> float:
    """``alpha`` must be a number strictly between 0 and 1."""
    numeric = isinstance(alpha, int | float | np.number) and not isinstance(alpha, bool)
    if not numeric or not np.isfinite(alpha) or not 0 < alpha < 1:
        raise ValidationError(
            argument,
            f"got {alpha!r}, expected a number strictly between 0 and 1",
            "pass the tolerated miscoverage, e.g. alpha=0.1 for 90% coverage",
        )
    return float(alpha)


def quantile_rank(n: np.typing.ArrayLike, alpha: float) -> np.ndarray:
    """``ceil((n + 1)(1 - alpha))`` for each calibration size in ``n`` (int64 array)."""
    x = (np.asarray(n, dtype=np.float64) + 1.0) * (1.0 - alpha)
    return np.ceil(x * (1.0 - _REL_EPS)).astype(np.int64)


def min_calibration_size(alpha: float) -> int:
    """The smallest calibration set with a finite conformal quantile at level ``alpha``.

    This is ``ceil(1/alpha - 1)`` (at least 1).

    Examples
    --------
    >>> from truelabel.conformal import min_calibration_size
    >>> min_calibration_size(0.1), min_calibration_size(0.05), min_calibration_size(0.3)
    (9, 19, 3)
    """
    alpha = check_alpha(alpha)
    m = max(1, math.ceil((1.0 - alpha) / alpha * (1.0 - _REL_EPS)))
    while int(quantile_rank(m, alpha)) > m:
        m += 1
    while m > 1 and int(quantile_rank(m - 1, alpha)) <= m - 1:
        m -= 1
    return m


def check_calibration_size(n: int, alpha: float, argument: str = "pred_probs") -> None:
    """Raise when ``n`` calibration items give an infinite quantile at ``alpha``."""
    if int(quantile_rank(n, alpha)) > n:
        need = min_calibration_size(alpha)
        raise ValidationError(
            argument,
            f"calibration set has {n} items; alpha={alpha:g} needs at least {need} "
            "(ceil(1/alpha - 1)) for a finite conformal quantile",
            "pass more calibration items or a larger alpha",
        )


def _compute_quantile(scores: np.ndarray, alpha: float) -> float:
    """The conformal quantile of 1-D ``scores``; ``+inf`` when too few. Trusts its input."""
    n = scores.shape[0]
    k = int(quantile_rank(n, alpha))
    if k > n:
        return math.inf
    return float(np.partition(scores, k - 1)[k - 1])


def _compute_group_quantiles(
    scores: np.ndarray, groups: np.ndarray, n_groups: int, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group conformal quantiles (``+inf`` for too-small groups) and group sizes."""
    counts = np.bincount(groups, minlength=n_groups)
    order = np.lexsort((scores, groups))
    sorted_scores = scores[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ranks = quantile_rank(counts, alpha)
    ok = ranks <= counts
    q = np.full(n_groups, np.inf)
    q[ok] = sorted_scores[starts[ok] + ranks[ok] - 1]
    return q, counts


def conformal_quantile(scores: np.typing.ArrayLike, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` calibration scores.

    Parameters
    ----------
    scores : array of shape (n_calibration,)
        Nonconformity scores of the calibration items' true labels.
    alpha : float in (0, 1)
        Tolerated miscoverage.

    Returns
    -------
    float
        A test item whose score is ``<=`` this value is covered with probability at
        least ``1 - alpha`` (exchangeable data).

    Raises
    ------
    ValidationError
        If ``alpha`` is not in (0, 1) or there are fewer than
        :func:`min_calibration_size` scores (the quantile would be ``+inf``).

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import conformal_quantile
    >>> conformal_quantile(np.arange(1, 20) / 20, alpha=0.1)  # 18th smallest of 19
    0.9
    """
    alpha = check_alpha(alpha)
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValidationError(
            "scores",
            f"expected a non-empty 1-D array, got shape {arr.shape}",
            "pass one score per calibration item",
        )
    if np.isnan(arr).any():
        i = int(np.flatnonzero(np.isnan(arr))[0])
        raise ValidationError("scores", f"item {i} is NaN", "remove NaN scores")
    check_calibration_size(arr.shape[0], alpha, argument="scores")
    return _compute_quantile(arr, alpha)
