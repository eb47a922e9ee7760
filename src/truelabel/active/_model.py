"""The learner's model: logistic regression on the embeddings, fold models for the
out-of-fold probabilities and the model-strength signal, pool probabilities as a chunk map.

Pool probabilities are computed in 2048-row blocks aligned to absolute row numbers (a BLAS
product gives a row a different last bit depending on its place in the block), and chunks
are whole blocks, so they are identical for any backend and chunk size.
"""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Chunk, chunk_ranges, get_backend

__all__ = ["BLOCK", "LinearModel", "fit_linear", "fold_ids", "pool_proba"]

BLOCK = 2048


class LinearModel:
    """A fitted multinomial linear model over ``n_classes`` (classes it never saw get -inf)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.coef = coef  # (n_classes, dim) float64
        self.intercept = intercept  # (n_classes,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept)

    def proba(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


#: temperatures tried when calibrating the out-of-fold probabilities
TEMPERATURES = np.geomspace(0.25, 64.0, 49)


def calibrate(
    logits: np.ndarray, y: np.ndarray, loglik: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities ``softmax(logits / T)`` with the ``T`` (on a fixed grid) that
    best explains the answers. Rows whose label the fold model never saw (logit -inf) are left
    out of the fit and become uniform: that model has no opinion on them.

    Without ``loglik`` the answers are taken as the truth: ``T`` minimises the log loss on
    ``y``. With ``loglik`` (``(n, K)`` log-likelihood of each item's answers under each true
    class, :func:`consensus_loglik`), the probabilities are of the *true* class and the
    answers pass through the annotators' noise: ``T`` maximises the marginal likelihood
    ``sum_i log sum_c softmax(z_i / T)_c P(answers_i | c)``. Fitting noisy answers with the
    plain log loss would flatten the model by the noise a second time (the posterior then
    multiplies in the answers' likelihood again).
    """
    rows = np.arange(y.size)
    seen = np.isfinite(logits[rows, y])
    best_t, best = 1.0, np.inf
    if seen.any():
        z = logits[seen]
        if loglik is None:
            lik = np.full(z.shape, -np.inf)
            lik[np.arange(z.shape[0]), y[seen]] = 0.0
        else:
            lik = loglik[seen] - loglik[seen].max(axis=1, keepdims=True)
        for temp in TEMPERATURES:
            zt = z / temp
            top = zt.max(axis=1)
            lse = top + np.log(np.exp(zt - top[:, None]).sum(axis=1))
            joint = zt + lik
            jtop = joint.max(axis=1)
            fit = jtop + np.log(np.exp(joint - jtop[:, None]).sum(axis=1))
            loss = float(np.mean(lse - fit))
            if loss < best:
                best_t, best = float(temp), loss
    probs = softmax(logits / best_t)
    probs[~seen] = 1.0 / logits.shape[1]
    return probs, best_t


#: accuracies tried for the annotators (as a share of the way from chance to 1)
ACCURACY_STEPS = np.linspace(0.025, 0.995, 40)


def calibrate_noisy(
    logits: np.ndarray,
    y: np.ndarray,
    answer_item: np.ndarray,
    answer_label: np.ndarray,
    *,
    prior: float,
    strength: float,
) -> tuple[np.ndarray, float, float]:
    """Probabilities of the true class and one shared annotator accuracy, averaged over the
    posterior of the temperature ``T`` and the accuracy ``q``: ``(probs, T, q)``.

    The likelihood of item ``i``'s answers is ``sum_c softmax(z_i / T)_c prod_answers
    P(a | c)`` (one-coin: right with probability ``q``, otherwise one of the other classes
    evenly). The out-of-fold model never saw item ``i``'s answers, so where it is confident a
    disagreeing answer is evidence of noise; but ``T`` and ``q`` trade off (a sharp model and
    noisy annotators, or a soft model and accurate ones) and few answers pin neither down.
    So rather than the best pair, every pair on the grids (``T``: :data:`TEMPERATURES`, flat
    in ``log T``; ``q``: :data:`ACCURACY_STEPS` of the way from chance to 1, with a prior of
    ``strength`` pseudo-answers right at rate ``prior``) is weighted by its posterior:
    ``probs`` is the posterior mean of ``softmax(z / T)``, ``q`` the posterior mean accuracy
    and ``T`` the posterior geometric mean temperature (for the pool's probabilities).
    Rows whose label the fold model never saw (logit -inf) are left out and become uniform.
    """
    n, k = logits.shape
    qs = 1.0 / k + (1.0 - 1.0 / k) * ACCURACY_STEPS
    seen = np.isfinite(logits[np.arange(n), y])
    counts = np.zeros((n, k))
    np.add.at(counts, (answer_item, answer_label), 1.0)
    z, m = logits[seen], counts[seen]
    total = float(m.sum())
    beta = np.log(qs * (k - 1) / (1.0 - qs))  # log P(a = c | c) - log P(a = d | c)
    alpha = np.log((1.0 - qs) / (k - 1))
    logpost = np.empty((TEMPERATURES.size, qs.size))
    logpost[:] = total * alpha + strength * (prior * np.log(qs) + (1 - prior) * np.log(1 - qs))
    # sum_c p_c exp(beta m_c) = 1 + sum over the answered classes of p_c expm1(beta m_c):
    # only the (item, class) cells with answers enter, so a step costs O(answers), not O(n K)
    rows, cols = np.nonzero(m)  # row-major: each seen item has at least one answer
    starts = np.flatnonzero(np.r_[True, np.diff(rows) != 0])
    grow = np.expm1(beta[:, None] * m[rows, cols][None, :])  # (n_q, cells)
    for a, temp in enumerate(TEMPERATURES):
        if rows.size == 0:
            break
        zt = z / temp
        top = zt.max(axis=1)
        lse = top + np.log(np.exp(zt - top[:, None]).sum(axis=1))
        p = np.exp(zt[rows, cols] - lse[rows])
        logpost[a] += np.log1p(np.add.reduceat(grow * p[None, :], starts, axis=1)).sum(axis=1)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    w_t, w_q = w.sum(axis=1), w.sum(axis=0)
    probs = np.zeros((n, k))
    for kept in np.flatnonzero(w_t > 1e-6 * w_t.max()):
        probs += w_t[kept] * softmax(logits / TEMPERATURES[kept])
    probs /= w_t[w_t > 1e-6 * w_t.max()].sum()
    probs[~seen] = 1.0 / k
    return probs, float(np.exp(w_t @ np.log(TEMPERATURES))), float(w_q @ qs)


