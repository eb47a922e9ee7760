"""Type aliases shared across truelabel (shapes are written in docstrings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "ArrayLike",
    "FilterBy",
    "FloatArray",
    "IntArray",
    "LabelLike",
    "QualityMethod",
    "SeedLike",
]

ArrayLike: TypeAlias = npt.ArrayLike
FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
LabelLike: TypeAlias = npt.ArrayLike | Sequence[Any]
SeedLike: TypeAlias = int | np.random.Generator | None

# Keep in step with detect.FILTER_METHODS / detect.QUALITY_METHODS (tests/test_validation.py).
FilterBy: TypeAlias = Literal[
    "noise_aware",
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
    "low_self_confidence",
    "low_normalized_margin",
]
QualityMethod: TypeAlias = Literal[
    "noise_aware", "self_confidence", "normalized_margin", "confidence_weighted_entropy"
]
