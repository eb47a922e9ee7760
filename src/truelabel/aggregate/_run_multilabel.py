"""Multi-label consensus with the numbers a user needs beside it (``truelabel consensus
--multi-label``): the consensus set of each item with per-class probabilities, annotator
quality and spammers, per-class agreement.

Each annotator gives a set of classes per item; :class:`MultiLabelDawidSkene` fits one
binary Dawid-Skene per class. Quality, chance and agreement are the single-label
definitions (:func:`~truelabel.aggregate.annotator_quality`, :mod:`._agreement`) applied to
the per-class yes/no decisions. No files here (see :mod:`truelabel._consensus`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._agreement import cohen_kappa_pairwise, fleiss_kappa, krippendorff_alpha
from ._multilabel import MultiLabelDawidSkene
from ._quality import wilson_interval
from ._run import FEW_ANSWERS, ConsensusResult
from ._table import Annotations

__all__ = ["multilabel_agreement", "multilabel_quality", "run_multilabel_consensus"]


def _indicators(model: MultiLabelDawidSkene, sep: str) -> np.ndarray:
    """The ``(n_answers, K)`` 0/1 answers of the fitted table (rows in its encoded order)."""
    table = model.annotations_
    col = {str(c): k for k, c in enumerate(model.classes_)}
    sets = np.zeros((table.n_classes, len(col)), dtype=np.int8)
    for r, s in enumerate(table.classes):  # a loop over distinct sets, not over answers
        members = [col[c] for c in str(s).split(sep) if c]
        sets[r, members] = 1
    return sets[table.label_codes]


def multilabel_quality(
    model: MultiLabelDawidSkene,
    *,
    sep: str = "|",
    confidence: float = 0.95,
    spammer_kappa: float = 0.2,
) -> pd.DataFrame:
    """Quality of each annotator in [0, 1] with a Wilson interval, kappa and spammer flag.

    ``quality`` is the expected share of an annotator's per-class decisions ("``c`` is in
    the set" yes / no) that match the consensus: per answer the mean over classes of
    ``P(consensus says the same about c)``, averaged over its answers. The Wilson interval
    counts answers (not answer x class cells, which are correlated) as trials. ``chance`` is
    the same agreement for an annotator ticking each class at random with its own rate on its
    own items; ``kappa = (quality - chance) / (1 - chance)``, below ``spammer_kappa`` =
    spammer (e.g. one who ticks every class, or none).
    """
    table = model.annotations_
    answers = _indicators(model, sep).astype(float)  # (n, K)
    post = model.probas_.to_numpy()[table.item_codes]  # (n, K): P(c in the true set)
    j = table.annotator_codes
    na = table.n_annotators
    n = np.bincount(j, minlength=na).astype(float)
    same = np.where(answers > 0, post, 1.0 - post).mean(axis=1)
    soft = np.bincount(j, weights=same, minlength=na)
    safe = np.maximum(n, 1.0)[:, None]
    k = answers.shape[1]
    rate = np.stack([np.bincount(j, weights=answers[:, c], minlength=na) for c in range(k)], 1)
    mass = np.stack([np.bincount(j, weights=post[:, c], minlength=na) for c in range(k)], 1)
    rate, mass = rate / safe, mass / safe
    chance = (rate * mass + (1.0 - rate) * (1.0 - mass)).mean(axis=1)
    quality = soft / safe[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(chance < 1, (quality - chance) / (1.0 - chance), np.nan)
    lo, hi = wilson_interval(soft, n, confidence)
    return pd.DataFrame(
        {
            "n_answers": n.astype(np.int64),
            "quality": quality,
            "ci_low": lo,
            "ci_high": hi,
            "source": "consensus",
            "chance": chance,
            "kappa": kappa,
            "is_spammer": np.nan_to_num(kappa, nan=0.0) < spammer_kappa,
        },
        index=table.annotators.rename("annotator"),
    )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def multilabel_agreement(model: MultiLabelDawidSkene, *, sep: str = "|") -> dict[str, Any]:
    """Fleiss' kappa, Krippendorff's alpha and the mean pairwise Cohen's kappa of each class's
    yes / no answers, and their means over the classes where they are defined."""
    table = model.annotations_
    answers = _indicators(model, sep)
    ids = {
        "item": table.items.to_numpy()[table.item_codes],
        "annotator": table.annotators.to_numpy()[table.annotator_codes],
    }
    per_class: dict[str, dict[str, Any]] = {}
    note = None
    for c, name in enumerate(model.classes_):  # a loop over classes
        frame = pd.DataFrame({**ids, "label": answers[:, c]})
        binary = Annotations(frame, item="item", annotator="annotator", classes=[0, 1],
                             duplicates="all")  # fmt: skip
        row: dict[str, Any] = {}
        try:
            row["fleiss_kappa"] = _finite(fleiss_kappa(binary))
            row["krippendorff_alpha"] = _finite(krippendorff_alpha(binary))
        except ValidationError as err:  # no item has two answers
            row["fleiss_kappa"] = row["krippendorff_alpha"] = None
            note = err.problem
        pairs = cohen_kappa_pairwise(binary, min_common=2)["kappa"].to_numpy(dtype=float)
        ok = pairs[np.isfinite(pairs)]
        row["cohen_kappa_mean"] = float(ok.mean()) if ok.size else None
        row["n_pairs"] = int(ok.size)
        per_class[str(name)] = row

    def mean(key: str) -> float | None:
        vals = [r[key] for r in per_class.values() if r[key] is not None]
        return float(np.mean(vals)) if vals else None

    out: dict[str, Any] = {
        "per_class": per_class,
        "fleiss_kappa_mean": mean("fleiss_kappa"),
        "krippendorff_alpha_mean": mean("krippendorff_alpha"),
        "cohen_kappa_mean": mean("cohen_kappa_mean"),
    }
    if note:
        out["note"] = note
    return out


def run_multilabel_consensus(
    frame: pd.DataFrame,
    *,
    item: str = "item_id",
    annotator: str = "annotator_id",
    label: str = "label",
    sep: str = "|",
    classes: Any = None,
    duplicates: str = "raise",
    doubtful_below: float = 0.8,
) -> ConsensusResult:
    """Consensus sets, annotator quality and agreement of a long table of set answers.

    ``consensus`` has per item the consensus set (``label``: classes joined by ``sep``, ""
    = the empty set), ``confidence`` = the probability that the set is exactly right
    (the product over classes of ``max(p, 1 - p)``: the classes' posteriors taken as
    independent, as the one-vs-rest model does), ``n_labels`` (answers), ``is_doubtful``
    (confidence below ``doubtful_below``) and ``p_<class>`` = P(class in the set).

    >>> df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2, 2], "annotator_id": list("abcabc"),
    ...                    "label": ["x|y", "x", "x|y", "y", "y", ""]})
    >>> res = run_multilabel_consensus(df)
    >>> res.consensus["label"].tolist(), list(res.consensus.columns[-2:])
    (['x|y', 'y'], ['p_x', 'p_y'])
    """
    if not 0.0 < doubtful_below <= 1.0:
        raise ValidationError("--doubtful-below", f"got {doubtful_below}", "pass e.g. 0.8")
    model = MultiLabelDawidSkene(sep=sep, classes=classes).fit(
        frame, item=item, annotator=annotator, label=label, duplicates=duplicates
    )
    table = model.annotations_
    probas = model.probas_.to_numpy()
    chosen = probas >= model.threshold
    names = np.asarray([str(c) for c in model.classes_], dtype=object)
    labels = [sep.join(names[row]) for row in chosen]  # one join per item: output formatting
    confidence = np.where(chosen, probas, 1.0 - probas).prod(axis=1)
    n_labels = np.bincount(table.item_codes, minlength=table.n_items)
    consensus = pd.DataFrame(
        {
            "label": labels,
            "confidence": confidence,
            "n_labels": n_labels,
            "is_doubtful": confidence < doubtful_below,
        },
        index=table.items.rename("item"),
    )
    for c, name in enumerate(names):
        consensus[f"p_{name}"] = probas[:, c]
    quality = multilabel_quality(model, sep=sep)
    quality["few_answers"] = quality["n_answers"] < FEW_ANSWERS
    found: list[str] = []
    few = int(quality["few_answers"].sum())
    if few:
        width = (quality["ci_high"] - quality["ci_low"])[quality["few_answers"]].median()
        found.append(
            f"{few} of {len(quality)} annotators gave fewer than {FEW_ANSWERS} answers: their "
            f"quality intervals are wide (median width {width:.2f}); do not rank them on quality"
        )
    single = int((n_labels == 1).sum())
    if single:
        found.append(
            f"{single} of {table.n_items} items have a single answer: their consensus is that "
            "one annotator's set, and its confidence is the model's trust in that annotator"
        )
    summary = {
        "n_items": table.n_items,
        "n_annotators": table.n_annotators,
        "n_answers": table.n_labels,
        "n_classes": len(names),
        "classes": list(names),
        "method": "multi-label dawid-skene",
        "doubtful_below": doubtful_below,
        "mean_confidence": float(confidence.mean()),
        "n_doubtful": int(consensus["is_doubtful"].sum()),
        "n_spammers": int(quality["is_spammer"].sum()),
        "n_gold": 0,
        "n_duplicates": table.n_duplicates,
        "duplicates": table.duplicates,
        "mean_set_size": float(chosen.sum(axis=1).mean()),
        "warnings": found,
    }
    agreement = multilabel_agreement(model, sep=sep)
    return ConsensusResult(consensus, quality, agreement, summary, found)
