"""Learning from label proportions: bags of items with known class shares -> item labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._soft_em import SoftLabelEM

__all__ = ["LabelProportionClassifier", "proportion_posteriors"]


def _bag_sum(values: np.ndarray, bags: np.ndarray, n_bags: int) -> np.ndarray:
    """Per-bag sums of the rows of ``values`` (any trailing shape), by one bincount per cell."""
    flat = values.reshape(values.shape[0], -1)
    out = np.stack(
        [np.bincount(bags, weights=flat[:, c], minlength=n_bags) for c in range(flat.shape[1])],
        axis=1,
    )
    return out.reshape((n_bags, *values.shape[1:]))


def proportion_posteriors(
    pred_probs: np.ndarray,
    bags: np.ndarray,
    proportions: np.ndarray,
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> np.ndarray:
    """The E-step: item probabilities closest in KL to ``pred_probs`` whose mean over each
    bag equals that bag's proportions.

    The solution is ``q[i] = softmax(log pred_probs[i] + s[bag(i)])`` with one shift per bag
    and class. ``s`` minimises the convex dual ``mean_i logsumexp(log f_i + s) - p . s`` of
    each bag; damped Newton steps (steps capped at 2 in max-norm) for all bags at once.

    Parameters
    ----------
    pred_probs : (n_items, n_classes), positive rows summing to 1
    bags : (n_items,) int bag index of each item, in ``[0, n_bags)``
    proportions : (n_bags, n_classes), rows summing to 1
    max_iter, tol : Newton steps at most; stop when every bag mean is within ``tol``.

    Examples
    --------
    Two items in one bag that is half class 1: the item the model thinks is class 0 stays
    there, the undecided one is pushed to class 1 (worked by hand: r1 / r0 = 3).

    >>> proportion_posteriors(np.array([[0.5, 0.5], [0.9, 0.1]]), np.array([0, 0]),
    ...                       np.array([[0.5, 0.5]])).round(6).tolist()
    [[0.25, 0.75], [0.75, 0.25]]
    """
    n_bags, k = proportions.shape
    size = np.maximum(np.bincount(bags, minlength=n_bags).astype(np.float64), 1.0)
    present = np.bincount(bags, minlength=n_bags) > 0
    allowed = proportions > 0
    log_f = np.where(allowed[bags], np.log(np.maximum(pred_probs, 1e-300)), -np.inf)
    shift = np.zeros((n_bags, k))
    eye = np.eye(k)
    for _ in range(max_iter):
        z = log_f + shift[bags]
        q = np.exp(z - z.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        mean = _bag_sum(q, bags, n_bags) / size[:, None]
        grad = mean - proportions
        if np.abs(grad[present]).max(initial=0.0) < tol:
            break
        outer = _bag_sum(q[:, :, None] * q[:, None, :], bags, n_bags) / size[:, None, None]
        hess = mean[:, :, None] * eye - outer + 1.0 / k  # + 11'/k: shifts by a constant do nothing
        hess += eye * np.where(allowed, 1e-12, 1.0)[:, :, None]
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        big = np.abs(step).max(axis=1, keepdims=True)
        shift -= step * np.minimum(1.0, 2.0 / np.maximum(big, 1e-300))
    return np.asarray(q)


class LabelProportionClassifier(SoftLabelEM):
    """Learn item-level labels and a classifier from bags with known class proportions.

    EM (see :mod:`truelabel.weak._soft_em`): item probabilities are the classifier's,
    projected so each bag's mean matches its proportions (:func:`proportion_posteriors`);
    the classifier on the features is refitted on them, which spreads the bag-level
    information across similar items. The first E-step uses a uniform classifier, so each
    item starts at its bag's proportions.

    Parameters
    ----------
    estimator : classifier, default LogisticRegression(max_iter=1000)
        Any scikit-learn classifier whose ``fit`` takes ``sample_weight``; cloned.
    max_iter, tol, min_weight : as :class:`~truelabel.weak.PartialLabelClassifier`.

    Attributes
    ----------
    item_probas_ : (n_items, n_classes); ``classes_`` (names when ``proportions`` is a
    DataFrame, else indices), ``estimator_`` (the trained head), ``n_iter_``, ``converged_``
    """

    def fit(self, X: Any, bags: Any, proportions: Any) -> LabelProportionClassifier:
        """Fit on ``X`` (n_items, n_features), each item's bag and the bags' proportions.

        ``proportions`` is a DataFrame indexed by bag id with one column per class (then
        ``bags`` holds bag ids), or an array (n_bags, n_classes) (then ``bags`` holds row
        indices into it). Rows must sum to 1; a bag with no items is ignored.
        """
        feats = self._check_features(X)
        bag_arr = np.asarray(bags)
        if bag_arr.shape != (feats.shape[0],):
            raise ValidationError(
                "bags",
                f"expected one bag per item ({feats.shape[0]}), got shape {bag_arr.shape}",
                "pass a 1-D array of bag ids aligned with X",
            )
        names: list[Any] | None = None
        if isinstance(proportions, pd.DataFrame):
            names = list(proportions.columns)
            codes = proportions.index.get_indexer(pd.Index(bag_arr))
            if (codes < 0).any():
                bad = bag_arr[int(np.flatnonzero(codes < 0)[0])].item()
                raise ValidationError(
                    "bags", f"bag {bad!r} has no row in proportions", "add its class shares"
                )
            props = proportions.to_numpy(dtype=np.float64)
        else:
            props = np.asarray(proportions, dtype=np.float64)
            if bag_arr.dtype.kind not in "iu" or (
                bag_arr.size and (bag_arr.min() < 0 or bag_arr.max() >= len(props))
            ):
                raise ValidationError(
                    "bags",
                    f"with an array of proportions, bags must be row indices in [0, {len(props)})",
                    "pass int bag indices, or proportions as a DataFrame indexed by bag id",
                )
            codes = bag_arr.astype(np.intp)
        if props.ndim != 2 or props.shape[1] < 2:
            raise ValidationError(
                "proportions",
                f"expected (n_bags, n_classes >= 2), got shape {props.shape}",
                "one row of class shares per bag",
            )
        sums = props.sum(axis=1)
        bad_rows = np.flatnonzero(
            ~np.isfinite(sums) | (np.abs(sums - 1.0) > 1e-6) | (props < 0).any(1)
        )
        if bad_rows.size:
            i = int(bad_rows[0])
            bag = proportions.index[i] if isinstance(proportions, pd.DataFrame) else i
            raise ValidationError(
                "proportions",
                f"bag {bag!r} has shares {props[i].tolist()} summing to {sums[i]:.6g}, not 1",
                "pass non-negative class shares per bag, e.g. counts / counts.sum()",
            )
        k = props.shape[1]
        self._run_em(feats, lambda f: proportion_posteriors(f, codes, props), k)
        if names is not None:
            self.classes_ = np.asarray(names, dtype=object)
        return self
