"""Conformal prediction: sets of labels that contain the truth with a chosen probability.

Scores (LAC, APS, RAPS), the finite-sample quantile, split conformal (marginal and
class-conditional), cross-conformal (CV+) from out-of-fold probabilities, multi-label
conformal (joint FWER or per-label FDR), label-powerset sets, and set metrics.
"""

from ._cross import CrossConformalClassifier
from ._metrics import (
    coverage,
    coverage_per_class,
    multilabel_coverage,
    set_size_distribution,
    set_sizes,
    singleton_rate,
    summarize_sets,
)
from ._multilabel import MULTILABEL_MODES, MultiLabelConformal
from ._powerset import (
    PowersetConformal,
    PowersetSets,
    powerset_prediction_sets,
    powerset_scores,
)
from ._quantile import conformal_quantile, min_calibration_size
from ._scores import SCORE_METHODS, conformity_scores, label_scores
from ._split import SplitConformalClassifier

__all__ = [
    "MULTILABEL_MODES",
    "SCORE_METHODS",
    "CrossConformalClassifier",
    "MultiLabelConformal",
    "PowersetConformal",
    "PowersetSets",
    "SplitConformalClassifier",
    "conformal_quantile",
    "conformity_scores",
    "coverage",
    "coverage_per_class",
    "label_scores",
    "min_calibration_size",
    "multilabel_coverage",
    "powerset_prediction_sets",
    "powerset_scores",
    "set_size_distribution",
    "set_sizes",
    "singleton_rate",
    "summarize_sets",
]
