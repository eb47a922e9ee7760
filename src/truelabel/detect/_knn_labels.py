"""Label evidence from neighbours, and how it is blended with a model's pred_probs.

kNN label consistency: an item whose neighbours in feature space carry other labels is
suspicious even when the classifier that produced ``pred_probs`` was fooled by the same
noise. The neighbour label distribution is a second, largely independent, out-of-sample
estimate of P(true label | x); blending it with ``pred_probs`` (weight chosen by log loss
against the given labels, which ranks estimators correctly under class-conditional
noise whenever the noise leaves the given label the most probable one) gives confident
learning sharper probabilities to work on.
"""

from __future__ import annotations

import numpy as np

from .._validation import iter_chunks
from ._knn import KNNGraph

__all__ = ["blend_pred_probs", "knn_pred_probs"]

_GRID = np.linspace(0.0, 1.0, 11)


def knn_pred_probs(
    graph: KNNGraph, labels: np.ndarray, n_classes: int, *, smoothing: float = 1.0
) -> np.ndarray:
    """Distance-weighted neighbour label distribution, (n_items, n_classes), rows sum to 1.

    Unlabelled neighbours (label -1) carry no vote. ``smoothing`` adds that many pseudo
    votes spread by the class prior so no probability is exactly 0.
    """
    n, k = graph.indices.shape
    valid = labels >= 0
    prior = np.bincount(labels[valid], minlength=n_classes).astype(np.float64)
    prior /= prior.sum()
    out = np.empty((n, n_classes), dtype=np.float32)
    scale = np.median(graph.distances[:, -1]) or 1.0
    for sl in iter_chunks(n):
        nb = graph.indices[sl]
        w = np.exp(-graph.distances[sl] / scale).astype(np.float64)
        nb_labels = labels[nb]
        w = np.where(nb_labels >= 0, w, 0.0)
        rows = np.repeat(np.arange(nb.shape[0]), k)
        votes = np.zeros((nb.shape[0], n_classes))
        np.add.at(votes, (rows, np.maximum(nb_labels, 0).ravel()), w.ravel())
        # normalise by the total weight so distance scale does not matter, then smooth
        total = votes.sum(axis=1, keepdims=True)
        frac = np.divide(votes, total, out=np.zeros_like(votes), where=total > 0) * k
        out[sl] = (frac + smoothing * prior) / (k + smoothing)
    return out


def _log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(labels.shape[0]), labels], 1e-12, None))))


def blend_pred_probs(
    labels: np.ndarray, pred_probs: np.ndarray, knn_probs: np.ndarray
) -> tuple[np.ndarray, float]:
    """w * pred_probs + (1 - w) * knn_probs with w on a grid minimising log loss.

    Returns the blend (float32) and the chosen weight of ``pred_probs``.
    """
    rows = np.arange(labels.shape[0])
    a = pred_probs[rows, labels].astype(np.float64)
    b = knn_probs[rows, labels].astype(np.float64)
    losses = [-np.mean(np.log(np.clip(w * a + (1 - w) * b, 1e-12, None))) for w in _GRID]
    w = float(_GRID[int(np.argmin(losses))])
    blend = (w * pred_probs + (1.0 - w) * knn_probs).astype(np.float32)
    blend /= blend.sum(axis=1, keepdims=True)
    return blend, w
