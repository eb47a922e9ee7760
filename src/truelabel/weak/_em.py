"""Dawid-Skene EM on an abstain-aware vote matrix, run by the shared EM core.

Model: each item has a latent class ``y`` with prior ``pi``; LF ``j`` emits outcome ``v`` in
``{0, .., K-1, abstain}`` with probability ``theta[j, y, v]`` (a K x (K+1) confusion matrix
whose last column is the class-conditional abstain propensity), independently given ``y``.
LF weights ``w`` temper each LF's log-likelihood (``w = 1/2`` on two exact copies of one LF
counts it once). With ``model_abstain=False`` the abstain factor is left out of the posterior
(an abstention says nothing about the class; rows where every LF abstains get the prior), as
Snorkel's label model does, while ``theta`` still holds the abstain propensities, so a vote
from an LF that fires mostly on one class weighs more.

There is one EM in truelabel: :func:`vote_em` is :func:`truelabel.aggregate._em.run_em` (the
Dawid-Skene core of :mod:`truelabel.aggregate`) with LFs as annotators and abstain as an extra
outcome ``K``: the count matrix has ``K + 1`` labels per LF, truth is restricted to the first
``K`` classes (log prior of class ``K`` = -inf, so its posterior is exactly 0), and the
M-step below returns ``w_j * log theta_j`` (abstain column 0 when ``model_abstain=False``).
So the label model inherits the core's chunk map and fixed-point sums (bit-for-bit the same
for any backend and ``chunk_size``), its stopping rule (the log-likelihood changes by less
than ``tol`` per weighted (item, LF) cell) and its choice of the best start (highest log-likelihood).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_random_state
from ..aggregate._em import MStep, run_em
from ..aggregate._em import e_step as _core_e_step
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..exceptions import ValidationError
from ._votes import check_votes

__all__ = ["VoteEMResult", "e_step", "vote_counts", "vote_em"]

#: fixed-point scale of summed log-likelihoods (as in the core: chunk-order independent)
_SCALE_LL = float(2**20)


@dataclass(frozen=True)
class VoteEMResult:
    """What :func:`vote_em` estimated.

    Attributes
    ----------
    posteriors : ndarray of shape (n_items, n_classes)
    class_prior : ndarray of shape (n_classes,)
    confusions : ndarray of shape (n_lfs, n_classes, n_classes + 1)
        ``P(outcome | class)``; last column = abstain.
    n_iter : int
    converged : bool
    log_likelihood : float
        Weighted log-likelihood of the votes under the final parameters.
    start_log_likelihoods : tuple of float
        The final log-likelihood of every start (majority vote first); the best is kept.
    """

    posteriors: np.ndarray
    class_prior: np.ndarray
    confusions: np.ndarray
    n_iter: int
    converged: bool
    log_likelihood: float
    start_log_likelihoods: tuple[float, ...] = ()


def vote_counts(votes: np.ndarray, n_classes: int) -> sp.csr_matrix:
    """The core's count matrix of a checked vote matrix, abstain as outcome ``n_classes``.

    Shape ``(n_items, n_lfs * (n_classes + 1))``; every row has one entry per LF.

    >>> vote_counts(np.array([[1, -1]]), 2).toarray().tolist()
    [[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]]
    """
    n, m = votes.shape
    k1 = n_classes + 1
    codes = np.where(votes < 0, n_classes, votes)
    width = m * k1
    idx = np.int32 if max(width, n * m) < 2**31 else np.int64
    indices = (codes + k1 * np.arange(m)).astype(idx).ravel()
    indptr = np.arange(0, n * m + 1, m, dtype=idx)
    out = sp.csr_matrix((np.ones(n * m), indices, indptr), shape=(n, width))
    out.has_canonical_format = True
    return out


def _log_theta(theta: np.ndarray, model_abstain: bool) -> np.ndarray:
    """``log theta``; the abstain column is 0 (no evidence) when abstentions are not modelled."""
    log_theta = np.log(theta)
    if not model_abstain:
        log_theta[:, :, -1] = 0.0
    return log_theta


def _core_model(
    theta: np.ndarray, prior: np.ndarray, weights: np.ndarray, model_abstain: bool
) -> MStep:
    """``(theta, prior)`` as the core's square model: truth class K is impossible."""
    m, k, _ = theta.shape
    log_conf = np.zeros((m, k + 1, k + 1))
    log_conf[:, :k, :] = weights[:, None, None] * _log_theta(theta, model_abstain)
    log_prior = np.append(np.log(prior), -np.inf)
    return MStep(log_conf, log_prior, 0.0, {"theta": theta, "prior": prior})


