"""truelabel: turn scarce, noisy and weak labels into labels a team can trust."""

from __future__ import annotations

from .autolabel import CertifiedAutoLabeler
from .conformal import CrossConformalClassifier, SplitConformalClassifier
from .data import Dataset, LabelEncoding, read_table
from .detect import (
    Audit,
    AuditResult,
    KNNGraph,
    NoiseEstimate,
    build_knn_graph,
    calibrate_pred_probs,
    compute_confident_joint,
    estimate_joint,
    estimate_noise_matrices,
    find_label_issues,
    find_multilabel_issues,
    get_label_quality_scores,
    get_multilabel_quality_scores,
)
from .exceptions import (
    DataFormatError,
    MissingDependencyError,
    NotFittedError,
    TruelabelError,
    ValidationError,
)
from .model import out_of_fold_pred_probs

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "AuditResult",
    "CertifiedAutoLabeler",
    "CrossConformalClassifier",
    "DataFormatError",
    "Dataset",
    "KNNGraph",
    "LabelEncoding",
    "MissingDependencyError",
    "NoiseEstimate",
    "NotFittedError",
    "SplitConformalClassifier",
    "TruelabelError",
    "ValidationError",
    "__version__",
    "build_knn_graph",
    "calibrate_pred_probs",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_noise_matrices",
    "find_label_issues",
    "find_multilabel_issues",
    "get_label_quality_scores",
    "get_multilabel_quality_scores",
    "out_of_fold_pred_probs",
    "read_table",
]
