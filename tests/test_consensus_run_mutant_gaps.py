"""``aggregate/_run.py`` where mutation testing (mutmut) found no test: the agreement summary
value by value, the few-gold warning at its boundary, gold of class 0, the summary keys, the
model-assisted base, and the argument errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.aggregate import Annotations, DawidSkene, ModelAssistedConsensus
from truelabel.aggregate._run import _agreement, run_consensus
from truelabel.exceptions import ValidationError

# 4 items, 3 annotators: pairs (a, b) share i1, i2, i4; (a, c) i1, i4; (b, c) i1, i4
ROWS = [
    ("i1", "a", "x"), ("i1", "b", "x"), ("i1", "c", "y"),
    ("i2", "a", "y"), ("i2", "b", "y"),
    ("i3", "a", "x"),
    ("i4", "a", "y"), ("i4", "b", "x"), ("i4", "c", "y"),
]  # fmt: skip
DF = pd.DataFrame(ROWS, columns=["item_id", "annotator_id", "label"])


def _kappa(pairs):
    """Cohen's kappa of two annotators' (label, label) pairs, by hand."""
    a, b = zip(*pairs, strict=True)
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    p_e = sum((a.count(c) / n) * (b.count(c) / n) for c in "xy")
    return (p_o - p_e) / (1 - p_e)


def test_agreement_summary_value_by_value():
    got = _agreement(Annotations(DF))
    ab = _kappa([("x", "x"), ("y", "y"), ("y", "x")])
    ac = _kappa([("x", "y"), ("y", "y")])
    bc = _kappa([("x", "y"), ("x", "y")])  # b always x, c always y: p_e = 0, kappa 0
    kappas, weights = np.array([ab, ac, bc]), np.array([3, 2, 2])
    pairs = got["cohen_kappa_pairs"]
    assert pairs["n_pairs"] == 3 and pairs["min_common_items"] == 2
    assert pairs["mean"] == pytest.approx(kappas.mean())
    assert pairs["median"] == pytest.approx(np.median(kappas))
    assert pairs["weighted_mean"] == pytest.approx((kappas * weights).sum() / weights.sum())
    assert pairs["min"] == pytest.approx(kappas.min()) and pairs["max"] == pytest.approx(
        kappas.max()
    )
    assert set(got) == {"fleiss_kappa", "krippendorff_alpha", "cohen_kappa_pairs"}
    assert np.isfinite(got["fleiss_kappa"]) and np.isfinite(got["krippendorff_alpha"])


def test_agreement_without_repeated_answers_says_why_and_has_no_numbers():
    single = pd.DataFrame({"item_id": [1, 2, 3], "annotator_id": list("abc"),
                           "label": ["x", "y", "x"]})  # fmt: skip
    got = _agreement(Annotations(single))
    assert got["fleiss_kappa"] is None and got["krippendorff_alpha"] is None
    assert got["note"] == "no item has two or more answers"
    assert got["cohen_kappa_pairs"] == {
        "n_pairs": 0, "min_common_items": 2, "mean": None, "median": None,
        "weighted_mean": None, "min": None, "max": None,
    }  # fmt: skip


def test_undefined_kappa_becomes_none():
    same = pd.DataFrame({"item_id": [1, 1, 2, 2], "annotator_id": list("abab"),
                         "label": ["x"] * 4})  # fmt: skip
    got = _agreement(Annotations(same, classes=["x", "y"]))
    assert got["fleiss_kappa"] is None  # every answer the same class: NaN -> None


def _gold_table(n_gold):
    rows = [(f"q{i:02d}", w, "x" if i % 2 == 0 else "y") for i in range(40) for w in "abc"]
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    gold = pd.Series(["x" if i % 2 == 0 else "y" for i in range(n_gold)],
                     index=[f"q{i:02d}" for i in range(n_gold)])  # fmt: skip
    return Annotations(df, gold=gold if n_gold else None)


@pytest.mark.parametrize(("n_gold", "warned"), [(0, False), (1, True), (29, True), (30, False)])
def test_few_gold_warning_at_its_boundary(n_gold, warned):
    res = run_consensus(_gold_table(n_gold))
    note = f"only {n_gold} gold items: quality measured on gold is rough (see the intervals)"
    assert (note in res.warnings) == warned
    assert res.summary["n_gold"] == n_gold
    # gold of class 0 ('x', q00) counts as gold
    assert bool(res.consensus.loc["q00", "is_gold"]) == (n_gold > 0)


def test_summary_keys_and_values():
    table = Annotations(DF, classes=["x", "y"])
    s = run_consensus(table, method="majority", doubtful_below=0.7).summary
    assert s["classes"] == ["x", "y"] and s["duplicates"] == "raise"
    assert s["n_duplicates"] == 0 and s["doubtful_below"] == 0.7
    assert (s["n_items"], s["n_annotators"], s["n_answers"], s["n_classes"]) == (4, 3, 9, 2)
    assert s["method"] == "majority" and "model_assisted" not in s


def test_model_assisted_runs_on_the_named_base():
    table = Annotations(DF)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    res = run_consensus(table, method="dawid-skene", pred_probs=probs)
    mac = ModelAssistedConsensus(base=DawidSkene()).fit(table, pred_probs=probs)
    np.testing.assert_allclose(res.consensus["confidence"], mac.probas_.max(axis=1))
    assert res.summary["method"] == "model-assisted (dawid-skene)"
    assisted = res.summary["model_assisted"]
    assert assisted["base"] == "dawid-skene"
    assert assisted["model_weight"] == mac.model_weight_
    assert assisted["model_accuracy"] == pytest.approx(mac.model_accuracy_)
    one_coin = run_consensus(table, method="one-coin", pred_probs=probs)
    assert not np.allclose(one_coin.consensus["confidence"], res.consensus["confidence"])


def test_argument_errors():
    table = Annotations(DF)
    for bad in (0, 0.0, 1.5, -0.1):
        with pytest.raises(ValidationError, match=rf"--doubtful-below: got {bad}; pass e.g. 0.8"):
            run_consensus(table, doubtful_below=bad)
    run_consensus(table, doubtful_below=1.0)  # the upper end is allowed
    probs = np.full((4, 2), 0.5)
    with pytest.raises(
        ValidationError,
        match=r"--method: 'majority' with a classifier's pred_probs; model-assisted consensus "
        r"runs on an EM model: pass dawid-skene, one-coin or mace",
    ):
        run_consensus(table, method="majority", pred_probs=probs)


def test_single_answer_warning_says_the_classifier_can_overrule():
    table = Annotations(DF)
    plain = run_consensus(table, method="dawid-skene")
    assert any("consensus is that one annotator's label" in w for w in plain.warnings)
    # 300 items, 1 or 2 answers from 20 annotators of accuracy 0.6; a model right at 0.8
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    rows = []
    for i in range(300):
        for j in rng.choice(20, 1 + int(rng.random() < 0.5), replace=False):
            lab = truth[i] if rng.random() < 0.6 else (truth[i] + rng.integers(1, 3)) % 3
            rows.append((i, j, int(lab)))
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    probs = np.full((300, 3), 0.1)
    probs[np.arange(300), truth] = 0.8
    res = run_consensus(Annotations(df), method="one-coin", pred_probs=probs)
    answers = df.groupby("item_id")["label"]
    single = answers.size() == 1
    overruled = int((res.consensus["label"][single] != answers.first()[single]).sum())
    w = res.summary["model_assisted"]["model_weight"]
    assert w > 0.5 and overruled > 10
    note = (
        f"{int(single.sum())} of 300 items have a single answer: their consensus weighs that "
        f"answer against the classifier (weight {w:.2f}), which overruled it on {overruled}"
    )
    assert note in res.warnings
    assert not any("one annotator's label" in m for m in res.warnings)
