"""The per-class cap of a batch: twice the fair share, never more than half the batch."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.active._select import class_cap, pick_new


@pytest.mark.parametrize(
    ("m", "k", "cap"),
    [(10, 2, 5), (9, 2, 5), (10, 3, 5), (9, 3, 5), (10, 4, 5), (10, 6, 4), (10, 77, 1), (1, 2, 1)],
)
def test_class_cap_hand_values(m, k, cap):
    # min(ceil(2 m / K), ceil(m / 2)): the half-batch bound binds for K <= 4 only
    assert class_cap(m, k) == cap


def test_a_binary_batch_takes_both_predicted_classes_even_when_one_holds_every_candidate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    predicted = np.r_[np.zeros(30, dtype=np.int64), np.ones(10, dtype=np.int64)]
    value = np.r_[np.linspace(1.0, 0.7, 30), np.linspace(0.5, 0.1, 10)]  # class 0 most uncertain
    pick = pick_new(
        X,
        np.arange(40),
        10,
        value=value,
        typicality=np.ones(40),
        weakness=0.0,  # net = the 20 most uncertain: all predicted 0
        predicted=predicted,
        class_counts=np.array([5, 5]),
        duplicate_cosine=0.99,
        center=X.mean(axis=0),
        rng=np.random.default_rng(1),
        backend=None,
        chunk_size=None,
    )
    assert pick.index.size == 10
    assert np.bincount(predicted[pick.index], minlength=2).tolist() == [5, 5]
    # the five class-1 items are the most uncertain ones beyond the net, in order
    assert sorted(pick.index[predicted[pick.index] == 1].tolist()) == [30, 31, 32, 33, 34]


def test_the_stop_estimate_reads_the_held_back_set_at_the_calibrated_temperature():
    from truelabel.active import ActiveLearner
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
