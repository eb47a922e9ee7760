"""The certify step, reusable by the CLI and later by the auto-labeling command:
probabilities of a pool + a trusted calibration set -> decisions with reasons.

No files here: :mod:`truelabel.certification` reads and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_labels, check_pred_probs
from ..backend import Backend
from ..exceptions import ValidationError
from ._certified import CertifiedAutoLabeler
from ._result import AutoLabelResult

__all__ = ["CertifyResult", "certify_pool"]


@dataclass
class CertifyResult:
    """Decisions for a pool (with prediction sets) plus what was certified."""

    decisions: pd.DataFrame
    labeler: CertifiedAutoLabeler
    result: AutoLabelResult
    summary: dict[str, Any] = field(default_factory=dict)


def certify_pool(
    pred_probs: Any,
    calibration_pred_probs: Any,
    calibration_labels: Any,
    *,
    max_error: float = 0.02,
    delta: float = 0.05,
    class_conditional: bool = False,
    calibration_label_error: float = 0.0,
    classes: list[str] | None = None,
    set_alpha: float = 0.1,
    guarantee: str = "rate",
    index: Any = None,
    backend: Backend | str | None = None,
) -> CertifyResult:
    """Decide which pool items to auto-label with a certified error.

    Parameters
    ----------
    pred_probs : array of shape (n_pool, n_classes)
        Probabilities of the pool to decide.
    calibration_pred_probs, calibration_labels
        The calibration set: probabilities from the same model and trusted labels.

    Adds a ``prediction_set`` column: the split-conformal (LAC) set at level
    ``1 - set_alpha`` from the same calibration data (never empty: the top class stands
    in for an empty set), as class names joined by ``|``, to show reviewers the
    plausible labels of every item. ``summary["certified"]`` is True only when items are
    accepted.
    """
    cal = check_pred_probs(calibration_pred_probs, argument="calibration_pred_probs")
    pool = check_pred_probs(pred_probs)
    if pool.shape[1] != cal.shape[1]:
        raise ValidationError(
            "pred_probs",
            f"has {pool.shape[1]} classes but calibration_pred_probs has {cal.shape[1]}",
            "use probabilities from the same model for both",
        )
    y = check_labels(
        calibration_labels,
        n_classes=cal.shape[1],
        n_items=cal.shape[0],
        argument="calibration_labels",
    )
    names = classes if classes is not None else [str(i) for i in range(cal.shape[1])]
    labeler = CertifiedAutoLabeler(
        max_error=max_error,
        delta=delta,
        class_conditional=class_conditional,
        calibration_label_error=calibration_label_error,
        classes=names,
        guarantee=guarantee,
    ).fit(cal, y, backend=backend)
    result = labeler.decide(pool, backend=backend)
    decisions = result.decisions.copy()
    decisions["prediction_set"] = _prediction_sets(cal, y, pool, set_alpha, names, backend)
    if index is not None:
        decisions.index = index
    threshold = result.threshold
    if isinstance(threshold, dict):
        threshold = {names[k]: v for k, v in threshold.items()}
    summary = {
        "certified": result.certified,
        "n_pool": result.n_pool,
        "n_accepted": result.n_accepted,
        "coverage": result.coverage,
        "threshold": threshold,
        "certified_error_bound": result.bound,
        "guarantee": guarantee,
        "message": result.message,
        "n_more_needed": result.n_more_needed,
        "other_guarantee": result.other_guarantee,
        "other_guarantee_accepted": result.other_guarantee_accepted,
        "n_calibration": int(cal.shape[0]),
        "max_error": max_error,
        "confidence": 1 - delta,
        "class_conditional": class_conditional,
        "calibration_label_error": calibration_label_error,
        "calibration_rate_threshold": _jsonable(labeler.threshold_),
        "calibration_message": labeler.message,
    }
    return CertifyResult(decisions=decisions, labeler=labeler, result=result, summary=summary)


def _prediction_sets(
    cal: np.ndarray,
    y: np.ndarray,
    pool: np.ndarray,
    alpha: float,
    names: list[str],
    backend: Any = None,
) -> np.ndarray:
    from ..conformal import SplitConformalClassifier

    try:
        conformal = SplitConformalClassifier(method="lac", alpha=alpha, backend=backend)
        sets = conformal.fit(cal, y).predict_set(pool)
    except ValidationError:
        # too few calibration items for this alpha: every class is plausible
        sets = np.ones(pool.shape, dtype=bool)
    # an empty LAC set (no class plausible enough) shows the top class instead: adding
    # labels only raises coverage, and reviewers always see a candidate
    sets[np.arange(pool.shape[0]), pool.argmax(axis=1)] |= ~sets.any(axis=1)
    arr = np.asarray(names, dtype=object)
    return np.array(["|".join(arr[row]) for row in sets], dtype=object)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [None if np.isnan(v) else float(v) for v in value]
    return value