def fit_linear(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    C: float,
    sample_weight: np.ndarray | None = None,
    warm: LinearModel | None = None,
) -> LinearModel:
    """L2 logistic regression (scikit-learn lbfgs), warm-started from ``warm``'s weights."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    coef = np.zeros((n_classes, X.shape[1]))
    intercept = np.full(n_classes, -np.inf)
    if present.size == 1:  # one class seen: it always wins
        intercept[present[0]] = 0.0
        return LinearModel(coef, intercept)
    lr = LogisticRegression(C=C, max_iter=300, tol=1e-4, warm_start=warm is not None)
    if warm is not None:
        b0 = np.where(np.isfinite(warm.intercept[present]), warm.intercept[present], 0.0)
        if present.size > 2:
            lr.coef_, lr.intercept_ = warm.coef[present].copy(), b0
        else:  # sklearn's binary model: one row, class 1 minus class 0
            lr.coef_ = (warm.coef[present[1]] - warm.coef[present[0]])[None, :]
            lr.intercept_ = np.array([b0[1] - b0[0]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny sets: the fit is still used
        lr.fit(np.asarray(X, dtype=np.float64), y, sample_weight=sample_weight)
    if present.size == 2:  # binary: sklearn keeps one row; spread it symmetrically
        w = lr.coef_[0] / 2.0
        b = float(lr.intercept_[0]) / 2.0
        coef[present[0]], coef[present[1]] = -w, w
        intercept[present[0]], intercept[present[1]] = -b, b
    else:
        coef[present] = lr.coef_
        intercept[present] = lr.intercept_
    return LinearModel(coef, intercept)


def fold_ids(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified fold of each labeled item: a seeded shuffle, then round-robin per class."""
    perm = rng.permutation(y.size)
    order = perm[np.argsort(y[perm], kind="stable")]
    folds = np.empty(y.size, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(y[order])) + 1]
    rank = np.arange(y.size) - np.repeat(starts, np.diff(np.r_[starts, y.size]))
    offset = rng.integers(n_folds)
    folds[order] = (rank + offset) % n_folds
    return folds


def _proba_chunk(chunk: Chunk, shared: tuple[np.ndarray, LinearModel]) -> np.ndarray:
    X, model = shared
    out = np.empty((len(chunk), model.coef.shape[0]), dtype=np.float32)
    for s in range(chunk.start, chunk.stop, BLOCK):
        e = min(s + BLOCK, chunk.stop)
        out[s - chunk.start : e - chunk.start] = model.proba(X[s:e])
    return out


def pool_proba(
    X: np.ndarray,
    model: LinearModel,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """``(n_items, n_classes)`` float32 probabilities of the model on every row (or ``rows``)."""
    if rows is not None:
        return model.proba(X[rows]).astype(np.float32)
    size = None if chunk_size is None else max(BLOCK, -(-int(chunk_size) // BLOCK) * BLOCK)
    chunks = chunk_ranges(X.shape[0], size)
    out = np.empty((X.shape[0], model.coef.shape[0]), dtype=np.float32)
    for chunk, p in zip(
        chunks, get_backend(backend).map(_proba_chunk, chunks, (X, model)), strict=True
    ):
        out[chunk.slice] = p
    return out
