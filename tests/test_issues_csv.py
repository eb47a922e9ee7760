"""issues.csv written block by block in sorted order (``truelabel._issues_csv``): byte for byte
the whole-table writer's file (``sort_values(stable, NaN last).to_csv``), for any block size,
with or without spilling; and ``write_audit``'s files unchanged by it."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit
from truelabel._issues_csv import sort_order, write_csv_blocks
from truelabel._spill import is_spilled, spill_at
from truelabel.exceptions import ValidationError
from truelabel.pipeline import write_audit
from truelabel.report import write_report

BLOCKS = [1, 2, 3, 7, 64, 10_000]


def _whole(table: pd.DataFrame, key: str | None) -> str:
    """The writer before blocks: sort the whole table, then one to_csv."""
    if key is not None:
        table = table.sort_values(key, kind="stable", na_position="last")
    return table.to_csv(index_label="id")


def _blocks(table: pd.DataFrame, key: str | None, block: int) -> str:
    buf = io.StringIO()
    order = None if key is None else sort_order(table[key])
    write_csv_blocks(buf, table, order, block=block, index_label="id")
    return buf.getvalue()


def _tables() -> list[pd.DataFrame]:
    rng = np.random.default_rng(3)
    n = 41
    score = rng.choice([0.1, 0.25, 0.5, np.nan, 1 / 3], size=n)  # ties and NaN
    text = rng.choice(["a,b", 'say "hi"', "ünï ✓ 日本", "line\nbreak", "", "plain"], size=n)
    mixed = pd.DataFrame(
        {
            "row": np.arange(n),
            "label_score": score,
            "is_label_issue": rng.random(n) < 0.3,
            "given_label": pd.array(rng.choice(["cat", "dog, big", None], size=n), dtype="str"),
            "near_duplicate_set": pd.array(rng.choice([1, 2, None], size=n), dtype="Int64"),
            "outlier_score": rng.random(n) * 1e-7,
            "text": text.astype(object),
        },
        index=pd.Index([f"id,{i}" for i in range(n)], name=None),
    )
    return [
        mixed,
        mixed.iloc[:1],
        mixed.iloc[:0],
        pd.DataFrame({"label_score": [np.nan, np.nan, 0.0, 0.0, -0.0]}),
        pd.DataFrame({"label_score": np.full(9, 0.5), "x": list("abcdefghi")}),
    ]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("spill", [False, True])
def test_blocks_are_the_whole_tables_bytes(block, spill):
    for table in _tables():
        want = _whole(table, "label_score")
        with spill_at(0 if spill else 1 << 40):
            got = _blocks(table, "label_score", block)
        assert got == want
        assert _blocks(table, None, block) == _whole(table, None)  # no key: rows as they are


def test_sort_order_is_the_stable_order_with_missing_last():
    key = pd.Series([0.5, np.nan, 0.1, 0.5, np.nan, 0.1])
    np.testing.assert_array_equal(sort_order(key), [2, 5, 0, 3, 1, 4])
    with spill_at(0):
        spilled = sort_order(key)
    assert is_spilled(spilled) and spilled.tolist() == [2, 5, 0, 3, 1, 4]


def _keys(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Keys that exercise the range sort: distinct values, coarse ties, one value repeated
    on most rows (a range edge), signed zeros, infinities, many NaN, a float32 column."""
    return [
        rng.random(n),
        np.round(rng.random(n), 2),
        np.where(rng.random(n) < 0.7, 0.3, rng.random(n)),
        rng.choice([0.0, -0.0, np.nan, 1.0, np.inf, -np.inf, 0.5], n),
        np.where(rng.random(n) < 0.5, np.nan, rng.random(n)),
        np.full(n, np.nan),
        np.full(n, 0.25),
        rng.random(n).astype(np.float32),
    ]


@pytest.mark.parametrize("block", [2, 3, 17, 256, 1 << 20])
@pytest.mark.parametrize("spill", [False, True])
def test_sort_order_by_ranges_is_numpys_stable_argsort(block, spill):
    """Above ``block`` rows the order is built range by range; every position equals the
    whole-array stable argsort's (the order the whole-table writer used)."""
    rng = np.random.default_rng(block)
    for n in (1, 2, 5, 300, 2_000):
        for values in _keys(rng, n):
            with spill_at(0 if spill else 1 << 40):
                got = sort_order(pd.Series(values), block=block)
            assert is_spilled(got) == (spill and n > 0)
            want = np.argsort(values.astype(np.float64), kind="stable")
            np.testing.assert_array_equal(got, want, err_msg=f"n={n} {values[:8]}")
            key = pd.Series(values)
            byp = key.sort_values(kind="stable", na_position="last").index.to_numpy()
            np.testing.assert_array_equal(got, byp)


