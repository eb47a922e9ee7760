"""Calibration of pred_probs before ranking: temperature, per-class temperature, class prior.

Fitted on the given (noisy) labels, so they correct over- or under-confidence and class
bias of the model but cannot see the noise itself. Measured effect on label-issue
ranking is recorded in docs/ARCHITECTURE.md; none is on by default.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_choice, check_labels, check_pred_probs

__all__ = ["CALIBRATION_METHODS", "calibrate_pred_probs"]

CALIBRATION_METHODS = ("temperature", "class_temperature", "prior")
_TINY = 1e-12


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _nll(labels: np.ndarray, p: np.ndarray) -> float:
    return float(-np.mean(np.log(p[np.arange(labels.shape[0]), labels] + _TINY)))


def _compute_calibrated(labels: np.ndarray, pred_probs: np.ndarray, method: str) -> np.ndarray:
    k = pred_probs.shape[1]
    if method == "prior":
        ps = np.bincount(labels, minlength=k) / labels.shape[0]
        mean_p = pred_probs.mean(axis=0, dtype=np.float64)
        q = pred_probs * (ps / np.maximum(mean_p, _TINY))
        return np.asarray(q / np.maximum(q.sum(axis=1, keepdims=True), _TINY))
    from scipy.optimize import minimize, minimize_scalar

    logp = np.log(np.maximum(pred_probs.astype(np.float64), _TINY))
    if method == "temperature":
        res = minimize_scalar(
            lambda t: _nll(labels, _softmax(logp / t)), bounds=(0.05, 20.0), method="bounded"
        )
        return _softmax(logp / res.x)

    # per-class inverse temperatures (vector scaling without bias), log-parametrised
    def loss(log_inv_t: np.ndarray) -> float:
        return _nll(labels, _softmax(logp * np.exp(log_inv_t)[None, :]))

    res = minimize(loss, np.zeros(k), method="L-BFGS-B", bounds=[(-3.0, 3.0)] * k)
    return _softmax(logp * np.exp(res.x)[None, :])


def calibrate_pred_probs(
    labels: np.typing.ArrayLike, pred_probs: np.typing.ArrayLike, *, method: str = "temperature"
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
    return _compute_calibrated(y, p, method)
