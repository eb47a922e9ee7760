"""Detect: label issues (confident learning), multi-label issues, outliers, near-duplicates."""

from ._confident_learning import (
    NoiseEstimate,
    compute_confident_joint,
    estimate_joint,
    estimate_noise_matrices,
)
from ._filter import FILTER_METHODS, find_label_issues
from ._rank import QUALITY_METHODS, get_label_quality_scores

__all__ = [
    "FILTER_METHODS",
    "QUALITY_METHODS",
    "NoiseEstimate",
    "compute_confident_joint",
    "estimate_joint",
    "estimate_noise_matrices",
    "find_label_issues",
    "get_label_quality_scores",
]
