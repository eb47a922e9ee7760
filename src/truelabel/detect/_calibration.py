"""Calibration of pred_probs before ranking: temperature, per-class temperature, class prior.

Fitted on the given (noisy) labels, so they correct over- or under-confidence and class
bias of the model but cannot see the noise itself. Measured effect on label-issue
ranking is recorded in docs/ARCHITECTURE.md; none is on by default.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_labels, check_pred_probs
from ..backend import Backend, Chunk, chunk_ranges, get_backend, map_reduce

__all__ = ["CALIBRATION_METHODS", "calibrate_pred_probs"]

CALIBRATION_METHODS = ("temperature", "class_temperature", "prior")
_TINY = 1e-12


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _scaled(logp: np.ndarray, scale: float | np.ndarray) -> np.ndarray:
    """softmax(log p * scale): scale = 1 / T (one temperature) or per-class 1 / T_k."""
    return _softmax(logp * (scale if np.ndim(scale) == 0 else np.asarray(scale)[None, :]))


def _row_loss_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, float | np.ndarray]
) -> np.ndarray:
    """-log q[i, labels[i]] of every row of one chunk, q = softmax(log p * scale)."""
    labels, pred_probs, scale = shared
    y = labels[chunk.slice]
    logp = np.log(np.maximum(pred_probs[chunk.slice].astype(np.float64), _TINY))
    q = _scaled(logp, scale)
    return np.asarray(-np.log(q[np.arange(y.shape[0]), y] + _TINY))


def _apply_chunk(chunk: Chunk, shared: tuple[np.ndarray, str, float | np.ndarray]) -> np.ndarray:
    """The calibrated rows of one chunk."""
    pred_probs, method, param = shared
    block = pred_probs[chunk.slice]
    if method == "prior":
        q = block * param
        return np.asarray(q / np.maximum(q.sum(axis=1, keepdims=True), _TINY))
    return _scaled(np.log(np.maximum(block.astype(np.float64), _TINY)), param)


def _column_sums_chunk(chunk: Chunk, pred_probs: np.ndarray) -> np.ndarray:
    return np.asarray(pred_probs[chunk.slice].sum(axis=0, dtype=np.float64))


def _compute_calibrated(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    method: str,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Fit the calibration with chunk maps, then apply it with one more chunk map.

    The log loss of a candidate parameter is the sum of per-row losses, each computed in
    its chunk and summed once in row order, so the fit does not depend on the chunking.
    """
    be = get_backend(backend)
    k = pred_probs.shape[1]
    chunks = chunk_ranges(labels.shape[0], chunk_size)
    param: float | np.ndarray
    if method == "prior":
        ps = np.bincount(labels, minlength=k) / labels.shape[0]
        mean_p = map_reduce(_column_sums_chunk, chunks, pred_probs, combine=np.add, backend=be)
        param = ps / np.maximum(mean_p / labels.shape[0], _TINY)
    else:
        from scipy.optimize import minimize, minimize_scalar

        rows = np.empty(labels.shape[0], dtype=np.float64)

        def mean_loss(scale: float | np.ndarray) -> float:
            parts = be.map(_row_loss_chunk, chunks, (labels, pred_probs, scale))
            for chunk, part in zip(chunks, parts, strict=True):
                rows[chunk.slice] = part
            return float(rows.mean())

        if method == "temperature":
            res = minimize_scalar(
                lambda t: mean_loss(1.0 / t), bounds=(0.05, 20.0), method="bounded"
            )
            param = 1.0 / float(res.x)
        else:
            # per-class inverse temperatures (vector scaling without bias), log-parametrised
            res = minimize(
                lambda x: mean_loss(np.exp(x)),
                np.zeros(k),
                method="L-BFGS-B",
                bounds=[(-3.0, 3.0)] * k,
            )
            param = np.exp(res.x)
    out = np.empty(pred_probs.shape, dtype=np.float64)
    parts = be.map(_apply_chunk, chunks, (pred_probs, method, param))
    for chunk, part in zip(chunks, parts, strict=True):
        out[chunk.slice] = part
    return out


def calibrate_pred_probs(
    labels: np.typing.ArrayLike,
    pred_probs: np.typing.ArrayLike,
    *,
    method: str = "temperature",
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Recalibrate ``pred_probs`` against the given labels.

    Parameters
    ----------
    labels : array of shape (n_items,)
    pred_probs : array of shape (n_items, n_classes)
    method : {"temperature", "class_temperature", "prior"}
        ``temperature``: one temperature T minimising the log loss, softmax(log p / T).
        ``class_temperature``: one inverse temperature per class.
        ``prior``: rescale each class so the mean predicted probability matches the
        frequency of the given label (corrects a model biased towards some classes).
    backend : Backend, "local" or None, default None
        Runs the chunked loss and apply passes (None: threads on every core).
    chunk_size : int or None, default None
        Rows per chunk; the result does not depend on it nor on the backend.

    Returns
    -------
    ndarray of shape (n_items, n_classes), rows sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.detect import calibrate_pred_probs
    >>> p = np.array([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6], [0.4, 0.6]])
    >>> calibrate_pred_probs([0, 0, 1, 1], p)[0].round(2)  # under-confident model sharpened
    array([1., 0.])
    """
    method = check_choice("method", method, CALIBRATION_METHODS)
    p = check_pred_probs(pred_probs)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    return _compute_calibrated(y, p, method, backend=backend, chunk_size=chunk_size)
