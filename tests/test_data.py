from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.data import Dataset, LabelEncoding, parse_multilabel, read_table
from truelabel.data._names import natural_key, natural_sorted
from truelabel.data._readers import sniff_delimiter
from truelabel.exceptions import DataFormatError, TruelabelWarning, ValidationError


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
    with pytest.warns(TruelabelWarning, match=r"1 label\(s\) had leading or trailing spaces"):
        ds = Dataset.from_pandas(df, label_col="y")
    assert ds.classes == ("a", "b")
    assert ds.labels.tolist() == [1, 0, -1, 1]
    with pytest.warns(TruelabelWarning, match="stripped"):
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


def test_corrupt_jsonl_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"label": "a"}\n\n{"label": "b"}\n{oops\n{"label": "c"}\n')
    with pytest.raises(
        DataFormatError,
        match=r"path: line 4 of '.*bad\.jsonl' is not a JSON object \(Expecting property name "
        r"enclosed in double quotes at column 2\); write one JSON object per line",
    ):
        read_table(path)
    path.write_text('{"label": "a"}\n[1, 2]\n')
    with pytest.raises(DataFormatError, match=r"line 2 of .* \(holds a list, not an object\)"):
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
    with pytest.raises(ValidationError, match="labels: no classes found.*pass classes="):
        Dataset.from_arrays(labels=[None, ""], multi_label=True)
    # with the classes named, no label yet is a cold start, not an error
    ds = Dataset.from_pandas(frame.assign(label=""), label_col="label", classes=["cat"])
    assert (ds.labels == -1).all()
    multi = Dataset.from_arrays(labels=[None, ""], multi_label=True, classes=["a", "b"])
    assert multi.labels.tolist() == [[-1, -1], [-1, -1]]


def test_mixed_label_kinds():
    with pytest.raises(ValidationError, match="labels: mixes integer class indices and class"):
        Dataset.from_arrays(labels=[1, "a"])
    with pytest.raises(ValidationError, match=r"labels: label 0.5 is not an integer class index"):
        Dataset.from_arrays(labels=np.array([0.5, 1.0]))


# -- natural class order ---------------------------------------------------------------------
def test_natural_key_orders_digit_runs_as_numbers():
    names = ["c10", "c2", "c1", "c100", "b", "c02", "a10b2", "a10b10", "a9b99", "x"]
    assert natural_sorted(names) == [
        "a9b99",
        "a10b2",
        "a10b10",
        "b",
        "c1",
        "c02",
        "c2",
        "c10",
        "c100",
        "x",
    ]
    # a naive oracle: compare (text, number) pairs for names of the form <letters><digits>
    simple = [f"{p}{i}" for p in ("c", "d") for i in (0, 1, 2, 9, 10, 11, 99, 100, 101)]
    shuffled = list(np.random.default_rng(0).permutation(simple))
    assert natural_sorted(shuffled) == sorted(simple, key=lambda n: (n[0], int(n[1:])))
    assert natural_key("c2") < natural_key("c10") and natural_key("c02") < natural_key("c2")


def test_classes_found_in_natural_order():
    labels = [f"c{i}" for i in (10, 2, 1, 0, 100, 11)]
    assert LabelEncoding.from_labels(labels).classes == ("c0", "c1", "c2", "c10", "c11", "c100")
    ds = Dataset.from_arrays(None, labels)
    assert ds.classes == ("c0", "c1", "c2", "c10", "c11", "c100")
    assert ds.labels.tolist() == [3, 2, 1, 0, 5, 4]
    _, names, _ = parse_multilabel(["c10|c2", ["c1"]])
    assert names == ("c1", "c2", "c10")


# -- label variants and stripped spaces ---------------------------------------------------
def test_case_and_space_variants_warn_with_counts_and_merge_and_stay_separate():
    labels = ["ham"] * 7 + ["Ham"] * 3 + ["spam"] * 4 + ["SPAM"] * 2 + ["Sp am"] + ["eggs"]
    with pytest.warns(TruelabelWarning) as record:
        enc = LabelEncoding.from_labels(labels)
    assert len(record) == 1
    message = str(record[0].message)
    assert message.startswith(
        "labels: 2 group(s) of labels differ only in case or spacing and are kept as separate "
        "classes: 'ham' (7 items) / 'Ham' (3 items); 'spam' (4 items) / 'SPAM' (2 items). "
    ), message
    assert "replace({'Ham': 'ham', 'SPAM': 'spam'})" in message
    assert enc.classes == ("Ham", "SPAM", "Sp am", "eggs", "ham", "spam")  # not merged
    # 'Sp am' is not a variant of 'spam' (a space inside a word is not spacing)
    labels2 = ["spam"] * 4 + ["SPAM"] * 2 + ["spam  offer", "Spam offer", "Spam offer"]
    with pytest.warns(TruelabelWarning) as record:
        LabelEncoding.from_labels(labels2)
    message = str(record[0].message)
    assert "2 group(s)" in message
    assert "'Spam offer' (2 items) / 'spam  offer' (1 items)" in message
    assert "'spam' (4 items) / 'SPAM' (2 items)" in message
    assert "replace({'SPAM': 'spam', 'spam  offer': 'Spam offer'})" in message


def test_no_variant_warning_when_classes_are_given_or_names_differ():
    LabelEncoding.from_labels(["ham", "Ham"], classes=["ham", "Ham"])  # warnings are errors
    LabelEncoding.from_labels(["ham", "spam", "hams"])


def test_stripped_labels_are_said_and_counted():
    with pytest.warns(TruelabelWarning) as record:
        ds = Dataset.from_arrays(None, ["spam ", "spam", " ham", "ham", "spam "])
    assert [str(r.message) for r in record] == [
        "labels: 3 label(s) had leading or trailing spaces ('spam ' -> 'spam', ' ham' -> 'ham'); "
        "they were stripped, so they count as the stripped class"
    ]
    assert ds.classes == ("ham", "spam") and ds.labels.tolist() == [1, 1, 0, 0, 1]
    assert ds.warnings == [str(record[0].message)]
    assert ds.labeled().warnings == ds.warnings


def test_dataset_keeps_the_warnings_of_reading_the_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text\tlabel\nhello, you\tham\nbuy, now\tHam\n")
    with pytest.warns(TruelabelWarning):
        ds = Dataset.from_file(path, label_col="label", text_col="text")
    assert len(ds.warnings) == 2
    assert "tab-separated" in ds.warnings[0] and "differ only in case" in ds.warnings[1]
    assert ds.texts == ["hello, you", "buy, now"]


# -- delimiters ---------------------------------------------------------------------------
def test_tsv_named_csv_is_sniffed(tmp_path):
    rows = [f"What is thing {i}, really ?\t{'DESC' if i % 2 else 'HUM'}" for i in range(40)]
    path = tmp_path / "trec.csv"
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    assert sniff_delimiter(path) == "\t"
    with pytest.warns(
        TruelabelWarning,
        match=r"path: '.*trec\.csv' is tab-separated, not comma-separated as its suffix says",
    ):
        df = read_table(path)
    assert list(df.columns) == ["text", "label"] and len(df) == 40
    assert df["text"].iloc[1] == "What is thing 1, really ?"


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        ("a,b\n1,2\n", ".csv", ","),
        ('text,label\n"tab\there",x\n"more\ttabs\tx",y\n', ".csv", ","),
        ("a;b\n1;2\n3;4\n", ".csv", ";"),
        ("a|b\n1|2\n", ".csv", "|"),
        ("a,b\n1,2\n", ".tsv", ","),
        ("a\tb\n1\t2\n", ".tsv", "\t"),
        ("text\nhello, world\nhi, there\n", ".csv", ","),
    ],
)
def test_sniff_delimiter_cases(tmp_path, content, suffix, expected):
    path = tmp_path / f"f{suffix}"
    path.write_text(content)
    default = "," if suffix == ".csv" else "\t"
    assert sniff_delimiter(path, default) == expected


