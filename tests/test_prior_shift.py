"""Prior-shift EM (Saerens, Latinne & Decaestecker 2002): exact oracles and a simulated shift."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import LocalBackend, TruelabelWarning, ValidationError
from truelabel.model import adjust_to_pool_priors


def naive_em(p: np.ndarray, train: np.ndarray, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Item-by-item EM, the reference for the vectorized version."""
    priors = train.copy()
    n, k = p.shape
    for _ in range(n_iter):
        post = np.zeros((n, k))
        for i in range(n):
            num = [priors[j] / train[j] * p[i, j] for j in range(k)]
            post[i] = np.array(num) / sum(num)
        priors = post.mean(axis=0)
    post = np.zeros((n, k))
    for i in range(n):
        num = [priors[j] / train[j] * p[i, j] for j in range(k)]
        post[i] = np.array(num) / sum(num)
    return post, priors


def test_closed_form_two_class_oracle():
    # six items at p(1|x)=0.1, four at 0.8, uniform training priors: the likelihood
    # equation n_a u (1-b+pi v) + n_b v (1-a+pi u) = 0 gives pool prior 0.75 for class 0
    p = np.array([[0.9, 0.1]] * 6 + [[0.2, 0.8]] * 4)
    res = adjust_to_pool_priors(p, [0.5, 0.5], tol=1e-13, min_items_per_class=1)
    assert res.converged
    np.testing.assert_allclose(res.priors, [0.75, 0.25], atol=1e-10)
    np.testing.assert_allclose(res.pred_probs[0], [0.675 / 0.7, 0.025 / 0.7], atol=1e-10)
    np.testing.assert_allclose(res.pred_probs[-1], [0.15 / 0.35, 0.2 / 0.35], atol=1e-10)
    # the fixed point: priors are the mean adjusted posterior
    np.testing.assert_allclose(res.pred_probs.mean(axis=0), res.priors, atol=1e-10)
    # log-likelihood ratio against the training priors, by hand
    z = np.r_[[0.75 / 0.5 * 0.9 + 0.25 / 0.5 * 0.1] * 6, [0.75 / 0.5 * 0.2 + 0.25 / 0.5 * 0.8] * 4]
    assert res.log_likelihood == pytest.approx(np.log(z).mean(), abs=1e-9)


def test_matches_naive_loop_with_unequal_training_priors():
    rng = np.random.default_rng(3)
    p = rng.dirichlet([1.0, 2.0, 0.5], size=40)
    train = np.array([0.5, 0.3, 0.2])
    with pytest.warns(TruelabelWarning, match="did not converge in 7 iterations"):
        res = adjust_to_pool_priors(p, train, max_iter=7, tol=1e-300, min_items_per_class=1)
    post, priors = naive_em(p, train, 7)
    assert res.n_iter == 7
    np.testing.assert_allclose(res.priors, priors, rtol=1e-12)
    np.testing.assert_allclose(res.pred_probs, post, rtol=1e-12)


def _gaussian_pool(priors, n, rng):
    """Three 1-D Gaussian classes; exact posteriors under uniform training priors."""
    means = np.array([-2.0, 0.0, 2.0])
    y = rng.choice(3, size=n, p=priors)
    x = rng.normal(means[y], 1.0)
    dens = np.exp(-0.5 * (x[:, None] - means[None, :]) ** 2)
    return dens / dens.sum(axis=1, keepdims=True), y


def test_simulated_shift_recovers_true_priors():
    rng = np.random.default_rng(0)
    true = np.array([0.6, 0.3, 0.1])
    p, y = _gaussian_pool(true, 20_000, rng)
    res = adjust_to_pool_priors(p, np.full(3, 1 / 3))
    assert res.converged
    assert np.abs(res.priors - true).max() < 0.02
    # the bite: the unadjusted mean (what one EM step or no EM gives) is far off
    assert np.abs(p.mean(axis=0) - true).max() > 0.06
    # adjusted posteriors are better than the originals on the shifted pool
    rows = np.arange(y.size)
    assert -np.log(res.pred_probs[rows, y]).mean() < -np.log(p[rows, y]).mean() - 0.02
    assert (res.pred_probs.argmax(1) == y).mean() > (p.argmax(1) == y).mean()


def test_no_shift_keeps_priors():
    rng = np.random.default_rng(1)
    p, _ = _gaussian_pool(np.full(3, 1 / 3), 20_000, rng)
    res = adjust_to_pool_priors(p, np.full(3, 1 / 3))
    assert np.abs(res.priors - 1 / 3).max() < 0.02
    assert 0 <= res.log_likelihood < 1e-3


def test_identical_for_any_backend_and_chunk_size():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4), size=501)
    train = np.array([0.1, 0.2, 0.3, 0.4])
    ref = adjust_to_pool_priors(p, train, backend=LocalBackend(1))
    for be, cs in ((LocalBackend(2), None), (LocalBackend(1), 7), (LocalBackend(2), 64)):
        got = adjust_to_pool_priors(p, train, backend=be, chunk_size=cs)
        assert np.array_equal(got.pred_probs, ref.pred_probs)
        assert np.array_equal(got.priors, ref.priors)
        assert got.log_likelihood == ref.log_likelihood and got.n_iter == ref.n_iter


def test_warns_on_small_pool_and_on_no_convergence():
    p = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    with pytest.warns(TruelabelWarning, match="3 items for 2 classes"):
        adjust_to_pool_priors(p, [0.5, 0.5])
    rng = np.random.default_rng(0)
    big, _ = _gaussian_pool([0.6, 0.3, 0.1], 3000, rng)
    with pytest.warns(TruelabelWarning, match="did not converge in 2 iterations"):
        res = adjust_to_pool_priors(big, np.full(3, 1 / 3), max_iter=2)
    assert not res.converged and res.n_iter == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_priors": [0.5, 0.5, 0.0]}, "train_priors: class 2 has prior 0.0"),
        ({"train_priors": [0.5, 0.5]}, r"train_priors: expected shape \(3,\)"),
        ({"train_priors": [0.5, 0.4, 0.3]}, "train_priors: sums to 1.2"),
        ({"max_iter": 0}, "max_iter: got 0"),
        ({"tol": -1.0}, "tol: got -1.0"),
    ],
)
def test_bad_inputs(kwargs, match):
    p = np.full((30, 3), 1 / 3)
    args = {"train_priors": [1 / 3] * 3, **kwargs}
    with pytest.raises(ValidationError, match=match):
        adjust_to_pool_priors(p, **args)


def test_bad_pred_probs():
    with pytest.raises(ValidationError, match="pred_probs: rows must sum to 1"):
        adjust_to_pool_priors(np.array([[0.5, 0.6]] * 30), [0.5, 0.5])
