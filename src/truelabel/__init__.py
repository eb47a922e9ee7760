"""truelabel: turn scarce, noisy and weak labels into labels a team can trust."""

from __future__ import annotations

from .detect import (
    NoiseEstimate,
    compute_confident_joint,
    estimate_noise_matrices,
    find_label_issues,
    get_label_quality_scores,
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
    "DataFormatError",
    "MissingDependencyError",
    "NoiseEstimate",
    "NotFittedError",
    "TruelabelError",
    "ValidationError",
    "__version__",
    "compute_confident_joint",
    "estimate_noise_matrices",
    "find_label_issues",
    "get_label_quality_scores",
    "out_of_fold_pred_probs",
]
