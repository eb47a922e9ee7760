"""choose_best_labels: recovery of known labeler accuracies, gold oracles, input forms, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import truelabel
from truelabel import TruelabelWarning, ValidationError
from truelabel.aggregate import DawidSkene, MajorityVote, OneCoinDawidSkene, choose_best_labels

ACC = {"big": 0.92, "mid": 0.8, "vendor": 0.7, "small": 0.6, "noisy": 0.45}


def labelers(seed: int = 0, n_items: int = 3000, k: int = 3, skip: float = 0.1):
    """Each labeler answers ~90% of the items, right with its accuracy, errors uniform."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    wide = {}
    for name, acc in ACC.items():
        lab = np.where(rng.random(n_items) < acc, truth, (truth + rng.integers(1, k, n_items)) % k)
        col = pd.Series(lab, dtype="float64")
        col[rng.random(n_items) < skip] = np.nan
        wide[name] = col
    return pd.DataFrame(wide, index=pd.RangeIndex(n_items, name="item_id")), truth


def test_recovers_known_accuracies_and_beats_the_best_labeler():
    wide, truth = labelers()
    choice = choose_best_labels(wide)
    est = choice.labelers["accuracy"]
    for name, acc in ACC.items():
        assert est[name] == pytest.approx(acc, abs=0.03), name
    assert list(choice.labelers.index) == list(ACC)  # ranked, most accurate first
    assert choice.best == "big"
    assert (choice.labelers["source"] == "agreement").all()
    lo, hi = choice.labelers["ci_low"], choice.labelers["ci_high"]
    assert ((lo <= est) & (est <= hi)).all()
    picked = choice.labels["label"].to_numpy()
    assert (picked == truth).mean() > ACC["big"]  # and "big" skipped 10% of the items
    # confidence is the posterior of the picked label: calibrated on average
    assert choice.labels["confidence"].mean() == pytest.approx((picked == truth).mean(), abs=0.02)
    assert choice.labels["confidence"].between(0, 1).all()


def test_chosen_labeler_is_the_most_accurate_that_gave_the_label_naive_loop():
    wide, _ = labelers(1, n_items=300)
    choice = choose_best_labels(wide)
    acc = choice.labelers["accuracy"]
    for item, row in choice.labels.iterrows():
        gave = [c for c in wide.columns if wide.at[item, c] == row["label"]]
        expected = (
            max(gave, key=lambda c: (acc[c], -list(sorted(wide.columns)).index(c)))
            if gave
            else None
        )
        assert row["labeler"] == expected, item


def test_gold_measures_each_labeler_exactly_naive_loop():
    wide, truth = labelers(2, n_items=1000)
    gold = pd.Series(truth[:150], index=range(150))
    choice = choose_best_labels(wide, gold=gold)
    for name in ACC:
        answered = wide[name].iloc[:150].dropna()
        expected = float((answered.to_numpy() == truth[:150][answered.index]).mean())
        assert choice.labelers.at[name, "accuracy"] == pytest.approx(expected, abs=1e-12)
        assert choice.labelers.at[name, "n_gold"] == len(answered)
    assert (choice.labelers["source"] == "gold").all()
    # gold items keep their gold label with confidence 1
    assert (choice.labels["label"].iloc[:150].to_numpy() == truth[:150]).all()
    assert (choice.labels["confidence"].iloc[:150] == 1.0).all()


def test_input_forms_agree_long_mapping_and_probabilities():
    wide, _ = labelers(3, n_items=400)
    a = choose_best_labels(wide)
    long = wide.stack().dropna().rename("label").reset_index()
    long.columns = ["item_id", "annotator_id", "label"]
    b = choose_best_labels(long)
    mapping = {c: wide[c].dropna() for c in wide.columns}
    # probabilities whose argmax is the label
    probs = {}
    for c in wide.columns:
        lab = wide[c].dropna().astype(int)
        p = np.full((len(lab), 3), 0.1)
        p[np.arange(len(lab)), lab.to_numpy()] = 0.8
        probs[c] = pd.DataFrame(p, index=lab.index, columns=[0.0, 1.0, 2.0])
    c = choose_best_labels(mapping)
    d = choose_best_labels(probs)
    for other in (b, c, d):
        pd.testing.assert_frame_equal(other.labelers, a.labelers)
        np.testing.assert_array_equal(
            other.labels["label"].to_numpy(), a.labels["label"].to_numpy()
        )
    e = choose_best_labels(wide, consensus=OneCoinDawidSkene())
    assert isinstance(e.consensus, OneCoinDawidSkene) and e.best == "big"
    assert truelabel.choose_best_labels is choose_best_labels


def test_two_labelers_without_gold_warn_and_bad_inputs():
    wide, truth = labelers(4, n_items=200)
    with pytest.warns(TruelabelWarning, match=r"two labelers and no gold"):
        choose_best_labels(wide[["big", "mid"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gold removes the warning
        both = wide[["big", "mid"]].dropna().index[:20]
        choose_best_labels(wide[["big", "mid"]], gold=pd.Series(truth[both], index=both))
    with pytest.raises(ValidationError, match=r"labels: has 1 labeler"):
        choose_best_labels(wide[["big"]])
    with pytest.raises(ValidationError, match=r"labels\['big'\]: got list"):
        choose_best_labels({"big": [0, 1], "mid": wide["mid"]})
    with pytest.raises(ValidationError, match=r"labels: got str"):
        choose_best_labels("labels.csv")
    with pytest.raises(ValidationError, match=r"confidence: got 1.5"):
        choose_best_labels(wide, confidence=1.5)
    with pytest.raises(ValidationError, match=r"not in classes"):
        choose_best_labels(wide, classes=[0.0, 1.0])
    assert isinstance(DawidSkene(), truelabel.aggregate.Aggregator)
    assert choose_best_labels(wide, consensus=MajorityVote()).best in ACC
