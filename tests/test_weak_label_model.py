"""The label model: EM against a naive loop, duplicated LFs, abstain handling, chunking."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from truelabel import LocalBackend
from truelabel.exceptions import NotFittedError, TruelabelWarning, ValidationError
from truelabel.weak import LabelModel, vote_em
from truelabel.weak._em import e_step


def _naive_em(L, k, weights, n_iter, smoothing=1.0, model_abstain=True):
    """Dawid-Skene with abstain as outcome k, written item by item."""
    n, m = L.shape
    post = np.zeros((n, k))
    for i in range(n):  # weighted majority vote start
        share = np.zeros(k)
        for j in range(m):
            if L[i, j] >= 0:
                share[L[i, j]] += weights[j]
        post[i] = share / share.sum() if share.sum() > 0 else np.full(k, 1 / k)
    for _ in range(n_iter + 1):
        theta = np.full((m, k, k + 1), smoothing)
        prior = np.full(k, smoothing)
        for i in range(n):
            prior += post[i]
            for j in range(m):
                v = L[i, j] if L[i, j] >= 0 else k
                theta[j, :, v] += post[i]
        theta /= theta.sum(axis=2, keepdims=True)
        prior /= prior.sum()
        for i in range(n):
            lj = np.log(prior).copy()
            for j in range(m):
                if L[i, j] >= 0:
                    lj += weights[j] * np.log(theta[j, :, L[i, j]])
                elif model_abstain:
                    lj += weights[j] * np.log(theta[j, :, k])
            post[i] = np.exp(lj - lj.max()) / np.exp(lj - lj.max()).sum()
    return post, theta, prior


def L6_like():
    return np.array([[0, 0, -1], [1, 1, 1], [0, -1, 0], [1, 1, -1], [0, 0, 0], [1, -1, 1]])


def _synthetic(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)

    def lf(acc, cov):
        v = np.where(rng.random(n) < acc, y, 1 - y)
        return np.where(rng.random(n) < cov, v, -1)

    good = [lf(0.8, 0.6) for _ in range(3)]
    bad = lf(0.6, 0.9)
    return y, np.column_stack(good), bad


def test_em_equals_a_naive_item_loop():
    rng = np.random.default_rng(1)
    L = rng.integers(-1, 3, size=(40, 4))
    w = np.array([1.0, 0.5, 0.5, 2.0])
    res = vote_em(L, 3, weights=w, max_iter=5, tol=0.0)
    post, theta, prior = _naive_em(L, 3, w, n_iter=5)
    # vote_em runs aggregate's EM core, whose M-step statistics are fixed point (posteriors
    # rounded to 2**-26 so that any chunking sums to the same bits): equal to rtol 1e-7
    # (assert_allclose's default rtol), not to the last bit.
    assert res.n_iter == 5 and not res.converged
    np.testing.assert_allclose(res.confusions, theta, atol=1e-12)
    np.testing.assert_allclose(res.class_prior, prior, atol=1e-12)
    np.testing.assert_allclose(res.posteriors, post, atol=1e-12)
    res = vote_em(L, 3, weights=w, max_iter=5, tol=0.0, model_abstain=False)
    post, theta, prior = _naive_em(L, 3, w, n_iter=5, model_abstain=False)
    np.testing.assert_allclose(res.confusions, theta, atol=1e-12)
    np.testing.assert_allclose(res.posteriors, post, atol=1e-12)


def test_abstain_everywhere_rows():
    L = np.array([[0, 0], [1, 1], [0, -1], [1, 1], [-1, -1], [0, 0]])
    off = LabelModel(model_abstain=False, max_iter=5000).fit(L)  # 398 iterations
    np.testing.assert_allclose(off.predict_proba(L)[4], off.class_prior_, atol=1e-15)
    np.testing.assert_allclose(off.confusions_.sum(axis=2), 1.0)
    on = LabelModel().fit(L)
    pi, th = on.class_prior_, on.confusions_
    expected = pi * th[0, :, 2] * th[1, :, 2]  # P(y) prod_j P(abstain_j | y)
    np.testing.assert_allclose(on.predict_proba(L)[4], expected / expected.sum(), atol=1e-12)
    assert abs(on.predict_proba(L)[4] - off.predict_proba(L)[4]).max() > 0.01


def test_duplicated_lfs_fool_independence_not_the_model():
    y, good, bad = _synthetic()
    L = np.column_stack([good] + [bad] * 6)
    independent = LabelModel(dependency_threshold=None).fit(L)
    ours = LabelModel().fit(L)
    acc_ind = (independent.predict(L) == y).mean()
    acc_ours = (ours.predict(L) == y).mean()
    assert acc_ind < 0.65 < 0.8 < acc_ours
    np.testing.assert_allclose(ours.lf_weights_, [1, 1, 1] + [1 / 6] * 6)
    assert ours.dependence_[3:, 3:][~np.eye(6, dtype=bool)].min() == pytest.approx(1.0)
    assert ours.dependence_[:3, :3].max() < 0.1
    # weights 1/6 on six exact copies = one copy: same posteriors as the deduplicated fit
    dedup = LabelModel().fit(np.column_stack([good, bad]))
    np.testing.assert_allclose(
        ours.predict_proba(L), dedup.predict_proba(np.column_stack([good, bad])), atol=1e-10
    )
    # the estimated accuracies match the simulated ones
    np.testing.assert_allclose(dedup.lf_accuracy_, [0.8, 0.8, 0.8, 0.6], atol=0.03)


def test_threshold_decides_which_pairs_count():
    y, good, bad = _synthetic(seed=2)
    rng = np.random.default_rng(5)
    near = np.where(rng.random(bad.shape[0]) < 0.1, -1, bad)  # a near copy (90% the same)
    L = np.column_stack([good, bad, near])
    lm = LabelModel().fit(L)
    d = lm.dependence_[3, 4]
    assert 0.5 < d < 1.0
    np.testing.assert_allclose(lm.lf_weights_[3:], 1 / (1 + d))
    loose = LabelModel(dependency_threshold=min(1.0, d + 0.01)).fit(L)
    np.testing.assert_array_equal(loose.lf_weights_, np.ones(5))


def test_identical_for_any_backend_and_chunking():
    y, good, bad = _synthetic(n=10_000, seed=3)
    L = np.column_stack([good, bad, bad])
    ref = LabelModel(backend=LocalBackend(1)).fit(L)
    p_ref = ref.predict_proba(L)
    for backend, size in (
        (LocalBackend(2), 4096),
        (LocalBackend(2), 3000),
        (LocalBackend(1), 8192),
    ):
        lm = LabelModel(backend=backend, chunk_size=size).fit(L)
        np.testing.assert_array_equal(lm.confusions_, ref.confusions_)
        np.testing.assert_array_equal(lm.predict_proba(L), p_ref)
    assert ref.n_iter_ == lm.n_iter_


def test_random_restarts_are_seeded_and_keep_the_best_start():
    y, good, bad = _synthetic(n=600, seed=4)
    L = np.column_stack([good, bad])
    a = vote_em(L, 2, n_init=4, random_state=7)
    b = vote_em(L, 2, n_init=4, random_state=7)
    one = vote_em(L, 2, n_init=1)
    np.testing.assert_array_equal(a.posteriors, b.posteriors)
    assert a.log_likelihood >= one.log_likelihood - 1e-9
    # unconverged random starts end at different likelihoods; the best one is returned
    short = vote_em(L, 2, n_init=5, max_iter=1, tol=0.0, random_state=1)
    lls = short.start_log_likelihoods
    assert len(lls) == 5 and len(set(np.round(lls, 6))) == 5
    assert short.log_likelihood == pytest.approx(max(lls), abs=1e-9)
    assert one.start_log_likelihoods == (one.log_likelihood,)


def test_e_step_matches_hand_computation():
    conf = np.array([[[0.6, 0.1, 0.3], [0.2, 0.5, 0.3]]])  # one LF, K=2
    prior = np.array([0.25, 0.75])
    post, ll = e_step(np.array([[0], [1], [-1]]), conf, prior, np.ones(1))
    joint = np.array([[0.25 * 0.6, 0.75 * 0.2], [0.25 * 0.1, 0.75 * 0.5], [0.25 * 0.3, 0.75 * 0.3]])
    np.testing.assert_allclose(post, joint / joint.sum(axis=1, keepdims=True))
    assert ll == pytest.approx(np.log(joint.sum(axis=1)).sum())


def test_estimator_contract_and_errors():
    L = np.array([[0, 0], [1, 1], [0, -1]])
    lm = LabelModel()
    with pytest.raises(NotFittedError, match="call fit"):
        lm.predict(L)
    assert lm.fit(L) is lm
    assert lm.get_params()["dependency_threshold"] == 0.5
    assert np.array_equal(pickle.loads(pickle.dumps(lm)).predict_proba(L), lm.predict_proba(L))
    with pytest.raises(ValidationError, match="L: has 3 LF columns, the model was fitted on 2"):
        lm.predict(np.zeros((2, 3), dtype=int))
    with pytest.raises(
        ValidationError, match=r"L: vote 2 at \(0, 1\) is outside the class range \[-1, 2\)"
    ):
        lm.predict(np.array([[0, 2]]))
    with pytest.raises(
        ValidationError, match=r"L: vote 3 at \(1, 0\) is outside the class range \[-1, 3\)"
    ):
        LabelModel(n_classes=3).fit(np.array([[0, 1], [3, 1]]))
    with pytest.raises(ValidationError, match="dependency_threshold: got 1.5"):
        LabelModel(dependency_threshold=1.5).fit(L)
    with pytest.raises(ValidationError, match="smoothing: got 0"):
        LabelModel(smoothing=0).fit(L)
    with pytest.warns(TruelabelWarning, match="EM did not converge in max_iter=1 iterations"):
        assert not LabelModel(max_iter=1, dependency_threshold=None).fit(L6_like()).converged_
    with pytest.raises(ValidationError, match="n_classes: got 1"):
        LabelModel(n_classes=1).fit(L)
