"""The threshold grid shared by rate and pool certification."""

from __future__ import annotations

import numpy as np

__all__ = ["default_threshold_grid"]


def default_threshold_grid() -> np.ndarray:
    """Thresholds fixed before seeing data, strict to lenient."""
    grid = np.r_[np.linspace(0.0, 0.99, 100), 1.0 - np.geomspace(1e-2, 1e-6, 41)]
    return np.unique(np.round(grid, 10))[::-1]
