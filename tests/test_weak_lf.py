"""Labeling functions, the applier and the LF analysis table (hand-worked 6-item example)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import LocalBackend
from truelabel.exceptions import ValidationError
from truelabel.weak import (
    ABSTAIN,
    LabelingFunction,
    apply_lfs,
    keyword_lf,
    labeling_function,
    lf_summary,
    regex_lf,
)

CLASSES = ["ham", "spam"]
FRAME = pd.DataFrame(
    {
        "text": [
            "WIN a FREE prize now",
            "are we still on for lunch",
            "call 0800 123456 to claim",
            "freedom of speech",
            None,
            "Txt STOP to end, lol",
        ],
        "n_links": [2, 0, 0, 1, 0, 0],
    }
)


@labeling_function(resources={"limit": 1})
def lf_links(x, limit):
    return "spam" if x.n_links > limit else None


@labeling_function(name="lf_short", mode="frame")
def short_frame(frame):
    lengths = frame["text"].fillna("").str.len().to_numpy()
    return np.where(lengths < 20, 0, ABSTAIN)


@labeling_function(mode="column", column="text")
def lf_lol(series):
    return np.where(series.fillna("").str.contains("lol"), "ham", None)


def test_every_kind_of_lf_gives_the_hand_checked_votes():
    lfs = [
        lf_links,
        short_frame,
        lf_lol,
        keyword_lf("kw_free", ["free", "txt"], "spam"),
        regex_lf("phone", r"\b0800\s?\d{6}\b", 1),
    ]
    L = apply_lfs(FRAME, lfs, classes=CLASSES)
    expected = np.array(
        [
            [1, -1, -1, 1, -1],  # 2 links > 1; 20 chars is not < 20; FREE (case-insensitive)
            [-1, -1, -1, -1, -1],
            [-1, -1, -1, -1, 1],  # the phone regex, int vote
            [-1, 0, -1, -1, -1],  # "freedom" is not the word "free"
            [-1, 0, -1, -1, -1],  # missing text: "" is short; str.contains on None abstains
            [-1, -1, 0, 1, -1],  # "Txt" whole word, "lol"
        ]
    )
    np.testing.assert_array_equal(L, expected)
    assert L.dtype == np.int8
    assert lf_links.name == "lf_links" and lf_links.resources == {"limit": 1}


def test_keyword_case_sensitive_and_regex_flags():
    frame = pd.DataFrame({"text": ["FREE", "free"]})
    L = apply_lfs(frame, [keyword_lf("kw", "free", "spam", case=True)], classes=CLASSES)
    assert L.ravel().tolist() == [-1, 1]
    L = apply_lfs(frame, [regex_lf("rx", "^free$", "spam", flags=0)], classes=CLASSES)
    assert L.ravel().tolist() == [-1, 1]


def test_applier_errors_name_the_lf_and_value():
    frame = pd.DataFrame({"text": ["a", "b"]})
    with pytest.raises(
        ValidationError, match=r"LF 'bad' voted 'spm' \(row 0\).*did you mean 'spam'"
    ):
        apply_lfs(frame, [LabelingFunction("bad", lambda x: "spm")], classes=CLASSES)
    with pytest.raises(ValidationError, match=r"LF 'big' voted 2 \(row 0\), outside \[-1, 2\)"):
        apply_lfs(frame, [LabelingFunction("big", lambda x: 2)], classes=CLASSES)
    with pytest.raises(ValidationError, match="two LFs are named 'kw'"):
        apply_lfs(frame, [keyword_lf("kw", ["a"], 0), keyword_lf("kw", ["b"], 1)], classes=CLASSES)
    with pytest.raises(ValidationError, match=r"LF 'f' returned shape \(3,\) for 2 rows"):
        apply_lfs(
            frame, [LabelingFunction("f", lambda d: [0, 1, 0], mode="frame")], classes=CLASSES
        )
    with pytest.raises(ValidationError, match="column: LF 'c' has mode='column' but no column"):
        LabelingFunction("c", len, mode="column")
    with pytest.raises(ValidationError, match="no column named 'txt'.*did you mean 'text'"):
        apply_lfs(frame, [keyword_lf("k", ["a"], 0, column="txt")], classes=CLASSES)
    with pytest.raises(ValidationError, match="classes: got \\['ham'\\]"):
        apply_lfs(frame, [keyword_lf("k", ["a"], 0)], classes=["ham"])
    with pytest.raises(ValidationError, match="pattern: LF 'r'.*not a valid regex"):
        regex_lf("r", "(", 0)
    with pytest.raises(ValidationError, match="keywords: LF 'k' got \\[\\]"):
        keyword_lf("k", [], 0)


# Hand-worked 6-item example: 3 LFs, classes ham=0 / spam=1, gold -1 = unknown.
L6 = np.array(
    [
        [0, 0, -1],
        [1, 0, -1],
        [1, -1, 1],
        [-1, -1, -1],
        [-1, 1, 1],
        [0, -1, -1],
    ]
)
GOLD6 = np.array([0, 1, 1, 0, -1, 1])


def test_lf_summary_on_the_hand_worked_example():
    table = lf_summary(L6, lf_names=["a", "b", "c"], labels=GOLD6, classes=CLASSES)
    # a votes rows 0,1,2,5; rows with >= 2 votes: 0,1,2,4; the only conflicting row: 1
    assert table.loc["a", "polarity"] == ["ham", "spam"]
    assert table.loc["c", "polarity"] == ["spam"]
    np.testing.assert_allclose(table["coverage"], [4 / 6, 3 / 6, 2 / 6])
    np.testing.assert_allclose(table["overlaps"], [3 / 6, 3 / 6, 2 / 6])
    np.testing.assert_allclose(table["conflicts"], [1 / 6, 1 / 6, 0.0])
    assert table["correct"].tolist() == [3, 1, 1]  # a: rows 0,1,2 right, 5 wrong
    assert table["incorrect"].tolist() == [1, 1, 0]  # b: row 4 has no gold
    np.testing.assert_allclose(table["emp_accuracy"], [0.75, 0.5, 1.0])


def test_lf_summary_without_gold_and_lf_never_on_gold():
    table = lf_summary(L6)
    assert list(table.columns) == ["polarity", "coverage", "overlaps", "conflicts"]
    assert table.loc["lf_2", "polarity"] == [1]
    only_unknown = lf_summary(L6[:, 1:], labels=np.array([-1, -1, 1, 0, -1, 1]))
    assert np.isnan(only_unknown.loc["lf_0", "emp_accuracy"])


def test_lf_summary_is_identical_for_any_chunking():
    rng = np.random.default_rng(3)
    L = rng.integers(-1, 3, size=(1000, 5))
    gold = rng.integers(-1, 3, size=1000)
    ref = lf_summary(L, labels=gold, backend=LocalBackend(1))
    for backend, size in ((LocalBackend(2), 7), (LocalBackend(1), 333), (LocalBackend(2), None)):
        pd.testing.assert_frame_equal(
            lf_summary(L, labels=gold, backend=backend, chunk_size=size), ref
        )
    # against a naive loop
    for j in range(5):
        fired = L[:, j] >= 0
        others = np.delete(L, j, axis=1)
        conflict = [
            fired[i] and any(v >= 0 and v != L[i, j] for v in others[i]) for i in range(1000)
        ]
        assert ref["conflicts"].iloc[j] == pytest.approx(np.mean(conflict))


def test_vote_matrix_errors():
    with pytest.raises(
        ValidationError, match=r"L: vote 2 at \(4, 1\) is outside the class range \[-1, 2\)"
    ):
        lf_summary(np.where(np.arange(18).reshape(6, 3) == 13, 2, L6), classes=CLASSES)
    with pytest.raises(ValidationError, match=r"L: vote -2 at \(0, 0\)"):
        lf_summary(np.array([[-2, 0]]))
    with pytest.raises(
        ValidationError, match=r"expected a non-empty 2-D vote matrix.*got shape \(3,\)"
    ):
        lf_summary(np.array([0, 1, 0]))
    with pytest.raises(ValidationError, match="entry \\(0, 1\\) is 0.5, not an integer vote"):
        lf_summary(np.array([[0.0, 0.5]]))
    with pytest.raises(ValidationError, match="lf_names: has 2 names for 3 LF columns"):
        lf_summary(L6, lf_names=["a", "b"])
    with pytest.raises(ValidationError, match="labels: expected 6 integer class indices"):
        lf_summary(L6, labels=[0, 1])
