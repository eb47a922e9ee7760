"""Detect: label issues (confident learning), multi-label issues, outliers, near-duplicates."""

from ._audit import Audit, AuditResult
from ._base import (
    AuditContext,
    Detector,
    DetectorResult,
    available_detectors,
    get_detector,
    register_detector,
)
from ._calibration import CALIBRATION_METHODS, calibrate_pred_probs
from ._confident_learning import (
    NoiseEstimate,
    compute_confident_joint,
    estimate_joint,
    estimate_noise_matrices,
)
from ._filter import FILTER_METHODS, find_label_issues
from ._knn import KNNGraph, build_knn_graph
from ._knn_labels import blend_pred_probs, knn_pred_probs
from ._multilabel import (
    find_multilabel_issues,
    get_multilabel_quality_scores,
    multilabel_matrix,
)
from ._overlap import find_overlapping_classes
from ._rank import QUALITY_METHODS, get_label_quality_scores

__all__ = [
    "CALIBRATION_METHODS",
    "FILTER_METHODS",
    "QUALITY_METHODS",
    "Audit",
    "AuditContext",
    "AuditResult",
    "Detector",
    "DetectorResult",
    "KNNGraph",
    "NoiseEstimate",
    "available_detectors",
    "blend_pred_probs",
    "build_knn_graph",
    "calibrate_pred_probs",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_noise_matrices",
    "find_label_issues",
    "find_multilabel_issues",
    "find_overlapping_classes",
    "get_detector",
    "get_label_quality_scores",
    "get_multilabel_quality_scores",
    "knn_pred_probs",
    "multilabel_matrix",
    "register_detector",
]
