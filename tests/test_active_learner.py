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
    return np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per, replace=False) for c in np.unique(y)]
    )


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


def test_consensus_ties_go_to_the_model():
    X, y = blobs(n_per=30, k=2, sd=0.3, seed=1)
    taught = start(y, per=10)
    al = ActiveLearner(X, random_state=0).teach(taught, y[taught])
    assert len(al.labels_) == 20  # a model exists now
    one = np.flatnonzero((y == 1) & ~np.isin(np.arange(60), taught))[0]
    zero = np.flatnonzero((y == 0) & ~np.isin(np.arange(60), taught))[0]
    al.teach([one, one, zero, zero], [0, 1, 1, 0])  # one answer each way: ties
    assert al.labels_.loc[one] == 1 and al.labels_.loc[zero] == 0


def test_single_annotator_majority_and_pair_accuracy():
    from truelabel.active._state import consensus

    answers = pd.DataFrame(
        {"item_id": [0, 0, 0, 6, 6, 6], "annotator_id": "a", "label": [1, 1, 0, 0, 0, 0]}
    )
    state = consensus(
        answers, classes=None, prior_accuracy=0.8, tie_probs=None, prev_classes=None,
        pair_accuracy=pair_accuracy,
    )  # fmt: skip
    assert state.classes[state.codes].tolist() == [1, 0]
    # pairs: item 0: 3 pairs, 1 agreeing; item 6: 3 agreeing -> (4 + 10 * 0.68) / (6 + 10)
    agree = (4 + 10 * (0.8**2 + 0.2**2)) / 16
    assert state.accuracy.iloc[0] == pytest.approx(symmetric_accuracy(agree, 2))


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
    assert consensus_labels(np.array([[0.0, 0.0, -1.0]]), np.array([[0.2, 0.7, 0.1]])).tolist() == [
        1
    ]


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


def _noisy_case():
    X, y = blobs(n_per=80, k=2, sd=0.3, seed=2, dim=8)
    taught = start(y, per=30)
    answers = y[taught].copy()
    answers[:3] = 1 - answers[:3]  # three wrong answers
    return X, y, taught, answers


def test_noisy_labels_get_relabeled_and_clean_ones_do_not():
    X, y, taught, answers = _noisy_case()
    al = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, answers)
    s = al.suggest(6)
    rel = set(s[s.action == "relabel"].item_id)
    assert rel and rel <= set(taught[:3].tolist())
    clean = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, y[taught])
    assert (clean.suggest(6).action == "label").all()


def test_costs_change_the_decision():
    X, y, taught, answers = _noisy_case()
    cheap = ActiveLearner(X, random_state=0, annotator_accuracy=0.8).teach(taught, answers)
    rel = set(cheap.suggest(5).query("action == 'relabel'").item_id)
    assert rel
    costs = np.ones(len(X))
    costs[list(rel)] = 50.0  # a re-label of those items costs 50 new labels
    dear = ActiveLearner(X, random_state=0, annotator_accuracy=0.8, item_costs=costs)
    dear.teach(taught, answers)
    assert not rel & set(dear.suggest(5).query("action == 'relabel'").item_id)


# ---------------------------------------------------------------- the switch
def _pick(weakness, X, value, typ):
    from truelabel.active._select import pick_new

    return pick_new(
        X, np.arange(len(X)), 3, value=value, typicality=typ, weakness=weakness,
        predicted=None, class_counts=None, duplicate_cosine=0.999, center=X.mean(0),
        rng=np.random.default_rng(0), backend=None, chunk_size=None, probs=None, scale=1.0,
    )  # fmt: skip


def test_switch_weak_model_covers_clusters_strong_model_takes_uncertain_items():
    # 3 clusters of 20; the model is unsure only about cluster 0 (value = uncertainty)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.5, (20, 2)) for c in ([0, 10], [10, 0], [-10, -10])])
    cluster = np.repeat(np.arange(3), 20)
    value = np.where(cluster == 0, 0.9, 0.1) + rng.uniform(0, 0.05, 60)
    from truelabel.active import typicality_scores

    typ = typicality_scores(X, n_neighbors=5)
    weak = _pick(1.0, X, value, typ)  # no trust in the model: one typical item per cluster
    assert sorted(cluster[weak.index]) == [0, 1, 2]
    for c in range(3):
        members = np.flatnonzero(cluster == c)
        assert typ[weak.index[cluster[weak.index] == c][0]] >= np.quantile(typ[members], 0.75)
    strong = _pick(0.0, X, value, typ)  # a stable model: its most uncertain items
    assert (cluster[strong.index] == 0).all()
    assert strong.n_candidates == 6 and weak.n_candidates == 60  # 2 n / (1 - weakness)


