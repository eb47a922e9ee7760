"""MACE (Hovy et al. 2013, "Learning Whom to Trust with MACE"): spammer-aware consensus."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import Backend
from ._base import check_positive
from ._dawid_skene import _EMAggregator, log_class_prior
from ._em import MStep
from ._table import Annotations

__all__ = ["MACE"]


class MACE(_EMAggregator):
    """Multi-Annotator Competence Estimation.

    Each annotator ``j`` either knows the answer (probability ``competence_[j]``) and gives the
    true label, or spams: draws a label from its own spam distribution ``spam_dist_[j]``
    (always "yes", or a uniform click, ...). So ``P(says l | truth k) = c_j [l = k] +
    (1 - c_j) xi_j[l]``: a confusion matrix with ``K`` parameters per annotator instead of
    ``K^2``, which pins down the competence of annotators with few answers, and names
    spammers (low ``competence_``) even when their favourite label is often right.

    Fitted by EM (MAP) over the sparse counts, with a ``Beta(alpha, beta)``-style prior of
    pseudo-counts on the competence and ``smoothing`` pseudo-counts per label on the spam
    distribution. MACE's class prior is uniform; here it is learned (one Laplace pseudo-count
    per class): with the uniform prior crowd_product (12% positives) fell from 0.93 to 0.81. The E-step and the chunk map are
    the shared ones of :class:`DawidSkene` (same ``n_init``, ``tol``, ``max_iter``, gold
    clamping, backend invariance). The original fits by EM with random restarts or by
    variational Bayes; this is the EM variant with the vote shares as the first start.

    Parameters
    ----------
    alpha, beta : float > 0, default 0.5
        Pseudo-answers "competent" / "spam" added to every annotator.
    smoothing : float > 0, default 1.0
        Pseudo-counts per label of the spam distribution.
    n_init, tol, max_iter, random_state, backend, chunk_size
        As in :class:`DawidSkene`.

    Attributes
    ----------
    competence_ : ndarray, shape (n_annotators,)
        Probability that the annotator answers from knowledge; also ``skills_``.
    spam_dist_ : ndarray, shape (n_annotators, n_classes)
    """

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        beta: float = 0.5,
        smoothing: float = 1.0,
        n_init: int = 1,
        tol: float = 1e-5,
        max_iter: int = 100,
        random_state: Any = 0,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.smoothing = smoothing
        self.n_init = n_init
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def _check_prior(self) -> None:
        check_positive("alpha", self.alpha)
        check_positive("beta", self.beta)
        check_positive("smoothing", self.smoothing)

    def _m_step(self, N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        j, k, _ = N.shape
        if prev is None or prev.extra is None:
            comp = np.full(j, 0.5)
            xi = np.full((j, k), 1.0 / k)
        else:
            comp, xi = prev.extra["competence"], prev.extra["spam_dist"]
        diag = np.einsum("jkk->jk", N)  # answers that match the truth
        knows = comp[:, None] / (comp[:, None] + (1.0 - comp[:, None]) * xi)
        known = diag * knows  # expected answers given from knowledge, per class
        spam = N.sum(axis=1) - known  # per label: every mismatch, and the matches spammed
        n = N.sum(axis=(1, 2))
        a, b, s = float(self.alpha), float(self.beta), float(self.smoothing)
        comp = (known.sum(axis=1) + a) / (n + a + b)
        xi = (spam + s) / (spam.sum(axis=1, keepdims=True) + k * s)
        conf = (1.0 - comp)[:, None, None] * xi[:, None, :] + comp[:, None, None] * np.eye(k)
        log_conf = np.log(np.maximum(conf, 1e-300))
        penalty = float(
            (a * np.log(comp) + b * np.log1p(-np.minimum(comp, 1 - 1e-12))).sum()
            + (s * np.log(xi)).sum()
        )
        log_prior, prior_term = log_class_prior(totals)
        return MStep(
            log_conf, log_prior, penalty + prior_term, {"competence": comp, "spam_dist": xi}
        )

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        result = self._run(table, rng)
        assert result.model.extra is not None
        self.competence_ = result.model.extra["competence"]
        self.spam_dist_ = result.model.extra["spam_dist"]
        return result.posteriors, self.competence_
