"""The certify step, reusable by the CLI and later by the auto-labeling command:
probabilities of a pool + a trusted calibration set -> decisions with reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from .._validation import check_labels, check_pred_probs
from ..exceptions import ValidationError
from ._certified import CertifiedAutoLabeler

__all__ = ["CertifyResult", "certify_pool", "write_certify"]


@dataclass
class CertifyResult:
    """Decisions for a pool plus what was certified."""

    decisions: pd.DataFrame
    labeler: CertifiedAutoLabeler
    summary: dict[str, Any] = field(default_factory=dict)


def certify_pool(
    pool_pred_probs: Any,
    calibration_pred_probs: Any,
    calibration_labels: Any,
    *,
    max_error: float = 0.02,
    delta: float = 0.05,
    class_conditional: bool = False,
    calibration_label_error: float = 0.0,
    classes: list[str] | None = None,
    set_alpha: float = 0.1,
    guarantee: str = "pool",
    index: Any = None,
) -> CertifyResult:
    """Decide which pool items to auto-label with a certified error rate.

    Adds a ``prediction_set`` column: the split-conformal (LAC) set at level
    ``1 - set_alpha`` from the same calibration data (never empty: the top class stands
    in for an empty set), as class names joined by ``|``, to show reviewers the
    plausible labels of every item.
    """
    cal = check_pred_probs(calibration_pred_probs, argument="calibration_pred_probs")
    pool = check_pred_probs(pool_pred_probs, argument="pred_probs")
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
    ).fit(cal, y)
    decisions = labeler.decide(pool)
    decisions["prediction_set"] = _prediction_sets(cal, y, pool, set_alpha, names)
    if index is not None:
        decisions.index = index
    summary = {
        "n_pool": int(pool.shape[0]),
        "n_calibration": int(cal.shape[0]),
        "max_error": max_error,
        "confidence": 1 - delta,
        "class_conditional": class_conditional,
        "guarantee": guarantee,
        "calibration_label_error": calibration_label_error,
        "certified": labeler.certified_,
        "threshold": _jsonable(labeler.threshold_),
        "certified_error_bound": labeler.pool_bound_,
        "pool_threshold": _jsonable(labeler.pool_threshold_),
        "coverage": labeler.coverage_,
        "n_accepted": int(decisions["accepted"].sum()),
        "message": labeler.message,
    }
    return CertifyResult(decisions=decisions, labeler=labeler, summary=summary)


def _prediction_sets(
    cal: np.ndarray, y: np.ndarray, pool: np.ndarray, alpha: float, names: list[str]
) -> np.ndarray:
    from ..conformal import SplitConformalClassifier

    try:
        sets = SplitConformalClassifier(method="lac", alpha=alpha).fit(cal, y).predict_set(pool)
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


def write_certify(result: CertifyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``decisions.csv`` and ``certificate.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError("out", f"{str(out)!r} is a file", "pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"decisions": out / "decisions.csv", "certificate": out / "certificate.json"}
    with atomic_write(paths["decisions"]) as fh:
        result.decisions.to_csv(fh, index_label="id")
    with atomic_write(paths["certificate"]) as fh:
        json.dump(result.summary, fh, indent=2)
    return paths
