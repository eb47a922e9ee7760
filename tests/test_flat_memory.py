"""Issue 11, flat memory: the exact-copy leaders found bucket by bucket in spill files, and the
audit's class-name columns built block by block, equal their whole-array oracles value by value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit
from truelabel._spill import is_spilled, spill_at
from truelabel.detect import _audit
from truelabel.detect import _duplicates as dup


def _naive_leaders(X: np.ndarray, hashes: np.ndarray) -> list[int]:
    """Per row: the first row of its hash group when their bytes are equal, else itself."""
    first: dict[int, int] = {}
    out = []
    for i, h in enumerate(hashes.tolist()):
        lead = first.setdefault(h, i)
        out.append(lead if X[i].tobytes() == X[lead].tobytes() else i)
    return out


@pytest.mark.parametrize("bucket_bits", [0, 2, 5, 16])
@pytest.mark.parametrize("collide", [False, True])
def test_exact_leaders_equal_a_naive_loop(
    monkeypatch: pytest.MonkeyPatch, bucket_bits: int, collide: bool
) -> None:
    rng = np.random.default_rng(bucket_bits + 10 * collide)
    X = rng.integers(0, 3, (700, 3)).astype(np.float32)  # 27 distinct rows: many copies
    X[5] = -0.0  # bytes differ from +0.0: never a copy of a row of zeros
    X[9] = 0.0
    if collide:  # a hash of the first word only: groups mix different rows
        monkeypatch.setattr(
            dup, "_hash_multipliers", lambda w: np.array([1] + [0] * (w - 1), dtype=np.uint64)
        )
    monkeypatch.setattr(dup, "_BUCKET_BITS", bucket_bits)  # 700 rows: up to 256 buckets
    hashes = dup._row_hashes(X.view(np.uint32))
    with spill_at(0):
        got = dup._exact_leaders(X)
    assert is_spilled(got)
    want = _naive_leaders(X, hashes)
    assert got.tolist() == want
    assert got.tolist() == dup._leaders(dup._exact_groups(X)).tolist()
    assert len(set(want)) < 700 and want != list(range(700))


def test_exact_leaders_of_one_row_and_of_all_equal_rows() -> None:
    assert dup._exact_leaders(np.ones((1, 2), np.float32)).tolist() == [0]
    with spill_at(0):
        got = dup._exact_leaders(np.ones((50, 2), np.float32))
    assert got.tolist() == [0] * 50


@pytest.mark.parametrize("block", [1, 3, 1 << 18])
def test_class_names_equal_the_object_column(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(_audit, "_NAMES_BLOCK", block)
    codes = np.array([0, 2, -1, 1, 2, -1, 0])
    names = ["cat", "dog", "cat"]  # a repeated name stays per code
    got = pd.Series(_audit._class_names_of(codes, names))
    want = pd.Series(np.where(codes >= 0, np.asarray(names, dtype=object)[codes], None))
    assert got.dtype == want.dtype
    assert got.equals(want)
    assert got.tolist()[:2] == ["cat", "cat"] and got.isna().tolist() == [
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    assert pd.Series(_audit._class_names_of(codes[:0], names)).size == 0


def test_audit_with_everything_spilled_equals_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's table (near-duplicate leaders in buckets, names in blocks) does not depend
    on where its intermediates live nor on the block sizes."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4)).astype(np.float32)
    X[200:230] = X[:30]  # exact copies
    y = rng.integers(0, 3, 400)
    y[::17] = -1
    truth = np.where(y >= 0, y, 0)
    truth[::11] = (truth[::11] + 1) % 3  # some given labels disagree with the model
    p = (0.2 * rng.dirichlet(np.ones(3), 400) + 0.8 * np.eye(3)[truth]).astype(np.float32)
    kw = {"labels": y, "pred_probs": p, "features": X, "classes": ["a", "b", "c"]}
    issues = {"label": {}, "outlier": {}, "near_duplicate": {}}
    base = Audit(issues, random_state=0).run(**kw).issues
    monkeypatch.setattr(dup, "_BUCKET_BITS", 2)
    monkeypatch.setattr(_audit, "_NAMES_BLOCK", 7)
    with spill_at(0):
        spilled = Audit(issues, random_state=0).run(**kw).issues
    pd.testing.assert_frame_equal(spilled, base)
    sets = base["near_duplicate_set"].to_numpy()
    assert (sets[200:230] == sets[:30]).all() and (sets[:30] >= 0).all()
    assert base["given_label"].isna().sum() == (y == -1).sum()
    assert base["given_label"].iloc[1] == ["a", "b", "c"][y[1]]


@pytest.mark.parametrize("spill", [False, True])
def test_cosine_copies_join_through_their_leaders_alone(spill: bool) -> None:
    """Rows 0, 2 and 5 are the same unit vector, but no candidate of the (fake) graph links
    them: only the exact-copy leaders can join them, with score 0 (cosine 1)."""
    from truelabel.detect._base import AuditContext
    from truelabel.detect._duplicates import NearDuplicateDetector
    from truelabel.detect._original_space import OriginalGraph

    rng = np.random.default_rng(5)
    unit = rng.standard_normal((6, 4)).astype(np.float32)
    unit[[2, 5]] = unit[0]
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    ctx = AuditContext(labels=None, pred_probs=None, features=unit, n_classes=0, n_neighbors=1)
    idx = ((np.arange(6) + 1) % 6)[:, None]  # 0-1, 1-2, ...: never two copies
    ctx.__dict__["original_graph"] = OriginalGraph(idx, np.full((6, 1), 0.1, np.float32), unit)
    with spill_at(0 if spill else 1 << 62):
        cols = NearDuplicateDetector(metric="cosine").detect(ctx).columns
    assert cols["near_duplicate_set"].tolist() == [0, -1, 0, -1, -1, 0]
    score = cols["near_duplicate_score"].to_numpy()
    assert np.allclose(score[[0, 2, 5]], 0.0, atol=1e-6)
    assert np.allclose(score[[1, 3, 4]], 0.9)


@pytest.mark.parametrize("block", [1, 7, 1 << 18])
def test_flagged_neighbors_and_per_class_counts_by_blocks_equal_the_whole_columns(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The flagged rows (any issue) and each issue type's flagged count per given class, a
    block of rows at a time: the values of the whole-column mask and value_counts."""

    rng = np.random.default_rng(21)
    n, k = 160, 3
    y = rng.integers(0, k, n)
    p = np.full((n, k), 0.1)
    p[np.arange(n), np.where(rng.random(n) < 0.25, (y + 1) % k, y)] = 0.8
    p /= p.sum(axis=1, keepdims=True)
    x = rng.normal(size=(n, 4))
    x[[3, 50, 90]] = x[7]  # near-duplicates
    x[11] += 30.0  # an outlier
    monkeypatch.setattr(_audit, "_NAMES_BLOCK", block)
    res = Audit({"label": {}, "outlier": {}, "near_duplicate": {}}).run(
        labels=y, pred_probs=p, features=x, classes=["a", "b", "c"]
    )
    issues = res.issues
    flags = [c for c in issues.columns if c.startswith("is_") and c.endswith("_issue")]
    anyflag = issues[flags].to_numpy(dtype=bool).any(axis=1)
    assert res.neighbors is not None
    assert res.neighbors["rows"].tolist() == np.flatnonzero(anyflag).tolist()
    for t in ("label", "outlier", "near_duplicate"):
        want = issues.loc[issues[f"is_{t}_issue"], "given_label"].value_counts()
        got = res.summary["issues_per_class"][t]
        assert got == {c: int(want.get(c, 0)) for c in ["a", "b", "c"]}
    assert all(issues[f].any() for f in flags)  # every type flags some rows here
