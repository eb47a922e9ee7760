"""The annotation-table contract and the conformance checks every aggregator must pass."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import truelabel
from truelabel import NotFittedError, TruelabelWarning, ValidationError
from truelabel.aggregate import (
    MACE,
    Annotations,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    WeightedMajorityVote,
)

AGGREGATORS = [MajorityVote, WeightedMajorityVote, DawidSkene, OneCoinDawidSkene, MACE]


def small_crowd(seed: int = 0, n_items: int = 60, n_annot: int = 8, k: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = np.linspace(0.55, 0.95, n_annot)
    rows = []
    for i in range(n_items):
        for a in rng.choice(n_annot, size=4, replace=False):
            lab = truth[i] if rng.random() < acc[a] else rng.integers(0, k)
            rows.append((f"item{i:03d}", f"w{a}", ["cat", "dog", "eel"][lab]))
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def _df(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


# --- the table contract ---------------------------------------------------------------------
def test_encoding_is_sorted_and_counts_are_exact():
    df = _df([(2, "b", "y"), (1, "a", "x"), (1, "b", "y"), (2, "a", "y")])
    ann = Annotations(df)
    assert list(ann.items) == [1, 2] and list(ann.annotators) == ["a", "b"]
    assert list(ann.classes) == ["x", "y"]
    # counts[i, j * K + l]
    assert ann.counts.toarray().tolist() == [[1, 0, 0, 1], [0, 1, 0, 1]]
    assert ann.vote_counts().tolist() == [[1, 1], [0, 2]]


def test_custom_column_names_and_classes_order():
    df = pd.DataFrame({"task": [1, 1, 2], "worker": ["a", "b", "a"], "answer": [0, 1, 1]})
    ann = Annotations(df, item="task", annotator="worker", label="answer", classes=[1, 0, 2])
    assert list(ann.classes) == [1, 0, 2]
    probas = MajorityVote().fit_predict_proba(ann)
    assert list(probas.columns) == [1, 0, 2] and probas.index.name == "task"
    np.testing.assert_allclose(probas.to_numpy(), [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])


def test_missing_column_is_named_with_a_suggestion():
    df = pd.DataFrame({"item": [1], "annotator_id": ["a"], "label": [0]})
    with pytest.raises(
        ValidationError,
        match=r"annotations: has no item column 'item_id'.*Annotations\(df, item=\.\.\.\)",
    ):
        MajorityVote().fit(df)


def test_label_outside_classes_names_the_row():
    df = _df([(1, "a", "x"), (1, "b", "y"), (2, "a", "z")])
    with pytest.raises(ValidationError, match=r"row 2 has label 'z', which is not in classes"):
        Annotations(df, classes=["x", "y"])
    with pytest.raises(ValidationError, match=r"classes hold 1 as another type"):
        Annotations(_df([(1, "a", 1)]), classes=["1", "2"])


def test_conflicting_repeat_is_refused_naming_the_pair():
    df = _df([(1, "a", "x"), (1, "b", "x"), (1, "a", "y")])
    with pytest.raises(
        ValidationError,
        match=r"annotator 'a' labeled item 1 more than once with different labels "
        r"\('x', 'y' in rows \[0, 2\]\).*duplicates='last'",
    ):
        Annotations(df)


def test_identical_repeat_counts_once_with_a_warning():
    df = _df([(1, "a", "x"), (1, "b", "y"), (1, "a", "x")])
    with pytest.warns(TruelabelWarning, match=r"1 repeated answer\(s\).*counted once"):
        ann = Annotations(df)
    assert ann.n_labels == 2 and ann.n_duplicates == 1
    assert ann.vote_counts().tolist() == [[1, 1]]


@pytest.mark.parametrize(
    ("mode", "votes"), [("first", [[1, 1]]), ("last", [[0, 2]]), ("all", [[1, 2]])]
)
def test_duplicate_modes(mode, votes):
    df = _df([(1, "a", "x"), (1, "b", "y"), (1, "a", "y")])
    ann = Annotations(df, duplicates=mode)
    assert ann.vote_counts().tolist() == votes
    assert ann.counts.sum() == sum(votes[0])


def test_bad_duplicate_mode_and_nan_and_empty():
    df = _df([(1, "a", "x")])
    with pytest.raises(ValidationError, match=r"duplicates: got 'lastt'.*did you mean 'last'"):
        Annotations(df, duplicates="lastt")
    with pytest.raises(ValidationError, match=r"row 1 has a missing label"):
        Annotations(_df([(1, "a", "x"), (2, "a", None)]))
    with pytest.raises(ValidationError, match=r"row 0 has the non-integer label 0.5"):
        Annotations(_df([(1, "a", 0.5)]))
    with pytest.raises(ValidationError, match=r"annotations: has no rows"):
        Annotations(df.iloc[:0])
    with pytest.raises(ValidationError, match=r"\['item_id'\]: row 0 has a missing value"):
        Annotations(_df([(None, "a", "x")]))
    with pytest.raises(ValidationError, match=r"annotations: got list"):
        MajorityVote().fit([(1, "a", "x")])


def test_float_labels_that_are_integers_become_ints():
    ann = Annotations(_df([(1, "a", 1.0), (1, "b", 0.0)]))
    assert list(ann.classes) == [0, 1]


def test_gold_absent_from_annotations_is_dropped_with_a_warning():
    df = _df([(1, "a", "x"), (1, "b", "y"), (2, "a", "y")])
    with pytest.warns(TruelabelWarning, match=r"1 of 2 gold item\(s\) have no annotation.*99"):
        ann = Annotations(df, gold=pd.Series({1: "x", 99: "y"}))
    assert ann.gold_codes.tolist() == [0, -1]
    with pytest.raises(ValidationError, match=r"item 1 has gold label 'q', not in classes"):
        Annotations(df, gold={1: "q"})
    with pytest.raises(ValidationError, match=r"gold: got list"):
        Annotations(df, gold=["x"])


def test_gold_items_are_clamped_by_every_aggregator():
    df = small_crowd()
    item = df["item_id"].iloc[0]
    wrong = "eel" if MajorityVote().fit_predict(df)[item] != "eel" else "cat"
    for cls in AGGREGATORS:
        est = cls().fit(df, gold=pd.Series({item: wrong}))
        assert est.labels_[item] == wrong
        assert est.probas_.loc[item, wrong] == 1.0


# --- conformance ----------------------------------------------------------------------------
@pytest.mark.parametrize("cls", AGGREGATORS)
def test_contract(cls):
    df = small_crowd()
    est = cls()
    params = copy.deepcopy(est.get_params())
    with pytest.raises(NotFittedError, match=r"is not fitted; call fit\(annotations\)"):
        _ = est.labels_
    assert est.fit(df) is est
    assert est.get_params() == params  # settings stored untouched
    assert clone(est).get_params() == params
    p = est.probas_
    assert list(p.columns) == ["cat", "dog", "eel"] and p.index.is_monotonic_increasing
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert ((p >= 0) & (p <= 1)).all().all()
    assert set(est.labels_) <= {"cat", "dog", "eel"}
    assert (est.labels_.index == p.index).all()
    assert est.skills_.between(0, 1).all() and len(est.skills_) == 8
    pd.testing.assert_series_equal(est.fit_predict(df), est.labels_)
    pd.testing.assert_frame_equal(est.fit_predict_proba(df), p)


@pytest.mark.parametrize("cls", AGGREGATORS)
def test_row_order_invariance_seeds_and_pickle(cls):
    df = small_crowd(1)
    a = cls(random_state=3).fit(df)
    shuffled = df.sample(frac=1.0, random_state=7)
    b = cls(random_state=3).fit(shuffled)
    np.testing.assert_allclose(a.probas_.to_numpy(), b.probas_.to_numpy(), rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(a.labels_, b.labels_)
    c = pickle.loads(pickle.dumps(a))
    pd.testing.assert_frame_equal(c.probas_, a.probas_)
    pd.testing.assert_series_equal(c.skills_, a.skills_)


def test_mv_tie_breaking_follows_the_seed():
    # 40 items, each a 1-1 tie between x and y
    df = _df([(i, a, lab) for i in range(40) for a, lab in (("a", "x"), ("b", "y"))])
    l0 = MajorityVote(random_state=0).fit_predict(df)
    assert l0.equals(MajorityVote(random_state=0).fit_predict(df))
    assert not l0.equals(MajorityVote(random_state=1).fit_predict(df))
    assert 10 < (l0 == "x").sum() < 30  # not always the first column (crowd-kit's idxmax)


@pytest.mark.parametrize("cls", [DawidSkene, OneCoinDawidSkene, MACE])
def test_em_settings_are_validated(cls):
    df = small_crowd()
    with pytest.raises(ValidationError, match=r"n_init: got 0, expected an int >= 1"):
        cls(n_init=0).fit(df)
    with pytest.raises(ValidationError, match=r"tol: got -1.0, expected a number > 0"):
        cls(tol=-1.0).fit(df)
    with pytest.raises(ValidationError, match=r"max_iter: got 2.5"):
        cls(max_iter=2.5).fit(df)
    with pytest.raises(TypeError):
        cls(n_inits=2)


def test_model_settings_are_validated():
    df = small_crowd()
    with pytest.raises(ValidationError, match=r"prior_strength: got -1"):
        DawidSkene(prior_strength=-1).fit(df)
    with pytest.raises(ValidationError, match=r"prior_accuracy: got 1.5, expected a number in"):
        OneCoinDawidSkene(prior_accuracy=1.5).fit(df)
    with pytest.raises(ValidationError, match=r"class_prior: got 'learnt'.*'learned'"):
        OneCoinDawidSkene(class_prior="learnt").fit(df)
    with pytest.raises(ValidationError, match=r"beta: got 0"):
        MACE(beta=0).fit(df)
    with pytest.raises(ValidationError, match=r"weights: has no weight for annotator 'w7'"):
        WeightedMajorityVote(weights={f"w{i}": 1.0 for i in range(7)}).fit(df)
    with pytest.raises(ValidationError, match=r"weights: must be finite and >= 0"):
        WeightedMajorityVote(weights={f"w{i}": -1.0 for i in range(8)}).fit(df)


def test_em_warns_when_max_iter_stops_it():
    with pytest.warns(TruelabelWarning, match=r"DawidSkene did not converge in max_iter=1"):
        est = DawidSkene(max_iter=1).fit(small_crowd())
    assert not est.converged_ and est.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert DawidSkene().fit(small_crowd()).converged_


def test_top_level_exports_are_the_aggregate_classes():
    assert truelabel.DawidSkene is DawidSkene and truelabel.MACE is MACE
    assert truelabel.Annotations is Annotations


def test_break_ties_in_blocks_draws_exactly_the_one_shot_draws(monkeypatch):
    """Rows are handled in blocks (bounded memory); the tie draws are consecutive, so the
    picks equal those of one rng.random((n, k)) over all rows, across block boundaries."""
    import truelabel.aggregate._base as base

    rng = np.random.default_rng(3)
    p = np.round(rng.random((23, 4)), 1)  # many ties at one decimal
    p[5] = 0.25  # a row tied four ways

    def one_shot(posteriors, r):
        top = posteriors.max(axis=1, keepdims=True)
        tied = posteriors >= top - 1e-12 * np.maximum(np.abs(top), 1.0)
        return np.argmax(np.where(tied, r.random(posteriors.shape) + 1.0, 0.0), axis=1)

    want = one_shot(p, np.random.default_rng(7))
    for block in (1, 4, 7, 23, 100):
        monkeypatch.setattr(base, "_TIE_BLOCK", block)
        got = base.break_ties(p, np.random.default_rng(7))
        assert got.tolist() == want.tolist(), block
    assert p[np.arange(23), want].tolist() == p.max(axis=1).tolist()  # always a top class
    picks = {int(base.break_ties(p[5:6], np.random.default_rng(s))[0]) for s in range(40)}
    assert picks == {0, 1, 2, 3}  # a four-way tie is broken at random, not by position