def test_batch_skips_near_duplicates_inside_the_candidates():
    # 5 distinct points, 4 copies each; the copies of 0 and 1 are the most uncertain
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 4))
    X = np.repeat(base, 4, axis=0) + rng.normal(0, 1e-6, (20, 4))
    point = np.repeat(np.arange(5), 4)
    value = np.array([0.9, 0.8, 0.5, 0.4, 0.3])[point]
    typ = np.ones(20)
    picks = _pick(0.0, X, value, typ)
    assert sorted(point[picks.index]) == [0, 1, 2]


def test_pool_probabilities_identical_for_any_chunking():
    from truelabel.active._model import fit_linear, pool_proba

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 384))  # the sizes where a BLAS row depends on its block place
    y = rng.integers(0, 20, 1500)
    model = fit_linear(X[:300], y[:300], 20, C=1.0)
    ref = pool_proba(X, model, backend=LocalBackend(1))
    for be, cs in [(LocalBackend(2), 1), (LocalBackend(1), 300), (LocalBackend(2), 700)]:
        np.testing.assert_array_equal(pool_proba(X, model, backend=be, chunk_size=cs), ref)


def test_weakness_is_measured_from_the_folds():
    X, y = blobs(n_per=80, k=4, sd=2.5, seed=3, dim=10)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    al = ActiveLearner(X, random_state=0).teach(order[:8], y[order[:8]])
    few = al.weakness_
    assert few > 0.1
    al.teach(order[8:250], y[order[8:250]])
    assert al.weakness_ < few / 2


def test_strong_model_picks_near_its_boundary():
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 400)
    X = np.c_[x, rng.normal(0, 0.05, (400, 3))] + np.array([0, 1, 1, 1])
    y = (x > 0).astype(int)
    taught = np.arange(0, 400, 10)
    al = ActiveLearner(X, random_state=0, allow_relabel=False).teach(taught, y[taught])
    s = al.suggest(5)
    assert al.weakness_ < 0.05
    assert np.abs(x[s.item_id]).max() < 0.15  # the 40 most uncertain items lie in |x| < 0.1


# ---------------------------------------------------------------- bad input
X0 = np.random.default_rng(0).normal(size=(20, 3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"features": np.zeros(5)}, r"features: expected shape \(n_items, n_dims\)"),
        ({"features": np.zeros((5, 0))}, r"features: has shape \(5, 0\): no feature column"),
        ({"features": np.r_[X0[:3], [[np.nan, 0, 0]]]}, r"features: row 3 contains NaN"),
        ({"features": X0, "allow_relabel": "yes"}, r"allow_relabel: got 'yes'"),
        ({"features": X0, "item_costs": -1.0}, r"item_costs: item 0 costs -1.0"),
        (
            {"features": X0, "item_costs": np.ones(3)},
            r"item_costs: has shape \(3,\), expected \(20,\)",
        ),
        ({"features": X0, "annotator_accuracy": 1.0}, r"annotator_accuracy: got 1.0.*\(0.5, 1\)"),
        ({"features": X0, "C": 0}, r"C: got 0, expected a number > 0"),
        ({"features": X0, "n_folds": 1}, r"n_folds: got 1, expected an int >= 2"),
        ({"features": X0, "holdout_size": 0}, r"holdout_size: got 0"),
        ({"features": X0, "annotator_costs": {"a": 0}}, r"annotator_costs\['a'\]: got 0"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        ActiveLearner(**kwargs)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([25], [0]), r"item_ids: holds 25, outside the pool of 20 items.*\[0, 20\)"),
        (([1.5], [0]), r"item_ids: holds \[1.5\].*integer row indices"),
        (([1, 2], [0]), r"labels: has 1 values for 2 item ids; pass one label per item id"),
        (([1], [None]), r"labels: position 0 has no label"),
        (([1, 2], [0, 1], ["a"]), r"annotator_ids: has 1 values for 2 item ids"),
        (([], []), r"item_ids: is empty"),
    ],
)
def test_teach_errors(args, match):
    with pytest.raises(ValidationError, match=match):
        ActiveLearner(X0).teach(*args)


