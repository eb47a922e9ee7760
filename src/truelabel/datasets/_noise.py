"""Synthetic label noise with known truth (for tests, the demo and benchmarks)."""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_labels, check_random_state
from ..exceptions import ValidationError
from ..typing import SeedLike

__all__ = ["NOISE_TYPES", "make_noisy_labels", "make_noisy_multilabels"]

NOISE_TYPES = ("uniform", "pairwise", "class_conditional")


def make_noisy_labels(
    labels: np.typing.ArrayLike,
    *,
    noise_rate: float,
    noise_type: str = "uniform",
    n_classes: int | None = None,
    random_state: SeedLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(noise_rate * n_items)`` labels; return (noisy, is_flipped).

    Parameters
    ----------
    labels : array of shape (n_items,)
        True labels, integers in ``[0, n_classes)``.
    noise_rate : float in [0, 1)
        Fraction of items whose label is changed.
    noise_type : {"uniform", "pairwise", "class_conditional"}
        ``uniform``: to a random other class. ``pairwise``: class k to (k + 1) mod K.
        ``class_conditional``: each class has its own random distribution over the other
        classes (Dirichlet(0.5)), so some confusions are much likelier than others.
    n_classes : int, optional
        Default ``labels.max() + 1``.
    random_state : int or numpy Generator, optional

    Returns
    -------
    noisy_labels : ndarray of shape (n_items,)
    is_flipped : ndarray of bool, shape (n_items,)

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.datasets import make_noisy_labels
    >>> noisy, flipped = make_noisy_labels(np.arange(100) % 4, noise_rate=0.1, random_state=0)
    >>> int(flipped.sum()), bool((noisy != np.arange(100) % 4).sum() == 10)
    (10, True)
    """
    y = check_labels(labels)
    noise_type = check_choice("noise_type", noise_type, NOISE_TYPES)
    if not 0.0 <= noise_rate < 1.0:
        raise ValidationError(
            "noise_rate", f"got {noise_rate}, expected a value in [0, 1)", "e.g. noise_rate=0.1"
        )
    k = int(n_classes if n_classes is not None else y.max() + 1)
    if k < 2:
        raise ValidationError("n_classes", f"got {k}", "noise needs at least two classes")
    rng = check_random_state(random_state)
    n = y.shape[0]
    n_flip = round(noise_rate * n)
    flip = rng.choice(n, size=n_flip, replace=False)
    noisy = y.copy()
    if noise_type == "uniform":
        noisy[flip] = (y[flip] + rng.integers(1, k, size=n_flip)) % k
    elif noise_type == "pairwise":
        noisy[flip] = (y[flip] + 1) % k
    else:
        trans = rng.dirichlet(np.full(k - 1, 0.5), size=k)  # (K, K-1) over "other" classes
        cum = trans.cumsum(axis=1)
        u = rng.random(n_flip)
        offset = (u[:, None] > cum[y[flip]]).sum(axis=1) + 1
        noisy[flip] = (y[flip] + np.minimum(offset, k - 1)) % k
    is_flipped = np.zeros(n, dtype=bool)
    is_flipped[flip] = True
    return noisy, is_flipped


def make_noisy_multilabels(
    labels: np.typing.ArrayLike, *, noise_rate: float, random_state: SeedLike = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flip each entry of a 0/1 (n_items, n_classes) matrix with probability ``noise_rate``.

    Returns (noisy_matrix, is_flipped_matrix).
    """
    y = np.asarray(labels)
    if y.ndim != 2 or not np.isin(y, (0, 1)).all():
        raise ValidationError(
            "labels",
            f"expected a 0/1 matrix, got shape {y.shape}",
            "pass a (n_items, n_classes) 0/1 array",
        )
    if not 0.0 <= noise_rate < 1.0:
        raise ValidationError("noise_rate", f"got {noise_rate}", "pass a value in [0, 1)")
    rng = check_random_state(random_state)
    flipped = rng.random(y.shape) < noise_rate
    return np.where(flipped, 1 - y, y).astype(np.int64), flipped
