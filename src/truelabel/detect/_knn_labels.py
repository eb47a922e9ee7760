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

from .._spill import scratch
from ..backend import Backend, Chunk, chunk_ranges, get_backend, map_reduce
from ._knn import KNNGraph

__all__ = ["blend_pred_probs", "knn_pred_probs"]

_GRID = np.linspace(0.0, 1.0, 11)


def _knn_probs_chunk(
    chunk: Chunk, shared: tuple[KNNGraph, np.ndarray, int, float, float, np.ndarray]
) -> np.ndarray:
    """Neighbour label distribution of one chunk of items."""
    graph, labels, n_classes, smoothing, scale, prior = shared
    nb = graph.indices[chunk.slice]
    k = nb.shape[1]
    w = np.exp(-graph.distances[chunk.slice] / scale).astype(np.float64)
    nb_labels = labels[nb]
    w = np.where(nb_labels >= 0, w, 0.0)
    rows = np.repeat(np.arange(nb.shape[0]), k)
    flat = rows * n_classes + np.maximum(nb_labels, 0).ravel()
    votes = np.bincount(flat, weights=w.ravel(), minlength=nb.shape[0] * n_classes)
    votes = votes.reshape(nb.shape[0], n_classes)
    # normalise by the total weight so distance scale does not matter, then smooth
    total = votes.sum(axis=1, keepdims=True)
    frac = np.divide(votes, total, out=np.zeros_like(votes), where=total > 0) * k
    return np.asarray((frac + smoothing * prior) / (k + smoothing), dtype=np.float32)


def knn_pred_probs(
    graph: KNNGraph,
    labels: np.ndarray,
    n_classes: int,
    *,
    smoothing: float = 1.0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Distance-weighted neighbour label distribution, (n_items, n_classes), rows sum to 1.

    Unlabelled neighbours (label -1) carry no vote. ``smoothing`` adds that many pseudo
    votes spread by the class prior so no probability is exactly 0. One chunk map on
    ``backend``; the result does not depend on it nor on ``chunk_size``.
    """
    n = graph.indices.shape[0]
    valid = labels >= 0
    prior = np.bincount(labels[valid], minlength=n_classes).astype(np.float64)
    prior /= prior.sum()
    out = scratch((n, n_classes), np.float32)  # a spill file when large (truelabel._spill)
    scale = float(np.median(graph.distances[:, -1]) or 1.0)
    chunks = chunk_ranges(n, chunk_size)
    shared = (graph, labels, n_classes, smoothing, scale, prior)
    for chunk, part in zip(
        chunks, get_backend(backend).map(_knn_probs_chunk, chunks, shared), strict=True
    ):
        out[chunk.slice] = part
    return out


def _blend_loss_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Summed log loss of every grid weight over one chunk (additive)."""
    labels, pred_probs, knn_probs = shared
    y = labels[chunk.slice]
    rows = np.arange(y.shape[0])
    a = pred_probs[chunk.slice][rows, y].astype(np.float64)
    b = knn_probs[chunk.slice][rows, y].astype(np.float64)
    mix = _GRID[:, None] * a[None, :] + (1.0 - _GRID[:, None]) * b[None, :]
    return np.asarray(-np.log(np.clip(mix, 1e-12, None)).sum(axis=1))


def _blend_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    pred_probs, knn_probs, w = shared
    blend = (w * pred_probs[chunk.slice] + (1.0 - w) * knn_probs[chunk.slice]).astype(np.float32)
    blend /= blend.sum(axis=1, keepdims=True)
    return blend


def blend_pred_probs(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    knn_probs: np.ndarray,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """w * pred_probs + (1 - w) * knn_probs with w on a grid minimising log loss.

    Returns the blend (float32) and the chosen weight of ``pred_probs``. The log loss of
    every grid weight is a per-chunk sum (one chunk map), the blend a second chunk map;
    ``out`` (float32, same shape) receives the blend when given, so no extra copy is made.
    """
    be = get_backend(backend)
    chunks = chunk_ranges(labels.shape[0], chunk_size)
    totals = map_reduce(
        _blend_loss_chunk, chunks, (labels, pred_probs, knn_probs), combine=np.add, backend=be
    )
    w = float(_GRID[int(np.argmin(totals))])
    blend = np.empty(pred_probs.shape, dtype=np.float32) if out is None else out
    for chunk, part in zip(
        chunks, be.map(_blend_chunk, chunks, (pred_probs, knn_probs, w)), strict=True
    ):
        blend[chunk.slice] = part
    return blend, w
