"""The EM core shared by every confusion-matrix model (Dawid-Skene, one-coin, MACE, weak/).

Works on encoded arrays only: a sparse count matrix ``counts`` of shape
``(n_items, n_annotators * n_classes)`` (``counts[i, j * K + l]`` = answers ``l`` of annotator
``j`` on item ``i``; :func:`counts_from_codes` and :func:`counts_from_votes` build it) and a model
given as per-annotator log confusion matrices ``log_conf[j, k, l] = log P(annotator j says l |
truth k)`` plus log class priors. Any model whose M-step reads the expected counts
``N[j, k, l] = sum_i P(truth_i = k) counts[i, j * K + l]`` plugs in as an ``m_step`` function.

Each EM iteration is one chunk map over item rows (:func:`truelabel.backend.map_reduce`):
the E-step of a chunk is a sparse-dense product, and the chunk returns the small additive
statistics of the M-step (the ``(J * K, K)`` expected counts, class totals, log-likelihood).
Posteriors and log-likelihoods are summed in fixed point (integers), so the result is
bit-for-bit the same for any backend and chunk size, and memory stays O(chunk + statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from .._progress import progress
from .._spill import release_free_memory, scratch
from ..backend import Backend, Chunk, chunk_ranges, get_backend, map_reduce
from ..exceptions import ValidationError, warn_at_caller

__all__ = [
    "VOTE_SHARES",
    "EMResult",
    "MStep",
    "counts_from_codes",
    "counts_from_votes",
    "e_step",
    "expected_counts",
    "run_em",
]

#: fixed-point scale of posteriors in the summed statistics (exact below ~1.3e8 answers)
_SCALE_T = float(2**26)
#: fixed-point scale of per-item log-likelihoods
_SCALE_LL = float(2**20)
_TINY = 1e-300


class _VoteShares:
    """The initial posteriors "each item's share of its votes per class", computed chunk by
    chunk from the count matrix (never held whole): pass :data:`VOTE_SHARES` in ``inits``."""

    def __repr__(self) -> str:
        return "VOTE_SHARES"


#: an ``inits`` entry of :func:`run_em`: the vote shares, computed per chunk (equal to
#: ``votes / votes.sum(axis=1, keepdims=True)`` of ``Annotations.vote_counts()``)
VOTE_SHARES = _VoteShares()


class MStep(NamedTuple):
    """What an M-step returns: the model for the next E-step and its log prior density."""

    log_conf: np.ndarray  # (n_annotators, K, K): log P(label l | truth k) per annotator
    log_prior: np.ndarray  # (K,)
    penalty: float  # log prior density of the parameters (0 for plain maximum likelihood)
    extra: dict[str, Any] | None = None  # model-specific parameters, e.g. MACE's theta


#: ``m_step(N, class_totals, previous) -> MStep`` (``previous`` is None on the first step)
MStepFn = Callable[[np.ndarray, np.ndarray, "MStep | None"], MStep]


@dataclass
class EMResult:
    """The best EM run: posteriors, model, objective and convergence."""

    posteriors: np.ndarray  # (n_items, K)
    model: MStep
    objective: float  # log-likelihood + log prior density, at the final parameters
    log_likelihood: float
    n_iter: int
    converged: bool
    init: int  # which initialization won
    objectives: list[float] = field(default_factory=list)  # final objective of every init


def counts_from_codes(
    item: np.ndarray, annotator: np.ndarray, label: np.ndarray, shape: tuple[int, int, int]
) -> sp.csr_matrix:
    """The ``(n_items, n_annotators * K)`` count matrix from one entry per answer.

    >>> counts_from_codes(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([1, 0, 1]),
    ...                   (2, 2, 2)).toarray().tolist()
    [[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
    """
    n_items, n_annot, k = shape
    m = sp.csr_matrix(
        (np.ones(len(item)), (item, np.asarray(annotator) * k + label)),
        shape=(n_items, n_annot * k),
    )
    m.sum_duplicates()
    return m


def counts_from_votes(votes: np.ndarray, n_classes: int, abstain: int = -1) -> sp.csr_matrix:
    """The count matrix of a vote matrix ``(n_items, n_sources)`` (``abstain`` = no vote).

    For label models over labeling functions: each source is an annotator.

    >>> counts_from_votes(np.array([[1, -1], [0, 0]]), 2).toarray().tolist()
    [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]]
    """
    v = np.asarray(votes)
    if v.ndim != 2:
        raise ValidationError("votes", f"expected shape (n_items, n_sources), got {v.shape}")
    rows, cols = np.nonzero(v != abstain)
    lab = v[rows, cols]
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValidationError(
            "votes",
            f"vote {int(lab.min() if lab.min() < 0 else lab.max())} is outside [0, {n_classes})",
            f"use class codes 0..{n_classes - 1} and {abstain} for abstain",
        )
    return counts_from_codes(rows, cols, lab, (v.shape[0], v.shape[1], n_classes))


def e_step(
    counts: sp.csr_matrix,
    log_conf_t: np.ndarray,
    log_prior: np.ndarray,
    gold: np.ndarray | None,
    item_log_prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors ``(n, K)`` and per-item log-likelihoods of rows of ``counts``.

    ``log_conf_t[j * K + l, k] = log P(l | k)`` of annotator ``j``; gold items (code >= 0)
    are clamped to their class and contribute the joint log-likelihood at it;
    ``item_log_prior`` (n, K), when given, is added to every item's log-posterior (e.g. a
    classifier's log pred_probs: model-assisted consensus).
    """
    logp = np.asarray(counts @ log_conf_t) + log_prior
    if item_log_prior is not None:
        logp += item_log_prior
    top = _row_reduce(np.maximum, logp)
    post = np.exp(logp - top[:, None])
    total = _row_reduce(np.add, post)
    post /= total[:, None]
    loglik = top + np.log(total)
    if gold is not None:
        has = gold >= 0
        if has.any():
            rows = np.flatnonzero(has)
            loglik[rows] = logp[rows, gold[rows]]
            post[rows] = 0.0
            post[rows, gold[rows]] = 1.0
    return post, loglik


def _row_reduce(op: np.ufunc, a: np.ndarray) -> np.ndarray:
    """``op.reduce(a, axis=1)`` by columns: NumPy's row reductions over a short axis are
    ~10x slower than K vectorized column operations."""
    if a.shape[1] > 64:
        return np.asarray(op.reduce(a, axis=1))
    out = a[:, 0].copy()
    for k in range(1, a.shape[1]):
        op(out, a[:, k], out=out)
    return out


@dataclass(frozen=True)
class _Shared:
    blocks: list[sp.csr_matrix]
    gold: list[np.ndarray | None]
    log_conf_t: np.ndarray | None = None
    log_prior: np.ndarray | None = None
    posteriors: np.ndarray | None = None
    item_log_prior: np.ndarray | None = None
    n_classes: int = 0  # for the vote shares of an init without posteriors


def _rows(shared: _Shared, chunk: Chunk) -> np.ndarray | None:
    return None if shared.item_log_prior is None else shared.item_log_prior[chunk.slice]


def _stats(block: sp.csr_matrix, post: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fixed = np.rint(post * _SCALE_T)
    n = np.rint(np.asarray(block.T @ fixed)).astype(np.int64)
    return n, fixed.sum(axis=0).astype(np.int64)


def _em_chunk(chunk: Chunk, shared: _Shared) -> tuple[np.ndarray, np.ndarray, int]:
    """E-step of one item chunk -> its (expected counts, class totals, log-likelihood)."""
    assert shared.log_conf_t is not None and shared.log_prior is not None
    block = shared.blocks[chunk.index]
    post, loglik = e_step(
        block, shared.log_conf_t, shared.log_prior, shared.gold[chunk.index], _rows(shared, chunk)
    )
    n, tot = _stats(block, post)
    return n, tot, int(np.rint(loglik * _SCALE_LL).astype(np.int64).sum())


def _vote_shares(block: sp.csr_matrix, n_classes: int) -> np.ndarray:
    """Each row's votes per class over its annotators, divided by its number of votes (exact
    integer sums in float64: the values of ``vote_counts()`` and its division)."""
    cols = np.arange(block.shape[1]) % n_classes
    pick = sp.csr_matrix(
        (np.ones(cols.size), (np.arange(cols.size), cols)), shape=(cols.size, n_classes)
    )
    votes = np.asarray((block @ pick).toarray(), dtype=np.float64)
    votes /= votes.sum(axis=1, keepdims=True)
    return votes


def _init_chunk(chunk: Chunk, shared: _Shared) -> tuple[np.ndarray, np.ndarray, int]:
    """Statistics of given (initial) posteriors (or of the vote shares), gold rows clamped."""
    block = shared.blocks[chunk.index]
    if shared.posteriors is None:
        post = _vote_shares(block, shared.n_classes)
    else:
        post = shared.posteriors[chunk.slice].copy()
    gold = shared.gold[chunk.index]
    if gold is not None and (gold >= 0).any():
        rows = np.flatnonzero(gold >= 0)
        post[rows] = 0.0
        post[rows, gold[rows]] = 1.0
    n, tot = _stats(block, post)
    return n, tot, 0


def _posterior_chunk(chunk: Chunk, shared: _Shared) -> tuple[np.ndarray, int]:
    assert shared.log_conf_t is not None and shared.log_prior is not None
    post, loglik = e_step(
        shared.blocks[chunk.index],
        shared.log_conf_t,
        shared.log_prior,
        shared.gold[chunk.index],
        _rows(shared, chunk),
    )
    return post, int(np.rint(loglik * _SCALE_LL).astype(np.int64).sum())


def _row_block(
    counts: sp.csr_matrix, chunk: Chunk, ptr_out: np.ndarray | None = None
) -> sp.csr_matrix:
    """Rows ``chunk`` of ``counts`` as a CSR matrix over views of its data and indices (the
    values of ``counts[chunk.slice]``, no copy of the answers). The arrays are set on an
    empty matrix: scipy's constructor copies a view that is much smaller than its base.
    ``ptr_out`` (``len(chunk) + 1`` slots of the indptr's dtype) receives the block's own
    row pointers when given (else a new array)."""
    ptr = counts.indptr[chunk.start : chunk.stop + 1]
    a, b = int(ptr[0]), int(ptr[-1])
    block = sp.csr_matrix((len(chunk), counts.shape[1]), dtype=counts.dtype)
    block.indptr = ptr - ptr[0] if ptr_out is None else np.subtract(ptr, ptr[0], out=ptr_out)
    block.indices = counts.indices[a:b]
    block.data = counts.data[a:b]
    return block


def _add3(
    a: tuple[np.ndarray, np.ndarray, int], b: tuple[np.ndarray, np.ndarray, int]
) -> tuple[np.ndarray, np.ndarray, int]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _as_counts(stats: np.ndarray, n_annot: int, k: int) -> np.ndarray:
    """Fixed-point ``(J * K_label, K_true)`` sums -> expected counts ``N[j, k_true, l]``."""
    return (stats / _SCALE_T).reshape(n_annot, k, k).transpose(0, 2, 1)


def _conf_t(log_conf: np.ndarray) -> np.ndarray:
    """``log_conf[j, k, l]`` -> the ``(J * K, K)`` matrix the E-step multiplies by."""
    j, k, _ = log_conf.shape
    return np.ascontiguousarray(log_conf.transpose(0, 2, 1).reshape(j * k, k))


def expected_counts(
    counts: sp.csr_matrix, posteriors: np.ndarray, n_annotators: int, n_classes: int
) -> np.ndarray:
    """``N[j, k, l] = sum_i posteriors[i, k] counts[i, j * K + l]`` (float, not fixed point)."""
    n = np.asarray(counts.T @ posteriors)
    return n.reshape(n_annotators, n_classes, n_classes).transpose(0, 2, 1)


def run_em(
    counts: sp.csr_matrix,
    *,
    n_annotators: int,
    n_classes: int,
    m_step: MStepFn,
    inits: Sequence[np.ndarray],
    gold: np.ndarray | None = None,
    item_log_prior: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
    name: str = "EM",
    warn: bool = True,
    tol_scale: float | None = None,
    show_progress: bool = False,
) -> EMResult:
    """Run EM from each initial posterior matrix; keep the run with the best objective.

    Parameters
    ----------
    counts : csr_matrix, shape (n_items, n_annotators * n_classes)
    m_step : callable
        ``m_step(N, class_totals, previous) -> MStep`` with ``N[j, k, l]`` the expected counts
        and ``previous`` the last parameters (None on the first step).
    inits : sequence of ndarray, shape (n_items, n_classes), or VOTE_SHARES
        Initial posteriors; the first M-step starts from each. :data:`VOTE_SHARES` stands
        for the vote shares, computed chunk by chunk (no ``(n_items, n_classes)`` array).
    gold : ndarray of int, shape (n_items,), optional
        Known class per item (-1 = unknown); clamped in every E-step.
    item_log_prior : ndarray, shape (n_items, n_classes), optional
        Added to each item's log-posterior in every E-step (the seam for model-assisted
        consensus: a classifier's log pred_probs, possibly tempered by its estimated accuracy).
    tol : float
        Stop when the objective (log-likelihood + log prior density) changes by less than
        ``tol`` per answer between iterations.
    max_iter : int
        EM iterations per initialization; a :class:`TruelabelWarning` says when the kept run
        stopped there without converging.
    warn : bool
        Emit that warning (False: the caller reads ``EMResult.converged`` and warns itself).
    tol_scale : float, optional
        The number of answers ``tol`` is per (default ``counts.sum()``); the label model of
        :mod:`truelabel.weak` passes its weighted number of (item, LF) cells, so that LF
        copies sharing one weight stop where the single LF does.
    show_progress : bool
        Count the EM iterations on a progress bar (when progress is on: the CLI; see
        :mod:`truelabel._progress`), for a caller whose EM is the long step.
    """
    # the heap a table's loading freed (glibc keeps it otherwise) goes back to the OS before
    # the posteriors are allocated: ~70 MiB at 1e6 items read from Parquet
    release_free_memory()
    n_items = counts.shape[0]
    n_labels = max(float(counts.sum() if tol_scale is None else tol_scale), 1.0)
    chunks = chunk_ranges(n_items, chunk_size)
    # views, not copies: the answers are held once (by ``counts``); the blocks' own row
    # pointers (one per item and chunk) share one scratch array, a spill file when large
    blocks = [counts]
    if len(chunks) > 1:
        ptrs = scratch(n_items + len(chunks), counts.indptr.dtype)
        blocks = [
            _row_block(counts, c, ptrs[c.start + i : c.stop + i + 1]) for i, c in enumerate(chunks)
        ]
    golds = [None if gold is None else np.asarray(gold)[c.slice] for c in chunks]

    def fit_params(stats: tuple[np.ndarray, np.ndarray, int], prev: MStep | None) -> MStep:
        return m_step(_as_counts(stats[0], n_annotators, n_classes), stats[1] / _SCALE_T, prev)

    with progress(None, f"{name}: EM iterations", show=show_progress) as advance:
        best, objectives = _em_runs(
            inits, blocks, golds, chunks, n_items, n_classes, fit_params, item_log_prior,
            tol, n_labels, max_iter, backend, advance,
        )  # fmt: skip
    if best is None:
        raise ValidationError("inits", "is empty", "pass at least one initialization")
    best.objectives = objectives
    if warn and not best.converged:
        warn_at_caller(  # at the user's call, whichever estimator's path led here
            f"{name} did not converge in max_iter={max_iter} iterations (tol={tol}); the "
            "result may change with more iterations: raise max_iter or tol"
        )
    return best


def _em_runs(
    inits: Sequence[np.ndarray],
    blocks: list[sp.csr_matrix],
    golds: list[np.ndarray | None],
    chunks: list[Chunk],
    n_items: int,
    n_classes: int,
    fit_params: Callable[[tuple[np.ndarray, np.ndarray, int], MStep | None], MStep],
    item_log_prior: np.ndarray | None,
    tol: float,
    n_labels: float,
    max_iter: int,
    backend: Backend | str | None,
    advance: Callable[[int], None],
) -> tuple[EMResult | None, list[float]]:
    """EM from each initialization (the loop of :func:`run_em`); the best run and every run's
    objective. ``advance(1)`` at each iteration's E-step (``n_iter`` per initialization)."""
    best: EMResult | None = None
    objectives: list[float] = []
    for index, init in enumerate(inits):
        start = None if init is VOTE_SHARES else np.asarray(init, dtype=np.float64)
        shared = _Shared(blocks=blocks, gold=golds, posteriors=start, n_classes=n_classes)
        stats = map_reduce(_init_chunk, chunks, shared, combine=_add3, backend=backend)
        params = fit_params(stats, None)
        prev = None
        converged = False
        n_iter = 0
        for n_iter in range(1, max_iter + 1):  # noqa: B007  (n_iter is reported)
            shared = _Shared(
                blocks, golds, _conf_t(params.log_conf), params.log_prior, None, item_log_prior
            )
            stats = map_reduce(_em_chunk, chunks, shared, combine=_add3, backend=backend)
            objective = stats[2] / _SCALE_LL + params.penalty
            advance(1)
            if prev is not None and abs(objective - prev) <= tol * n_labels:
                converged = True
                break
            prev = objective
            params = fit_params(stats, params)
        shared = _Shared(
            blocks, golds, _conf_t(params.log_conf), params.log_prior, None, item_log_prior
        )
        # each chunk's posteriors go straight into one array (no list of parts + concatenate:
        # that held two (n_items, n_classes) copies at the peak); a spill file when large, so
        # the output (the aggregator's probas_) is file-backed, not anonymous memory
        post = scratch((n_items, n_classes), np.float64)
        scaled = 0  # exact: the chunks' scaled log-likelihoods are ints
        for chunk, (block, ll) in zip(
            chunks, get_backend(backend).map(_posterior_chunk, chunks, shared), strict=True
        ):
            post[chunk.slice] = block
            scaled += ll
        loglik = scaled / _SCALE_LL
        objective = loglik + params.penalty
        objectives.append(objective)
        if best is None or objective > best.objective:
            best = EMResult(post, params, objective, loglik, n_iter, converged, index)
        del post
    return best, objectives
