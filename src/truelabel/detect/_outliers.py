"""The ``outlier`` issue type: items far from everything else (or unlike every class)."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pandas as pd

from ._base import AuditContext, Detector, DetectorResult, register_detector

__all__ = ["OutlierDetector", "robust_upper_outliers"]

#: modified z-score above which a value is an outlier (Iglewicz & Hoaglin, 1993)
_Z = 3.5


def robust_upper_outliers(values: np.ndarray, z: float = _Z) -> np.ndarray:
    """Mask of values whose modified z-score (median/MAD) exceeds ``z`` on the high side."""
    med = np.median(values)
    mad = np.median(np.abs(values - med))
    if mad == 0:
        mad = np.mean(np.abs(values - med)) or 1.0
    return (0.6745 * (values - med) / mad) > z


@register_detector
class OutlierDetector(Detector):
    """Atypical items.

    With features: mean distance to the k nearest neighbours on the shared kNN graph;
    ``outlier_score = exp(-d / median(d))``. Without features: how far the most probable
    class falls below that class's typical confidence; ``outlier_score = min(1, max_k
    p_k / t_k)`` with ``t_k`` the mean p_k over items predicted k. Flagged items have a
    modified z-score of log-distance (or -log score) above ``z`` (default 3.5).
    """

    name = "outlier"
    requires = ("features", "pred_probs")
    settings = MappingProxyType({"z": _Z})

    def detect(self, ctx: AuditContext) -> DetectorResult:
        z = float(self.params.get("z", _Z))
        if ctx.knn is not None:
            d = ctx.knn.distances.mean(axis=1).astype(np.float64)
            scale = np.median(d) or 1.0
            score = np.exp(-d / scale)
            flagged = robust_upper_outliers(np.log(d + 1e-12 * scale), z)
            info = {"source": "features", "median_knn_distance": float(scale)}
        else:
            assert ctx.pred_probs is not None
            p = ctx.pred_probs
            pred = p.argmax(axis=1)
            pmax = p[np.arange(p.shape[0]), pred].astype(np.float64)
            counts = np.bincount(pred, minlength=ctx.n_classes)
            t = np.bincount(pred, weights=pmax, minlength=ctx.n_classes) / np.maximum(counts, 1)
            score = np.minimum(1.0, pmax / np.maximum(t[pred], 1e-12))
            flagged = robust_upper_outliers(-np.log(np.maximum(score, 1e-12)), z)
            info = {"source": "pred_probs"}
        cols = pd.DataFrame({"is_outlier_issue": flagged, "outlier_score": score})
        return DetectorResult(columns=cols, info=info)
