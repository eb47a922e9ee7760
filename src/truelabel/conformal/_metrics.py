"""Quality of prediction sets: coverage, set sizes, singletons."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_labels
from ..exceptions import ValidationError

__all__ = [
    "coverage",
    "coverage_per_class",
    "multilabel_coverage",
    "set_size_distribution",
    "set_sizes",
    "singleton_rate",
    "summarize_sets",
]


def _check_sets(sets: Any, argument: str = "sets") -> np.ndarray:
    arr = np.asarray(sets)
    if arr.ndim != 2:
        raise ValidationError(
            argument,
            f"expected a boolean array of shape (n_items, n_classes), got shape {arr.shape}",
            "pass the output of predict_set",
        )
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValidationError(
                argument, f"dtype {arr.dtype} holds values other than 0/1", "pass a bool array"
            )
        arr = arr.astype(bool)
    return arr


def _sets_and_labels(sets: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _check_sets(sets)
    y = check_labels(labels, n_classes=s.shape[1], n_items=s.shape[0])
    return s, y


def coverage(sets: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> float:
    """Share of items whose true label is in their prediction set.

    Parameters
    ----------
    sets : bool array of shape (n_items, n_classes)
    labels : array of shape (n_items,)

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import coverage
    >>> coverage(np.array([[True, False], [True, True]]), [1, 1])
    0.5
    """
    s, y = _sets_and_labels(sets, labels)
    return float(s[np.arange(y.shape[0]), y].mean())


def coverage_per_class(sets: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> np.ndarray:
    """Coverage among the items of each true class, shape (n_classes,); NaN for absent classes.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import coverage_per_class
    >>> coverage_per_class(np.array([[True, False], [False, True], [True, False]]), [0, 0, 1])
    array([0.5, 0. ])
    """
    s, y = _sets_and_labels(sets, labels)
    k = s.shape[1]
    hit = s[np.arange(y.shape[0]), y].astype(np.float64)
    counts = np.bincount(y, minlength=k).astype(np.float64)
    hits = np.bincount(y, weights=hit, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1.0), np.nan)


def set_sizes(sets: np.typing.ArrayLike) -> np.ndarray:
    """Number of labels in each set, int64 array of shape (n_items,).

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import set_sizes
    >>> set_sizes(np.array([[True, True], [False, False]]))
    array([2, 0])
    """
    return _check_sets(sets).sum(axis=1, dtype=np.int64)


def set_size_distribution(sets: np.typing.ArrayLike) -> np.ndarray:
    """Count of sets of each size 0, 1, ..., n_classes; int64 array of length n_classes + 1.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import set_size_distribution
    >>> set_size_distribution(np.array([[True, True], [False, True], [False, True]]))
    array([0, 2, 1])
    """
    s = _check_sets(sets)
    return np.bincount(s.sum(axis=1), minlength=s.shape[1] + 1).astype(np.int64)


def singleton_rate(sets: np.typing.ArrayLike) -> float:
    """Share of items whose set holds exactly one label.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import singleton_rate
    >>> singleton_rate(np.array([[True, False], [True, True]]))
    0.5
    """
    return float((set_sizes(sets) == 1).mean())


def summarize_sets(sets: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> dict[str, Any]:
    """Coverage and size statistics of prediction sets in one dict.

    Keys: ``n_items``, ``coverage``, ``min_class_coverage`` (over classes present in
    ``labels``), ``mean_set_size``, ``median_set_size``, ``empty_rate``,
    ``singleton_rate``, ``singleton_accuracy`` (coverage among singletons, NaN if none)
    and ``size_distribution`` (a list, counts of sizes 0..n_classes).

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import summarize_sets
    >>> s = summarize_sets(np.array([[True, False], [True, True]]), [0, 1])
    >>> s["coverage"], s["mean_set_size"], s["singleton_rate"]
    (1.0, 1.5, 0.5)
    """
    s, y = _sets_and_labels(sets, labels)
    sizes = s.sum(axis=1)
    hit = s[np.arange(y.shape[0]), y]
    per_class = coverage_per_class(s, y)
    single = sizes == 1
    return {
        "n_items": int(y.shape[0]),
        "coverage": float(hit.mean()),
        "min_class_coverage": float(np.nanmin(per_class)),
        "mean_set_size": float(sizes.mean()),
        "median_set_size": float(np.median(sizes)),
        "empty_rate": float((sizes == 0).mean()),
        "singleton_rate": float(single.mean()),
        "singleton_accuracy": float(hit[single].mean()) if single.any() else float("nan"),
        "size_distribution": np.bincount(sizes, minlength=s.shape[1] + 1).tolist(),
    }


def multilabel_coverage(predictions: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> float:
    """Share of items whose every label state is covered by a multi-label prediction.

    ``predictions`` is the int8 output of :meth:`MultiLabelConformal.predict` (1 present,
    0 absent, -1 uncertain); label k is covered when the prediction is -1 or equals the
    true 0/1 state.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import multilabel_coverage
    >>> multilabel_coverage(np.array([[1, -1], [0, 1]]), np.array([[1, 0], [1, 1]]))
    0.5
    """
    pred = np.asarray(predictions)
    y = np.asarray(labels)
    if pred.ndim != 2 or pred.shape != y.shape:
        raise ValidationError(
            "predictions",
            f"shape {pred.shape} does not match labels shape {y.shape}",
            "pass (n_items, n_labels) arrays for both",
        )
    return float(((pred == -1) | (pred == y)).all(axis=1).mean())
