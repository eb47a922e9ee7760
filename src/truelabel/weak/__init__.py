"""Weak supervision: labeling functions and their label model, learning from label
proportions, partial and complementary labels."""

from __future__ import annotations

from ._em import VoteEMResult, vote_em
from ._label_model import LabelModel, lf_dependence
from ._lf import ABSTAIN, LabelingFunction, apply_lfs, keyword_lf, labeling_function, regex_lf
from ._partial import (
    ComplementaryLabelClassifier,
    PartialLabelClassifier,
    candidate_matrix,
    candidate_posteriors,
)
from ._proportions import LabelProportionClassifier, proportion_posteriors
from ._votes import lf_summary

__all__ = [
    "ABSTAIN",
    "ComplementaryLabelClassifier",
    "LabelModel",
    "LabelProportionClassifier",
    "LabelingFunction",
    "PartialLabelClassifier",
    "VoteEMResult",
    "apply_lfs",
    "candidate_matrix",
    "candidate_posteriors",
    "keyword_lf",
    "labeling_function",
    "lf_dependence",
    "lf_summary",
    "proportion_posteriors",
    "regex_lf",
    "vote_em",
]
