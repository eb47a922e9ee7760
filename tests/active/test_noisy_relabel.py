"""The noisy-annotator policy: calibration through the annotators' noise, the posterior over
(temperature, accuracy), one currency for re-labels and new items, ties to the out-of-fold model.
Each against a naive loop or a hand-worked value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.active import ActiveLearner
from truelabel.active._model import ACCURACY_STEPS, TEMPERATURES, calibrate, calibrate_noisy
from truelabel.active._relabel import consensus_loglik, new_item_gain, relabel_gain
from truelabel.active._state import Refit


def _softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def _case(seed=0, n=9, k=3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, k))
    logits[0, 1] = -np.inf  # a class fold 0 never saw
    item = np.r_[np.arange(n), [2, 2, 5]]
    label = rng.integers(0, k, item.size)
    label[0] = 1  # item 0's answer is the class its model never saw: left out, uniform
    y = np.array([np.bincount(label[item == i], minlength=k).argmax() for i in range(n)])
    return logits, y, item, label


def test_calibrate_through_noise_maximises_the_answers_marginal_likelihood():
    logits, y, item, label = _case()
    q = np.where(np.arange(item.size) % 2 == 0, 0.7, 0.9)
    ll = consensus_loglik(item, label, q, logits.shape[0], 3)
    best, best_t = -np.inf, None
    for t in TEMPERATURES:
        total = 0.0
        for i in range(1, logits.shape[0]):  # row 0 left out
            total += np.log((_softmax(logits[i] / t) * np.exp(ll[i])).sum())
        if total > best + 1e-12:
            best, best_t = total, t
    probs, temp = calibrate(logits, y, ll)
    assert temp == best_t
    np.testing.assert_allclose(probs[0], 1 / 3)
    np.testing.assert_allclose(probs[4], _softmax(logits[4] / best_t))
    # without the likelihood: the plain log loss on y (a different temperature here)
    assert calibrate(logits, y)[1] != temp


def test_calibrate_noisy_is_the_posterior_average_over_the_grid():
    logits, y, item, label = _case(seed=1)
    n, k = logits.shape
    qs = 1 / k + (1 - 1 / k) * ACCURACY_STEPS
    prior, strength = 0.85, 10.0
    logpost = np.zeros((TEMPERATURES.size, qs.size))
    for a, t in enumerate(TEMPERATURES):
        for b, q in enumerate(qs):
            lp = strength * (prior * np.log(q) + (1 - prior) * np.log(1 - q))
            for i in range(1, n):
                lik = np.ones(k)
                for ans in label[item == i]:
                    lik *= np.where(np.arange(k) == ans, q, (1 - q) / (k - 1))
                lp += np.log((_softmax(logits[i] / t) * lik).sum())
            logpost[a, b] = lp
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    want_probs = sum(w[a].sum() * np.array([_softmax(r / t) for r in logits])
                     for a, t in enumerate(TEMPERATURES))  # fmt: skip
    want_probs[0] = 1 / k
    probs, temp, q = calibrate_noisy(logits, y, item, label, prior=prior, strength=strength)
    assert q == pytest.approx((w.sum(axis=0) * qs).sum(), rel=1e-9)
    assert temp == pytest.approx(np.exp((w.sum(axis=1) * np.log(TEMPERATURES)).sum()), rel=1e-9)
    np.testing.assert_allclose(probs, want_probs, atol=1e-6)
    # the prior counts: a stronger prior at 0.99 pulls the accuracy up
    assert calibrate_noisy(logits, y, item, label, prior=0.99, strength=1000.0)[2] > q + 0.05


def test_calibrate_noisy_recovers_the_annotator_accuracy_from_single_answers():
    # a confident, right model; answers flipped to another class 20% of the time
    rng = np.random.default_rng(0)
    n, k = 3000, 3
    truth = rng.integers(0, k, n)
    logits = np.where(np.arange(k) == truth[:, None], 4.0, 0.0) + rng.normal(0, 0.5, (n, k))
    flip = rng.random(n) < 0.2
    answers = np.where(flip, (truth + rng.integers(1, k, n)) % k, truth)
    _, _, q = calibrate_noisy(logits, answers, np.arange(n), answers, prior=0.95, strength=10.0)
    assert q == pytest.approx(0.8, abs=0.02)
    clean = calibrate_noisy(logits, truth, np.arange(n), truth, prior=0.8, strength=10.0)[2]
    assert clean > 0.97


def test_new_item_gain_hand_values():
    probs = np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]])
    np.testing.assert_allclose(new_item_gain(probs, 1.0, 0.8), [0.3, -0.1])
    # T = 2 softens: sqrt-probabilities renormalised
    s = np.sqrt(probs[0])
    assert new_item_gain(probs, 2.0, 0.8)[0] == pytest.approx(0.8 - s[0] / s.sum())


def _learner_with_fit():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [5, 5], [5, 6], [6, 5], [6, 6.0]])
    al = ActiveLearner(X, random_state=0, holdout_size=4)
    al.teach([0, 1, 2, 3], [0, 0, 1, 1])
    fit = al._refit()
    st = fit.state
    fit.oof_probs = np.array([[0.05, 0.95], [0.6, 0.4], [0.7, 0.3], [0.3, 0.7]])
    fit.pool_probs = np.array(
        [[0.5, 0.5]] * 4 + [[0.5, 0.5], [0.7, 0.3], [0.9, 0.1], [0.99, 0.01]], dtype=np.float32
    )
    fit.temperature = 1.0
    st.accuracy = pd.Series([0.8], index=st.accuracy.index, name="accuracy")
    st.answer_q = np.full(4, 0.8)
    return al, fit


def test_relabels_enter_the_batch_only_by_beating_the_new_item_they_displace():
    al, fit = _learner_with_fit()
    ll = consensus_loglik(np.arange(4), np.array([0, 0, 1, 1]), np.full(4, 0.8), 4, 2)
    gain = relabel_gain(ll, fit.oof_probs, 0.8)
    new = np.sort(0.8 - fit.pool_probs[4:].max(axis=1))[::-1]  # .3, .1, -.1, -.19
    # item 0: the model gives its label 0.05 -> gain q - pi = 0.8 - 0.04 / 0.23
    assert gain[0] == pytest.approx(0.8 - 0.04 / 0.23)
    # items 1, 3: the model agrees with the label (a tie would keep it): no gain
    assert gain[1] == pytest.approx(0.0, abs=1e-12) and gain[3] == pytest.approx(0.0, abs=1e-12)
    assert gain[2] == pytest.approx(0.8 - 0.24 / 0.38)  # 0.17: beats only the 3rd new item
    for n in (1, 2, 3, 4):
        got = al._relabels(fit, n, must=0)
        # naive: merge both lists, keep the n best, re-labels win ties only if strictly better
        pool = sorted([(g, 1, i) for i, g in enumerate(gain) if g > 0]
                      + [(v, 2, None) for v in new], key=lambda t: (-t[0], -t[1]))  # fmt: skip
        want = [i for g, kind, i in pool[:n] if kind == 1]
        assert got.item_id.tolist() == want, n
        assert (got.action == "relabel").all()
        np.testing.assert_allclose(got.score, np.clip(gain[want], 0, 1))
    assert al._relabels(fit, 1, must=0).item_id.tolist() == [0]
    assert al._relabels(fit, 2, must=3).item_id.tolist()[:1] == [0]
    assert len(al._relabels(fit, 3, must=3)) == 3  # forced: the n best by gain


def test_relabel_reason_names_the_label_the_model_and_the_gain():
    al, fit = _learner_with_fit()
    got = al._relabels(fit, 2, must=0)
    assert got.reason.iloc[0] == (
        "label 0 doubtful: 1 answer(s), the model (not trained on it) gives it 0.05; one more "
        "answer is expected to raise P(label right) by 0.63, more than a new item's answer would"
    )


def test_costs_enter_both_sides_of_the_comparison():
    al, fit = _learner_with_fit()
    base = al._relabels(fit, 3, must=0).item_id.tolist()
    assert base == [0, 2] and al._relabels(fit, 1, must=0).item_id.tolist() == [0]
    al._item_costs = np.ones(8)
    al._item_costs[0] = 3.0  # re-asking item 0 costs 3 answers: 0.63 / 3 < 0.3 (new item 4)
    assert al._relabels(fit, 1, must=0).empty
    assert al._relabels(fit, 3, must=0).item_id.tolist() == [0, 2]  # still > -0.1 (item 6)
    al._item_costs = np.ones(8)
    al._item_costs[5] = 0.1  # item 5's answer now worth 0.1 / 0.1 = 1 per unit of cost
    assert al._relabels(fit, 1, must=0).empty
    assert al._relabels(fit, 2, must=0).item_id.tolist() == [0]
    al._item_costs = np.ones(8)
    al._annotator_costs = {"a": 3.0, "b": 1.0}  # both sides priced with the mean: no change
    assert al._relabels(fit, 3, must=0).item_id.tolist() == base


def test_ties_go_to_the_out_of_fold_model_for_taught_items():
    from truelabel.active._learner import _tie_probs

    al, fit = _learner_with_fit()
    tie = _tie_probs(fit)
    np.testing.assert_allclose(tie[:4], fit.oof_probs)
    np.testing.assert_allclose(tie[4:], fit.pool_probs[4:])
    # the full model would keep item 0's label 0 (it learned it); the out-of-fold one says 1
    al._fit = None
    al._last_fit = fit
    fit.pool_probs[0] = [0.9, 0.1]
    al.teach([0], [1])  # one answer each way
    assert al.labels_.loc[0] == 1
    bare = Refit(state=fit.state, classes=fit.classes, pool_probs=fit.pool_probs)
    np.testing.assert_allclose(_tie_probs(bare), bare.pool_probs)  # no folds yet: the pool's


def test_one_shared_accuracy_without_overlap_dawid_skene_with_it():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (40, 3)), rng.normal(5, 1, (40, 3))]
    y = np.repeat([0, 1], 40)
    items = np.r_[0:15, 40:55]
    solo = ActiveLearner(X, random_state=0).teach(items, y[items], ["a"] * 15 + ["b"] * 15)
    acc = solo.annotator_accuracy_
    assert acc.index.tolist() == ["a", "b"] and acc.iloc[0] == acc.iloc[1]
    assert not solo._refit().state.overlap
    both = ActiveLearner(X, random_state=0).teach(items, y[items], "a")
    flipped = y[items].copy()
    flipped[:5] = 1 - flipped[:5]
    both.teach(items, flipped, "b").teach(items, y[items], "c")
    st = both._refit().state
    acc = both.annotator_accuracy_
    assert st.overlap and acc.loc["a"] == acc.loc["c"] > acc.loc["b"]  # Dawid-Skene's skills


def test_learner_measures_the_annotators_accuracy_from_single_answers():
    # two well-separated blobs, every item answered once, a fifth of the answers flipped
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (200, 5)), rng.normal(4, 1, (200, 5))]
    y = np.repeat([0, 1], 200)
    answers = np.where(rng.random(400) < 0.2, 1 - y, y)
    al = ActiveLearner(X, random_state=0, annotator_accuracy=0.95).teach(np.arange(400), answers)
    assert (answers == y).mean() == 0.785
    # the out-of-fold models learned from noisy answers too (a little softer): 0.84, far
    # from the prior's 0.95
    assert al.annotator_accuracy_.iloc[0] == pytest.approx(0.785, abs=0.07)
    clean = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(np.arange(400), y)
    assert clean.annotator_accuracy_.iloc[0] > 0.95


def test_consensus_loglik_floors_the_accuracy_just_above_chance():
    item, label = np.array([0, 0]), np.array([1, 2])
    low = consensus_loglik(item, label, np.array([0.1, 0.2]), 1, 3)
    floor = consensus_loglik(item, label, np.full(2, 1 / 3 + 1e-6), 1, 3)
    np.testing.assert_allclose(low, floor)


def test_relabel_gain_stays_finite_for_an_item_with_thousands_of_answers():
    # 2000 agreeing answers: log-likelihoods near -450, whose exp underflows unless shifted
    ll = consensus_loglik(np.zeros(2000, int), np.zeros(2000, int), np.full(2000, 0.8), 1, 2)
    gain = relabel_gain(ll, np.array([[0.5, 0.5]]), 0.8)
    assert np.isfinite(gain).all() and gain[0] == pytest.approx(0.0, abs=1e-12)


def test_softmax_is_shifted_and_pool_probabilities_are_float32():
    from truelabel.active._model import LinearModel, pool_proba, softmax

    np.testing.assert_allclose(
        softmax(np.array([[400.0, 0.0, -400.0]])), [[1.0, 0.0, 0.0]], atol=1e-150
    )
    model = LinearModel(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))
    p = pool_proba(np.array([[2.0, 0.0], [0.0, 0.0]]), model)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, [[np.exp(2) / (np.exp(2) + 1), 1 / (np.exp(2) + 1)], [0.5, 0.5]],
                               rtol=1e-6)  # fmt: skip
