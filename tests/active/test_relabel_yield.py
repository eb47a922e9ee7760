"""The re-label yield: repeated answers' disagreements observed vs predicted by the policy's own
truth model, and the learner scaling re-label gains by it (a clean annotator stops being
re-asked, a noisy one does not). Hand-worked values, a naive loop, and the labeling loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.active import ActiveLearner
from truelabel.active._relabel import (
    consensus_labels,
    consensus_loglik,
    relabel_gain,
    repeat_yield,
)


def test_repeat_yield_hand_worked():
    # answers in time order, interleaved: item 1 says 1, item 0 says 0, item 1 says 0, ...
    item = np.array([1, 0, 1, 0, 1])
    label = np.array([1, 0, 0, 0, 0])
    probs = np.array([[0.1, 0.9], [0.5, 0.5]])
    observed, expected = repeat_yield(item, label, np.full(5, 0.9), probs)
    # item 0, 2nd answer: label 0 before it; pi(0) = .1 * .9 / (.1 * .9 + .9 * .1) = .5, so it
    # disagrees with probability 1 - (.5 * .9 + .5 * .1) = .5; it agreed.
    # item 1, 2nd answer: label 1 before it, pi(1) = .9: 1 - (.9 * .9 + .1 * .1) = .18;
    # it disagreed (0). 3rd: answers 1, 0 tie -> the model's class 0 (its first on a tie),
    # pi(0) = .5: .5; it agreed.
    assert observed == 1.0
    assert expected == pytest.approx(0.5 + 0.18 + 0.5, abs=1e-12)
    # an item answered once is no repeat; no repeats at all: (0, 0)
    assert repeat_yield(np.array([0, 1]), np.array([1, 0]), np.full(2, 0.9), probs) == (0.0, 0.0)


def test_repeat_yield_matches_a_naive_loop():
    rng = np.random.default_rng(3)
    n, k, m = 7, 3, 30
    item = rng.integers(0, n, m)
    label = rng.integers(0, k, m)
    q = rng.uniform(0.5, 0.95, m)
    probs = rng.dirichlet(np.ones(k), n)
    obs = exp = 0.0
    for i in range(n):
        pos = np.flatnonzero(item == i)
        for j in range(1, pos.size):
            before = pos[:j]
            ll = consensus_loglik(np.zeros(j, int), label[before], q[before], 1, k)
            now = consensus_labels(ll, probs[i : i + 1])[0]
            post = probs[i] * np.exp(ll[0])
            pi = post[now] / post.sum()
            qj = q[pos[j]]
            exp += 1 - pi * qj - (1 - pi) * (1 - qj) / (k - 1)
            obs += float(label[pos[j]] != now)
    got = repeat_yield(item, label, q, probs)
    assert got[0] == obs and got[1] == pytest.approx(exp, rel=1e-12)
    assert obs > 0 and np.bincount(item).max() >= 3  # the case has disagreements and triples


def _learner(repeat_answers):
    """Four items taught 0, 0, 1, 1 (items 1 and 3 asked again with ``repeat_answers``), the
    out-of-fold model contradicting every label, four unlabeled items (one worth 0.3)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [5, 5], [5, 6], [6, 5], [6, 6.0]])
    al = ActiveLearner(X, random_state=0, holdout_size=4)
    al.teach([0, 1, 2, 3], [0, 0, 1, 1]).teach([1, 3], repeat_answers)
    fit = al._refit()
    st = fit.state
    fit.oof_probs = np.array([[0.05, 0.95], [0.1, 0.9], [0.8, 0.2], [0.9, 0.1]])
    fit.pool_probs = np.array(
        [[0.5, 0.5]] * 4 + [[0.5, 0.5], [0.7, 0.3], [0.9, 0.1], [0.99, 0.01]], dtype=np.float32
    )
    fit.temperature = 1.0
    st.accuracy = pd.Series([0.8], index=st.accuracy.index, name="accuracy")
    st.answer_q = np.full(st.answer_item.size, 0.8)
    return al, fit


