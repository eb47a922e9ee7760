"""The fixed threshold grid, the counts on it (a chunk map) and the fixed-sequence search.

Certification only ever needs, per grid threshold t, how many calibration items have
confidence >= t and how many of those are wrong. Those are cumulative sums of a histogram
of confidences on the grid, which is additive over chunks of items: each chunk is binned
by :func:`_histogram_chunk` and the histograms are summed, through
:func:`truelabel.backend.map_reduce`. Integer counts make the result identical for any
backend and chunk size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..backend import Backend, chunk_ranges, map_reduce

__all__ = [
    "GRID_SIZE",
    "START_RATES",
    "counts_above",
    "default_threshold_grid",
    "fallback_sequence",
    "grid_histogram",
    "label_free_starts",
]

#: thresholds 0.000, 0.001, ..., 1.000 (the plain Learn-then-Test grid)
GRID_SIZE = 1001

#: starts of the test sequences, as observed error rates (x max_error) with which the test
#: at a threshold could already reject; each sequence runs at delta / len(START_RATES)
START_RATES = (0.0, 0.25, 0.5)


def default_threshold_grid() -> np.ndarray:
    """Thresholds fixed before seeing data, strict to lenient: 1.000, 0.999, ..., 0.000.

    >>> g = default_threshold_grid()
    >>> g.size, float(g[0]), float(g[1]), float(g[-1])
    (1001, 1.0, 0.999, 0.0)
    """
    return np.round(np.linspace(1.0, 0.0, GRID_SIZE), 10)


def _histogram_chunk(chunk: Any, shared: tuple[np.ndarray, np.ndarray | None, np.ndarray]) -> Any:
    """Per-chunk bins: bin j holds items with ``grid[j] <= conf < grid[j - 1]``.

    Returns ``(items, wrong)`` per bin, length ``grid.size + 1`` (the last bin: below the
    whole grid). Pure and top-level, so any backend can run it.
    """
    conf, wrong, ascending = shared
    c = np.asarray(conf[chunk.start : chunk.stop], dtype=np.float64)
    n_bins = ascending.size + 1
    # number of grid values strictly above c = index of the strictest threshold c reaches
    idx = ascending.size - np.searchsorted(ascending, c, side="right")
    items = np.bincount(idx, minlength=n_bins).astype(np.int64)
    if wrong is None:
        return items, np.zeros(n_bins, dtype=np.int64)
    w = np.asarray(wrong[chunk.start : chunk.stop], dtype=bool)
    return items, np.bincount(idx, weights=w, minlength=n_bins).astype(np.int64)


def _add(a: Any, b: Any) -> Any:
    return a[0] + b[0], a[1] + b[1]


def grid_histogram(
    conf: np.ndarray,
    wrong: np.ndarray | None,
    grid: np.ndarray,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of confidences (and of wrong items) on the threshold grid, chunk by chunk.

    Parameters
    ----------
    conf : array of shape (n_items,)
        Confidence of each item (may be memory-mapped).
    wrong : bool array of shape (n_items,) or None
        Whether each item is wrong; None counts items only.
    grid : array of shape (n_thresholds,)
        Thresholds, strict to lenient (strictly decreasing).
    backend, chunk_size
        Where and in what row ranges the chunks run (see :mod:`truelabel.backend`).

    Returns
    -------
    items, wrong_items : int arrays of shape (n_thresholds + 1,)
        Bin j (< n_thresholds) holds the items with ``grid[j] <= conf < grid[j - 1]``.
    """
    n_bins = grid.size + 1
    zero = (np.zeros(n_bins, dtype=np.int64), np.zeros(n_bins, dtype=np.int64))
    shared = (conf, wrong, np.ascontiguousarray(grid[::-1], dtype=np.float64))
    items, errs = map_reduce(
        _histogram_chunk,
        chunk_ranges(int(conf.shape[0]), chunk_size),
        shared,
        combine=_add,
        backend=backend,
        initial=zero,
    )
    return np.asarray(items), np.asarray(errs)


