"""The label model: LF votes -> class probabilities, with dependent LFs down-weighted.

Two fits of the abstain-aware Dawid-Skene model (:func:`~truelabel.weak._em.vote_em`, which
runs the EM core of :mod:`truelabel.aggregate`: LFs are annotators, abstain an extra outcome):

1. independent LFs; its MAP classes ``y`` give, for every LF pair, the conditional mutual
   information of their outcomes (votes and abstain) given ``y``, normalised by the smaller
   conditional entropy: ``d[j, k] = I(j; k | y) / min(H(j | y), H(k | y))`` in [0, 1]
   (1 for an exact copy, near 0 for LFs that err independently);
2. again with LF weights ``w_j = 1 / (1 + sum_k d[j, k] [d[j, k] >= threshold])``: two exact
   copies of one LF get 1/2 each and count as one LF, three get 1/3, and so on.

The pair counts are integer counts (per class, a Gram matrix of outcome indicators), summed
by a chunk map, so they do not depend on the chunking either.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..backend import Backend, Chunk, chunk_ranges, get_backend, map_reduce
from ..exceptions import NotFittedError, TruelabelWarning, ValidationError, warn_at_caller
from ._em import e_step, vote_em
from ._votes import check_votes

__all__ = ["LabelModel", "lf_dependence"]


def _pair_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    """Per class y: Gram matrix of the one-hot LF outcomes over the chunk's rows whose MAP
    class is y, shape (K, m*(K+1), m*(K+1)); float64 holding exact integer counts."""
    votes, y, k = shared
    block = votes[chunk.slice]
    m = block.shape[1]
    codes = np.where(block < 0, k, block).astype(np.intp) + (k + 1) * np.arange(m)
    onehot = np.zeros((block.shape[0], m * (k + 1)))
    onehot[np.arange(block.shape[0])[:, None], codes] = 1.0
    yc = y[chunk.slice]
    return np.stack([onehot[yc == c].T @ onehot[yc == c] for c in range(k)])


def lf_dependence(
    votes: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Normalised conditional mutual information of every LF pair given classes ``y``.

    Returns an (n_lfs, n_lfs) symmetric matrix in [0, 1] with a zero diagonal; a pair where
    one LF is constant within every class (zero conditional entropy) gets 0.
    """
    k = int(n_classes)
    m = votes.shape[1]
    gram = map_reduce(
        _pair_chunk,
        chunk_ranges(votes.shape[0], chunk_size),
        (votes, np.asarray(y), k),
        combine=np.add,
        backend=get_backend(backend),
    )
    d = k + 1
    joint = gram.reshape(k, m, d, m, d).transpose(0, 1, 3, 2, 4)  # (y, j, l, a, b)
    n_y = np.einsum("yjjaa->y", joint.reshape(k, m, m, d, d)[:, :1, :1])
    weight = n_y / max(n_y.sum(), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_ab = joint / np.maximum(n_y, 1.0)[:, None, None, None, None]
        p_a = p_ab.sum(axis=4, keepdims=True)
        p_b = p_ab.sum(axis=3, keepdims=True)
        term = np.where(p_ab > 0, p_ab * np.log(p_ab / (p_a * p_b)), 0.0)
        cmi = np.einsum("y,yjlab->jl", weight, term)
        marg = (
            np.einsum("yjjab->yja", joint.reshape(k, m, m, d, d))
            / np.maximum(n_y, 1.0)[:, None, None]
        )
        h = -np.einsum("y,yja->j", weight, np.where(marg > 0, marg * np.log(marg), 0.0))
        low = np.minimum(h[:, None], h[None, :])
        dep = np.where(low > 1e-12, cmi / low, 0.0)
    np.fill_diagonal(dep, 0.0)
    return np.asarray(np.clip(dep, 0.0, 1.0))


class LabelModel(BaseEstimator):
    """Combine labeling-function votes into class probabilities.

    Parameters
    ----------
    n_classes : int or None, default None
        Number of classes K; None infers ``max vote + 1`` at ``fit``.
    model_abstain : bool, default True
        Model each LF's class-conditional abstain propensity: an LF that fires mostly on
        spam is then evidence for ham when it abstains. Rows where every LF abstains get
        ``P(y | every LF abstained)``. With False an abstention adds no evidence to the
        posterior and such rows get exactly the class prior (Snorkel's convention); the
        propensities are still learned and weigh each vote.
    dependency_threshold : float or None, default 0.5
        Down-weight LF pairs whose normalised conditional mutual information reaches this
        (see module notes); None treats all LFs as independent.
    smoothing : float, default 1.0
        Dirichlet pseudo-count added to every confusion cell and class count.
    max_iter, tol, n_init, random_state
        EM control (the shared Dawid-Skene core of :mod:`truelabel.aggregate`): stop when
        the log-likelihood changes by less than ``tol`` per (item, LF) cell, or after
        ``max_iter`` iterations with a :class:`~truelabel.TruelabelWarning`; the first start
        is the majority vote, ``n_init - 1`` more are random (``random_state`` seeds them).
    backend, chunk_size
        The chunk map over item rows (results identical for any choice).

    Attributes
    ----------
    classes_, n_classes_, class_prior_, confusions_ (n_lfs, K, K+1), lf_weights_,
    dependence_ (n_lfs, n_lfs), lf_accuracy_ (P(vote right | vote)), n_iter_, converged_

    Examples
    --------
    >>> L = np.array([[0, 0, -1], [1, 1, 1], [0, -1, 0], [1, 1, -1], [0, 0, 0], [1, -1, 1]])
    >>> LabelModel().fit(L).predict(L).tolist()
    [0, 1, 0, 1, 0, 1]
    """

    def __init__(
        self,
        *,
        n_classes: int | None = None,
        model_abstain: bool = True,
        dependency_threshold: float | None = 0.5,
        smoothing: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-6,
        n_init: int = 1,
        random_state: int | None = 0,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.model_abstain = model_abstain
        self.dependency_threshold = dependency_threshold
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def _check_settings(self) -> None:
        t = self.dependency_threshold
        if t is not None and not (isinstance(t, float | int) and 0.0 < t <= 1.0):
            raise ValidationError(
                "dependency_threshold", f"got {t!r}", "pass a number in (0, 1] or None"
            )
        if not (isinstance(self.smoothing, float | int) and self.smoothing > 0):
            raise ValidationError("smoothing", f"got {self.smoothing!r}", "pass e.g. 1.0 (> 0)")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValidationError("max_iter", f"got {self.max_iter!r}", "pass e.g. 200")

    def fit(self, L: Any, y: Any = None) -> LabelModel:
        """Fit on the vote matrix ``L`` (n_items, n_lfs), -1 = abstain. ``y`` is ignored."""
        self._check_settings()
        votes, k = check_votes(L, self.n_classes)
        kw: dict[str, Any] = dict(
            model_abstain=self.model_abstain,
            smoothing=float(self.smoothing),
            max_iter=self.max_iter,
            tol=self.tol,
            n_init=self.n_init,
            random_state=self.random_state,
            backend=self.backend,
            chunk_size=self.chunk_size,
        )
        result = vote_em(votes, k, **kw)
        m = votes.shape[1]
        weights = np.ones(m)
        dep = np.zeros((m, m))
        if self.dependency_threshold is not None and m > 1:
            y_map = result.posteriors.argmax(axis=1)
            dep = lf_dependence(votes, y_map, k, backend=self.backend, chunk_size=self.chunk_size)
            strong = np.where(dep >= self.dependency_threshold, dep, 0.0)
            weights = 1.0 / (1.0 + strong.sum(axis=1))
            if (weights < 1.0).any():
                result = vote_em(votes, k, weights=weights, **kw)
        self.n_classes_ = k
        self.classes_ = np.arange(k)
        self.n_lfs_ = m
        self.class_prior_ = result.class_prior
        self.confusions_ = result.confusions
        self.lf_weights_ = weights
        self.dependence_ = dep
        diag = np.einsum("y,jyy->j", result.class_prior, result.confusions[:, :, :k])
        fired = np.einsum("y,jyv->j", result.class_prior, result.confusions[:, :, :k])
        self.lf_accuracy_ = diag / np.maximum(fired, 1e-300)
        self.n_iter_ = result.n_iter
        self.converged_ = result.converged
        if not result.converged:
            warn_at_caller(
                f"LabelModel: EM did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); the probabilities may still move: raise max_iter",
                TruelabelWarning,
            )
        self.log_likelihood_ = result.log_likelihood
        return self

    def predict_proba(self, L: Any) -> np.ndarray:
        """Class probabilities (n_items, n_classes) of each row of votes."""
        if not hasattr(self, "confusions_"):
            raise NotFittedError("LabelModel is not fitted; call fit(L) first")
        votes, _ = check_votes(L, self.n_classes_, n_lfs=self.n_lfs_)
        post, _ = e_step(
            votes,
            self.confusions_,
            self.class_prior_,
            self.lf_weights_,
            model_abstain=self.model_abstain,
            backend=self.backend,
            chunk_size=self.chunk_size,
        )
        return post

    def predict(self, L: Any) -> np.ndarray:
        """The most probable class of each row (ties go to the lower class index)."""
        return np.asarray(self.predict_proba(L).argmax(axis=1))

    def fit_predict_proba(self, L: Any) -> np.ndarray:
        """``fit(L).predict_proba(L)``."""
        return self.fit(L).predict_proba(L)