def test_relabel_gains_are_scaled_by_the_yield_of_the_repeats():
    for answers in ([0, 1], [1, 0]):  # the repeats confirmed / both disagreed
        al, fit = _learner(answers)
        st = fit.state
        ll = consensus_loglik(st.answer_item, st.answer_label, st.answer_q, 4, 2)
        base = relabel_gain(ll, fit.oof_probs, 0.8)
        # item 1: label 0 before its repeat, pi(0) = .1 * .8 / (.08 + .9 * .2) = 4 / 13;
        # item 3: label 1, pi(1) = 4 / 13 too: each repeat predicted to disagree with
        # probability 1 - (4/13 * .8 + 9/13 * .2) = 8 / 13
        e = 2 * (1 - (4 / 13 * 0.8 + 9 / 13 * 0.2))
        o = 0.0 if answers == [0, 1] else 2.0
        assert repeat_yield(st.answer_item, st.answer_label, st.answer_q, fit.oof_probs) == (
            o,
            pytest.approx(e, abs=1e-12),
        )
        rate = (1 + o) / (1 + e)
        got = al._relabels(fit, 4, must=0)
        new = [0.3, 0.1, -0.1, -0.19]  # 0.8 - the new items' top probabilities
        # naive merge: the 4 best of both lists; a re-label wins only if strictly better
        pool = sorted([(rate * g, 1, i) for i, g in enumerate(base) if g > 0]
                      + [(v, 2, None) for v in new], key=lambda t: (-t[0], -t[1]))  # fmt: skip
        want = [i for g, kind, i in pool[:4] if kind == 1]
        assert got.item_id.tolist() == want
        np.testing.assert_allclose(got.score, rate * base[want])
    # one question: item 0's re-label (0.63 unscaled) against the best new item (0.3);
    # confirmed repeats scale it to 0.63 / (1 + 16/13) = 0.28: the new item wins
    al, fit = _learner([0, 1])
    assert al._relabels(fit, 1, must=0).empty
    al, fit = _learner([1, 0])  # disagreed: rate 3 / (1 + 16/13), item 0 still asked
    got = al._relabels(fit, 1, must=0)
    assert got.item_id.tolist() == [0]
    assert (
        "disagreed 2 times where the model expected 1.2: its estimate scaled by 1.34"
        in (got.reason.iloc[0])
    )


def _loop(clean: bool, rounds: int = 8) -> list[int]:
    """Each round two first answers of 1 arrive on items of blob 0 (the model says 0), then
    ``suggest(4)`` is answered. Clean oracle: every answer on an item is its first one (those
    items are truly 1: the model is wrong); noisy: their first answers were flips, later
    answers give 0. Returns the re-labels asked per round."""
    rng = np.random.default_rng(2)
    centers = rng.normal(0, 3, (2, 8))
    X = np.concatenate([rng.normal(c, 0.3, (80, 8)) for c in centers]).astype(np.float32)
    y = np.repeat([0, 1], 80)
    rng = np.random.default_rng(0)
    taught = np.concatenate([rng.choice(np.flatnonzero(y == c), 30, replace=False) for c in (0, 1)])
    odd = np.setdiff1d(np.flatnonzero(y == 0), taught)[: 2 * rounds]
    first = y.copy()
    first[odd] = 1
    later = first if clean else y
    al = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, y[taught])
    asked = []
    for r in range(rounds):
        batch = odd[2 * r : 2 * r + 2]
        al.teach(batch, first[batch])
        s = al.suggest(4)
        rel = s.item_id[s.action == "relabel"].to_numpy()
        new = s.item_id[s.action == "label"].to_numpy()
        asked.append(rel.size)
        al.teach(np.r_[rel, new], np.r_[later[rel], first[new]])
    return asked


def test_a_clean_annotator_stops_being_reasked_a_noisy_one_does_not():
    clean, noisy = _loop(clean=True), _loop(clean=False)
    # clean: three re-labels confirm, then every new contradicted item keeps its one answer
    # (without the yield: 2, 2, 0, 2, 0, ...: the model's doubt alone keeps asking)
    assert clean == [2, 1, 0, 0, 0, 0, 0, 0]
    # noisy: the repeats disagree about as often as predicted; every round re-asks
    assert min(noisy) >= 1 and sum(noisy) >= 14