def test_csv_parse_error_gets_a_hint(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("text,label\n" + "ok,a\n" * 5 + "one, two,b\n")
    with pytest.raises(
        DataFormatError,
        match=r"cannot read '.*bad\.csv' as comma-separated values: .*Expected 2 fields in "
        r"line 7, saw 3; a line has more fields than the header: quote fields that contain "
        r"the delimiter \(','\)",
    ):
        read_table(path)


def test_a_pool_with_no_labels_needs_the_classes_named():
    df = pd.DataFrame({"text": ["a b", "c d", "e f"], "y": [None, None, None]})
    ds = Dataset.from_pandas(df, label_col=None, text_col="text", classes=["z", "a"])
    assert ds.classes == ("z", "a") and ds.labels.tolist() == [-1, -1, -1]
    assert len(ds.labeled()) == 0 and ds.texts == ["a b", "c d", "e f"]
    same = Dataset.from_pandas(df, label_col="y", classes=["z", "a"])  # an empty column
    assert same.labels.tolist() == [-1, -1, -1]
    with pytest.raises(ValidationError, match=r"label_col: is None and no classes.*classes=\["):
        Dataset.from_pandas(df, label_col=None, text_col="text")
    with pytest.raises(ValidationError, match=r"labels: no labelled rows.*name the classes"):
        Dataset.from_pandas(df, label_col="y")
    with pytest.raises(ValidationError, match=r"labels: no labelled rows.*name the classes"):
        Dataset.from_arrays(labels=[None, None])
    assert Dataset.from_arrays(labels=[None, None], classes=["p", "q"]).n_classes == 2
