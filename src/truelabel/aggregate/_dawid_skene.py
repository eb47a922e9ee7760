"""Dawid-Skene (a full confusion matrix per annotator) and one-coin Dawid-Skene."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_choice
from ..backend import Backend
from ..exceptions import ValidationError
from ._base import Aggregator, check_positive, check_positive_int
from ._em import VOTE_SHARES, EMResult, MStep, run_em
from ._table import Annotations

__all__ = ["DawidSkene", "OneCoinDawidSkene", "initial_posteriors", "log_class_prior"]


def initial_posteriors(table: Annotations, n_init: int, rng: np.random.Generator) -> list[Any]:
    """The vote shares, then ``n_init - 1`` random starts: half vote shares, half Dirichlet(1).

    The vote shares are :data:`~truelabel.aggregate._em.VOTE_SHARES` (computed per chunk by
    :func:`run_em`, never held whole); the random starts are arrays.
    """
    starts: list[Any] = [VOTE_SHARES]
    if n_init <= 1:
        return starts
    mv = np.asarray(table.vote_counts(), dtype=np.float64)
    mv /= mv.sum(axis=1, keepdims=True)  # in place: no second (n_items, n_classes) array
    for _ in range(n_init - 1):
        noise = rng.dirichlet(np.ones(table.n_classes), size=table.n_items)
        starts.append(0.5 * mv + 0.5 * noise)
    return starts


def log_class_prior(totals: np.ndarray) -> tuple[np.ndarray, float]:
    """Class prior with one pseudo-count per class (Laplace), and its log density term."""
    prior = (totals + 1.0) / (totals.sum() + len(totals))
    log_prior = np.log(prior)
    return log_prior, float(log_prior.sum())


class _EMAggregator(Aggregator):
    """Shared settings and the fit of the EM-based aggregators."""

    def _check_em(self) -> tuple[int, float, int]:
        n_init = check_positive_int("n_init", self.n_init)
        tol = check_positive("tol", self.tol)
        max_iter = check_positive_int("max_iter", self.max_iter)
        return n_init, tol, max_iter

    def _m_step(self, N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        raise NotImplementedError  # pragma: no cover

    def _run(self, table: Annotations, rng: np.random.Generator) -> EMResult:
        n_init, tol, max_iter = self._check_em()
        self._check_prior()
        result = run_em(
            table.counts,
            n_annotators=table.n_annotators,
            n_classes=table.n_classes,
            m_step=self._m_step,
            inits=initial_posteriors(table, n_init, rng),
            gold=table.gold_codes,
            tol=tol,
            max_iter=max_iter,
            backend=self.backend,
            chunk_size=self.chunk_size,
            name=type(self).__name__,
            show_progress=True,
        )
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        self.log_likelihood_ = result.log_likelihood
        self.objective_ = result.objective
        self.init_objectives_ = np.asarray(result.objectives)
        self.confusions_ = np.exp(result.model.log_conf)
        self.class_prior_ = np.exp(result.model.log_prior)
        return result

    def _check_prior(self) -> None:  # pragma: no cover - overridden
        pass

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        result = self._run(table, rng)
        conf = np.exp(result.model.log_conf)
        prior = np.exp(result.model.log_prior)
        skills = np.einsum("k,jkk->j", prior, conf)  # P(right) on an item drawn from the prior
        return result.posteriors, skills


class DawidSkene(_EMAggregator):
    """Dawid-Skene: a full confusion matrix per annotator, fitted by EM (MAP).

    Each annotator ``j`` has a confusion matrix ``confusions_[j, k, l] = P(says l | truth k)``.
    The M-step adds Dirichlet pseudo-counts to each confusion row: ``smoothing`` spread evenly
    over the row's cells, plus ``prior_strength`` spread like the pooled confusion of all
    annotators (an empirical-Bayes prior: an annotator with few answers is pulled towards the
    average annotator, one with many keeps its own matrix). ``prior_strength=0`` and a small
    ``smoothing`` give classic Dawid-Skene.

    The defaults were measured on the five ``crowd_*`` sets of ``benchmarks/bench_crowd.py``
    (one setting for all, ``benchmarks/results/crowd.md``): ``prior_strength`` 0-10 and
    ``smoothing`` 0.01-1 kept the mean accuracy within 0.8726-0.8753, and random restarts
    (``n_init=3``) moved it by less than 0.001 at three times the cost, so the default is one
    start from the vote shares with light smoothing.

    EM runs from ``n_init`` starts (the vote shares, then random perturbations of them drawn
    from ``random_state``) and keeps the run with the highest objective (log-likelihood plus
    log prior density); it stops when the objective changes by less than ``tol`` per answer,
    and warns when ``max_iter`` is reached first. Gold items are clamped to their label.
    Vectorized over the sparse count matrix; each iteration is a chunk map on ``backend``
    (bit-for-bit identical for any backend and ``chunk_size``).

    Parameters
    ----------
    prior_strength : float >= 0, default 0.0
        Pseudo-answers per confusion row spread like the pooled confusion.
    smoothing : float >= 0, default 0.01
        Pseudo-answers per confusion row spread evenly (keeps every probability > 0).
    n_init : int, default 1
        Starts: the vote shares, plus ``n_init - 1`` random ones.
    tol : float, default 1e-5
    max_iter : int, default 100
    random_state : int, Generator or None, default 0
    backend : Backend, "local" or None
    chunk_size : int, optional
        Items per chunk (default 32,768).

    Attributes
    ----------
    confusions_ : ndarray, shape (n_annotators, n_classes, n_classes)
    class_prior_ : ndarray, shape (n_classes,)
    skills_ : Series
        ``sum_k class_prior_[k] * confusions_[j, k, k]``: the probability that the annotator
        is right on an item drawn from the class prior.
    n_iter_, converged_, log_likelihood_, objective_, init_objectives_

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2, 2], "annotator_id": list("abcabc"),
    ...                    "label": [0, 0, 1, 1, 1, 1]})
    >>> DawidSkene().fit_predict(df).tolist()
    [0, 1]
    """

    def __init__(
        self,
        *,
        prior_strength: float = 0.0,
        smoothing: float = 0.01,
        n_init: int = 1,
        tol: float = 1e-5,
        max_iter: int = 100,
        random_state: Any = 0,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.prior_strength = prior_strength
        self.smoothing = smoothing
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def _check_prior(self) -> None:
        check_positive("prior_strength", self.prior_strength, allow_zero=True)
        check_positive("smoothing", self.smoothing, allow_zero=True)

    def _m_step(self, N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        k = N.shape[1]
        alpha = np.full((k, k), float(self.smoothing) / k)
        if self.prior_strength > 0:
            pooled = N.sum(axis=0) + 1.0 / k
            alpha = alpha + float(self.prior_strength) * pooled / pooled.sum(axis=1, keepdims=True)
        cells = N + alpha
        conf = cells / cells.sum(axis=2, keepdims=True)
        log_conf = np.log(np.maximum(conf, 1e-300))
        log_prior, prior_term = log_class_prior(totals)
        return MStep(log_conf, log_prior, float((alpha * log_conf).sum()) + prior_term)


class OneCoinDawidSkene(_EMAggregator):
    """One-coin Dawid-Skene: each annotator is right with probability ``p_j``, and spreads
    errors evenly over the other labels.

    M-step: ``p_j = (agreements_j + a) / (answers_j + a + b)``, a Beta prior of
    ``prior_strength`` pseudo-answers with mean ``prior_accuracy``, and ``p_j >= 1 / K``: an
    annotator is at worst a spammer, never an adversary whose answers are read backwards.
    With a learned class prior, one-coin EM can collapse onto one class: the prior of that
    class goes to 1 and the annotators who disagree become "worse than chance" (crowd-kit's
    OneCoinDawidSkene reaches 0.26 on crowd_relevance and 0.58 on crowd_duck that way; the
    same model here with a learned prior and no floor reached 0.26 and 0.58 too). So the
    class prior is uniform by default (``class_prior="learned"`` re-estimates it) and
    ``p_j`` is floored at chance. Same EM settings, initializations and gold clamping as
    :class:`DawidSkene`.

    Parameters
    ----------
    prior_accuracy : float in (0, 1), default 0.7
    prior_strength : float > 0, default 2.0
        Pseudo-answers of the Beta prior on each ``p_j``.
    class_prior : {"uniform", "learned"}, default "uniform"
    n_init, tol, max_iter, random_state, backend, chunk_size
        As in :class:`DawidSkene`.
    """

    def __init__(
        self,
        *,
        prior_accuracy: float = 0.7,
        prior_strength: float = 2.0,
        class_prior: str = "uniform",
        n_init: int = 1,
        tol: float = 1e-5,
        max_iter: int = 100,
        random_state: Any = 0,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.prior_accuracy = prior_accuracy
        self.prior_strength = prior_strength
        self.class_prior = class_prior
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def _check_prior(self) -> None:
        acc = self.prior_accuracy
        if not isinstance(acc, int | float | np.floating) or not 0 < acc < 1:
            raise ValidationError(
                "prior_accuracy", f"got {acc!r}, expected a number in (0, 1)", "e.g. 0.7"
            )
        check_positive("prior_strength", self.prior_strength)
        check_choice("class_prior", self.class_prior, ("uniform", "learned"))

    def _m_step(self, N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        j, k, _ = N.shape
        a = float(self.prior_strength) * float(self.prior_accuracy)
        b = float(self.prior_strength) - a
        right = np.einsum("jkk->j", N)
        p = (right + a) / (N.sum(axis=(1, 2)) + a + b)
        p = np.maximum(p, 1.0 / k)  # no annotator is worse than chance (see the class doc)
        off = (1.0 - p) / (k - 1)
        conf = np.broadcast_to(off[:, None, None], (j, k, k)).copy()
        conf[:, np.arange(k), np.arange(k)] = p[:, None]
        log_conf = np.log(np.maximum(conf, 1e-300))
        if self.class_prior == "uniform":
            log_prior, prior_term = np.full(k, -np.log(k)), 0.0
        else:
            log_prior, prior_term = log_class_prior(totals)
        penalty = float((a * np.log(p) + b * np.log(np.maximum(1.0 - p, 1e-300))).sum())
        return MStep(log_conf, log_prior, penalty + prior_term, {"accuracy": p})
