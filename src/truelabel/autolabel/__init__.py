"""Auto-label: certified selection (error <= max_error with probability >= 1 - delta)."""

from ._bounds import (
    binomial_pvalue,
    clopper_pearson_upper,
    min_items_to_certify,
    pool_error_pvalue,
    pool_error_upper,
)
from ._certified import CertifiedAutoLabeler
from ._grid import counts_above, default_threshold_grid, grid_histogram
from ._result import AutoLabelResult, Certificate

__all__ = [
    "AutoLabelResult",
    "Certificate",
    "CertifiedAutoLabeler",
    "binomial_pvalue",
    "clopper_pearson_upper",
    "counts_above",
    "default_threshold_grid",
    "grid_histogram",
    "min_items_to_certify",
    "pool_error_pvalue",
    "pool_error_upper",
]
