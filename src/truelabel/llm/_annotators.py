"""LLMs (and the trained model) as annotators: their answers as a long annotation table.

The table ``item_id, annotator_id, label`` is the one contract of :mod:`truelabel.aggregate`,
so several LLMs, the trained model and people are weighed by the same Dawid-Skene fit
(:func:`truelabel.aggregate.choose_best_labels`, :class:`~truelabel.aggregate.DawidSkene`,
``truelabel consensus``, the audit's ``consensus`` check), each with an accuracy
estimated from agreement (and from gold items when there are some). No second engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError

__all__ = ["annotator_table"]


def _labels_of(name: Any, value: Any, texts: list[str] | None, classes: np.ndarray | None,
               n: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(answered mask, label per item) of one labeler."""
    from ._classifier import LLMClassifier

    where = f"labelers[{name!r}]"
    if isinstance(value, LLMClassifier):
        if texts is None:
            raise ValidationError("texts", "not given", f"pass the texts for {where}")
        probs, outside = value.proba_and_outside(texts)
        return ~outside, np.asarray(value.classes_, dtype=object)[probs.argmax(axis=1)]
    arr = value.to_numpy() if isinstance(value, pd.DataFrame | pd.Series) else np.asarray(value)
    if arr.ndim == 2:  # probabilities (the trained model's pred_probs)
        cols = classes if not isinstance(value, pd.DataFrame) else np.asarray(value.columns)
        if cols is None or len(cols) != arr.shape[1]:
            raise ValidationError(
                where,
                f"has {arr.shape[1]} probability columns and no class names for them",
                "pass classes=[...] in column order, or a DataFrame with class columns",
            )
        probs = arr.astype(np.float64)
        if arr.shape[0] != n or not np.isfinite(probs).all():
            raise ValidationError(
                where, f"is not {n} finite probability rows", "pass out-of-fold pred_probs"
            )
        return np.ones(n, dtype=bool), np.asarray(cols, dtype=object)[probs.argmax(axis=1)]
    if arr.ndim == 1 and arr.shape[0] == n:  # labels; None / NaN = no answer
        answered = ~pd.isna(arr)
        return np.asarray(answered, dtype=bool), arr.astype(object)
    raise ValidationError(
        where,
        f"got {type(value).__name__} of shape {getattr(arr, 'shape', None)} for {n} items",
        "pass an LLMClassifier, an (n_items, n_classes) probability array, or n_items labels",
    )


def annotator_table(
    labelers: Mapping[str, Any],
    texts: Sequence[str] | None = None,
    *,
    item_ids: Sequence[Any] | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each labeler's answer per item, as a long table ``item_id, annotator_id, label``.

    Parameters
    ----------
    labelers : mapping of name -> labeler
        An :class:`~truelabel.llm.LLMClassifier` (or judge): its most probable class per
        text; an item it answered outside the class set is left out (an abstention, not a
        uniform guess). An array or DataFrame of probabilities, shape (n_items, n_classes)
        (the trained model's out-of-fold ``pred_probs``): its argmax. A sequence of n_items
        labels (None / NaN = no answer).
    texts : sequence of str, optional
        The items' texts (needed for LLM labelers).
    item_ids : sequence, optional
        One id per item (default 0..n-1).
    classes : sequence of str, optional
        Class names of probability arrays' columns (default: the first LLM's classes).

    Returns
    -------
    DataFrame ``item_id, annotator_id, label`` (labelers in the given order, items in input
    order). Concatenate people's table to it, then ``choose_best_labels(table)``,
    ``DawidSkene().fit(Annotations(table))`` or ``Audit().run(annotations=table, ...)``.

    Examples
    --------
    >>> import numpy as np
    >>> model = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> annotator_table({"model": model, "rater": ["spam", None]}, classes=["spam", "ham"])
       item_id annotator_id label
    0        0        model  spam
    1        1        model   ham
    2        0        rater  spam
    """
    from ._classifier import LLMClassifier

    if not isinstance(labelers, Mapping) or not labelers:
        raise ValidationError(
            "labelers", "is not a non-empty mapping", "pass {'name': LLMClassifier or probs}"
        )
    if texts is not None:
        from ..model._textbase import check_texts

        texts = check_texts(texts)
    n = len(texts) if texts is not None else None
    if n is None:
        first = next(iter(labelers.values()))
        n = len(first) if hasattr(first, "__len__") else 0
    ids = np.arange(n) if item_ids is None else np.asarray(list(item_ids), dtype=object)
    if len(ids) != n:
        raise ValidationError("item_ids", f"has {len(ids)} ids for {n} items", "one per item")
    names = None if classes is None else np.asarray(list(classes), dtype=object)
    if names is None:
        llms = [v for v in labelers.values() if isinstance(v, LLMClassifier)]
        names = np.asarray(llms[0].classes_, dtype=object) if llms else None
    parts = []
    for name, value in labelers.items():
        answered, labels = _labels_of(name, value, texts, names, n)
        parts.append(
            pd.DataFrame(
                {"item_id": ids[answered], "annotator_id": name, "label": labels[answered]}
            )
        )
    return pd.concat(parts, ignore_index=True)
