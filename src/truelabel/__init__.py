"""truelabel: turn scarce, noisy and weak labels into labels a team can trust."""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from .backend import Backend, LocalBackend
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
    find_overlapping_classes,
    get_label_quality_scores,
    get_multilabel_quality_scores,
)
from .exceptions import (
    DataFormatError,
    MissingDependencyError,
    NotFittedError,
    TruelabelError,
    TruelabelWarning,
    ValidationError,
)
from .model import PriorShiftResult, adjust_to_pool_priors, out_of_fold_pred_probs

if _typing.TYPE_CHECKING:
    from .active import (
        ActiveLearner,
        StopEstimate,
        badge_select,
        entropy_scores,
        k_center_greedy,
        least_confidence_scores,
        margin_scores,
        typicality_scores,
        typiclust_select,
        uncertainty_scores,
    )
    from .aggregate import (
        MACE,
        Annotations,
        DawidSkene,
        MajorityVote,
        ModelAssistedConsensus,
        MultiLabelDawidSkene,
        OneCoinDawidSkene,
        WeightedMajorityVote,
        annotator_quality,
        choose_best_labels,
        cohen_kappa_pairwise,
        fleiss_kappa,
        krippendorff_alpha,
    )
    from .autolabel import AutoLabelResult, CertifiedAutoLabeler
    from .conformal import CrossConformalClassifier, SplitConformalClassifier
    from .llm import LLMClassifier
    from .model import FewShotClassifier, SelfTrainingClassifier, ZeroShotClassifier
    from .weak import (
        ComplementaryLabelClassifier,
        LabelModel,
        LabelProportionClassifier,
        PartialLabelClassifier,
        apply_lfs,
        keyword_lf,
        labeling_function,
        lf_summary,
        regex_lf,
    )

__version__ = "0.1.0"

# Estimators built on scikit-learn's BaseEstimator load on first use: importing
# sklearn.base pulls in scipy.stats (~0.7 s) that `import truelabel` should not pay.
_LAZY = {
    **dict.fromkeys(("ActiveLearner", "StopEstimate", "badge_select", "entropy_scores"), "active"),
    **dict.fromkeys(("k_center_greedy", "least_confidence_scores", "margin_scores"), "active"),
    **dict.fromkeys(("typicality_scores", "typiclust_select", "uncertainty_scores"), "active"),
    "Annotations": "aggregate",
    "DawidSkene": "aggregate",
    "MACE": "aggregate",
    "MajorityVote": "aggregate",
    "ModelAssistedConsensus": "aggregate",
    "MultiLabelDawidSkene": "aggregate",
    "OneCoinDawidSkene": "aggregate",
    "WeightedMajorityVote": "aggregate",
    "annotator_quality": "aggregate",
    "choose_best_labels": "aggregate",
    "cohen_kappa_pairwise": "aggregate",
    "fleiss_kappa": "aggregate",
    "krippendorff_alpha": "aggregate",
    "AutoLabelResult": "autolabel",
    "CertifiedAutoLabeler": "autolabel",
    "CrossConformalClassifier": "conformal",
    "FewShotClassifier": "model",
    "LLMClassifier": "llm",
    "SelfTrainingClassifier": "model",
    "SplitConformalClassifier": "conformal",
    "ZeroShotClassifier": "model",
    **dict.fromkeys(("LabelModel", "apply_lfs", "keyword_lf", "labeling_function"), "weak"),
    **dict.fromkeys(("lf_summary", "regex_lf"), "weak"),
    **dict.fromkeys(("ComplementaryLabelClassifier", "LabelProportionClassifier"), "weak"),
    "PartialLabelClassifier": "weak",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "MACE",
    "ActiveLearner",
    "Annotations",
    "Audit",
    "AuditResult",
    "AutoLabelResult",
    "Backend",
    "CertifiedAutoLabeler",
    "ComplementaryLabelClassifier",
    "CrossConformalClassifier",
    "DataFormatError",
    "Dataset",
    "DawidSkene",
    "FewShotClassifier",
    "KNNGraph",
    "LLMClassifier",
    "LabelEncoding",
    "LabelModel",
    "LabelProportionClassifier",
    "LocalBackend",
    "MajorityVote",
    "MissingDependencyError",
    "ModelAssistedConsensus",
    "MultiLabelDawidSkene",
    "NoiseEstimate",
    "NotFittedError",
    "OneCoinDawidSkene",
    "PartialLabelClassifier",
    "PriorShiftResult",
    "SelfTrainingClassifier",
    "SplitConformalClassifier",
    "StopEstimate",
    "TruelabelError",
    "TruelabelWarning",
    "ValidationError",
    "WeightedMajorityVote",
    "ZeroShotClassifier",
    "__version__",
    "adjust_to_pool_priors",
    "annotator_quality",
    "apply_lfs",
    "badge_select",
    "build_knn_graph",
    "calibrate_pred_probs",
    "choose_best_labels",
    "cohen_kappa_pairwise",
    "compute_confident_joint",
    "entropy_scores",
    "estimate_joint",
    "estimate_noise_matrices",
    "find_label_issues",
    "find_multilabel_issues",
    "find_overlapping_classes",
    "fleiss_kappa",
    "get_label_quality_scores",
    "get_multilabel_quality_scores",
    "k_center_greedy",
    "keyword_lf",
    "krippendorff_alpha",
    "labeling_function",
    "least_confidence_scores",
    "lf_summary",
    "margin_scores",
    "out_of_fold_pred_probs",
    "read_table",
    "regex_lf",
    "typicality_scores",
    "typiclust_select",
    "uncertainty_scores",
]
