"""Multi-label consensus: one-vs-rest Dawid-Skene through the shared EM, against the binary
DawidSkene on hand-built tables and on a synthetic crowd with known truth and skills."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.aggregate import DawidSkene, MultiLabelDawidSkene
from truelabel.exceptions import NotFittedError, ValidationError

CLASSES = ["a", "b", "c", "d"]


def _crowd(seed=0, n=600):
    """Items with random true sets; 6 annotators with per-class sensitivity/specificity."""
    rng = np.random.default_rng(seed)
    truth = rng.random((n, 4)) < np.array([0.5, 0.3, 0.2, 0.4])
    sens = np.array([0.95, 0.9, 0.9, 0.85, 0.6, 0.55])
    spec = np.array([0.95, 0.95, 0.9, 0.9, 0.6, 0.5])
    rows, said = [], []
    for j in range(6):
        asked = np.flatnonzero(rng.random(n) < 0.7)
        u = rng.random((len(asked), 4))
        ans = np.where(truth[asked], u < sens[j], u >= spec[j])
        said.append((j, asked, ans))
        for i, row in zip(asked, ans, strict=True):
            rows.append((i, f"w{j}", "|".join(np.asarray(CLASSES)[row])))
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    return df, truth, sens, spec, said


def test_each_class_is_the_binary_dawid_skene_of_its_indicator():
    df, truth, *_ = _crowd(n=200)
    ml = MultiLabelDawidSkene(classes=CLASSES).fit(df)
    for c in CLASSES:
        binary = df.assign(label=df["label"].str.split("|").map(lambda s, c=c: int(c in s)))
        ds = DawidSkene(smoothing=0.01).fit(binary)
        np.testing.assert_array_equal(ml.probas_[c].to_numpy(), ds.probas_[1].to_numpy())
        np.testing.assert_array_equal(ml.confusions_[CLASSES.index(c)], ds.confusions_)


def test_synthetic_truth_and_skills_are_recovered():
    df, truth, sens, spec, said = _crowd(seed=1)
    ml = MultiLabelDawidSkene().fit(df)
    assert list(ml.classes_) == CLASSES
    items = ml.probas_.index.to_numpy()
    got = ml.probas_.to_numpy() >= 0.5
    acc = (got == truth[items]).mean()
    # per-class majority of the answers (ties -> absent)
    yes = np.zeros((len(truth), 4))
    n = np.zeros(len(truth))
    for _, asked, ans in said:
        yes[asked] += ans
        n[asked] += 1
    mv = (yes > n[:, None] / 2)[items]
    assert acc > (mv == truth[items]).mean() + 0.01 and acc > 0.95
    # per-class accuracy of each annotator, as realised on its answers
    realised = np.array([(ans == truth[asked]).mean(axis=0) for _, asked, ans in said])
    np.testing.assert_allclose(ml.skills_.to_numpy(), realised, atol=0.04)
    assert np.corrcoef(ml.skills_.to_numpy().ravel(), realised.ravel())[0, 1] > 0.95
    # the label sets are the classes at or above the threshold, in class order
    first = ml.probas_.iloc[0]
    assert ml.labels_.iloc[0] == tuple(c for c in CLASSES if first[c] >= 0.5)
    strict = MultiLabelDawidSkene(threshold=0.99).fit(df)
    assert sum(map(len, strict.labels_)) < sum(map(len, ml.labels_))


def test_set_parsing_lists_empty_sets_and_order():
    df = pd.DataFrame(
        {
            "item_id": [1, 1, 2, 2],
            "annotator_id": ["p", "q", "p", "q"],
            "label": [["y", "x"], "x|y", "", None],
        }
    )
    ml = MultiLabelDawidSkene().fit(df)
    assert ml.labels_.tolist() == [("x", "y"), ()]
    again = MultiLabelDawidSkene().fit(df.iloc[::-1])  # row order does not matter
    pd.testing.assert_frame_equal(again.probas_, ml.probas_)


def test_errors():
    df = pd.DataFrame({"item_id": [1, 1], "annotator_id": ["p", "p"], "label": ["x", "y"]})
    with pytest.raises(ValidationError, match=r"annotator 'p' labeled item 1 more than once"):
        MultiLabelDawidSkene().fit(df)
    ok = MultiLabelDawidSkene().fit(df, duplicates="last")
    assert ok.labels_.tolist() == [("y",)]
    with pytest.raises(ValidationError, match=r"row 1 names class 'y', which is not in classes"):
        MultiLabelDawidSkene(classes=["x", "z"]).fit(df, duplicates="last")
    with pytest.raises(ValidationError, match=r"threshold: got 1.5"):
        MultiLabelDawidSkene(threshold=1.5).fit(df)
    with pytest.raises(ValidationError, match=r"has no label column 'tags'"):
        MultiLabelDawidSkene().fit(df, label="tags")
    with pytest.raises(NotFittedError, match="call fit"):
        _ = MultiLabelDawidSkene().labels_
