"""Weak supervision: labeling functions and their label model, learning from label
proportions, partial and complementary labels."""

from __future__ import annotations

from ._lf import ABSTAIN, LabelingFunction, apply_lfs, keyword_lf, labeling_function, regex_lf
from ._votes import lf_summary

__all__ = [
    "ABSTAIN",
    "LabelingFunction",
    "apply_lfs",
    "keyword_lf",
    "labeling_function",
    "lf_summary",
    "regex_lf",
]
