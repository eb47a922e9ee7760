"""Dawid-Skene EM on an abstain-aware vote matrix: the seam between the label model and the
shared EM core.

Model: each item has a latent class ``y`` with prior ``pi``; LF ``j`` emits outcome ``v`` in
``{0, .., K-1, abstain}`` with probability ``theta[j, y, v]`` (a K x (K+1) confusion matrix
whose last column is the class-conditional abstain propensity), independently given ``y``.
LF weights ``w`` temper each LF's log-likelihood (``w = 1/2`` on two exact copies of one LF
counts it once). With ``model_abstain=False`` the abstain factor is left out of the posterior
(an abstention says nothing about the class; rows where every LF abstains get the prior), as
Snorkel's label model does, while ``theta`` still holds the abstain propensities, so a vote
from an LF that fires mostly on one class weighs more.

Every pass is a chunk map over item rows. Statistics (posterior-weighted confusion counts,
class sums, log-likelihood) are formed per fixed block of ``_BLOCK`` rows and summed in block
order after the map, and chunks are whole blocks, so results are identical for any backend
and any ``chunk_size``.

Seam: :func:`vote_em` / :func:`e_step` are the only EM the label model runs. Once
``truelabel.aggregate._em.run_em`` (sparse ``(n_items, n_annotators * K)`` counts, a pluggable
``m_step``, fixed-point sums) is on this branch, their bodies become a call to it: LFs as
annotators, abstain as an extra label ``K`` (``counts_from_votes(where(L < 0, K, L), K + 1)``),
truth restricted to the first K classes (log prior of class K = -inf), and an ``m_step``
returning ``w_j * log theta_j`` (abstain column 0 when ``model_abstain=False``).
``tests/test_weak_label_model.py::test_em_equals_a_naive_item_loop`` pins the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_random_state
from ..backend import DEFAULT_CHUNK_ROWS, Backend, Chunk, chunk_ranges, get_backend, map_reduce
from ..exceptions import ValidationError
from ._votes import check_votes

__all__ = ["VoteEMResult", "e_step", "vote_em"]

_BLOCK = 4096
_Shared = tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, int, np.ndarray | None]


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


def _chunks(n: int, chunk_size: int | None) -> list[Chunk]:
    """Chunks of whole blocks: ``chunk_size`` is rounded up to a multiple of ``_BLOCK``."""
    size = DEFAULT_CHUNK_ROWS if chunk_size is None else int(chunk_size)
    if size < 1:
        raise ValidationError("chunk_size", f"got {chunk_size!r}", "pass a positive row count")
    return chunk_ranges(n, -(-size // _BLOCK) * _BLOCK)


def _log_joint(
    codes: np.ndarray, log_theta: np.ndarray, log_prior: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``log pi[y] + sum_j w_j log theta[j, y, code_ij]`` for a block: (rows, K)."""
    out = np.broadcast_to(log_prior, (codes.shape[0], log_prior.shape[0])).copy()
    for j in range(codes.shape[1]):  # a loop over LFs, each step vectorized over rows
        if weights[j] != 0.0:
            out += weights[j] * log_theta[j][:, codes[:, j]].T
    return out


