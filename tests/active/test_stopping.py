"""The stopping estimate: kappa between successive models on the held-back set, and the gain
of the last ``horizon`` answers as the current model sees it (hand-worked values)."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.active import ActiveLearner
from truelabel.active._stopping import StopTracker, cohen_kappa


def blobs(n_per=40, k=3, sd=0.4, seed=0, dim=4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, dim))
    X = np.concatenate([rng.normal(c, sd, (n_per, dim)) for c in centers])
    y = np.repeat(np.arange(k), n_per)
    return X.astype(np.float32), y


def start(y, per=2, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)]
    )


def test_cohen_kappa_hand_value():
    # observed .75; chance .5 * .25 + .5 * .75 = .5 -> kappa .5
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2) == pytest.approx(0.5)
    assert cohen_kappa(np.array([1, 1]), np.array([1, 1]), 2) == 1.0


def _sure(pred, p=1.0):
    """Probabilities that put ``p`` on each predicted class (two classes)."""
    out = np.full((pred.size, 2), 1.0 - p)
    out[np.arange(pred.size), pred] = p
    return out


def test_stop_tracker_gain_is_the_current_models_view_of_the_last_horizon_answers():
    t = StopTracker(horizon=20, min_gain=0.02, min_agreement=0.9, window=1)
    t.update(10, _sure(np.array([0, 0, 1, 0])))
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]])  # item 1 moves 0 -> 1
    t.update(20, probs)
    est = t.estimate(20)
    # only 10 answers since the first model: (0.6 - 0.4) / 4 items x 20 / 10 = 0.1
    assert est.expected_gain == pytest.approx(0.1)
    assert est.changed == pytest.approx(0.5)  # 1/4 x 20 / 10
    want = cohen_kappa(np.array([0, 0, 1, 0]), np.array([0, 1, 1, 0]), 2)
    assert est.agreement == pytest.approx(want)
    assert "50.0% of them changed, adding ~10.0% accuracy" in est.message
    # 30 answers: the reference is the model of 10 (20 answers back), not the last one
    probs2 = np.array([[0.9, 0.1], [0.3, 0.7], [0.55, 0.45], [0.7, 0.3]])  # [0, 1, 0, 0]
    t.update(30, probs2)
    est = t.estimate(30)
    assert est.expected_gain == pytest.approx(((0.7 - 0.3) + (0.55 - 0.45)) / 4)
    assert est.changed == pytest.approx(0.5)
    assert est.agreement == pytest.approx(
        cohen_kappa(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), 2)
    )
    t.update(30, _sure(np.array([1, 1, 1, 1])))  # no new answers: ignored
    assert len(t.history) == 2
    t.update(40, probs2)  # reference: the model of 20; the model of 10 is dropped
    assert [n for n, _ in t._models] == [20, 30, 40]
    assert t.estimate(40).expected_gain == pytest.approx((0.55 - 0.45) / 4)


def test_stop_tracker_fires_only_when_stable_and_the_gain_is_small():
    base = np.array([0] * 50 + [1] * 50)
    flip = base.copy()
    flip[:10] = 1
    t = StopTracker(horizon=20, min_gain=0.02, min_agreement=0.9, window=3)
    assert np.isnan(t.estimate(10).expected_gain)
    t.update(10, _sure(base))
    t.update(20, _sure(flip))  # 10% moved, each now sure: 0.1 x 20 / 10 = 0.2
    est = t.estimate(20)
    assert est.expected_gain == pytest.approx(0.2) and not est.should_stop
    for n in (30, 40, 50):
        t.update(n, _sure(flip))  # nothing changes any more
    est = t.estimate(50)
    assert est.agreement == 1.0 and est.expected_gain == 0.0 and est.should_stop
    assert "not worth it" in est.message

    def run(min_agreement, coin_flips):
        tr = StopTracker(horizon=100, min_gain=0.02, min_agreement=min_agreement, window=3)
        for n in (10, 20, 30, 40):
            pred = base.copy()
            pred[n : n + 2] = 1 - pred[n : n + 2]  # 2 to 4 of 100 predictions change per refit
            probs = _sure(pred)
            if coin_flips:  # every item that ever moved is a coin flip for the model
                probs[10 : n + 2] = 0.5 + 1e-9 * (pred[10 : n + 2, None] == [0, 1])
            tr.update(n, probs)
        return tr.estimate(40)

    est = run(0.5, coin_flips=False)  # stable by kappa, but still gaining: no stop
    assert est.agreement >= 0.5 and est.expected_gain > 0.02 and not est.should_stop
    est = run(0.5, coin_flips=True)  # the same changes, worth nothing: stop
    assert est.expected_gain < 1e-6 and est.changed > 0.02 and est.should_stop
    est = run(0.99, coin_flips=True)  # worth nothing, but not yet stable: no stop
    assert est.agreement < 0.99 and est.expected_gain < 0.02 and not est.should_stop
    t2 = StopTracker(horizon=100, min_gain=0.02, min_agreement=0.9, window=3)
    t2.update(10, _sure(base))
    t2.update(20, _sure(base))
    t2.update(30, _sure(base))
    assert not t2.estimate(30).should_stop  # only two refits compared: window not full


def test_stop_estimate_fires_on_a_solved_problem_not_on_a_hard_one():
    X, y = blobs(n_per=100, k=2, sd=0.3, seed=5)
    al = ActiveLearner(X, random_state=0, allow_relabel=False).teach(start(y, 5), y[start(y, 5)])
    for _ in range(4):
        s = al.suggest(10)
        al.teach(s.item_id, y[s.item_id])
    assert al.stop_estimate_.should_stop
    rng = np.random.default_rng(1)
    Xh = rng.normal(size=(300, 6))
    yh = ((Xh[:, 0] * Xh[:, 1] > 0) ^ (Xh[:, 2] > 0)).astype(int)  # no linear rule
    hard = ActiveLearner(Xh, random_state=0, allow_relabel=False).teach(
        start(yh, 5), yh[start(yh, 5)]
    )
    for _ in range(4):
        s = hard.suggest(10)
        hard.teach(s.item_id, yh[s.item_id])
    est = hard.stop_estimate_
    assert not est.should_stop and est.expected_gain > 0.01 and est.agreement < 0.98


def test_the_stop_estimate_reads_the_held_back_set_at_the_calibrated_temperature():
    from truelabel.active._learner import _tempered

    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (150, 4)), rng.normal(1.2, 1, (150, 4))]
    y = np.repeat([0, 1], 150)
    al = ActiveLearner(X, random_state=0, holdout_size=200, allow_relabel=False)
    first = np.r_[0, 1, 2, 150, 151, 152]
    al.teach(first, y[first])
    fit0 = al._refit()
    before = np.argmax(fit0.pool_probs[al._holdout], axis=1)
    s = al.suggest(10)
    al.teach(s.item_id, y[s.item_id])
    fit1 = al._refit()
    assert fit1.temperature != 1.0
    p = _tempered(fit1.pool_probs[al._holdout], fit1.temperature)
    after = p.argmax(axis=1)
    assert (after != before).any()
    rows = np.arange(after.size)
    want = np.mean(p[rows, after] - p[rows, before]) * 100 / 10  # 10 answers, horizon 100
    assert want < 1.0
    assert al._stop.history[-1][2] == pytest.approx(want, rel=1e-12)
    # _tempered is softmax(log p / T), by hand on one row
    row = np.array([[0.2, 0.8]])
    e = row ** (1 / 0.5)
    np.testing.assert_allclose(_tempered(row, 0.5), e / e.sum())


def test_cohen_kappa_edges():
    empty = np.array([], dtype=np.int64)
    assert cohen_kappa(empty, empty, 2) == 1.0
    # a never predicts class 1: observed .5, chance 1 x .5 + 0 x .5 = .5 -> kappa 0
    assert cohen_kappa(np.array([0, 0]), np.array([0, 1]), 2) == pytest.approx(0.0)
    # both constant, different classes: observed 0, chance 0 -> 0
    assert cohen_kappa(np.array([0, 0]), np.array([1, 1]), 2) == pytest.approx(0.0)


def test_stop_tracker_caps_the_estimates_at_one_and_reads_thresholds_inclusively():
    t = StopTracker(horizon=100, min_gain=0.02, min_agreement=0.9, window=1)
    est = t.estimate(10)
    assert est.should_stop is False and np.isnan(est.agreement) and np.isnan(est.changed)
    t.update(10, _sure(np.array([0, 0, 1, 0])))
    t.update(20, _sure(np.array([1, 0, 1, 0])))  # 1/4 sure over 10 answers: 2.5 per 100
    est = t.estimate(20)
    assert est.expected_gain == 1.0 and est.changed == 1.0
    assert t.history[-1][2:] == (1.0, 1.0)
    # kappa exactly at min_agreement counts as stable; a gain exactly at min_gain does not stop
    same = _sure(np.array([0, 1, 1, 0]))
    at = StopTracker(horizon=20, min_gain=0.02, min_agreement=1.0, window=2)
    for n in (10, 20, 30):
        at.update(n, same)
    est = at.estimate(30)
    assert est.agreement == 1.0 and est.should_stop
    assert "(at least 1.0 over the last 2 refits: yes)" in est.message
    zero = StopTracker(horizon=20, min_gain=0.0, min_agreement=0.5, window=2)
    for n in (10, 20, 30):
        zero.update(n, same)
    est = zero.estimate(30)
    assert est.expected_gain == 0.0 and not est.should_stop
    assert "not below 0.0%" in est.message and "may still pay" in est.message


def test_stop_estimate_fields_and_message_words():
    assert cohen_kappa(np.array([0, 1]), np.array([0, 0]), 2) == pytest.approx(0.0)  # b lacks 1
    t = StopTracker(horizon=20, min_gain=0.02, min_agreement=0.9, window=2)
    est = t.estimate(7)
    assert est.n_answers == 7 and est.message.startswith("not enough refits yet: the estimate")
    same = _sure(np.array([0, 1, 1, 0]))
    t.update(10, same)
    t.update(20, same)
    est = t.estimate(20)  # one comparison, window 2: not stable yet
    assert est.n_answers == 20 and not est.should_stop
    assert "refits: no)" in est.message and "(below 2.0%)" in est.message
    assert est.message.endswith("labeling more may still pay")
    t.update(30, same)
    est = t.estimate(30)
    assert est.should_stop and est.message.endswith("labeling more is not worth it")
