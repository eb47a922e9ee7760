"""The learner's view of the answers: consensus labels (truelabel.aggregate) and annotator
accuracy, recomputed after every ``teach``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._model import LinearModel

__all__ = ["AnswerState", "Refit", "consensus"]

#: pseudo-pairs of repeated answers behind the prior annotator accuracy
PRIOR_PAIRS = 10.0


@dataclass
class AnswerState:
    items: np.ndarray  # taught item ids, sorted
    codes: np.ndarray  # consensus class code per item
    classes: np.ndarray
    accuracy: pd.Series  # per annotator
    answer_item: np.ndarray  # per answer: position in items
    answer_label: np.ndarray  # per answer: class code
    answer_q: np.ndarray  # per answer: its annotator's accuracy
    overlap: bool = False  # several annotators answered one item (Dawid-Skene's accuracies)


@dataclass
class Refit:
    state: AnswerState
    classes: np.ndarray
    model: LinearModel | None = None
    pool_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    oof_probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    weakness: float = 1.0
    temperature: float = 1.0
    #: left-out labels the model gets right where the nearest taught item does not, and the
    #: reverse (:func:`._select.neighbour_edge`)
    edge: tuple[int, int] = (0, 0)


def _class_order(labels: pd.Series, classes: list[Any] | None) -> np.ndarray:
    if classes is not None:
        return np.asarray(classes, dtype=object if labels.dtype == object else None)
    uniques = pd.unique(labels)
    try:
        return np.asarray(sorted(uniques))
    except TypeError:
        return np.asarray(uniques, dtype=object)


def consensus(
    answers: pd.DataFrame,
    *,
    classes: list[Any] | None,
    prior_accuracy: float,
    tie_probs: np.ndarray | None,
    prev_classes: np.ndarray | None,
    pair_accuracy: Callable[..., float],
) -> AnswerState:
    """Consensus label per taught item and accuracy per annotator.

    Several annotators who overlap on some item: one-coin Dawid-Skene
    (:class:`truelabel.aggregate.OneCoinDawidSkene`): its skills and posteriors. Otherwise
    (one annotator, or no overlap) each annotator's accuracy comes from how often its repeated
    answers agree (:func:`pair_accuracy`, prior ``prior_accuracy`` worth ``PRIOR_PAIRS``
    pairs) and the label is the majority vote (:class:`truelabel.aggregate.MajorityVote`'s
    vote shares). Ties go to the class the last model found most likely.
    """
    from ..aggregate import Annotations, MajorityVote, OneCoinDawidSkene

    order = _class_order(answers["label"], classes)
    k = max(order.size, 2)
    items, answer_item = np.unique(answers["item_id"].to_numpy(np.int64), return_inverse=True)
    lookup = pd.Index(order)
    answer_label = lookup.get_indexer(answers["label"])
    annot_ids = answers["annotator_id"].to_numpy()
    annotators, answer_annot = np.unique(annot_ids.astype(str), return_inverse=True)
    first_id = pd.Series(annot_ids).groupby(answer_annot).first().to_numpy()
    n_distinct = (
        pd.DataFrame({"i": answer_item, "j": answer_annot}).drop_duplicates().groupby("i").size()
    )
    overlap = annotators.size >= 2 and bool((n_distinct >= 2).any())
    if order.size < 2 or len(answers) == 0:  # nothing to aggregate (a cold start)
        probas = np.ones((items.size, 1))
        acc = np.full(annotators.size, prior_accuracy)
    else:
        table = Annotations(
            pd.DataFrame(
                {"item_id": answer_item, "annotator_id": answer_annot, "label": answer_label}
            ),
            classes=list(range(order.size)),
            duplicates="all",
        )
        if overlap:
            agg = OneCoinDawidSkene().fit(table)
            acc = agg.skills_.reindex(range(annotators.size)).to_numpy(dtype=float)
        else:
            agg = MajorityVote().fit(table)
            acc = np.array(
                [
                    pair_accuracy(
                        answer_item[answer_annot == j],
                        answer_label[answer_annot == j],
                        order.size,
                        prior_accuracy,
                        PRIOR_PAIRS,
                    )
                    for j in range(annotators.size)
                ]
            )
        probas = agg.probas_.reindex(index=range(items.size), columns=range(order.size)).to_numpy()
    tie = np.zeros((items.size, probas.shape[1]))
    if tie_probs is not None and prev_classes is not None and order.size >= 2:
        cols = pd.Index(prev_classes).get_indexer(order)
        known = cols >= 0
        tie[:, known] = tie_probs[items][:, cols[known]]
    top = probas.max(axis=1, keepdims=True)
    tied = probas >= top - 1e-9
    codes = np.argmax(np.where(tied, tie + 1.0, 0.0), axis=1)
    del k
    return AnswerState(
        items=items,
        codes=codes,
        classes=order,
        accuracy=pd.Series(acc, index=pd.Index(first_id, name="annotator_id"), name="accuracy"),
        answer_item=answer_item,
        answer_label=answer_label,
        answer_q=acc[answer_annot],
        overlap=overlap,
    )
