"""Label-powerset conformal sets for multi-label data, tractable with hundreds of labels.

With independent per-label probabilities, the score of a label vector is its negative
log-likelihood ``score(y) = -sum_k log p(y_k)``. The most probable vector ``y*`` sets
``y*_k = [p_k >= 0.5]``; flipping label k from ``y*`` costs
``delta_k = |log p_k - log(1 - p_k)|``. The prediction set ``{y : score(y) <= t}`` is
therefore every set of flips whose costs sum to at most ``t - score(y*)``.

Listing uses a best-first search over flip sets (costs sorted ascending; each set has
one parent, children cost no less, so a child over budget prunes its whole subtree): the
first ``max_sets`` vectors are the most probable ones. Counting, when the set is larger,
is a branch and bound over costs sorted descending that adds ``2**m`` at once whenever
all ``m`` remaining flips fit in the budget.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import check_pred_probs
from ..exceptions import ValidationError
from ._multilabel import check_label_matrix
from ._quantile import _compute_quantile, check_alpha, check_calibration_size
from ._split import check_fitted

__all__ = ["PowersetConformal", "PowersetSets", "powerset_prediction_sets", "powerset_scores"]

_CLIP = 1e-12
_TOL = 1e-9  # budget slack so a vector scoring exactly the threshold stays in the set
_EXACT_LIMIT = 20_000  # count exactly (branch and bound, <= 2x nodes) below this size
_GRID = 4096  # budget bins of the counting DP that bounds set sizes too large to count


@dataclass(frozen=True)
class PowersetSets:
    """Label-powerset prediction sets of a batch of items.

    Attributes
    ----------
    sets : list of lists of tuples
        For each item, up to ``max_sets`` label vectors, most probable first; a vector is
        the sorted tuple of the indices of its present labels.
    counts : list of int
        Size of each full prediction set (Python ints, may exceed 2**63). Exact where
        ``count_exact``; otherwise a lower bound.
    count_upper : list of int
        Upper bounds on the sizes (equal to ``counts`` where exact).
    truncated : ndarray of shape (n_items,), bool
        True where the set holds more than ``max_sets`` vectors.

    Notes
    -----
    The size of a truncated set is bracketed by a knapsack DP over a 4096-bin grid of
    the budget (costs rounded up give ``counts``, rounded down ``count_upper``); when the
    upper bound is at most 20,000 the size is then counted exactly by branch and bound
    (a tree with fewer than ``2 * size`` nodes). With hundreds of labels sets are often
    astronomically large (10**27 vectors for 300 labels is common), so bounds are the
    norm there.
    """

    sets: list[list[tuple[int, ...]]] = field(repr=False)
    counts: list[int]
    count_upper: list[int]
    truncated: np.ndarray

    @property
    def count_exact(self) -> np.ndarray:
        """Bool (n_items,): True where ``counts`` is the exact set size."""
        return np.array([lo == hi for lo, hi in zip(self.counts, self.count_upper, strict=True)])

    def __len__(self) -> int:
        return len(self.sets)


def _flip_costs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Most probable vectors, their scores and the flip costs, for (n, K) probabilities."""
    pc = np.clip(p.astype(np.float64), _CLIP, 1.0 - _CLIP)
    log1, log0 = np.log(pc), np.log1p(-pc)
    best = pc >= 0.5
    base = -np.where(best, log1, log0).sum(axis=1)
    return best, base, np.abs(log1 - log0)


def _count_within(costs_desc: np.ndarray, budget: float, max_nodes: int) -> tuple[int, bool]:
    """Number of subsets of ``costs_desc`` (sorted descending) with sum <= budget."""
    k = costs_desc.shape[0]
    suffix = np.concatenate((np.cumsum(costs_desc[::-1])[::-1], [0.0])).tolist()
    neg = (-costs_desc).tolist()
    costs = costs_desc.tolist()
    total, nodes = 0, 0
    stack = [(0, budget)]
    while stack:
        j, r = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return total + 1 + len(stack), False  # every open node holds >= 1 subset
        j = max(j, bisect_left(neg, -r))  # skip flips that cannot fit
        if j >= k:
            total += 1
        elif suffix[j] <= r:
            total += 1 << (k - j)
        else:
            stack.append((j + 1, r))
            stack.append((j + 1, r - costs[j]))
    return total, True


