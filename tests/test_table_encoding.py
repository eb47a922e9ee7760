"""The answer ordering of ``aggregate/_table.py`` (``_table_sort.py``: one in-place sort of
(pair, row) keys) equals a naive Python oracle for any block size, row-group size and spill
threshold, and equals the argsort it replaced (the fallback for keys wider than 63 bits), bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from truelabel import _spill
from truelabel.aggregate import DawidSkene
from truelabel.aggregate import _table as table
from truelabel.aggregate import _table_sort as table_sort
from truelabel.aggregate._table import Annotations


def _answers(n: int, seed: int, ids: str) -> pd.DataFrame:
    """Unsorted item ids with repeats (strings or ints), many repeated (item, annotator) pairs."""
    rng = np.random.default_rng(seed)
    item = rng.integers(0, max(n // 4, 2), n) * 7 + 3  # sparse, unsorted, repeated
    return pd.DataFrame(
        {
            "item_id": item if ids == "int" else np.char.add("it", item.astype(str)),
            "annotator_id": rng.choice(["b", "a", "c", "zz"], n),
            "label": rng.choice(["no", "yes", "maybe"], n),
        }
    )


def _oracle(df: pd.DataFrame, duplicates: str) -> dict[str, Any]:
    """Codes and dense counts by Python sorting and dictionaries, row by row."""
    items = sorted(set(df["item_id"]))
    annots = sorted(set(df["annotator_id"]))
    classes = sorted(set(df["label"]))
    i_of = {v: c for c, v in enumerate(items)}
    a_of = {v: c for c, v in enumerate(annots)}
    l_of = {v: c for c, v in enumerate(classes)}
    rows = [
        (i_of[i], a_of[a], r, l_of[lab])
        for r, (i, a, lab) in enumerate(zip(df["item_id"], df["annotator_id"], df["label"]))
    ]
    rows.sort()  # item, annotator, then row order
    kept: list[tuple[int, int, int, int]] = []
    for row in rows:
        same_pair = bool(kept) and kept[-1][:2] == row[:2]
        if duplicates == "all" or not same_pair:
            kept.append(row)
        elif duplicates == "last":
            kept[-1] = row
    k = len(classes)
    counts = np.zeros((len(items), len(annots) * k))
    for i, a, _, lab in kept:
        counts[i, a * k + lab] += 1
    return {
        "item_codes": [r[0] for r in kept],
        "annotator_codes": [r[1] for r in kept],
        "label_codes": [r[3] for r in kept],
        "counts": counts,
        "n_duplicates": len(rows) - len({r[:2] for r in rows}),
    }


def _check(ann: Annotations, want: dict[str, Any]) -> None:
    for name in ("item_codes", "annotator_codes", "label_codes"):
        got = getattr(ann, name)
        assert got.dtype == np.int32
        assert got.tolist() == want[name], name
    np.testing.assert_array_equal(ann.counts.toarray(), want["counts"])
    counts = np.asarray(want["counts"])
    nnz_per_row = (counts > 0).sum(axis=1)
    np.testing.assert_array_equal(ann.counts.indptr, np.r_[0, np.cumsum(nnz_per_row)])
    assert ann.n_duplicates == want["n_duplicates"]


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("duplicates", ["first", "last", "all"])
@pytest.mark.parametrize("block", [1, 7, 1 << 20])
def test_codes_and_counts_equal_the_oracle(
    monkeypatch: pytest.MonkeyPatch, ids: str, duplicates: str, block: int
) -> None:
    monkeypatch.setattr(table, "_INDEX_BLOCK", block)  # chunk edges inside pairs
    df = _answers(300, seed=1, ids=ids)
    want = _oracle(df, duplicates)
    assert want["n_duplicates"] > 0
    _check(Annotations(df, duplicates=duplicates), want)


@pytest.mark.parametrize("row_group", [1, 50, 1000])
@pytest.mark.parametrize("spill", [0, None])
def test_parquet_spilled_or_not_equals_the_oracle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_group: int, spill: int | None
) -> None:
    monkeypatch.setattr(table, "_INDEX_BLOCK", 13)
    df = _answers(400, seed=2, ids="str")
    path = tmp_path / "a.parquet"
    df.to_parquet(path, row_group_size=row_group)
    threshold = _spill.DEFAULT_SPILL_BYTES if spill is None else spill
    with _spill.spill_at(threshold):
        ann = Annotations.from_parquet(path, duplicates="last", batch_rows=max(row_group // 2, 1))
    _check(ann, _oracle(df, "last"))
    for arr in (ann.item_codes, ann.label_codes, ann.counts.indptr, ann.counts.indices):
        assert _spill.is_spilled(arr) == (spill == 0)


def test_single_answer_and_identical_repeats() -> None:
    df = pd.DataFrame({"item_id": [5], "annotator_id": ["a"], "label": ["x"]})
    _check(Annotations(df, classes=["x", "y"]), {**_oracle(df, "first"), "counts": [[1, 0]]})
    rep = pd.DataFrame({"item_id": [2, 1, 2], "annotator_id": ["a"] * 3, "label": ["x", "y", "x"]})
    with pytest.warns(UserWarning, match="1 repeated answer"):
        ann = Annotations(rep)
    _check(ann, _oracle(rep, "first"))


@pytest.mark.parametrize("duplicates", ["first", "last", "all"])
def test_the_key_sort_equals_the_argsort_it_replaced(
    monkeypatch: pytest.MonkeyPatch, duplicates: str
) -> None:
    df = _answers(5000, seed=3, ids="int")
    new = Annotations(df, duplicates=duplicates)
    monkeypatch.setattr(table_sort, "_KEY_BITS", 0)  # every table takes the stable argsort
    old = Annotations(df, duplicates=duplicates)
    for name in ("item_codes", "annotator_codes", "label_codes"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name))
    for name in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(new.counts, name), getattr(old.counts, name))


def test_dawid_skene_on_1e5_answers_equals_the_argsort_encoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    df = _answers(100_000, seed=4, ids="int").drop_duplicates(["item_id", "annotator_id"])
    df = df.sample(frac=1.0, random_state=0)  # rows in no order
    new = DawidSkene().fit(df)
    monkeypatch.setattr(table_sort, "_KEY_BITS", 0)
    old = DawidSkene().fit(df)
    np.testing.assert_array_equal(new.probas_.to_numpy(), old.probas_.to_numpy())
    assert new.labels_.equals(old.labels_)
    pd.testing.assert_series_equal(new.skills_, old.skills_, check_exact=True)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint16", "str"])
def test_parquet_id_index_equals_the_dataframe_one(tmp_path: Path, dtype: str) -> None:
    rng = np.random.default_rng(5)
    item = rng.integers(0, 60, 500)
    df = pd.DataFrame(
        {
            "item_id": item.astype(str) if dtype == "str" else item.astype(dtype),
            "annotator_id": rng.integers(0, 9, 500).astype(dtype if dtype != "str" else "int8"),
            "label": rng.choice([3, 1, 2], 500),
        }
    )
    df.to_parquet(tmp_path / "a.parquet", row_group_size=37)
    ref = Annotations(df, duplicates="all")
    got = Annotations.from_parquet(tmp_path / "a.parquet", duplicates="all", batch_rows=37)
    for name in ("items", "annotators"):
        a, b = getattr(ref, name), getattr(got, name)
        assert a.dtype == b.dtype and a.tolist() == b.tolist(), name
    assert got.items.tolist() == sorted(set(df["item_id"]))
    np.testing.assert_array_equal(got.counts.toarray(), ref.counts.toarray())


def test_tables_whose_keys_fit_are_never_argsorted(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("np.argsort called: the N-sized int64 temporaries are back")

    df = _answers(2000, seed=6, ids="str")
    want = _oracle(df, "first")
    monkeypatch.setattr(np, "argsort", refuse)
    _check(Annotations(df, duplicates="first"), want)


@pytest.mark.parametrize(("n_items", "n_annots", "n_rows"), [(2, 2, 4), (4, 1, 4), (2, 3, 5)])
def test_the_key_path_is_taken_exactly_up_to_its_width(
    monkeypatch: pytest.MonkeyPatch, n_items: int, n_annots: int, n_rows: int
) -> None:
    """Pair codes 0..n_items*n_annots-1 need bits(n_items*n_annots - 1) bits and rows
    bits(n_rows - 1): at exactly _KEY_BITS the in-place key sort runs (int32 permutation), one
    bit narrower the argsort (int64), both equal to the stable argsort."""
    rng = np.random.default_rng(n_rows)
    items = rng.integers(0, n_items, n_rows)
    annots = rng.integers(0, n_annots, n_rows)
    items[0], annots[0] = n_items - 1, n_annots - 1  # the widest pair code is present
    pair = items * n_annots + annots
    want = np.argsort(pair, kind="stable")
    want_first = np.r_[True, pair[want][1:] != pair[want][:-1]]
    width = (n_items * n_annots - 1).bit_length() + (n_rows - 1).bit_length()
    for bits, dtype in ((width, np.int32), (width - 1, np.int64)):
        monkeypatch.setattr(table_sort, "_KEY_BITS", bits)
        order, first = table_sort.pair_order(items, annots, n_items, n_annots, chunk=2)
        assert order.dtype == dtype, bits
        np.testing.assert_array_equal(order, want)
        np.testing.assert_array_equal(first, want_first)
