"""Certifying the realised error among the accepted items of one pool (transductive).

See :meth:`truelabel.CertifiedAutoLabeler.decide` for the statement and why it is valid.
"""

from __future__ import annotations

import numpy as np

from ._bounds import pool_error_pvalue, pool_error_upper
from ._grid import default_threshold_grid

__all__ = ["_certify_pool"]

_START_RATES = (0.0, 0.25, 0.5)  # x max_error, see _certify_pool


def _certify_pool(
    cal_conf: np.ndarray,
    cal_wrong: np.ndarray,
    pool_conf: np.ndarray,
    max_error: float,
    delta: float,
) -> tuple[float | None, float]:
    """Fixed-sequence test of the pool error at each grid threshold; (threshold, bound)."""
    grid = default_threshold_grid()
    order = np.argsort(-cal_conf, kind="stable")
    cum_wrong = np.r_[0, np.cumsum(cal_wrong[order])]
    n_t = np.searchsorted(-cal_conf[order], -grid, side="right")
    e_t = cum_wrong[n_t]
    m_t = np.searchsorted(np.sort(-pool_conf), -grid, side="right")
    k_t = np.floor(max_error * m_t).astype(np.int64) + 1
    informative = (m_t > 0) & (n_t > 0)  # with no pool item above t nothing is at stake
    # Three fixed sequences at delta / 3 each (Bonferroni), starting where the test could
    # reject if the calibration error rate were 0, max_error / 4 or max_error / 2: rules
    # on counts only, never on labels. A strict start loses power to one early error, a
    # lenient one starts where errors are already near max_error; together they keep both.
    level = delta / len(_START_RATES)
    pvals = pool_error_pvalue(e_t, n_t, m_t, k_t)
    chosen = None
    for rate in _START_RATES:
        allowed = np.floor(rate * max_error * n_t)
        could = informative & (pool_error_pvalue(allowed, n_t, m_t, k_t) <= level)
        if not could.any():
            continue
        last = None
        for j in range(int(np.argmax(could)), len(grid)):
            if pvals[j] > level:
                break
            last = j
        if last is not None and (chosen is None or last > chosen):
            chosen = last
    if chosen is None:
        return None, 1.0
    bound = pool_error_upper(int(e_t[chosen]), int(n_t[chosen]), int(m_t[chosen]), level)
    return float(grid[chosen]), bound