def test_teach_refuses_a_label_outside_classes_and_suggest_bad_n():
    with pytest.raises(ValidationError, match=r"labels: 'z' is not one of classes \['a', 'b'\]"):
        ActiveLearner(X0, classes=["a", "b"]).teach([1], ["z"])
    al = ActiveLearner(X0)
    for bad in (0, -1, "3", 2.0, True):
        with pytest.raises(ValidationError, match=r"n: got .*expected an int >= 1"):
            al.suggest(bad)
    # nothing taught, so nothing to re-label yet: allow_relabel (already on) is not the fix
    once = r"n: asks for 21 suggestions but only 20 .*pass n <= 20 \(labeled items can be asked"
    with pytest.raises(ValidationError, match=once):
        al.suggest(21)
    no_model = r"pass n <= 20 or allow_relabel=True once labels of two classes are taught$"
    with pytest.raises(ValidationError, match=no_model):
        ActiveLearner(X0, allow_relabel=False).suggest(21)
    off = ActiveLearner(X0, allow_relabel=False).teach([0, 1], ["a", "b"])
    with pytest.raises(
        ValidationError, match=r"only 18 items .*pass n <= 18 or allow_relabel=True$"
    ):
        off.suggest(19)
    one_class = ActiveLearner(X0).teach([0, 1], ["a", "a"])  # no model from one class
    with pytest.raises(ValidationError, match=r"only 18 items .*once labels of two classes"):
        one_class.suggest(19)
    two = ActiveLearner(X0).teach([0, 1, 2, 3], ["a", "b", "a", "b"])
    assert len(two.suggest(20)) == 20  # re-labels make up the rest
    with pytest.raises(ValidationError, match=r"only 20 items can be asked about; pass n <= 20$"):
        two.suggest(21)


def test_calibrate_picks_the_grid_temperature_of_least_log_loss():
    from truelabel.active._model import TEMPERATURES, calibrate

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (40, 3))
    y = rng.integers(0, 3, 40)  # labels unrelated to overconfident logits: a large T wins
    logits[0, 2] = -np.inf
    y[0] = 2  # a class its fold model never saw: left out, uniform
    losses = []
    for t in TEMPERATURES:
        z = logits[1:] / t
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        losses.append(-np.mean(np.log(p[np.arange(39), y[1:]])))
    best = TEMPERATURES[int(np.argmin(losses))]
    probs, temp = calibrate(logits, y)
    assert temp == best and temp > 4
    np.testing.assert_allclose(probs[0], 1 / 3)
    z = logits[1] / best
    np.testing.assert_allclose(probs[1], np.exp(z - z.max()) / np.exp(z - z.max()).sum())


def test_new_items_are_clustered_with_the_pool_probabilities_at_the_pool_rms_scale(monkeypatch):
    import truelabel.active._learner as learner_mod

    seen, labeled = [], []
    real = learner_mod.pick_new

    def spy(*args, **kw):
        seen.append((kw["probs"], kw["scale"]))
        labeled.append(kw["labeled"])
        return real(*args, **kw)

    monkeypatch.setattr(learner_mod, "pick_new", spy)
    rng = np.random.default_rng(0)
    X = 3.0 * np.r_[rng.normal(0, 1, (50, 4)), rng.normal(4, 1, (50, 4))]
    rms = float(np.sqrt(np.mean(np.sum(X**2, axis=1))))
    al = ActiveLearner(X, random_state=0, chunk_size=7)
    first = al.suggest(4)  # cold start: no model, the embedding alone
    assert seen[-1][0] is None and seen[-1][1] == pytest.approx(rms, rel=1e-12)
    al.teach(first.item_id, (first.item_id >= 50).astype(int))
    al.suggest(3)
    probs, scale = seen[-1]
    items, codes = labeled[-1]  # the taught items and their class codes, for the neighbours
    assert items.tolist() == sorted(first.item_id.tolist())
    assert codes.tolist() == [int(i >= 50) for i in sorted(first.item_id.tolist())]
    assert probs.shape == (100, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert np.array_equal(np.argmax(probs, axis=1), np.arange(100) >= 50)
    assert scale == pytest.approx(rms, rel=1e-12)


def test_pool_mean_and_rms_norm_over_more_than_one_block():
    # 70,000 rows: two of the fixed 65,536-row blocks; float32 in, float64 sums
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(70_000, 3)) + np.array([1.0, -2.0, 3.0])).astype(np.float32)
    al = ActiveLearner(X, random_state=0, chunk_size=1000)
    ref = X.astype(np.float64)
    assert al._center() == pytest.approx(ref.mean(axis=0), rel=1e-12, abs=1e-12)
    assert al._rms_norm() == pytest.approx(np.sqrt((ref**2).sum(axis=1).mean()), rel=1e-12)
    assert ActiveLearner(np.zeros((3, 2)))._rms_norm() == 1e-12  # an all-zero pool: no 0 / 0


