"""Threshold searches on grid counts: the error rate (``"rate"``) and one pool (``"pool"``).

Both work on counts only: ``n[j]`` calibration items with confidence >= grid[j], ``e[j]``
of them wrong, and for the pool ``m[j]`` pool items above grid[j]. Counting is a chunk map
(:func:`truelabel.autolabel._grid.grid_histogram`); everything here is O(grid size).

Procedure (Learn then Test with fixed-sequence testing)
-------------------------------------------------------
* A grid of thresholds is fixed in advance (``default_threshold_grid``: 1.000, 0.999,
  ..., 0.000), ordered from strict to lenient.
* For each threshold t, H0(t): "the error rate among items with confidence >= t exceeds
  max_error". With n(t) calibration items above t, of which e(t) are wrong, the exact
  binomial tail p(t) = P(Bin(n(t), max_error) <= e(t)) is a valid p-value: given n(t),
  the accepted calibration items are i.i.d. draws from the accepted population, so e(t)
  is Binomial(n(t), risk(t)) and risk(t) > max_error makes small e(t) unlikely.
* Hypotheses are tested in the fixed order from strict to lenient by the fallback
  procedure (Wiens 2003): three starts, the first thresholds where an observed error
  rate of 0, max_error / 4 or max_error / 2 would already reject (rules on counts, never
  on labels), each bring delta / 3 (a later start that no threshold reaches gives its
  share to the zero-error start); a rejected threshold passes its level on to the next,
  a non-rejected one loses it. When nothing stops the first start, the lenient end is
  tested at the full delta, as plain fixed-sequence testing (Bauer 1991) would; one early
  error only stops it until the next start. The family-wise error rate is at most delta.
* The certified threshold is the most lenient rejected one; the reported bound is the
  one-sided Clopper-Pearson upper confidence bound at that threshold, at the level its
  test rejected at (so it is <= max_error).

``fit`` certifies the error *rate* (an endless stream of items like the calibration
set); ``decide(pool)`` with ``guarantee="rate"`` (the default) applies that threshold.
With ``guarantee="pool"`` it certifies the realised error among the accepted items of
that pool (what a user counts): the same procedure, with H0(t) "at least
floor(max_error * m(t)) + 1 of the m(t) pool items above t are wrong" and the
exchangeability p-value P(HG(n + m, e + k, n) <= e) (calibration and pool items are
exchangeable; given the total number of errors among accepted items, the calibration
share is hypergeometric). This accounts for the pool's own sampling noise, which a bound
on the rate alone does not: with small pools a rate of 1.5% still yields realised errors
above 2% in a sizeable share of pools. The price is coverage: the pool's own sampling
noise must be paid for by more calibration items (benchmarks/results/conformal.md), hence
not the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._bounds import binomial_pvalue, clopper_pearson_upper, pool_error_pvalue, pool_error_upper
from ._grid import default_threshold_grid, fallback_sequence, label_free_starts
from ._result import Certificate

__all__ = [
    "Found",
    "certificate",
    "more_items_needed",
    "search_pool",
    "search_rate",
    "why",
]

#: the largest calibration set :func:`more_items_needed` considers (beyond: "no amount")
MAX_ITEMS = 10_000_000


@dataclass(frozen=True)
class Found:
    """A certified grid index, the level its test rejected at and the error bound there."""

    index: int
    level: float
    bound: float


def search_rate(n: np.ndarray, e: np.ndarray, max_error: float, delta: float) -> Found | None:
    """Certify the error rate: H0(t) "error rate among items above t > max_error".

    Exact binomial p-values P(Bin(n, max_error) <= e), fallback procedure over the grid
    from the label-free starts of :data:`START_RATES`.
    """
    pvals = binomial_pvalue(e, n, max_error)
    starts = label_free_starts(
        lambda errors: binomial_pvalue(errors, n, max_error), n, max_error, delta, n > 0
    )
    hit = fallback_sequence(pvals, starts)
    if hit is None:
        return None
    j, level = hit
    return Found(j, level, float(clopper_pearson_upper(e[j], n[j], level)))


def search_pool(
    n: np.ndarray, e: np.ndarray, m: np.ndarray, max_error: float, delta: float
) -> Found | None:
    """Certify the realised error of the pool: H0(t) "at least floor(max_error m(t)) + 1
    of the m(t) pool items above t are wrong", exchangeability (hypergeometric) p-values,
    the same fallback procedure."""
    k = np.floor(max_error * m).astype(np.int64) + 1
    informative = (m > 0) & (n > 0)  # with no pool item above t nothing is at stake
    pvals = pool_error_pvalue(e, n, m, k)
    starts = label_free_starts(
        lambda errors: pool_error_pvalue(errors, n, m, k), n, max_error, delta, informative
    )
    hit = fallback_sequence(pvals, starts)
    if hit is None:
        return None
    j, level = hit
    return Found(j, level, pool_error_upper(int(e[j]), int(n[j]), int(m[j]), level))


Search = Callable[[np.ndarray, np.ndarray], "Found | None"]


def more_items_needed(n: np.ndarray, e: np.ndarray, m: np.ndarray, search: Search) -> int | None:
    """How many more reviewed calibration items would make ``search`` accept pool items.

    The calibration set is scaled to n' items keeping the share above each threshold and
    the observed error rate there (``n[j] * n' / n``, ``e[j] * n' / n`` rounded); the
    answer is the smallest n' - n (by doubling, then bisection) at which ``search(n, e)``
    certifies a threshold that at least one pool item reaches (to within 2%). None when even
    :data:`MAX_ITEMS` items would not do (the model errs too often on its surest items).
    """
    total = int(n[-1]) if n.size else 0
    if total == 0:
        return None

    def works(size: int) -> bool:
        f = size / total
        found = search(np.floor(n * f + 1e-9), np.rint(e * f))
        return found is not None and m[found.index] > 0

    lo, hi = total, 2 * total
    while not works(hi):
        lo, hi = hi, 2 * hi
        if hi > MAX_ITEMS:
            return None
    while hi - lo > max(1, math.ceil(0.02 * lo)):  # to 2%: the answer is an estimate
        mid = (lo + hi) // 2
        if works(mid):
            hi = mid
        else:
            lo = mid
    return hi - total


def certificate(
    n: np.ndarray, e: np.ndarray, max_error: float, delta: float, *, estimate_more: bool = True
) -> Certificate:
    """Rate certification of one group from its grid counts (``estimate_more``: say how
    many more reviewed items would certify when nothing is)."""
    grid = default_threshold_grid()
    n_cal = int(n[-1]) if n.size else 0
    found = search_rate(n, e, max_error, delta)
    if found is not None:
        j = found.index
        msg = (
            f"error rate <= {found.bound:.2%} certified for confidence >= {grid[j]:.3g} "
            f"({int(n[j])} of {n_cal} calibration items there, {int(e[j])} wrong)"
        )
        return Certificate(float(grid[j]), found.bound, n_cal, int(n[j]), int(e[j]), 0, msg)
    if n_cal == 0:
        return Certificate(None, None, 0, 0, 0, None, "no calibration items")
    more = (
        more_items_needed(n, e, n, lambda nn, ee: search_rate(nn, ee, max_error, delta))
        if estimate_more
        else None
    )
    return Certificate(None, None, n_cal, 0, 0, more, "nothing certified: " + why(n_cal, more))


def why(n_cal: int, more: int | None) -> str:
    if more is None:
        return (
            "the model errs too often even on its most confident calibration items; "
            "improve the model or raise max_error"
        )
    return (
        f"{n_cal} calibration items are too few; about {more} more reviewed items (at the "
        "observed error rates) would certify"
    )
