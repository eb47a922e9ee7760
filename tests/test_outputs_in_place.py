"""The detectors' and majority votes' per-item outputs are scratch arrays filled in place: with
spilling forced every output column reaches the audit's ``spill_copy`` already spilled (so the
copy is a no-op), and the values are bit for bit those of the run without spilling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit
from truelabel._spill import is_spilled, spill_at
from truelabel.aggregate import MajorityVote, WeightedMajorityVote
from truelabel.detect import _audit

#: columns that are the caller's own arrays (kept as they are), not a detector's output
_INPUTS = {"given_label"}


def _data(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    p = rng.dirichlet(np.ones(k), size=n)
    p[np.arange(n), y] += 1.0
    p /= p.sum(axis=1, keepdims=True)
    y = np.where(rng.random(n) < 0.1, (y + 1) % k, y)  # 10% wrong labels
    x = rng.normal(size=(n, 5))
    x[7] = x[3]  # an exact copy
    x[11] = x[3] + 1e-4  # a near copy
    x[0] += 25.0  # an outlier
    return y, p, x


def _run(spill, monkeypatch, **kw):
    """Audit.run with spilling forced or off; records, per column, whether it was already a
    spill file when handed to spill_copy."""
    seen: dict[str, bool] = {}
    real = _audit.spill_copy

    def record(arr):
        seen[len(seen)] = is_spilled(arr)
        return real(arr)

    monkeypatch.setattr(_audit, "spill_copy", record)
    with spill_at(0 if spill else 1 << 40):
        res = Audit(kw.pop("issue_types")).run(**kw)
    monkeypatch.setattr(_audit, "spill_copy", real)
    return res, seen


def _same_bits(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        assert x.dtype == y.dtype, c
        if x.dtype.kind in "fiub":
            assert x.tobytes() == y.tobytes(), c
        else:
            assert x.tolist() == y.tolist(), c


CASES = {
    "euclidean": dict(
        issue_types={"label": {}, "outlier": {}, "near_duplicate": {"metric": "euclidean"}},
        with_features=True,
    ),
    "cosine": dict(issue_types={"outlier": {}, "near_duplicate": {"metric": "cosine"}}, unit=True),
    "pred_probs_only": dict(issue_types={"label": {"use_knn": False}, "outlier": {}}),
    "unlabelled_rows": dict(issue_types={"label": {}}, with_features=True, unlabelled=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_spilled_in_place_and_bit_identical(case, monkeypatch):
    spec = dict(CASES[case])
    y, p, x = _data()
    if spec.pop("unlabelled", False):
        y = y.copy()
        y[::7] = -1
    kw: dict = {"issue_types": spec.pop("issue_types"), "labels": y, "pred_probs": p}
    if spec.pop("with_features", False):
        kw["features"] = x
    if spec.pop("unit", False):
        kw["features"] = x / np.linalg.norm(x, axis=1, keepdims=True)
    plain, _ = _run(False, monkeypatch, **dict(kw))
    forced, seen = _run(True, monkeypatch, **dict(kw))
    _same_bits(plain.issues, forced.issues)
    outputs = [c for c in forced.issues.columns if c not in _INPUTS]
    assert outputs and len(seen) == len(outputs)
    assert all(seen.values()), dict(zip(outputs, seen.values(), strict=True))
    for c in outputs:  # class-name columns are Arrow strings built afterwards (take_names)
        if forced.issues[c].dtype.kind in "fiub":
            assert is_spilled(forced.issues[c].to_numpy()), c
    if "is_label_issue" in plain.issues:  # the unforced run's values are the real ones
        assert plain.issues["is_label_issue"].any()
        unlabelled = y < 0  # no score, no flag (the fill of the scratch columns)
        assert forced.issues["label_score"].isna().to_numpy().tolist() == unlabelled.tolist()
        assert not forced.issues["is_label_issue"].to_numpy()[unlabelled].any()


ROWS = [
    ("i1", "a", "x"),
    ("i1", "b", "x"),
    ("i1", "c", "y"),
    ("i2", "a", "y"),
    ("i2", "b", "x"),
    ("i3", "a", "z"),
    ("i3", "b", "z"),
    ("i3", "c", "x"),
    ("i4", "c", "y"),
]


@pytest.mark.parametrize(
    "make",
    [
        MajorityVote,
        WeightedMajorityVote,
        lambda: WeightedMajorityVote(weights={"a": 1.0, "b": 2.0, "c": 0.0}),
    ],
)
def test_vote_posteriors_spilled_and_bit_identical(make):
    df = pd.DataFrame(ROWS, columns=["item_id", "annotator_id", "label"])
    plain = make().fit(df)
    with spill_at(0):
        forced = make().fit(df)
    a, b = plain.probas_.to_numpy(), forced.probas_.to_numpy()
    assert a.tobytes() == b.tobytes()
    assert is_spilled(b) and not is_spilled(a)
    np.testing.assert_allclose(a.sum(axis=1), 1.0)


def test_weighted_votes_without_weight_are_uniform():
    """An item whose only annotator weighs 0 gets 1/K on every class (the guarded branch)."""
    df = pd.DataFrame(ROWS, columns=["item_id", "annotator_id", "label"])
    with spill_at(0):
        got = WeightedMajorityVote(weights={"a": 1.0, "b": 2.0, "c": 0.0}).fit(df).probas_
    np.testing.assert_array_equal(got.loc["i4"].to_numpy(), np.full(3, 1 / 3))
    np.testing.assert_array_equal(got.loc["i2"].to_numpy(), [2 / 3, 1 / 3, 0.0])
