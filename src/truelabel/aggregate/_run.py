"""Consensus of an encoded annotation table with the numbers a user needs beside it:
annotator quality, agreement, doubtful items and what the data warns about.

Below the audit and the report (the ``consensus`` detector and ``truelabel consensus`` both
call :func:`run_consensus`); no files here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._spill import scratch
from .._spill_frame import spill_copy
from .._validation import check_choice
from ..exceptions import ValidationError
from ._agreement import cohen_kappa_pairwise, fleiss_kappa, krippendorff_alpha
from ._dawid_skene import DawidSkene, OneCoinDawidSkene
from ._mace import MACE
from ._majority import MajorityVote
from ._model_assisted import ModelAssistedConsensus
from ._quality import annotator_quality
from ._table import Annotations

__all__ = ["FEW_ANSWERS", "METHODS", "ConsensusResult", "check_choice_method", "run_consensus"]

#: ``--method`` -> aggregator
METHODS: dict[str, Any] = {
    "dawid-skene": DawidSkene,
    "majority": MajorityVote,
    "mace": MACE,
    "one-coin": OneCoinDawidSkene,
}
#: annotators with fewer answers get wide quality intervals (said in a warning)
FEW_ANSWERS = 10


@dataclass
class ConsensusResult:
    """What :func:`run_consensus` found (tables indexed by item / annotator id)."""

    consensus: pd.DataFrame  # item -> label, confidence, n_labels, is_doubtful
    annotators: pd.DataFrame  # annotator -> n_answers, quality, ci_low, ci_high, source, ...
    agreement: dict[str, Any]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _agreement(table: Annotations) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        out["fleiss_kappa"] = fleiss_kappa(table)
        out["krippendorff_alpha"] = krippendorff_alpha(table)
    except ValidationError as err:  # no item has two answers
        out["fleiss_kappa"] = out["krippendorff_alpha"] = None
        out["note"] = err.problem
    pairs = cohen_kappa_pairwise(table, min_common=2)
    kappa = pairs["kappa"].to_numpy(dtype=float)
    ok = np.isfinite(kappa)
    w = pairs["n_common"].to_numpy(dtype=float)[ok]
    out["cohen_kappa_pairs"] = {
        "n_pairs": int(ok.sum()),
        "min_common_items": 2,
        "mean": float(kappa[ok].mean()) if ok.any() else None,
        "median": float(np.median(kappa[ok])) if ok.any() else None,
        "weighted_mean": float((kappa[ok] * w).sum() / w.sum()) if ok.any() else None,
        "min": float(kappa[ok].min()) if ok.any() else None,
        "max": float(kappa[ok].max()) if ok.any() else None,
    }
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def _aggregator(method: str, random_state: int, backend: Any, chunk_size: int | None) -> Any:
    """The aggregator of ``--method``; the EM ones run on ``backend``."""
    if method == "majority":
        return METHODS[method](random_state=random_state)
    return METHODS[method](random_state=random_state, backend=backend, chunk_size=chunk_size)


def run_consensus(
    table: Annotations,
    *,
    method: str = "dawid-skene",
    doubtful_below: float = 0.8,
    random_state: int = 0,
    pred_probs: Any = None,
    backend: Any = None,
    chunk_size: int | None = None,
) -> ConsensusResult:
    """Consensus, annotator quality and agreement of an encoded table.

    An item is *doubtful* when its consensus probability is below ``doubtful_below``.
    Annotator quality comes from gold items when the annotator answered any, else from
    agreement with the consensus (:func:`~truelabel.aggregate.annotator_quality`).
    With ``pred_probs`` (a classifier's out-of-fold probabilities, rows in the table's item
    order) the consensus is :class:`ModelAssistedConsensus` with ``method`` as its base
    (an EM method: not ``majority``); ``summary["model_assisted"]`` then holds the base, the
    model's fitted weight and its accuracy against the annotators-only consensus.
    ``backend`` and ``chunk_size`` run the EM methods' chunked E-steps (``majority`` has
    none); the results do not depend on them.
    """
    check_choice_method(method)
    if not 0.0 < doubtful_below <= 1.0:
        raise ValidationError("--doubtful-below", f"got {doubtful_below}", "pass e.g. 0.8")
    assisted: dict[str, Any] | None = None
    if pred_probs is None:
        model = _aggregator(method, random_state, backend, chunk_size).fit(table)
    else:
        if method == "majority":
            raise ValidationError(
                "--method",
                "'majority' with a classifier's pred_probs",
                "model-assisted consensus runs on an EM model: pass dawid-skene, one-coin or mace",
            )
        base = _aggregator(method, random_state, backend, chunk_size)
        model = ModelAssistedConsensus(base=base, random_state=random_state)
        model.fit(table, pred_probs=pred_probs)
        assisted = {
            "base": method,
            "model_weight": model.model_weight_,
            "model_accuracy": (
                float(model.model_accuracy_) if np.isfinite(model.model_accuracy_) else None
            ),
        }
    probas = model.probas_.to_numpy()
    # per-item columns in spill files when large (the posteriors already are), wrapped without
    # a copy; the labels as the model holds them (no Python string per item)
    confidence = np.max(probas, axis=1, out=scratch(probas.shape[0], probas.dtype))
    n_labels = spill_copy(np.bincount(table.item_codes, minlength=table.n_items))
    consensus = pd.DataFrame(
        {
            "label": model.labels_.array,
            "confidence": confidence,
            "n_labels": n_labels,
            "is_doubtful": confidence < doubtful_below,
        },
        index=table.items.rename("item"),
        copy=False,
    )
    gold = table.gold_codes >= 0
    consensus["is_gold"] = gold
    quality = annotator_quality(table, model)
    quality.index = quality.index.rename("annotator")
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
    if single and assisted is not None:
        changed = int((model.labels_.to_numpy() != _answer_of_single(table))[n_labels == 1].sum())
        found.append(
            f"{single} of {table.n_items} items have a single answer: their consensus weighs "
            f"that answer against the classifier (weight {assisted['model_weight']:.2f}), "
            f"which overruled it on {changed}"
        )
    elif single:
        found.append(
            f"{single} of {table.n_items} items have a single answer: their consensus is that "
            "one annotator's label, and its confidence is the model's trust in that annotator"
        )
    if gold.any() and gold.sum() < 30:
        found.append(
            f"only {int(gold.sum())} gold items: quality measured on gold is rough (see the "
            "intervals)"
        )
    agreement = _agreement(table)
    summary = {
        "n_items": table.n_items,
        "n_annotators": table.n_annotators,
        "n_answers": table.n_labels,
        "n_classes": table.n_classes,
        "classes": [str(c) for c in table.classes],
        "method": method,
        "doubtful_below": doubtful_below,
        "mean_confidence": float(confidence.mean()),
        "n_doubtful": int(consensus["is_doubtful"].sum()),
        "n_spammers": int(quality["is_spammer"].sum()),
        "n_gold": int(gold.sum()),
        "n_duplicates": table.n_duplicates,
        "duplicates": table.duplicates,
        "warnings": found,
    }
    if assisted is not None:
        summary["method"] = f"model-assisted ({method})"
        summary["model_assisted"] = assisted
    return ConsensusResult(consensus, quality, agreement, summary, found)


def _answer_of_single(table: Annotations) -> np.ndarray:
    """Per item, the class of one of its answers (the only one on single-answer items)."""
    one = np.zeros(table.n_items, dtype=np.int64)
    one[table.item_codes] = table.label_codes
    return np.asarray(table.classes)[one]


def check_choice_method(method: str) -> str:
    """``method`` if it names one of :data:`METHODS`, else a ValidationError naming --method."""
    return str(check_choice("--method", method, tuple(METHODS)))