def _softmax_rows(lj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = lj.max(axis=1, keepdims=True)
    p = np.exp(lj - top)
    z = p.sum(axis=1, keepdims=True)
    return p / z, (np.log(z) + top)[:, 0]


def _em_chunk(chunk: Chunk, shared: _Shared) -> np.ndarray:
    """Per block of the chunk: flat [confusion counts (m*K*(K+1)), class sums (K), loglik].

    ``log_theta=None`` means the initial pass: posteriors are the weighted vote shares."""
    votes, log_theta, log_prior, weights, k, out = shared
    m = votes.shape[1]
    stats = []
    for start in range(chunk.start, chunk.stop, _BLOCK):
        block = votes[start : min(start + _BLOCK, chunk.stop)]
        codes = np.where(block < 0, k, block).astype(np.intp)
        if log_theta is None:
            share = np.zeros((block.shape[0], k + 1))
            for j in range(m):
                share[np.arange(block.shape[0]), codes[:, j]] += weights[j]
            share = share[:, :k]
            total = share.sum(axis=1, keepdims=True)
            post = np.where(total > 0, share / np.where(total > 0, total, 1.0), 1.0 / k)
            loglik = np.zeros(block.shape[0])
        else:
            post, loglik = _softmax_rows(_log_joint(codes, log_theta, log_prior, weights))
        if out is not None:
            out[start : start + block.shape[0]] = post
        counts = np.empty((m, k, k + 1))
        eye = np.eye(k + 1)
        for j in range(m):
            counts[j] = post.T @ eye[codes[:, j]]
        stats.append(np.concatenate([counts.ravel(), post.sum(axis=0), [loglik.sum()]]))
    return np.asarray(stats)


def _run(
    votes: np.ndarray,
    params: tuple[np.ndarray | None, np.ndarray],
    weights: np.ndarray,
    k: int,
    out: np.ndarray | None,
    backend: Backend,
    chunk_size: int | None,
) -> np.ndarray:
    per_block = map_reduce(
        _em_chunk,
        _chunks(votes.shape[0], chunk_size),
        (votes, params[0], params[1], weights, k, out),
        combine=lambda a, b: np.concatenate([a, b]),
        backend=backend,
    )
    return np.asarray(per_block.sum(axis=0))


def _m_step(
    stats: np.ndarray,
    m: int,
    k: int,
    smoothing: float,
    model_abstain: bool,
    fixed_prior: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta = stats[: m * k * (k + 1)].reshape(m, k, k + 1) + smoothing
    theta /= theta.sum(axis=2, keepdims=True)
    if fixed_prior is None:
        prior = stats[m * k * (k + 1) : -1] + smoothing
        prior = prior / prior.sum()
    else:
        prior = fixed_prior
    return theta, prior, _log_theta(theta, model_abstain)


def _log_theta(theta: np.ndarray, model_abstain: bool) -> np.ndarray:
    """``log theta``; the abstain column is 0 (no evidence) when abstentions are not modelled."""
    log_theta = np.log(theta)
    if not model_abstain:
        log_theta[:, :, -1] = 0.0
    return log_theta


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
    """Posteriors (n_items, K) and log-likelihood of checked votes under fixed parameters."""
    k = class_prior.shape[0]
    log_theta = _log_theta(confusions, model_abstain)
    log_prior = np.log(class_prior)
    out = np.empty((votes.shape[0], k))
    stats = _run(votes, (log_theta, log_prior), weights, k, out, get_backend(backend), chunk_size)
    return out, float(stats[-1])


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

    The first start is the weighted majority vote; ``n_init - 1`` more starts draw each LF's
    confusion rows from a Dirichlet around a 70%-accurate LF (``random_state``). The start
    with the highest final log-likelihood is kept. Stops when no parameter moves by more
    than ``tol`` in an iteration. Items where every LF abstains get ``P(y | all abstain)``,
    which is the class prior when ``model_abstain=False``.
    """
    votes, k = check_votes(votes, n_classes)
    m = votes.shape[1]
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,) or not np.isfinite(w).all() or (w < 0).any():
        raise ValidationError(
            "weights", f"expected {m} finite non-negative LF weights, got {weights!r}", "fix"
        )
    be = get_backend(backend)
    fixed = None if class_prior is None else np.asarray(class_prior, dtype=np.float64)
    rng = check_random_state(random_state)
    best: tuple[float, np.ndarray, np.ndarray, int, bool] | None = None
    start_lls: list[float] = []
    for start in range(max(1, n_init)):
        if start == 0:
            stats = _run(votes, (None, np.zeros(k)), w, k, None, be, chunk_size)
            theta, prior, log_theta = _m_step(stats, m, k, smoothing, model_abstain, fixed)
        else:
            alpha = np.full((k, k + 1), 1.0) + 4.0 * np.eye(k, k + 1)
            theta = np.stack([[rng.dirichlet(row) for row in alpha] for _ in range(m)])
            prior = np.full(k, 1.0 / k) if fixed is None else fixed
            log_theta = _log_theta(theta, model_abstain)
        converged, n_iter = False, 0
        for it in range(1, max_iter + 1):
            n_iter = it
            stats = _run(votes, (log_theta, np.log(prior)), w, k, None, be, chunk_size)
            new_theta, new_prior, log_theta = _m_step(stats, m, k, smoothing, model_abstain, fixed)
            delta = max(np.abs(new_theta - theta).max(), np.abs(new_prior - prior).max())
            theta, prior = new_theta, new_prior
            if delta < tol:
                converged = True
                break
        _, ll = e_step(
            votes, theta, prior, w, model_abstain=model_abstain, backend=be, chunk_size=chunk_size
        )
        start_lls.append(ll)
        if best is None or ll > best[0]:
            best = (ll, theta, prior, n_iter, converged)
    assert best is not None
    ll, theta, prior, it, converged = best
    post, ll = e_step(
        votes, theta, prior, w, model_abstain=model_abstain, backend=be, chunk_size=chunk_size
    )
    return VoteEMResult(post, prior, theta, it, converged, ll, tuple(start_lls))
