from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.data import Dataset, LabelEncoding, parse_multilabel, read_table
from truelabel.exceptions import DataFormatError, ValidationError


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["007", "008", "009", "010", "011"],
            "text": ["a cat", None, "a dog", "two cats", "fish"],
            "f_0": [0.1, 0.2, 0.3, 0.4, 0.5],
            "other": [1, 2, 3, 4, 5],
            "f_1": [1.0, 2.0, 3.0, 4.0, 5.0],
            "label": ["cat", "dog", None, "cat", "dog"],
        }
    )


def _write(df: pd.DataFrame, path) -> None:
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)


# -- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl"])
def test_round_trip_each_format(frame, tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    _write(frame, path)
    options = dict(label_col="label", text_col="text", feature_cols="f_*", id_col="id")
    ds = Dataset.from_file(path, **options)
    assert ds.classes == ("cat", "dog")
    assert ds.labels.tolist() == [0, 1, -1, 0, 1]
    assert ds.labels.dtype == np.int64
    assert list(ds.ids) == ["007", "008", "009", "010", "011"]
    assert ds.texts == ["a cat", "", "a dog", "two cats", "fish"]
    assert ds.features is not None and ds.features.dtype == np.float32
    np.testing.assert_allclose(ds.features[:, 1], [1, 2, 3, 4, 5])
    reader = {".csv": Dataset.from_csv, ".parquet": Dataset.from_parquet}.get(
        suffix, Dataset.from_jsonl if suffix == ".jsonl" else Dataset.from_file
    )
    same = reader(path, **options)
    assert same.labels.tolist() == ds.labels.tolist() and list(same.ids) == list(ds.ids)


def test_json_array_and_ndjson(frame, tmp_path):
    frame.to_json(tmp_path / "d.json", orient="records")
    frame.to_json(tmp_path / "d.ndjson", orient="records", lines=True)
    for name in ("d.json", "d.ndjson"):
        ds = Dataset.from_file(tmp_path / name, label_col="label", id_col="id")
        assert ds.labels.tolist() == [0, 1, -1, 0, 1]
        assert ds.ids[0] == "007"


def test_read_table_reads_ids_as_strings(frame, tmp_path):
    frame.to_csv(tmp_path / "d.csv", index=False)
    df = read_table(tmp_path / "d.csv", id_col="id")
    assert df["id"].tolist()[0] == "007"
    assert len(read_table(tmp_path / "d.csv")) == 5


# -- labels ------------------------------------------------------------------------------------
def test_integer_labels_kept_as_indices():
    ds = Dataset.from_pandas(pd.DataFrame({"y": [2, 0, 2, 1]}), label_col="y")
    assert ds.classes == ("0", "1", "2")
    assert ds.labels.tolist() == [2, 0, 2, 1]
    named = Dataset.from_pandas(
        pd.DataFrame({"y": [2, 0, np.nan]}), label_col="y", classes=["a", "b", "c"]
    )
    assert named.classes == ("a", "b", "c")
    assert named.labels.tolist() == [2, 0, -1]
    assert named.label_names.tolist() == ["c", "a", None]


def test_string_labels_sorted_or_given_order():
    df = pd.DataFrame({"y": ["b", " a", "", "b"]})
    ds = Dataset.from_pandas(df, label_col="y")
    assert ds.classes == ("a", "b")
    assert ds.labels.tolist() == [1, 0, -1, 1]
    given = Dataset.from_pandas(df, label_col="y", classes=["b", "a", "z"])
    assert given.labels.tolist() == [0, 1, -1, 0]
    assert given.class_counts.to_dict() == {"b": 2, "a": 1, "z": 0}


def test_missing_labels_and_labeled(frame):
    ds = Dataset.from_pandas(frame, label_col="label", text_col="text", feature_cols=["f_0"])
    assert ds.labeled_mask.tolist() == [True, True, False, True, True]
    assert ds.label_names.tolist() == ["cat", "dog", None, "cat", "dog"]
    sub = ds.labeled()
    assert len(sub) == 4 and sub.n_classes == 2
    assert -1 not in sub.labels
    assert sub.texts is not None and len(sub.texts) == 4
    assert sub.features is not None and sub.features.shape == (4, 1)
    assert list(sub.ids) == [0, 1, 3, 4]
    assert "n_items=5" in repr(ds) and "n_labeled=4" in repr(ds)


def test_label_encoding_methods():
    enc = LabelEncoding(("cat", "dog"))
    assert enc.encode(["dog", None, float("nan"), "", "cat"]).tolist() == [1, -1, -1, -1, 0]
    assert enc.encode(np.array([1, 0])).tolist() == [1, 0]
    assert enc.decode(np.array([1, -1])).tolist() == ["dog", None]
    assert enc.index_of("dog") == 1
    with pytest.raises(ValidationError, match=r"name: no class named 'dgo'; did you mean 'dog'"):
        enc.index_of("dgo")
    with pytest.raises(ValidationError, match="class 'a' is listed twice"):
        LabelEncoding(("a", "a"))


def test_features_absent_by_default(frame):
    ds = Dataset.from_pandas(frame, label_col="label")
    assert ds.features is None and ds.texts is None and not ds.is_multi_label


def test_feature_prefix_expands_in_column_order(frame):
    df = frame.assign(f_extra=1.5)
    ds = Dataset.from_pandas(df, label_col="label", feature_cols="f_*")
    assert ds.features is not None and ds.features.shape == (5, 3)
    np.testing.assert_allclose(ds.features[0], [0.1, 1.0, 1.5], rtol=1e-6)


# -- multi-label -------------------------------------------------------------------------------
EXPECTED = [[1, 1, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]]


@pytest.mark.parametrize(
    "values",
    [
        [["a", "b"], ("c",), None, {"b"}],
        ["a|b", "c", "", "b"],
        ["a; b", "c", None, "b"],
        np.array([[1, 1, 0], [0, 0, 1], [np.nan] * 3, [0, 1, 0]]),
        pd.DataFrame([[1, 1, 0], [0, 0, 1], [np.nan] * 3, [0, 1, 0]], columns=["a", "b", "c"]),
    ],
)
def test_multilabel_forms_give_same_matrix(values):
    classes = None if not isinstance(values, np.ndarray) else ["a", "b", "c"]
    matrix, names, missing = parse_multilabel(values, classes=classes)
    assert matrix.dtype == np.int8
    assert matrix.tolist() == EXPECTED
    assert names == ("a", "b", "c")
    assert missing.tolist() == [False, False, True, False]


def test_multilabel_ints_explicit_sep_and_empty_list():
    matrix, names, missing = parse_multilabel([[0, 2], [], [1]])
    assert names == ("0", "1", "2")
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert not missing.any()
    matrix, names, _ = parse_multilabel(["a/b", "b"], sep="/")
    assert names == ("a", "b") and matrix.tolist() == [[1, 1], [0, 1]]


def test_multilabel_dataset(tmp_path):
    df = pd.DataFrame({"tags": ["a|b", "c", None, "b"]})
    ds = Dataset.from_pandas(df, label_col="tags", multi_label=True)
    assert ds.is_multi_label and ds.labels.shape == (4, 3)
    assert ds.labeled_mask.tolist() == [True, True, False, True]
    assert ds.labeled().labels.tolist() == [EXPECTED[i] for i in (0, 1, 3)]
    assert ds.label_names.tolist() == [("a", "b"), ("c",), None, ("b",)]
    assert ds.class_counts.to_dict() == {"a": 1, "b": 2, "c": 1}
    pd.DataFrame({"tags": [["a", "b"], ["c"], None, ["b"]]}).to_parquet(tmp_path / "m.parquet")
    pq = Dataset.from_parquet(tmp_path / "m.parquet", label_col="tags", multi_label=True)
    assert pq.labels.tolist() == ds.labels.tolist()


def test_multilabel_unknown_class():
    with pytest.raises(
        ValidationError,
        match=r"labels: row 1 has label 'dgo', which is not in classes; "
        r"did you mean 'dog'\?",
    ):
        parse_multilabel(["cat", "cat|dgo"], classes=["cat", "dog"])


# -- from_arrays -------------------------------------------------------------------------------
def test_from_arrays():
    X = np.arange(8, dtype=np.float64).reshape(4, 2)
    ds = Dataset.from_arrays(X, np.array([1, 0, 1, 1]), ids=["a", "b", "c", "d"], texts=["x"] * 4)
    assert ds.classes == ("0", "1") and ds.features is not None
    assert ds.features.dtype == np.float32 and list(ds.ids) == ["a", "b", "c", "d"]
    no_x = Dataset.from_arrays(labels=["dog", "cat", None])
    assert no_x.features is None and no_x.labels.tolist() == [1, 0, -1]
    multi = Dataset.from_arrays(labels=[["a"], ["a", "b"]])
    assert multi.is_multi_label and multi.labels.tolist() == [[1, 0], [1, 1]]


def test_from_arrays_length_mismatch():
    with pytest.raises(ValidationError, match=r"X: has 3 rows but labels has 2 items"):
        Dataset.from_arrays(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValidationError, match=r"X: row 1 contains NaN or inf"):
        Dataset.from_arrays(np.array([[0.0], [np.nan]]), [0, 1])


# -- errors ------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    (tmp_path / "train.csv").write_text("label\na\n")
    with pytest.raises(DataFormatError, match=r"path: file '.*trian\.csv' does not exist; "):
        Dataset.from_csv(tmp_path / "trian.csv", label_col="label")
    with pytest.raises(DataFormatError, match=r"did you mean '.*train\.csv'"):
        read_table(tmp_path / "trian.csv")


@pytest.mark.parametrize("content", ["", "id,label\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=r"empty\.csv' has no rows"):
        Dataset.from_csv(path, label_col="label")


def test_empty_parquet(tmp_path):
    pd.DataFrame({"label": pd.Series([], dtype=str)}).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataFormatError, match="has no rows"):
        read_table(tmp_path / "e.parquet")


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not a parquet file" * 8)
    with pytest.raises(DataFormatError, match=r"cannot read '.*bad\.parquet' as Parquet") as info:
        Dataset.from_parquet(path, label_col="label")
    assert info.value.__cause__ is not None


def test_corrupt_jsonl(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"label": "a"}\n{oops\n')
    with pytest.raises(DataFormatError, match=r"cannot read '.*bad\.jsonl' as JSON Lines"):
        read_table(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(
        DataFormatError,
        match=r"unsupported file suffix '\.xlsx'.*use one of "
        r"\.csv, \.tsv, \.parquet, \.pq, \.jsonl, \.ndjson, \.json",
    ):
        Dataset.from_file(path, label_col="label")


def test_wrong_column_name(frame):
    with pytest.raises(
        ValidationError, match=r"label_col: no column named 'lable'; did you mean 'label'\?"
    ):
        Dataset.from_pandas(frame, label_col="lable")
    with pytest.raises(ValidationError, match=r"text_col: no column named 'txt'"):
        Dataset.from_pandas(frame, label_col="label", text_col="txt")
    with pytest.raises(ValidationError, match=r"feature_cols: no column named 'f_2'"):
        Dataset.from_pandas(frame, label_col="label", feature_cols=["f_0", "f_2"])
    with pytest.raises(ValidationError, match=r"feature_cols: no column matches 'g_\*'"):
        Dataset.from_pandas(frame, label_col="label", feature_cols="g_*")


def test_wrong_id_col_in_file(frame, tmp_path):
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ValidationError, match=r"id_col: no column named 'ID'; did you mean 'id'"):
        Dataset.from_csv(tmp_path / "d.csv", label_col="label", id_col="ID")


def test_duplicate_ids(frame):
    df = frame.assign(id=["a", "b", "a", "c", "a"])
    with pytest.raises(
        ValidationError, match=r"id_col: id 'a' appears 3 times \(1 duplicated id\(s\) in all\)"
    ):
        Dataset.from_pandas(df, label_col="label", id_col="id")
    with pytest.raises(ValidationError, match=r"ids: id 'x' appears 2 times"):
        Dataset.from_arrays(labels=[0, 1], ids=["x", "x"])


def test_missing_id(frame):
    df = frame.assign(id=["a", None, "b", "c", "d"])
    with pytest.raises(ValidationError, match=r"id_col: row 1 has a missing id"):
        Dataset.from_pandas(df, label_col="label", id_col="id")


def test_non_numeric_feature(frame):
    df = frame.assign(f_1=["1", "2", "three", "4", "5"])
    with pytest.raises(
        ValidationError,
        match=r"feature_cols: column 'f_1' is not numeric \(row 2, id 2, has 'three'\)",
    ):
        Dataset.from_pandas(df, label_col="label", feature_cols="f_*")


def test_nan_feature(frame):
    df = frame.assign(f_0=[0.1, 0.2, 0.3, np.nan, 0.5])
    with pytest.raises(
        ValidationError,
        match=r"feature_cols: column 'f_0' has a missing or infinite value at row 3",
    ):
        Dataset.from_pandas(df, label_col="label", feature_cols="f_*")


def test_label_not_in_classes(frame):
    with pytest.raises(
        ValidationError,
        match=r"labels: row 1 has label 'dog', which is not in classes; did you mean 'dogs'\?",
    ):
        Dataset.from_pandas(frame, label_col="label", classes=["cat", "dogs"])
    with pytest.raises(ValidationError, match=r"labels: label 3 is outside the class set \[0, 2\)"):
        Dataset.from_arrays(labels=[0, 3], classes=["a", "b"])


def test_all_labels_missing(frame):
    with pytest.raises(ValidationError, match="labels: no labelled rows"):
        Dataset.from_pandas(frame.assign(label=None), label_col="label")
    with pytest.raises(ValidationError, match="labels: no labelled rows"):
        Dataset.from_pandas(frame.assign(label=""), label_col="label", classes=["cat"])
    with pytest.raises(ValidationError, match="labels: no labelled rows"):
        Dataset.from_arrays(labels=[None, ""], multi_label=True, classes=["a"])


def test_mixed_label_kinds():
    with pytest.raises(ValidationError, match="labels: mixes integer class indices and class"):
        Dataset.from_arrays(labels=[1, "a"])
    with pytest.raises(ValidationError, match=r"labels: label 0.5 is not an integer class index"):
        Dataset.from_arrays(labels=np.array([0.5, 1.0]))
