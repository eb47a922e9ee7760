"""Binomial and hypergeometric tail statistics used to certify an error rate.

scipy.stats is imported inside the functions: it costs ~0.6 s, not worth paying at
``import truelabel``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "binomial_pvalue",
    "clopper_pearson_upper",
    "min_items_to_certify",
    "pool_error_pvalue",
    "pool_error_upper",
]


def binomial_pvalue(errors: np.ndarray, n: np.ndarray, max_error: float) -> np.ndarray:
    """P(Bin(n, max_error) <= errors): p-value of H0 "error rate > max_error" (1 where n = 0)."""
    from scipy.stats import binom

    errors = np.asarray(errors)
    n = np.asarray(n)
    p = binom.cdf(errors, np.maximum(n, 1), max_error)
    return np.asarray(np.where(n > 0, p, 1.0))


def clopper_pearson_upper(errors: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """One-sided (1 - delta) Clopper-Pearson upper bound on a binomial proportion."""
    from scipy.stats import beta

    errors = np.asarray(errors, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ub = beta.ppf(1.0 - delta, errors + 1.0, np.maximum(n - errors, 1e-12))
    ub = np.where(errors >= n, 1.0, ub)
    return np.asarray(np.where(n > 0, ub, 1.0))


def pool_error_pvalue(
    cal_errors: np.typing.ArrayLike,
    n_cal: np.typing.ArrayLike,
    n_pool: np.typing.ArrayLike,
    pool_errors: np.typing.ArrayLike,
) -> np.ndarray:
    """p-value of H0 "at least ``pool_errors`` of the ``n_pool`` accepted pool items are wrong".

    Calibration and pool items are exchangeable, so given the total number of errors T
    among the n_cal + n_pool accepted items, the calibration share is hypergeometric.
    With T = cal_errors + pool_errors, P(HG(n_cal + n_pool, T, n_cal) <= cal_errors) is
    super-uniform at the true pool count and decreases in it, hence valid for H0.
    Where n_pool = 0 nothing is at risk (p = 0); where n_cal = 0 nothing is known (p = 1).
    """
    from scipy.stats import hypergeom

    e, n, m, k = np.broadcast_arrays(*map(np.asarray, (cal_errors, n_cal, n_pool, pool_errors)))
    # grid thresholds share counts: compute each distinct (e, n, m, k) once
    rows, inverse = np.unique(
        np.stack([a.ravel() for a in (e, n, m, k)]), axis=1, return_inverse=True
    )
    re, rn, rm, rk = rows
    p = hypergeom.cdf(re, rn + rm, re + rk, rn)[np.ravel(inverse)].reshape(e.shape)
    p = np.where(n > 0, p, 1.0)
    return np.asarray(np.where(m > 0, p, 0.0))


def pool_error_upper(cal_errors: int, n_cal: int, n_pool: int, delta: float) -> float:
    """(1 - delta) upper bound on the error rate among ``n_pool`` accepted pool items."""
    if n_pool == 0:
        return 0.0
    lo, hi = 0, n_pool + 1  # smallest pool error count rejected at level delta
    while lo < hi:
        mid = (lo + hi) // 2
        if float(pool_error_pvalue(cal_errors, n_cal, n_pool, mid)) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return min(1.0, max(lo - 1, 0) / n_pool)


@lru_cache(maxsize=4096)
def min_items_to_certify(error_rate: float, max_error: float, delta: float) -> int | None:
    """Smallest n such that observing ``error_rate * n`` errors among n items rejects
    "error > max_error" at level delta; None if ``error_rate >= max_error``."""
    if error_rate >= max_error:
        return None

    from scipy.stats import binom

    def ok(n: int) -> bool:
        return bool(binom.cdf(math.floor(error_rate * n), n, max_error) <= delta)

    lo = max(1, math.ceil(math.log(delta) / math.log1p(-max_error)))  # zero errors needed
    hi = lo
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > 100_000_000:
            return None
    while lo < hi:  # smallest passing n (the floor makes ok() nearly monotone)
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi
