"""ActiveLearner: the suggest() contract, consensus, re-labels, the switch, stopping, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.active import ActiveLearner
from truelabel.active._relabel import (
    consensus_labels,
    consensus_loglik,
    pair_accuracy,
    relabel_gain,
    symmetric_accuracy,
)
from truelabel.backend import LocalBackend
from truelabel.exceptions import ValidationError


def blobs(n_per=40, k=3, sd=0.4, seed=0, dim=4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (k, dim))
    X = np.concatenate([rng.normal(c, sd, (n_per, dim)) for c in centers])
    y = np.repeat(np.arange(k), n_per)
    return X.astype(np.float32), y


def start(y, per=2, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)])


# ---------------------------------------------------------------- contract
def test_suggest_contract_columns_rows_no_repeats():
    X, y = blobs()
    al = ActiveLearner(X, random_state=0)
    s0 = al.suggest(7)  # cold start: nothing taught
    assert list(s0.columns) == ["item_id", "action", "reason", "score"]
    assert len(s0) == 7 and s0.item_id.is_unique and set(s0.action) == {"label"}
    assert s0.score.between(0, 1).all() and s0.reason.str.len().gt(20).all()
    taught = start(y)
    al.teach(taught, y[taught])
    for _ in range(4):
        s = al.suggest(9)
        assert len(s) == 9 and s.item_id.is_unique
        labeled = set(al.labels_.index)
        new = s[s.action == "label"].item_id
        rel = s[s.action == "relabel"].item_id
        assert not set(new) & labeled
        assert set(rel) <= labeled
        al.teach(s.item_id, y[s.item_id])


def test_suggest_forced_relabels_fill_exactly_n():
    X, y = blobs(n_per=4, k=2)
    al = ActiveLearner(X, random_state=0)
    al.teach(np.arange(6), y[:6])
    s = al.suggest(5)  # only 2 unlabeled items left
    assert len(s) == 5 and s.item_id.is_unique
    assert sorted(s[s.action == "label"].item_id) == [6, 7]
    assert set(s[s.action == "relabel"].item_id) <= set(range(6))
    no = ActiveLearner(X, random_state=0, allow_relabel=False).teach(np.arange(6), y[:6])
    with pytest.raises(ValidationError, match=r"n: asks for 5 suggestions but only 2.*"):
        no.suggest(5)
    assert sorted(no.suggest(2).item_id) == [6, 7]


def test_suggest_reproducible_with_seed_and_depends_on_it():
    X, y = blobs(n_per=60)
    taught = start(y)

    def run(seed):
        al = ActiveLearner(X, random_state=seed).teach(taught, y[taught])
        return al.suggest(10)

    pd.testing.assert_frame_equal(run(3), run(3))
    assert run(3).item_id.tolist() != run(4).item_id.tolist()


def test_suggestions_identical_for_any_backend_and_chunk_size():
    X, y = blobs(n_per=150)
    taught = start(y)
    ref = None
    for be, cs in [(LocalBackend(1), None), (LocalBackend(2), 7), (LocalBackend(2), 300)]:
        al = ActiveLearner(X, random_state=1, backend=be, chunk_size=cs).teach(taught, y[taught])
        out = al.suggest(8)
        al.teach(out.item_id, y[out.item_id])
        out2 = al.suggest(8)
        if ref is None:
            ref = (out, out2)
        else:
            pd.testing.assert_frame_equal(out, ref[0])
            pd.testing.assert_frame_equal(out2, ref[1])


def test_no_near_duplicates_in_a_batch():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 8))
    y = (X[:, 0] > 0).astype(int)
    X = np.r_[X, X + 1e-4]  # every item has a copy
    y = np.r_[y, y]
    al = ActiveLearner(X, random_state=0).teach(start(y), y[start(y)])
    for n in (10, 40):
        s = al.suggest(n)
        Z = X[s.item_id] - X.mean(axis=0)
        unit = Z / np.linalg.norm(Z, axis=1, keepdims=True)
        cos = unit @ unit.T
        np.fill_diagonal(cos, 0)
        assert cos.max() < 0.95


def test_batches_are_class_balanced():
    # class 0 is 90% of the pool; a balanced batch still holds the other classes
    X, y = blobs(n_per=40, k=3, seed=4)
    X = np.r_[X, np.random.default_rng(0).normal(X[y == 0].mean(0), 0.4, (400, 4))]
    y = np.r_[y, np.zeros(400, dtype=int)]
    al = ActiveLearner(X, random_state=0).teach(start(y), y[start(y)])
    s = al.suggest(9)
    pred = al._refit().pool_probs.argmax(axis=1)[s.item_id]
    assert np.bincount(pred, minlength=3).max() <= 6  # ceil(2 * 9 / 3)


# ---------------------------------------------------------------- consensus / noisy annotators
def test_labels_are_the_consensus_of_all_answers():
    X, _ = blobs(n_per=5, k=2)
    al = ActiveLearner(X, random_state=0)
    truth = np.array(list("aaabbbbb"))
    al.teach(np.arange(1, 9), truth, annotator_ids="ann1")
    al.teach(np.arange(1, 9), truth, annotator_ids="ann2")
    al.teach([0, 0, 0], ["a", "b", "b"], annotator_ids=["ann1", "ann2", "ann3"])
    labels = al.labels_
    assert labels.loc[0] == "b" and labels.loc[1] == "a" and labels.loc[8] == "b"
    assert list(labels.index) == list(range(9))
    assert set(al.annotator_accuracy_.index) == {"ann1", "ann2", "ann3"}


def test_single_annotator_majority_and_pair_accuracy():
    X, _ = blobs(n_per=5, k=2)
    al = ActiveLearner(X, random_state=0, annotator_accuracy=0.8)
    al.teach([0, 0, 0, 6, 6, 6], [1, 1, 0, 0, 0, 0])
    assert al.labels_.to_dict() == {0: 1, 6: 0}
    # pairs: item 0: 3 pairs, 1 agreeing; item 6: 3 agreeing -> (4 + 10 * 0.68) / (6 + 10)
    agree = (4 + 10 * (0.8**2 + 0.2**2)) / 16
    assert al.annotator_accuracy_.iloc[0] == pytest.approx(symmetric_accuracy(agree, 2))


def test_symmetric_accuracy_and_pair_accuracy_oracles():
    assert symmetric_accuracy(0.8**2 + 0.2**2, 2) == pytest.approx(0.8)
    assert symmetric_accuracy(0.9**2 + 0.1**2 / 3, 4) == pytest.approx(0.9)
    assert symmetric_accuracy(0.0, 3) == pytest.approx(1 / 3)  # floored at chance
    item = np.array([0, 0, 1, 1])
    label = np.array([2, 2, 0, 1])
    # one agreeing pair out of two, no prior
    assert pair_accuracy(item, label, 3, 0.9, 0.0) == pytest.approx(symmetric_accuracy(0.5, 3))
    assert pair_accuracy(item[:0], label[:0], 3, 0.9, 5.0) == 0.9


def test_consensus_loglik_oracle():
    q = np.array([0.9, 0.6])
    ll = consensus_loglik(np.array([0, 0]), np.array([1, 0]), q, 1, 3)
    expected = [np.log(0.6) + np.log(0.05), np.log(0.9) + np.log(0.2), np.log(0.05) + np.log(0.2)]
    np.testing.assert_allclose(ll[0], expected)
    # ties are broken by the model probabilities
    assert consensus_labels(np.array([[0.0, 0.0, -1.0]]), np.array([[0.2, 0.7, 0.1]])).tolist() == [1]


def test_relabel_gain_hand_worked():
    # one answer "0" of accuracy 0.9; the model gives class 0 probability 0.1 -> pi = (.5, .5)
    # another answer: "0" (p .5) keeps label 0, right w.p. .45/.5; "1" ties, the model picks 1,
    # right w.p. .45/.5 -> E[right after] = .9, now .5: gain .4
    ll = consensus_loglik(np.array([0]), np.array([0]), np.array([0.9]), 1, 2)
    gain = relabel_gain(ll, np.array([[0.1, 0.9]]), 0.9)
    assert gain[0] == pytest.approx(0.4)
    # a model that agrees with the answer: another answer changes nothing
    assert relabel_gain(ll, np.array([[0.9, 0.1]]), 0.9)[0] == pytest.approx(0.0, abs=1e-12)


def test_relabel_gain_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    k = 3
    items = np.array([0, 0, 1, 2, 2, 2])
    labels = np.array([0, 1, 2, 1, 1, 0])
    ll = consensus_loglik(items, labels, np.full(6, 0.75), 3, k)
    probs = rng.dirichlet(np.ones(k), size=3)
    got = relabel_gain(ll, probs, 0.8)
    for i in range(3):
        post = probs[i] * np.exp(ll[i])
        post /= post.sum()
        lab = consensus_labels(ll[i : i + 1], probs[i : i + 1])[0]
        after = 0.0
        for a in range(k):
            lik = np.where(np.arange(k) == a, 0.8, 0.1)
            new_lab = consensus_labels(ll[i : i + 1] + np.log(lik), probs[i : i + 1])[0]
            after += post[new_lab] * lik[new_lab]
        assert got[i] == pytest.approx(after - post[lab], abs=1e-12)


def test_noisy_labels_get_relabeled_and_clean_ones_do_not():
    X, y = blobs(n_per=60, k=2, sd=0.3, seed=1)
    taught = np.r_[start(y, per=15), 0]
    answers = y[taught].copy()
    wrong = taught[:3]  # three confidently wrong answers far inside the other class
    answers[:3] = 1 - answers[:3]
    al = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, answers)
    s = al.suggest(6)
    rel = set(s[s.action == "relabel"].item_id)
    assert rel and rel <= set(wrong.tolist())
    clean = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, y[taught])
    assert (clean.suggest(6).action == "label").all()


def test_costs_change_the_decision():
    X, y = blobs(n_per=60, k=2, sd=0.3, seed=1)
    taught = start(y, per=15)
    answers = y[taught].copy()
    answers[0] = 1 - answers[0]
    cheap = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, answers)
    assert taught[0] in set(cheap.suggest(5).query("action == 'relabel'").item_id)
    costs = np.ones(len(X))
    costs[taught[0]] = 50.0  # a re-label of that item costs 50 new labels
    dear = ActiveLearner(X, random_state=0, annotator_accuracy=0.8, item_costs=costs)
    dear.teach(taught, answers)
    assert (dear.suggest(5).action == "label").all()