def _posterior_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray, int]
) -> tuple[np.ndarray, int]:
    votes, log_conf_t, log_prior, k = shared
    post, loglik = _core_e_step(vote_counts(votes[chunk.slice], k), log_conf_t, log_prior, None)
    return post, int(np.rint(loglik * _SCALE_LL).astype(np.int64).sum())


def e_step(
    votes: np.ndarray,
    confusions: np.ndarray,
    class_prior: np.ndarray,
    weights: np.ndarray,
    *,
    model_abstain: bool = True,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> tuple[np.ndarray, float]:
    """Posteriors (n_items, K) and log-likelihood of checked votes under fixed parameters.

    The core's E-step on each chunk's counts (a chunk map; the log-likelihood is summed in
    fixed point, so it does not depend on the chunking).
    """
    m, k, _ = confusions.shape
    log_theta = weights[:, None, None] * _log_theta(confusions, model_abstain)
    log_conf_t = np.ascontiguousarray(log_theta.transpose(0, 2, 1).reshape(m * (k + 1), k))
    shared = (votes, log_conf_t, np.log(class_prior), k)
    parts = list(
        get_backend(backend).map(_posterior_chunk, chunk_ranges(votes.shape[0], chunk_size), shared)
    )
    post = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, k))
    return post, sum(p[1] for p in parts) / _SCALE_LL


def _check_weights(weights: Any, m: int) -> np.ndarray:
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or not np.isfinite(w).all() or (w < 0).any():
        raise ValidationError(
            "weights",
            f"expected {m} finite non-negative LF weights, got {weights!r}",
            "pass one weight >= 0 per LF column, e.g. np.ones(n_lfs)",
        )
    return w


def vote_em(
    votes: Any,
    n_classes: int | None,
    *,
    weights: np.ndarray | None = None,
    model_abstain: bool = True,
    smoothing: float = 1.0,
    class_prior: np.ndarray | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    n_init: int = 1,
    random_state: int | np.random.Generator | None = 0,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> VoteEMResult:
    """Fit the abstain-aware Dawid-Skene model to a vote matrix (-1 = abstain).

    The first start is the weighted majority vote (rows without votes: uniform); ``n_init - 1``
    more starts are the posteriors under LF confusion rows drawn from a Dirichlet around a
    70%-accurate LF (``random_state``). The start with the highest final log-likelihood is
    kept. EM stops when the weighted log-likelihood changes by less than ``tol`` per weighted
    (item, LF) cell (``n_items * sum(weights)``) between iterations (the core's rule), or after ``max_iter`` iterations
    (``converged=False``; no warning here, the caller decides). Items where every LF abstains
    get ``P(y | all abstain)``, which is the class prior when ``model_abstain=False``.
    """
    votes, k = check_votes(votes, n_classes)
    m = votes.shape[1]
    w = _check_weights(weights, m)
    fixed = None if class_prior is None else np.asarray(class_prior, dtype=np.float64)
    rng = check_random_state(random_state)
    s = float(smoothing)

    def m_step(N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        theta = N[:, :k, :] + s
        theta /= theta.sum(axis=2, keepdims=True)
        if fixed is None:
            prior = totals[:k] + s
            prior = prior / prior.sum()
        else:
            prior = fixed
        return _core_model(theta, prior, w, model_abstain)

    counts = vote_counts(votes, k)
    share = np.asarray(counts @ np.vstack([np.eye(k + 1, k) * wj for wj in w]))  # (n, K)
    total = share.sum(axis=1, keepdims=True)
    mv = np.where(total > 0, share / np.where(total > 0, total, 1.0), 1.0 / k)
    inits = [np.hstack([mv, np.zeros((len(mv), 1))])]
    for _ in range(max(1, n_init) - 1):
        alpha = np.full((k, k + 1), 1.0) + 4.0 * np.eye(k, k + 1)
        theta = np.stack([[rng.dirichlet(row) for row in alpha] for _ in range(m)])
        prior = np.full(k, 1.0 / k) if fixed is None else fixed
        post, _ = e_step(
            votes, theta, prior, w, model_abstain=model_abstain, backend=backend,
            chunk_size=chunk_size,
        )  # fmt: skip
        inits.append(np.hstack([post, np.zeros((len(post), 1))]))
    result = run_em(
        counts,
        n_annotators=m,
        n_classes=k + 1,
        m_step=m_step,
        inits=inits,
        tol=float(tol),
        max_iter=int(max_iter),
        backend=backend,
        chunk_size=chunk_size,
        name="vote_em",
        warn=False,
        tol_scale=votes.shape[0] * float(w.sum()),
    )
    extra = result.model.extra or {}
    return VoteEMResult(
        np.ascontiguousarray(result.posteriors[:, :k]),
        extra["prior"],
        extra["theta"],
        result.n_iter,
        result.converged,
        result.log_likelihood,
        tuple(result.objectives),
    )
