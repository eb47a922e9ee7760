"""The best among several AI labelers: each labeler's accuracy, and the best label per item.

Several models (LLMs with different prompts, vendors' APIs, in-house classifiers) label the
same items. They are just annotators: a Dawid-Skene fit reads each one's confusion matrix from
the agreement structure (which labeler agrees with the others, on which classes), and gold
items, when there are some, both clamp the consensus and measure each labeler directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller
from ._base import Aggregator
from ._dawid_skene import DawidSkene
from ._quality import wilson_interval
from ._table import Annotations, _py, as_annotations

__all__ = ["LabelerChoice", "choose_best_labels"]


@dataclass
class LabelerChoice:
    """What :func:`choose_best_labels` returns.

    Attributes
    ----------
    labels : DataFrame
        Indexed by item id: ``label`` (the best label), ``confidence`` (its posterior
        probability, in [0, 1]) and ``labeler`` (the most accurate labeler that gave that
        label; None when none did).
    labelers : DataFrame
        Indexed by labeler, most accurate first: ``accuracy`` (in [0, 1]), ``ci_low``,
        ``ci_high`` (Wilson interval, answers as trials), ``source`` ("gold" when measured
        on gold items, else "agreement": Dawid-Skene's probability that the labeler is right
        on an item drawn from the class prior), ``n_answers``, ``n_gold``.
    best : the id of the most accurate labeler
    consensus : the fitted aggregator (its ``confusions_`` give per-class behaviour)
    """

    labels: pd.DataFrame
    labelers: pd.DataFrame
    best: Any
    consensus: Aggregator


def _long_table(labels: Any, classes: Any) -> Any:
    """A long ``item_id, annotator_id, label`` table from a wide frame or a labeler mapping."""
    if isinstance(labels, Annotations):
        return labels
    if isinstance(labels, Mapping):
        parts = []
        for name, value in labels.items():
            if isinstance(value, pd.DataFrame):  # probabilities: the labeler's argmax
                probs = value.to_numpy(dtype=float)
                if probs.ndim != 2 or probs.shape[1] < 2 or not np.isfinite(probs).all():
                    raise ValidationError(
                        f"labels[{_py(name)!r}]",
                        "is a DataFrame but not finite probabilities with one column per class",
                        "pass a Series of labels or a DataFrame (items x classes) of probabilities",
                    )
                value = pd.Series(value.columns[probs.argmax(axis=1)], index=value.index)
            if not isinstance(value, pd.Series):
                raise ValidationError(
                    f"labels[{_py(name)!r}]",
                    f"got {type(value).__name__}",
                    "pass a Series item_id -> label or a DataFrame of probabilities per labeler",
                )
            value = value.dropna()
            parts.append(
                pd.DataFrame(
                    {"item_id": value.index, "annotator_id": name, "label": value.to_numpy()}
                )
            )
        if not parts:
            raise ValidationError("labels", "is empty", "pass at least two labelers")
        labels = pd.concat(parts, ignore_index=True)
    elif isinstance(labels, pd.DataFrame) and not {"item_id", "annotator_id"} <= set(labels):
        stacked = labels.stack(future_stack=True).dropna()
        labels = pd.DataFrame(
            {
                "item_id": stacked.index.get_level_values(0),
                "annotator_id": stacked.index.get_level_values(1),
                "label": stacked.to_numpy(),
            }
        )
    if not isinstance(labels, pd.DataFrame):
        raise ValidationError(
            "labels",
            f"got {type(labels).__name__}",
            "pass a wide DataFrame (items x labelers), a long table (item_id, annotator_id, "
            "label) or a mapping labeler -> Series of labels / DataFrame of probabilities",
        )
    return Annotations(labels, classes=classes)


def choose_best_labels(
    labels: Any,
    *,
    gold: Any = None,
    classes: Any = None,
    consensus: Aggregator | None = None,
    confidence: float = 0.95,
) -> LabelerChoice:
    """Estimate each AI labeler's accuracy and pick the best label per item, with confidence.

    Parameters
    ----------
    labels : DataFrame, Mapping or Annotations
        A wide DataFrame (index item ids, one column per labeler, NaN = no answer); a long
        table ``item_id, annotator_id, label``; or a mapping ``labeler -> Series`` of labels
        or ``labeler -> DataFrame`` of class probabilities (items x classes; its argmax is the
        labeler's answer).
    gold : Series item_id -> label, optional
        Known labels for some items: clamped in the consensus, and each labeler's accuracy is
        measured on those it answered (``source = "gold"``).
    classes : sequence, optional
        The class set (default: the labels seen).
    consensus : EM aggregator, optional
        Default ``DawidSkene()``: a full confusion matrix per labeler (AI labelers answer
        many items each, so the matrices are well estimated, and a labeler biased towards
        one class is read as such).
    confidence : float in (0, 1), default 0.95
        Level of the accuracy intervals.

    Returns
    -------
    LabelerChoice

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"gpt": [0, 1, 1, 0, 1, 0], "claude": [0, 1, 1, 0, 0, 0],
    ...                      "small": [1, 1, 0, 0, 1, 1]}, index=[10, 11, 12, 13, 14, 15])
    >>> choice = choose_best_labels(wide)
    >>> choice.best, choice.labels["label"].tolist()
    ('claude', [0, 1, 1, 0, 0, 0])
    >>> choice.labelers["source"].tolist()
    ['agreement', 'agreement', 'agreement']
    """
    if not 0 < confidence < 1:
        raise ValidationError("confidence", f"got {confidence!r}", "pass a number in (0, 1)")
    table = as_annotations(_long_table(labels, classes), gold)
    if table.n_annotators < 2:
        raise ValidationError(
            "labels", f"has {table.n_annotators} labeler", "pass two or more labelers to compare"
        )
    has_gold = bool((table.gold_codes >= 0).any())
    if table.n_annotators == 2 and not has_gold:
        warn_at_caller(
            "choose_best_labels: with two labelers and no gold, agreement cannot tell which "
            "one is right where they disagree; the accuracies are weakly identified. Add gold "
            "items or a third labeler",
            TruelabelWarning,
        )
    model = DawidSkene() if consensus is None else consensus
    model.fit(table)
    post = model.probas_.to_numpy()
    skills = model.skills_.to_numpy()
    j, item, lab = table.annotator_codes, table.item_codes, table.label_codes
    na = table.n_annotators
    n = np.bincount(j, minlength=na).astype(float)
    on_gold = table.gold_codes[item] >= 0
    n_gold = np.bincount(j[on_gold], minlength=na).astype(float)
    right = np.bincount(
        j[on_gold], weights=lab[on_gold] == table.gold_codes[item][on_gold], minlength=na
    )
    use_gold = n_gold > 0
    acc = np.where(use_gold, right / np.maximum(n_gold, 1), skills)
    trials = np.where(use_gold, n_gold, n)
    lo, hi = wilson_interval(acc * trials, trials, confidence)
    labelers = pd.DataFrame(
        {
            "accuracy": acc,
            "ci_low": lo,
            "ci_high": hi,
            "source": np.where(use_gold, "gold", "agreement"),
            "n_answers": n.astype(np.int64),
            "n_gold": n_gold.astype(np.int64),
        },
        index=table.annotators.rename("labeler"),
    ).sort_values("accuracy", ascending=False, kind="stable")
    # per item, the most accurate labeler that gave the chosen label
    chosen = table.classes.get_indexer(pd.Index(model.labels_))
    gave = lab == chosen[item]
    score = np.where(gave, acc[j], -1.0)
    best_score = np.full(table.n_items, -1.0)
    np.maximum.at(best_score, item, score)
    who = np.full(table.n_items, -1)
    hit = gave & (score == best_score[item])
    who[item[hit][::-1]] = j[hit][::-1]  # first such labeler in code order wins ties
    names = np.asarray(table.annotators, dtype=object)
    out = pd.DataFrame(
        {
            "label": model.labels_.to_numpy(),
            "confidence": post[np.arange(table.n_items), chosen],
            "labeler": np.where(who >= 0, names[np.maximum(who, 0)], None),
        },
        index=model.labels_.index,
    )
    return LabelerChoice(out, labelers, labelers.index[0], model)
