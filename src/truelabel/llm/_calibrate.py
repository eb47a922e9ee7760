"""Temperature scaling fitted on labeled items (log loss, one scalar)."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_temperature", "log_loss_at"]


def log_loss_at(logits: np.ndarray, y: np.ndarray, T: float) -> float:
    """Mean negative log-likelihood of ``softmax(logits / T)`` at the labels ``y``."""
    z = logits / T
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(
    logits: np.ndarray, y: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """The T in [low, high] of minimum log loss (bounded search on log T)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(
        lambda t: log_loss_at(logits, y, float(np.exp(t))),
        bounds=(np.log(low), np.log(high)),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(res.x))