def counts_above(
    conf: np.ndarray,
    grid: np.ndarray,
    wrong: np.ndarray | None = None,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per grid threshold t: how many items have confidence >= t, and how many of those
    are wrong (zeros when ``wrong`` is None); cumulative sums of :func:`grid_histogram`.

    >>> conf = np.array([0.95, 0.9, 0.5, 0.2])
    >>> n, e = counts_above(conf, np.array([0.9, 0.5, 0.0]), np.array([0, 1, 0, 1], bool))
    >>> n.tolist(), e.tolist()
    ([2, 3, 4], [1, 1, 2])
    """
    items, errs = grid_histogram(conf, wrong, grid, backend=backend, chunk_size=chunk_size)
    return np.cumsum(items[:-1]), np.cumsum(errs[:-1])


def fallback_sequence(
    pvals: np.ndarray, starts: list[tuple[int, float]]
) -> tuple[int, float] | None:
    """Most lenient grid index rejected by the fallback procedure, and its test level.

    ``pvals[j]`` is the p-value at grid threshold j (strict to lenient); ``starts`` lists
    (grid index, level brought there), levels summing to at most delta. Thresholds are
    tested in grid order; a rejected threshold passes its level on to the next, a
    threshold that is not rejected loses it (Wiens 2003 fallback procedure, a graphical
    Bonferroni procedure: family-wise error <= delta under any dependence). When the first
    start runs through, the lenient thresholds are tested at the full delta, as plain
    fixed-sequence testing would; an early error only stops it until the next start.

    >>> p = np.array([0.5, 0.01, 0.02, 0.3, 0.01])
    >>> fallback_sequence(p, [(1, 0.05)])
    (2, 0.05)
    >>> fallback_sequence(p, [(1, 0.025), (4, 0.025)])
    (4, 0.025)
    """
    weight = np.zeros(pvals.shape[0])
    for j, level in starts:
        weight[j] += level
    if not starts:
        return None
    chosen: tuple[int, float] | None = None
    level = 0.0
    for j in range(min(j for j, _ in starts), pvals.shape[0]):  # <= grid size (1,001) steps
        level += weight[j]
        if level > 0.0 and pvals[j] <= level:
            chosen = (j, float(level))
        else:
            level = 0.0
    return chosen


def label_free_starts(
    pvalue_at: Callable[[np.ndarray], np.ndarray],
    n: np.ndarray,
    max_error: float,
    delta: float,
    informative: np.ndarray,
) -> list[tuple[int, float]]:
    """Where the test sequences start and the level each brings (rules on counts only).

    Start r (of :data:`START_RATES`) is the first threshold where observing an error rate
    of ``r * max_error`` among the n(t) calibration items would already reject at its
    share ``delta / len(START_RATES)`` (``pvalue_at(errors)`` gives the p-values for an
    error count per threshold). A later start that no threshold reaches gives its share to
    the zero-error start, which is then placed at its larger level: with few items the
    procedure falls back to plain fixed-sequence testing at the full delta.

    >>> from scipy.stats import binom
    >>> n = np.array([50, 100, 200, 250])
    >>> pv = lambda errors: binom.cdf(errors, n, 0.02)
    >>> label_free_starts(pv, n, 0.02, 0.05, n > 0)  # 0.98^200 = 0.018: one start, full delta
    [(2, 0.05)]
    """
    share = delta / len(START_RATES)
    starts: list[tuple[int, float]] = []
    spare = 0.0
    for rate in START_RATES[1:]:
        could = informative & (pvalue_at(np.floor(rate * max_error * n)) <= share)
        if could.any():
            starts.append((int(np.argmax(could)), share))
        else:
            spare += share
    first = share + spare
    could = informative & (pvalue_at(np.floor(START_RATES[0] * max_error * n)) <= first)
    if could.any():
        starts.insert(0, (int(np.argmax(could)), first))
    else:
        starts = []  # no threshold holds enough items to certify even with no errors
    return starts