def test_sort_order_by_ranges_holds_about_a_block(monkeypatch):
    """The ranges' sorts see about ``block`` values each, never the whole column: the
    largest argsort the range sort makes on 200,000 rows with a block of 4,096 (a broken
    cut, e.g. every value in one range, would sort them all at once)."""
    import truelabel._issues_csv as mod

    sizes: list[int] = []
    real = np.argsort

    def counting(a, *args, **kwargs):
        sizes.append(np.asarray(a).size)
        return real(a, *args, **kwargs)

    monkeypatch.setattr(mod.np, "argsort", counting)
    rng = np.random.default_rng(0)
    values = np.where(rng.random(200_000) < 0.4, 0.5, rng.random(200_000))
    values[rng.random(values.size) < 0.1] = np.nan
    got = sort_order(pd.Series(values), block=4_096)
    monkeypatch.undo()
    np.testing.assert_array_equal(got, np.argsort(values, kind="stable"))
    assert max(sizes) < 4 * 4_096


@pytest.mark.parametrize("block", [2, 1 << 20])
def test_sort_order_of_an_object_column_of_floats_and_none_is_pandas_order(block):
    """A score column of Python floats and None (object dtype) sorts as its float values,
    missing last, as ``sort_values`` does; by one argsort or by ranges."""
    key = pd.Series([0.5, None, 0.1, 0.5, None, 0.25, 0.1], dtype=object)
    want = key.sort_values(kind="stable", na_position="last").index.tolist()
    assert want == [2, 6, 5, 0, 3, 1, 4]
    assert sort_order(key, block=block).tolist() == want


def test_sort_order_block_is_checked():
    with pytest.raises(ValidationError, match=r"block.*got 1.*pass a number of rows >= 2"):
        sort_order(pd.Series([0.5, 0.1]), block=1)


def test_block_size_is_checked():
    with pytest.raises(ValidationError, match=r"block.*got 0.*pass a number of rows >= 1"):
        write_csv_blocks(io.StringIO(), pd.DataFrame({"a": [1]}), None, block=0)


def _result():
    rng = np.random.default_rng(0)
    n, k = 120, 3
    y = rng.integers(0, k, size=n)
    p = np.full((n, k), 0.1)
    p[np.arange(n), np.where(rng.random(n) < 0.2, (y + 1) % k, y)] = 0.8
    p = np.round(p / p.sum(axis=1, keepdims=True), 2)  # coarse: ties in label_score
    p /= p.sum(axis=1, keepdims=True)
    x = rng.normal(size=(n, 4))
    x[5] = x[9]  # a near-duplicate pair
    res = Audit({"label": {}, "outlier": {}, "near_duplicate": {}}).run(
        labels=y, pred_probs=p, features=x, classes=["ant", "bee, wasp", 'c"at']
    )
    texts = [f'item {i}, "q" ü✓' if i % 3 else f"t{i}\nnext" for i in range(n)]
    return res, texts


def _no_time(html: str) -> str:
    return re.sub(r"<time[^>]*>[^<]*</time>", "", html)


@pytest.mark.parametrize("spill", [False, True])
def test_write_audit_files_are_the_sorted_tables(tmp_path, spill):
    res, texts = _result()
    assert res.issues["label_score"].duplicated().any()  # ties are exercised
    with spill_at(0 if spill else 1 << 40):
        write_audit(res, tmp_path, texts=texts)
    old = res.issues.copy()
    old.insert(0, "row", np.arange(len(old)))
    old["text"] = texts
    old = old.sort_values("label_score", kind="stable", na_position="last")
    assert (tmp_path / "issues.csv").read_text(encoding="utf-8") == old.to_csv(index_label="id")
    # the report sorts by label_score itself: the unsorted table gives the same page
    write_report(tmp_path / "old.html", old, res.summary)
    got = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert _no_time(got) == _no_time((tmp_path / "old.html").read_text(encoding="utf-8"))


def test_write_audit_annotations_sorted_by_consensus_score(tmp_path):
    rows = [("i1", "a", "x"), ("i1", "b", "x"), ("i1", "c", "y"), ("i2", "a", "y")]
    rows += [("i3", "a", "x"), ("i3", "b", "y"), ("i4", "a", "x"), ("i4", "b", "x")]
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    res = Audit({"consensus": {"method": "majority"}}).run(annotations=df)
    write_audit(res, tmp_path)
    old = res.issues.sort_values("consensus_score", kind="stable", na_position="last")
    assert (tmp_path / "issues.csv").read_text(encoding="utf-8") == old.to_csv(index_label="id")
    assert list(old.index) != list(res.issues.index)  # the sort is exercised
    summary = {**res.summary, "annotators": res.info["consensus"]["annotators"]}
    write_report(tmp_path / "old.html", old, summary)
    got = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert _no_time(got) == _no_time((tmp_path / "old.html").read_text(encoding="utf-8"))


def test_row_positions_across_blocks():
    from truelabel._validation import CHUNK_ROWS
    from truelabel.pipeline import _positions

    n = 2 * CHUNK_ROWS + 5
    np.testing.assert_array_equal(_positions(n), np.arange(n))
    with spill_at(0):
        spilled = _positions(n)
    assert is_spilled(spilled) and np.array_equal(spilled, np.arange(n))


def test_issues_table_keeps_spilled_columns():
    from truelabel.pipeline import _issues_table

    res, texts = _result()
    with spill_at(0):
        table, order = _issues_table(res, texts)
    assert is_spilled(table["row"].to_numpy()) and is_spilled(order)
    np.testing.assert_array_equal(table["row"], np.arange(len(table)))
