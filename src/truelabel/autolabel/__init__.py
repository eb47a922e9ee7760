"""Auto-label: certified selection (error <= max_error with probability >= 1 - delta)."""

from ._bounds import (
    binomial_pvalue,
    clopper_pearson_upper,
    min_items_to_certify,
    pool_error_pvalue,
    pool_error_upper,
)
from ._certified import Certificate, CertifiedAutoLabeler
from ._grid import default_threshold_grid

__all__ = [
    "Certificate",
    "CertifiedAutoLabeler",
    "binomial_pvalue",
    "clopper_pearson_upper",
    "default_threshold_grid",
    "min_items_to_certify",
    "pool_error_pvalue",
    "pool_error_upper",
]