def _count_bounds(costs: np.ndarray, budget: float) -> tuple[int, int]:
    """Lower and upper bounds on #{subsets with cost sum <= budget} by a knapsack DP.

    Costs rounded up to a grid of ``_GRID`` bins give a lower bound (a subset that fits
    when rounded up fits exactly), rounded down an upper bound. Counts are float64
    (2**1000 fits), widened by a relative 1e-9 to absorb rounding.
    """
    h = budget / _GRID
    fit = costs[costs <= budget] / h
    bounds = []
    for units in (np.ceil(fit), np.floor(fit)):
        ways = np.zeros(_GRID + 1)
        ways[0] = 1.0
        free = int((units == 0).sum())
        for w in np.sort(units[units > 0]).astype(np.int64):
            ways[w:] = ways[w:] + ways[:-w]
        bounds.append(float(ways.sum()) * 2.0**free)
    lower = int(bounds[0] * (1 - 1e-9))
    upper = int(np.ceil(bounds[1] * (1 + 1e-9)))
    return lower, upper


def _enumerate_item(
    best: np.ndarray, costs: np.ndarray, budget: float, max_sets: int
) -> tuple[list[tuple[int, ...]], int, int, bool]:
    """(most probable vectors, count lower bound, count upper bound, truncated)."""
    if budget < 0:
        return [], 0, 0, False
    order = np.argsort(costs, kind="stable")
    d = costs[order].tolist()
    labels = order.tolist()
    base_set = frozenset(np.flatnonzero(best).tolist())
    k = len(d)
    found: list[tuple[int, ...]] = [tuple(sorted(base_set))]
    heap: list[tuple[float, tuple[int, ...]]] = []
    if k and d[0] <= budget:
        heap.append((d[0], (0,)))
    while heap and len(found) < max_sets:
        s, flips = heapq.heappop(heap)
        found.append(tuple(sorted(base_set.symmetric_difference(labels[f] for f in flips))))
        j = flips[-1]
        if j + 1 < k:
            grow = s + d[j + 1]
            if grow <= budget:
                heapq.heappush(heap, (grow, (*flips, j + 1)))
            swap = s - d[j] + d[j + 1]
            if swap <= budget:
                heapq.heappush(heap, (swap, (*flips[:-1], j + 1)))
    if not heap:
        return found, len(found), len(found), False
    lower, upper = _count_bounds(costs, budget)
    if upper <= _EXACT_LIMIT:  # a B&B tree has < 2 * count nodes, so this finishes
        count, _ = _count_within(costs[order[::-1]], budget, 2 * upper + 1)
        return found, count, count, True
    return found, max(lower, max_sets + 1), upper, True


