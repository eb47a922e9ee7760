"""Class-prior shift on an unlabeled pool: EM re-estimation of the pool's class priors.

Saerens, Latinne & Decaestecker (2002), "Adjusting the outputs of a classifier to new a
priori probabilities: a simple procedure". A classifier trained where class ``k`` had prior
``pi_train[k]`` outputs ``p(k | x)``; on a pool whose class mix is ``pi``, Bayes' rule gives

    p_pi(k | x) = (pi[k] / pi_train[k]) p(k | x) / sum_j (pi[j] / pi_train[j]) p(j | x),

and the maximum-likelihood ``pi`` is the fixed point ``pi = mean_i p_pi(. | x_i)``, reached by
EM (each step increases the pool likelihood). The probabilities must be calibrated under the
training priors: over-confident outputs make the estimate overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_pred_probs
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller

__all__ = ["PriorShiftResult", "adjust_to_pool_priors"]

_TINY = 1e-300


@dataclass(frozen=True)
class PriorShiftResult:
    """What :func:`adjust_to_pool_priors` found.

    Attributes
    ----------
    pred_probs : ndarray of shape (n_items, n_classes)
        The pool's probabilities under the estimated pool priors (float64, rows sum to 1).
    priors : ndarray of shape (n_classes,)
        Estimated class priors of the pool.
    n_iter : int
        EM iterations run.
    converged : bool
        The largest change of a prior in the last iteration was below ``tol``.
    log_likelihood : float
        Mean log-likelihood ratio of the pool under ``priors`` against the training
        priors (>= 0; 0 means no shift detected).
    """

    pred_probs: np.ndarray
    priors: np.ndarray
    n_iter: int
    converged: bool
    log_likelihood: float


def _reweight_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The reweighted, renormalised rows of one chunk and each row's log normaliser (its
    log-likelihood ratio under the new priors); returned, never written into ``shared``
    (a Ray task's shared inputs are read-only copies)."""
    pred_probs, ratio = shared
    q = pred_probs[chunk.slice] * ratio
    z = np.maximum(q.sum(axis=1), _TINY)
    return q / z[:, None], np.log(z)


def _reweight(
    be: Backend, chunks: list[Chunk], p: np.ndarray, ratio: np.ndarray, out: np.ndarray,
    logz: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``out`` and ``logz`` chunk by chunk from :func:`_reweight_chunk`."""
    for chunk, (rows, lz) in zip(chunks, be.map(_reweight_chunk, chunks, (p, ratio)), strict=True):
        out[chunk.slice] = rows
        logz[chunk.slice] = lz


def _check_train_priors(train_priors: Any, n_classes: int) -> np.ndarray:
    pri = np.asarray(train_priors, dtype=np.float64)
    if pri.ndim != 1 or pri.shape[0] != n_classes:
        raise ValidationError(
            "train_priors",
            f"expected shape ({n_classes},) (one prior per column of pred_probs), "
            f"got shape {pri.shape}",
            "pass the class frequencies of the set the model was trained on",
        )
    if not np.isfinite(pri).all() or (pri <= 0).any():
        k = int(np.flatnonzero(~(np.isfinite(pri) & (pri > 0)))[0])
        raise ValidationError(
            "train_priors",
            f"class {k} has prior {float(pri[k])!r}; every training prior must be positive",
            "a class absent from training cannot be re-weighted; drop its column first",
        )
    if abs(pri.sum() - 1.0) > 1e-3:
        raise ValidationError(
            "train_priors",
            f"sums to {pri.sum():.4g}, not 1",
            "pass frequencies, e.g. counts / counts.sum()",
        )
    return np.asarray(pri / pri.sum())


def adjust_to_pool_priors(
    pred_probs: np.typing.ArrayLike,
    train_priors: np.typing.ArrayLike,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    min_items_per_class: int = 10,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> PriorShiftResult:
    """Re-estimate the class priors of an unlabeled pool by EM and adjust its probabilities.

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
        Calibrated probabilities of the pool items under the training priors.
    train_priors : array of shape (n_classes,)
        Class priors of the training set (positive, summing to 1).
    max_iter : int, default 1000
        EM iterations at most. Not converging warns (:class:`TruelabelWarning`).
    tol : float, default 1e-6
        Stop when no prior moves by more than ``tol`` in one iteration.
    min_items_per_class : int, default 10
        Warn when the pool has fewer than ``min_items_per_class * n_classes`` items: the
        priors are then estimated from too little evidence to trust.
    backend : Backend, "local" or None, default None
        Runs the per-chunk reweighting (None: threads on every core).
    chunk_size : int or None, default None
        Rows per chunk; the result does not depend on it nor on the backend.

    Returns
    -------
    PriorShiftResult
        ``pred_probs`` (adjusted), ``priors`` (of the pool), ``n_iter``, ``converged``,
        ``log_likelihood``.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.model import adjust_to_pool_priors
    >>> p = np.array([[0.9, 0.1]] * 6 + [[0.2, 0.8]] * 4)
    >>> res = adjust_to_pool_priors(p, [0.5, 0.5], min_items_per_class=1)
    >>> res.priors.round(4)  # closed form: 0.75 / 0.25
    array([0.75, 0.25])
    >>> res.pred_probs[0].round(4)
    array([0.9643, 0.0357])
    """
    p = check_pred_probs(pred_probs)
    pri = _check_train_priors(train_priors, p.shape[1])
    if not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValidationError("max_iter", f"got {max_iter!r}", "pass a positive int, e.g. 1000")
    if not (isinstance(tol, float | int) and np.isfinite(tol) and tol > 0):
        raise ValidationError("tol", f"got {tol!r}", "pass a small positive float, e.g. 1e-6")
    n, k = p.shape
    if n < min_items_per_class * k:
        warn_at_caller(
            f"adjust_to_pool_priors: the pool has {n} items for {k} classes (fewer than "
            f"{min_items_per_class} per class), so the estimated priors are noisy; "
            "use a larger pool or keep the training priors",
            TruelabelWarning,
        )
    be = get_backend(backend)
    chunks = chunk_ranges(n, chunk_size)
    out = np.empty((n, k), dtype=np.float64)
    logz = np.empty(n, dtype=np.float64)
    priors = pri.copy()
    converged = False
    n_iter = 0
    step = 0.0
    for n_iter in range(1, int(max_iter) + 1):  # noqa: B007 - iterations, not items
        _reweight(be, chunks, p, priors / pri, out, logz)
        new = out.sum(axis=0) / n  # one sum over the full array: independent of chunking
        step = float(np.abs(new - priors).max())
        priors = new
        if step < tol:
            converged = True
            break
    _reweight(be, chunks, p, priors / pri, out, logz)
    if not converged:
        warn_at_caller(
            f"adjust_to_pool_priors: EM did not converge in {max_iter} iterations (last "
            f"change of a prior {step:.2g} > tol={tol:g}); the priors may be heading to a "
            "boundary (a class vanishing from the pool) or pred_probs are over-confident; "
            "calibrate pred_probs first or raise max_iter",
            TruelabelWarning,
        )
    return PriorShiftResult(
        pred_probs=out,
        priors=priors,
        n_iter=n_iter,
        converged=converged,
        log_likelihood=float(logz.mean()),
    )
