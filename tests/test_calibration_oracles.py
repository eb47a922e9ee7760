"""calibrate_pred_probs against naive oracles, for every method, backend and chunk size."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.backend import LocalBackend
from truelabel.detect import calibrate_pred_probs


@pytest.fixture(scope="module")
def skewed():
    """Labels drawn from softmax(z); pred_probs = softmax(z * s): class 0 three times too
    sharp, class 2 half as sharp, so one temperature cannot fix every class."""
    rng = np.random.default_rng(11)
    n, k = 1500, 3
    z = rng.normal(size=(n, k)) * 1.5
    true_p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = (rng.random(n)[:, None] > np.cumsum(true_p, axis=1)).sum(axis=1)
    zs = z * np.array([3.0, 1.0, 0.5])
    p = np.exp(zs) / np.exp(zs).sum(axis=1, keepdims=True)
    return labels, p


def _nll(labels, q):
    return -np.mean(np.log(q[np.arange(labels.size), labels] + 1e-12))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_prior_equals_the_formula_by_hand():
    p = np.array([[0.8, 0.2], [0.6, 0.4], [0.7, 0.3], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 1])  # ps = (0.25, 0.75); mean p = (0.65, 0.35)
    w = np.array([0.25 / 0.65, 0.75 / 0.35])
    want = p * w / (p * w).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(calibrate_pred_probs(labels, p, method="prior"), want)


def test_temperature_is_the_grid_minimum_of_the_log_loss(skewed):
    labels, p = skewed
    logp = np.log(p)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 4001))
    losses = [_nll(labels, _softmax(logp / t)) for t in grid]
    t_best = grid[int(np.argmin(losses))]
    q = calibrate_pred_probs(labels, p, method="temperature")
    # recover T from the output: log q_1 - log q_0 = (log p_1 - log p_0) / T
    t_got = np.median((logp[:, 1] - logp[:, 0]) / (np.log(q[:, 1]) - np.log(q[:, 0])))
    assert t_got == pytest.approx(t_best, rel=2e-3)
    np.testing.assert_allclose(q, _softmax(logp / t_got), atol=1e-6)
    assert _nll(labels, q) < _nll(labels, p) - 0.01  # a real improvement, not the input


def test_class_temperature_equals_a_direct_fit_of_the_same_objective(skewed):
    from scipy.optimize import minimize

    labels, p = skewed
    logp = np.log(p)

    def loss(x):
        return _nll(labels, _softmax(logp * np.exp(x)[None, :]))

    res = minimize(loss, np.zeros(3), method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12})
    want = _softmax(logp * np.exp(res.x)[None, :])
    q = calibrate_pred_probs(labels, p, method="class_temperature")
    np.testing.assert_allclose(q, want, atol=2e-3)
    assert _nll(labels, q) < _nll(labels, p) - 0.02  # a real improvement, not the input
    assert np.abs(q - p).max() > 0.05


@pytest.mark.parametrize("method", ["temperature", "class_temperature", "prior"])
@pytest.mark.parametrize("backend,chunk_size", [(LocalBackend(2), 7), (LocalBackend(1), 500)])
def test_same_result_for_every_backend_and_chunk_size(skewed, method, backend, chunk_size):
    labels, p = skewed
    ref = calibrate_pred_probs(labels, p, method=method)
    got = calibrate_pred_probs(labels, p, method=method, backend=backend, chunk_size=chunk_size)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
