"""Pairs of classes that the labels confuse, ranked by the estimated joint of given/true labels.

The same statistic as cleanlab's ``cleanlab.dataset.find_overlapping_classes``: the
confident-learning estimate of P(given = a, true = b) -- the calibrated confident joint
(integer counts whose rows sum to the number of items given each label) over its total --
summed over both directions unless ``asymmetric=True``. Large entries point at classes whose definitions overlap (merge them, or
sharpen the labelling guideline between them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_labels, check_pred_probs
from ..exceptions import ValidationError
from ._confident_learning import compute_confident_joint

__all__ = ["find_overlapping_classes"]

_SUM_TOLERANCE = 1e-6


def _check_joint(joint: Any) -> np.ndarray:
    j = np.asarray(joint, dtype=np.float64)
    if j.ndim != 2 or j.shape[0] != j.shape[1] or j.shape[0] < 2:
        raise ValidationError(
            "joint",
            f"has shape {j.shape}, expected (n_classes, n_classes) with n_classes >= 2",
            "pass the (K, K) joint, e.g. truelabel.estimate_joint(labels, pred_probs)",
        )
    if not np.isfinite(j).all() or (j < 0).any():
        raise ValidationError(
            "joint", "has negative or non-finite entries", "pass probabilities in [0, 1]"
        )
    total = float(j.sum())
    if abs(total - 1.0) > _SUM_TOLERANCE:
        raise ValidationError(
            "joint",
            f"sums to {total:.6g}, expected 1",
            "pass P(given, true), not counts: divide the counts by their total",
        )
    return j


def _pairs(joint: np.ndarray, asymmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class_a, class_b, joint probability) for every off-diagonal pair, best first."""
    k = joint.shape[0]
    a, b = np.nonzero(~np.eye(k, dtype=bool)) if asymmetric else np.triu_indices(k, 1)
    values = joint[a, b] if asymmetric else joint[a, b] + joint[b, a]
    order = np.lexsort((b, a, -values))  # by probability descending, then by class indices
    return a[order], b[order], values[order]


def find_overlapping_classes(
    labels: Any = None,
    pred_probs: Any = None,
    *,
    classes: Sequence[object] | None = None,
    asymmetric: bool = False,
    joint: Any = None,
    n_items: int | None = None,
) -> pd.DataFrame:
    """Rank pairs of classes by how often one is labelled as the other.

    Parameters
    ----------
    labels : array of shape (n_items,), optional
        Given labels, integers in ``[0, n_classes)``.
    pred_probs : array of shape (n_items, n_classes), optional
        Out-of-sample predicted probabilities.
    classes : sequence of str, optional
        Class names in class-index order; adds ``name_a`` and ``name_b`` columns.
    asymmetric : bool, default False
        False: one row per unordered pair, scored ``joint[a, b] + joint[b, a]`` (``a < b``).
        True: one row per ordered pair, ``a`` the given label and ``b`` the likely true label.
    joint : array of shape (n_classes, n_classes), optional
        A precomputed estimate of P(given = a, true = b) summing to 1, instead of
        ``labels`` and ``pred_probs``. Needs ``n_items``.
    n_items : int, optional
        Number of labelled items the joint was estimated on (default: ``len(labels)``).

    Returns
    -------
    DataFrame
        One row per pair, sorted by ``joint_probability`` descending (ties by class index):
        ``class_a``, ``class_b``, ``joint_probability`` (share of all items that carry one
        class of the pair while belonging to the other) and ``n_overlapping``
        (``joint_probability * n_items``, rounded); ``name_a``/``name_b`` with ``classes``.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import find_overlapping_classes
    >>> joint = np.array([[0.5, 0.1, 0.0], [0.05, 0.25, 0.0], [0.0, 0.02, 0.08]])
    >>> find_overlapping_classes(joint=joint, n_items=100, classes=["cat", "dog", "fox"])
      name_a name_b  class_a  class_b  joint_probability  n_overlapping
    0    cat    dog        0        1               0.15             15
    1    dog    fox        1        2               0.02              2
    2    cat    fox        0        2               0.00              0
    """
    if joint is not None:
        if pred_probs is not None:
            raise ValidationError(
                "joint", "given together with pred_probs", "pass either joint or pred_probs"
            )
        j = _check_joint(joint)
        if n_items is None and labels is not None:
            n_items = int(np.asarray(labels).shape[0])
    elif labels is None or pred_probs is None:
        raise ValidationError(
            "labels, pred_probs",
            "missing",
            "pass labels and pred_probs, or joint and n_items",
        )
    else:
        p = check_pred_probs(pred_probs)
        y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
        # the calibrated confident joint, rounded to counts (as cleanlab's estimate_joint)
        counts = np.asarray(compute_confident_joint(y, p, calibrate=True), dtype=np.float64)
        j = counts / max(float(counts.sum()), 1.0)
        n_items = y.shape[0] if n_items is None else n_items
    if n_items is None:
        raise ValidationError("n_items", "missing", "pass n_items with joint")
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 0:
        raise ValidationError("n_items", f"got {n_items!r}, expected an integer >= 0", "")
    if classes is not None and len(classes) != j.shape[0]:
        raise ValidationError(
            "classes", f"{len(classes)} names for {j.shape[0]} classes", "pass one name per class"
        )
    a, b, values = _pairs(j, bool(asymmetric))
    table = pd.DataFrame(
        {
            "class_a": a.astype(np.int64),
            "class_b": b.astype(np.int64),
            "joint_probability": values,
            "n_overlapping": np.rint(values * int(n_items)).astype(np.int64),
        }
    )
    if classes is not None:
        names = np.asarray([str(c) for c in classes], dtype=object)
        table.insert(0, "name_a", names[a])
        table.insert(1, "name_b", names[b])
    return table
