"""Annotations read from Parquet in record batches equal the in-memory table, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from truelabel.aggregate import DawidSkene
from truelabel.aggregate._table import Annotations, as_annotations
from truelabel.exceptions import ValidationError


def _crowd(n: int = 2500, seed: int = 0, labels: object = ("x", "y", "z")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": rng.integers(100, 700, n),
            "annotator_id": rng.choice(["w1", "w2", "w10", "w3", "spam"], n),
            "label": rng.choice(np.asarray(labels), n),
        }
    )


def _same(a: Annotations, b: Annotations) -> None:
    assert a.items.equals(b.items) and a.annotators.equals(b.annotators)
    assert a.classes.equals(b.classes)
    for name in ("item_codes", "annotator_codes", "label_codes", "gold_codes"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.counts != b.counts).nnz == 0 and a.n_duplicates == b.n_duplicates


@pytest.mark.parametrize("duplicates", ["first", "last", "all"])
@pytest.mark.parametrize("batch_rows", [1, 333, 10**6])
def test_batches_give_the_in_memory_table(tmp_path: Path, duplicates: str, batch_rows: int) -> None:
    df = _crowd(400 if batch_rows == 1 else 2500)
    path = tmp_path / "a.parquet"
    df.to_parquet(path, row_group_size=500)
    gold = pd.Series({int(df["item_id"].iloc[0]): "x", int(df["item_id"].iloc[1]): "z"})
    ref = Annotations(df, duplicates=duplicates, gold=gold)
    got = Annotations.from_parquet(path, duplicates=duplicates, gold=gold, batch_rows=batch_rows)
    _same(ref, got)


def test_dawid_skene_from_a_parquet_path_equals_the_dataframe_fit(tmp_path: Path) -> None:
    df = _crowd(seed=1).drop_duplicates(["item_id", "annotator_id"])
    df.to_parquet(tmp_path / "a.parquet", row_group_size=300)
    ref = DawidSkene().fit(df)
    got = DawidSkene().fit(str(tmp_path / "a.parquet"))
    np.testing.assert_array_equal(got.probas_.to_numpy(), ref.probas_.to_numpy())
    assert got.labels_.equals(ref.labels_)


def test_integer_and_float_labels_and_given_classes(tmp_path: Path) -> None:
    df = _crowd(labels=(2.0, 0.0, 1.0)).drop_duplicates(["item_id", "annotator_id"])
    df.to_parquet(tmp_path / "a.parquet")
    classes = [2, 0, 1, 3]
    _same(
        Annotations(df, classes=classes),
        Annotations.from_parquet(tmp_path / "a.parquet", classes=classes, batch_rows=100),
    )


def test_conflicting_answers_are_refused_with_the_same_message(tmp_path: Path) -> None:
    df = _crowd(300)
    df.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ValidationError) as ref:
        Annotations(df)
    with pytest.raises(ValidationError) as got:
        Annotations.from_parquet(tmp_path / "a.parquet", batch_rows=64)
    assert str(got.value) == str(ref.value)
    assert "more than once with different labels" in str(got.value)


def test_bad_files_are_refused_naming_the_column_and_global_row(tmp_path: Path) -> None:
    df = _crowd(300)
    df.to_parquet(tmp_path / "a.parquet")
    with pytest.raises(
        ValidationError, match=r"annotations: .* has no label column 'labl'.*did you mean 'label'"
    ):
        Annotations.from_parquet(tmp_path / "a.parquet", label="labl")
    with pytest.raises(
        ValidationError,
        match=r"annotations\['label'\]: row 250 has label 'z', which is not in classes",
    ):
        bad = df.copy()
        bad["label"] = "x"
        bad.loc[250, "label"] = "z"
        bad.to_parquet(tmp_path / "b.parquet")
        Annotations.from_parquet(tmp_path / "b.parquet", classes=["x", "y"], batch_rows=100)
    missing = df.copy().astype({"label": object})
    missing.loc[123, "label"] = None
    missing.to_parquet(tmp_path / "c.parquet")
    with pytest.raises(
        ValidationError, match=r"annotations\['label'\]: row 123 has a missing label"
    ):
        Annotations.from_parquet(tmp_path / "c.parquet", batch_rows=50)
    with pytest.raises(ValidationError, match=r"batch_rows: got 0; pass an integer >= 1"):
        Annotations.from_parquet(tmp_path / "a.parquet", batch_rows=0)
    with pytest.raises(ValidationError, match=r"annotations: file .*nope.parquet' does not exist"):
        as_annotations(tmp_path / "nope.parquet")


@pytest.mark.parametrize("spill", [False, True])
@pytest.mark.parametrize("batch_rows", [1, 7, 333, 10**6])
def test_integer_ids_collected_in_one_scratch_array_give_the_in_memory_table(
    tmp_path: Path, spill: bool, batch_rows: int
) -> None:
    """Integer item and annotator ids: each batch's distinct ids go to one scratch array (a
    spill file when spilling is forced) and give the same table as the DataFrame."""
    from truelabel._spill import is_spilled, spill_at
    from truelabel.aggregate import _table_parquet

    df = _crowd(300 if batch_rows == 1 else 2500, seed=2)
    df["annotator_id"] = df["annotator_id"].map({"w1": 7, "w2": -3, "w10": 10, "w3": 3, "spam": 0})
    path = tmp_path / "i.parquet"
    df.to_parquet(path, row_group_size=400)
    collected: list[np.ndarray] = []
    real = _table_parquet._DistinctIds.pieces

    def recording(self: object) -> list[object]:
        out = real(self)  # type: ignore[arg-type]
        collected.append(out[0])
        return out

    with pytest.MonkeyPatch.context() as mp, spill_at(0 if spill else 1 << 40):
        mp.setattr(_table_parquet._DistinctIds, "pieces", recording)
        got = Annotations.from_parquet(path, batch_rows=batch_rows, duplicates="first")
    _same(Annotations(df, duplicates="first"), got)
    assert [is_spilled(c) for c in collected] == [spill, spill]
    assert collected[0].dtype.kind == "i" and collected[0].size >= got.n_items


def test_distinct_ids_of_mixed_batches_keep_their_order() -> None:
    """A batch of another dtype (and every later one) is kept as its own piece, after the
    integer ones: the pieces are those of the list they replace."""
    from truelabel.aggregate._table_parquet import _DistinctIds

    d = _DistinctIds(10)
    d.add(pd.Series([3, 1, 3], dtype=np.int64))
    d.add(pd.Series([2, 2], dtype=np.int64))
    d.add(pd.Series([5], dtype=np.int32))
    d.add(pd.Series([4], dtype=np.int64))
    d.add(pd.Series(["b", "a", "b"]))
    got = d.pieces()
    assert [p.tolist() for p in got] == [[1, 3, 2], [5], [4], ["b", "a"]]
    assert got[1].dtype == np.int32
