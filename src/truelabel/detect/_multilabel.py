"""Label issues in multi-label data: one-vs-rest confident learning per class.

Each class is a binary problem (has the class or not) with probabilities
``[1 - p_k, p_k]``; an item has a label issue when any of its per-class labels is flagged.
Work is one pass per class over an (n_items, 2) view, so memory is O(n_items).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validation import check_choice, check_pred_probs
from ..exceptions import ValidationError
from ._filter import FILTER_METHODS, _compute_issue_mask
from ._rank import QUALITY_METHODS, _compute_scores

__all__ = [
    "find_multilabel_issues",
    "get_multilabel_quality_scores",
    "multilabel_matrix",
]


def multilabel_matrix(labels: Any, n_classes: int | None = None) -> np.ndarray:
    """A (n_items, n_classes) 0/1 int8 matrix from a 0/1 matrix or lists of class indices."""
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        if not np.isin(labels, (0, 1)).all():
            raise ValidationError(
                "labels",
                "a 2-D labels matrix must hold only 0 and 1",
                "pass a 0/1 indicator matrix",
            )
        if n_classes is not None and labels.shape[1] != n_classes:
            raise ValidationError(
                "labels",
                f"has {labels.shape[1]} columns but pred_probs has {n_classes}",
                "pass one column per class",
            )
        return labels.astype(np.int8)
    rows = [list(r) if isinstance(r, Iterable) and not isinstance(r, str) else None for r in labels]
    for i, r in enumerate(rows):
        if r is None:
            raise ValidationError(
                "labels",
                f"item {i} is {labels[i]!r}, not a list of class indices",
                "pass e.g. [[0, 2], [1], []] or a 0/1 matrix",
            )
    flat = np.fromiter((c for r in rows for c in r), dtype=np.int64)  # type: ignore[union-attr]
    k = n_classes if n_classes is not None else (int(flat.max()) + 1 if flat.size else 1)
    if flat.size and (flat.min() < 0 or flat.max() >= k):
        bad = int(flat.min() if flat.min() < 0 else flat.max())
        raise ValidationError(
            "labels",
            f"class {bad} is outside [0, {k})",
            "class indices must index pred_probs columns",
        )
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64)  # type: ignore[arg-type]
    out = np.zeros((len(rows), k), dtype=np.int8)
    out[np.repeat(np.arange(len(rows)), lengths), flat] = 1
    return out


def _binary(pred_probs: np.ndarray, k: int) -> np.ndarray:
    col = pred_probs[:, k].astype(np.float64)
    return np.stack([1.0 - col, col], axis=1)


def _validate(labels: Any, pred_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    p = check_pred_probs(pred_probs, multi_label=True)
    y = multilabel_matrix(labels, p.shape[1])
    if y.shape[0] != p.shape[0]:
        raise ValidationError(
            "labels", f"has {y.shape[0]} items but pred_probs has {p.shape[0]}", "pass one per item"
        )
    return y, p


def find_multilabel_issues(
    labels: Any,
    pred_probs: Any,
    *,
    filter_by: str = "prune_by_noise_rate",
    per_class: bool = False,
) -> np.ndarray:
    """Find items whose set of labels is probably wrong.

    Parameters
    ----------
    labels : 0/1 array (n_items, n_classes) or list of lists of class indices
    pred_probs : array of shape (n_items, n_classes)
        Independent per-class probabilities (e.g. sigmoid outputs); rows need not sum to 1.
    filter_by : str, default "prune_by_noise_rate"
        Applied per class, see :func:`truelabel.find_label_issues`.
    per_class : bool, default False
        Return the (n_items, n_classes) mask of which class label is wrong per item.

    Returns
    -------
    ndarray of bool, shape (n_items,) or (n_items, n_classes)

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import find_multilabel_issues
    >>> p = np.array([[0.9, 0.1], [0.8, 0.9], [0.1, 0.9], [0.95, 0.05], [0.1, 0.8]])
    >>> find_multilabel_issues([[0], [0, 1], [1], [1], [1]], p)
    array([False, False, False,  True, False])
    """
    filter_by = check_choice("filter_by", filter_by, FILTER_METHODS)
    y, p = _validate(labels, pred_probs)
    mask = np.zeros(y.shape, dtype=bool)
    for k in range(y.shape[1]):
        yk = y[:, k].astype(np.int64)
        if yk.min() == yk.max():  # a class every item has (or none has): nothing to contrast
            continue
        mask[:, k] = _compute_issue_mask(yk, _binary(p, k), filter_by)
    return mask if per_class else np.asarray(mask.any(axis=1))


def get_multilabel_quality_scores(
    labels: Any,
    pred_probs: Any,
    *,
    method: str = "self_confidence",
    temperature: float = 0.1,
    per_class: bool = False,
) -> np.ndarray:
    """Score each item's label set in [0, 1] (lower = more likely wrong).

    Per-class scores are binary quality scores; the item score is their soft minimum
    ``sum(s * exp(-s / T)) / sum(exp(-s / T))``, so one bad class label dominates.
    """
    method = check_choice("method", method, QUALITY_METHODS)
    if temperature <= 0:
        raise ValidationError("temperature", f"got {temperature}", "pass a value > 0, e.g. 0.1")
    y, p = _validate(labels, pred_probs)
    scores = np.empty(y.shape, dtype=np.float64)
    for k in range(y.shape[1]):
        scores[:, k] = _compute_scores(y[:, k].astype(np.int64), _binary(p, k), method)
    if per_class:
        return scores
    w = np.exp(-(scores - scores.min(axis=1, keepdims=True)) / temperature)
    return np.asarray((scores * w).sum(axis=1) / w.sum(axis=1))
