"""Certifying the realised error among the accepted items of one pool (transductive).

See :meth:`truelabel.CertifiedAutoLabeler.decide` for the statement and why it is valid.
"""

from __future__ import annotations

import numpy as np

from ._bounds import pool_error_pvalue, pool_error_upper
from ._grid import START_RATES, counts_above, default_threshold_grid, fixed_sequence

__all__ = ["_certify_pool"]


def _certify_pool(
    cal_conf: np.ndarray,
    cal_wrong: np.ndarray,
    pool_conf: np.ndarray,
    max_error: float,
    delta: float,
) -> tuple[float | None, float]:
    """Fixed-sequence test of the pool error at each grid threshold; (threshold, bound)."""
    grid = default_threshold_grid()
    n_t, e_t = counts_above(cal_conf, grid, cal_wrong)
    m_t, _ = counts_above(pool_conf, grid)
    k_t = np.floor(max_error * m_t).astype(np.int64) + 1
    informative = (m_t > 0) & (n_t > 0)  # with no pool item above t nothing is at stake
    level = delta / len(START_RATES)
    pvals = pool_error_pvalue(e_t, n_t, m_t, k_t)
    could = [
        informative & (pool_error_pvalue(np.floor(rate * max_error * n_t), n_t, m_t, k_t) <= level)
        for rate in START_RATES
    ]
    chosen = fixed_sequence(pvals, could, level)
    if chosen is None:
        return None, 1.0
    bound = pool_error_upper(int(e_t[chosen]), int(n_t[chosen]), int(m_t[chosen]), level)
    return float(grid[chosen]), bound