def test_a_new_items_reason_names_where_it_came_from():
    from truelabel.active._reasons import where as _where

    assert _where("why", 1, 20) == "why; from a cluster of 1 candidate"
    assert _where("why", 7, 20) == "why; from a cluster of 7 candidates"
    assert _where("why", 0, 20) == (
        "why; picked beyond the 20 candidates (the class caps and the near-duplicate bound "
        "used them up): the next most valuable item"
    )


# ---------------------------------------------------------------- item costs in the net
def test_cold_start_takes_typicality_per_unit_of_cost():
    # one blob, batch of 1 (one cluster): the pick is the best typicality / cost; the most
    # typical item made dear gives way to the best of the rest per unit of cost
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    free = ActiveLearner(X, random_state=0)
    typ = free.typicality()
    top = int(np.argmax(typ))
    first = free.suggest(1)
    assert first["item_id"].tolist() == [top]
    assert (
        first["reason"]
        .iloc[0]
        .startswith("cold start (no model yet): a typical item of a large unlabeled cluster;")
    )
    costs = np.ones(40)
    costs[top] = 100.0
    costs[7] = 0.5  # cheap: typ[7] / 0.5 may beat the rest
    want = int(np.argmax(typ / costs))
    assert want != top
    dear = ActiveLearner(X, random_state=0, item_costs=costs).suggest(1)
    assert dear["item_id"].tolist() == [want]
    assert (
        dear["reason"]
        .iloc[0]
        .startswith(
            "cold start (no model yet): a typical item of a large unlabeled cluster "
            "(typicality per unit of cost);"
        )
    )


def test_alike_costs_leave_the_picks_as_they_are():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ref = ActiveLearner(X, random_state=0).teach([0, 1, 2, 3, 4, 5], y[:6]).suggest(5)
    for c in (1.0, 3.0):
        got = ActiveLearner(X, random_state=0, item_costs=np.full(60, c))
        got.teach([0, 1, 2, 3, 4, 5], y[:6])
        pd.testing.assert_frame_equal(got.suggest(5), ref)


def test_a_weak_model_weighs_typicality_per_unit_of_cost_too():
    # a model exists: the reason says both terms are per unit of cost when costs differ
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    costs = np.linspace(1.0, 2.0, 60)
    al = ActiveLearner(X, random_state=0, item_costs=costs).teach(np.arange(6), y[:6])
    df = al.suggest(3)
    assert df["reason"].str.contains(r"uncertain items \(each per unit of cost\)").all()


def test_the_net_reason_in_full():
    # two overlapping blobs, three labels each: a model exists (weakness 0.43), every reason states its weakness split and
    # where the pick came from (a cluster of s candidates)
    rng = np.random.default_rng(6)
    X = np.vstack([rng.normal(-0.5, 1, (40, 3)), rng.normal(0.5, 1, (40, 3))])
    X = X.astype(np.float32)
    y = np.repeat([0, 1], 40)
    taught = np.r_[0, 1, 2, 40, 41, 42]
    al = ActiveLearner(X, random_state=0).teach(taught, y[taught])
    df = al.suggest(4)
    w = al.weakness_
    assert 0.0 < w < 1.0
    head = (
        f"leaving out a fold of the labels changes {w:.0%} of the model's held-back "
        f"predictions, so picks weigh typicality {w:.2f} and uncertainty {1 - w:.2f} among the "
    )
    for reason in df["reason"]:
        assert reason.startswith(head), reason
        n_cand = int(np.ceil(2 * 4 / (1 - w)))  # CANDIDATES_PER_PICK x n / (1 - weakness)
        size = int(reason.split("; from a cluster of ")[1].split(" ")[0])
        assert 1 <= size <= n_cand
        assert reason == (
            f"{head}{n_cand} most uncertain items; from a cluster of {size} "
            f"candidate{'' if size == 1 else 's'}"
        )
    assert df["score"].between(0.0, 1.0).all()


def test_uncertainty_counts_per_unit_of_cost_once_a_model_exists():
    # a strong model (weakness 0 after many labels): the pick of one item is the most
    # uncertain per unit of cost; making it dear moves the pick
    rng = np.random.default_rng(7)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    taught = np.arange(120)
    base = ActiveLearner(X, random_state=0).teach(taught, y[taught])
    first = int(base.suggest(1)["item_id"].iloc[0])
    costs = np.ones(200)
    costs[first] = 1000.0
    dear = ActiveLearner(X, random_state=0, item_costs=costs).teach(taught, y[taught])
    assert int(dear.suggest(1)["item_id"].iloc[0]) != first