def powerset_prediction_sets(
    pred_probs: np.typing.ArrayLike, threshold: float, *, max_sets: int = 1000
) -> PowersetSets:
    """Every label vector with ``-sum_k log p(y_k) <= threshold``, per item.

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_labels)
        Independent per-label probabilities (clipped to ``[1e-12, 1 - 1e-12]``).
    threshold : float
        Score threshold, e.g. :attr:`PowersetConformal.threshold_`.
    max_sets : int, default 1000
        List at most this many vectors per item (the most probable ones); larger sets
        are flagged ``truncated`` and only counted.

    Returns
    -------
    PowersetSets

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import powerset_prediction_sets
    >>> p = np.array([[0.9, 0.6, 0.01]])
    >>> res = powerset_prediction_sets(p, threshold=1.5)
    >>> res.sets[0], res.counts[0]
    ([(0, 1), (0,)], 2)
    """
    p = check_pred_probs(pred_probs, multi_label=True)
    numeric = isinstance(threshold, int | float | np.number) and not isinstance(threshold, bool)
    if not numeric or np.isnan(threshold):
        raise ValidationError(
            "threshold", f"got {threshold!r}, expected a number", "pass a score threshold"
        )
    if isinstance(max_sets, bool) or not isinstance(max_sets, int | np.integer) or max_sets < 1:
        raise ValidationError(
            "max_sets", f"got {max_sets!r}, expected an integer >= 1", "pass e.g. max_sets=1000"
        )
    best, base, costs = _flip_costs(p)
    budgets = float(threshold) - base + _TOL
    sets, lower, upper = [], [], []
    truncated = np.zeros(p.shape[0], dtype=bool)
    for i in range(p.shape[0]):
        found, lo, hi, truncated[i] = _enumerate_item(
            best[i], costs[i], float(budgets[i]), int(max_sets)
        )
        sets.append(found)
        lower.append(lo)
        upper.append(hi)
    return PowersetSets(sets=sets, counts=lower, count_upper=upper, truncated=truncated)


def powerset_scores(pred_probs: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> np.ndarray:
    """``-sum_k log p(y_k)`` of each item's label vector, shape (n_items,).

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import powerset_scores
    >>> powerset_scores(np.array([[0.5, 0.9]]), np.array([[1, 0]])).round(3)
    array([2.996])
    """
    p = check_pred_probs(pred_probs, multi_label=True)
    y = check_label_matrix(labels, p.shape, "labels")
    pc = np.clip(p.astype(np.float64), _CLIP, 1.0 - _CLIP)
    return np.asarray(-np.where(y == 1, np.log(pc), np.log1p(-pc)).sum(axis=1))


class PowersetConformal(BaseEstimator):
    """Conformal sets of whole label vectors: the true vector is inside w.p. >= 1 - alpha.

    Parameters
    ----------
    alpha : float in (0, 1), default 0.1

    Attributes
    ----------
    threshold_ : float
        Conformal quantile of the calibration vectors' scores
        (:func:`powerset_scores`).
    n_labels_, n_calibration_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import PowersetConformal
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(0.2, 0.5, size=(200, 6))
    >>> y = (rng.random((200, 6)) < p).astype(int)
    >>> res = PowersetConformal(alpha=0.1).fit(p, y).predict_sets(p[:2], max_sets=5)
    >>> len(res), all(len(s) <= 5 for s in res.sets)
    (2, True)
    """

    def __init__(self, *, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(
        self, pred_probs: np.typing.ArrayLike, labels: np.typing.ArrayLike
    ) -> PowersetConformal:
        """Calibrate the score threshold on items with known label vectors.

        Parameters
        ----------
        pred_probs : array of shape (n_calibration, n_labels)
        labels : array of shape (n_calibration, n_labels), 0/1

        Returns
        -------
        self
        """
        alpha = check_alpha(self.alpha)
        p = check_pred_probs(pred_probs, argument="pred_probs", multi_label=True)
        y = check_label_matrix(labels, p.shape, "labels")
        check_calibration_size(p.shape[0], alpha)
        self.threshold_ = _compute_quantile(powerset_scores(p, y), alpha)
        self.n_labels_ = int(p.shape[1])
        self.n_calibration_ = int(p.shape[0])
        return self

    def predict_sets(
        self, pred_probs: np.typing.ArrayLike, *, max_sets: int = 1000
    ) -> PowersetSets:
        """Prediction sets of label vectors, see :func:`powerset_prediction_sets`."""
        check_fitted(self, "threshold_")
        p = check_pred_probs(pred_probs, n_classes=self.n_labels_, multi_label=True)
        return powerset_prediction_sets(p, self.threshold_, max_sets=max_sets)

    def contains(self, pred_probs: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> np.ndarray:
        """Whether each item's label vector is in its prediction set, bool (n_items,)."""
        check_fitted(self, "threshold_")
        return np.asarray(powerset_scores(pred_probs, labels) <= self.threshold_ + _TOL)
