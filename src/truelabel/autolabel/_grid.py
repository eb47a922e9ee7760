"""The threshold grid and the fixed-sequence search shared by rate and pool certification."""

from __future__ import annotations

import numpy as np

__all__ = ["START_RATES", "counts_above", "default_threshold_grid", "fixed_sequence"]

#: starts of the test sequences, as observed error rates (x max_error) with which the test
#: at a threshold could already reject; each sequence runs at delta / len(START_RATES)
START_RATES = (0.0, 0.25, 0.5)


def default_threshold_grid() -> np.ndarray:
    """Thresholds fixed before seeing data, strict to lenient."""
    grid = np.r_[np.linspace(0.0, 0.99, 100), 1.0 - np.geomspace(1e-2, 1e-6, 41)]
    return np.unique(np.round(grid, 10))[::-1]


def fixed_sequence(pvals: np.ndarray, could_reject: list[np.ndarray], level: float) -> int | None:
    """Most lenient grid index certified by any of the fixed sequences, or None.

    ``pvals[j]`` is the p-value at grid threshold j (strict to lenient). Sequence s starts
    at the first j where ``could_reject[s][j]`` (a rule on counts, never on labels) and
    rejects while ``pvals <= level``, stopping at the first non-rejection (Bauer 1991).
    With ``level = delta / len(could_reject)`` the union over sequences keeps the
    family-wise error rate at most delta (Bonferroni): a strict start loses power to one
    early error, a lenient one starts where errors are already near the limit, so
    together they keep both.
    """
    chosen: int | None = None
    for could in could_reject:
        if not could.any():
            continue
        last = None
        for j in range(int(np.argmax(could)), pvals.shape[0]):
            if pvals[j] > level:
                break
            last = j
        if last is not None and (chosen is None or last > chosen):
            chosen = last
    return chosen


def counts_above(
    conf: np.ndarray, grid: np.ndarray, wrong: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per grid threshold t: how many items have confidence >= t, and how many of those
    are wrong (zeros when ``wrong`` is None). One sort, then a search per threshold."""
    order = np.argsort(-conf, kind="stable")
    n_t = np.searchsorted(-conf[order], -grid, side="right")
    if wrong is None:
        return n_t, np.zeros_like(n_t)
    cum_wrong = np.r_[0, np.cumsum(wrong[order])]
    return n_t, cum_wrong[n_t]
