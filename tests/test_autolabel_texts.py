"""truelabel autolabel: zero-/few-shot labels for every row, certified from cross-fitted
probabilities of the labeled rows."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.autolabel._step import certify_pool
from truelabel.autolabel._texts import _given_labels, autolabel_texts, min_calibration_items
from truelabel.cli import app
from truelabel.exceptions import ValidationError


class WordHashEncoder:
    """Deterministic bag-of-words vectors (a fake for the ONNX encoder: fast, no model)."""

    name = "word-hash"
    identity = "word-hash-64"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, items):
        items = list(items)
        self.calls.append(items)
        out = np.zeros((len(items), 64), dtype=np.float32)
        for i, t in enumerate(items):
            for w in t.lower().replace("_", " ").split():
                out[i, zlib.crc32(w.encode()) % 64] += 1.0
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


CLASSES = ["card", "refund", "weather"]
WORDS = {
    "card": ["card lost", "my card", "card stolen", "new card please", "card blocked"],
    "refund": ["refund now", "want a refund", "refund my order", "refund late", "money refund"],
    "weather": ["rain today", "weather sunny", "cold weather", "weather storm", "snow weather"],
}


def corpus(n_per_class: int = 20, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, truth = [], []
    for c in CLASSES:
        for i in range(n_per_class):
            texts.append(f"{WORDS[c][i % 5]} {rng.integers(1000)}")
            truth.append(c)
    return texts, truth


def test_min_calibration_items_is_the_zero_error_binomial_bound():
    assert min_calibration_items(0.02, 0.05) == 149  # 0.98**148 = 0.0503 > 0.05 >= 0.98**149
    assert min_calibration_items(0.10, 0.05) == 29
    assert 0.98**148 > 0.05 >= 0.98**149


def test_given_labels_blank_means_unlabeled_and_unknown_names_the_row():
    codes = _given_labels(["card", None, float("nan"), " ", "weather", "refund "], 6, CLASSES)
    assert codes.tolist() == [0, -1, -1, -1, 2, 1]
    with pytest.raises(ValidationError, match=r"labels: row 2 has 'Card', which is not one of"):
        _given_labels(["card", None, "Card"], 3, CLASSES)
    with pytest.raises(ValidationError, match=r"labels: has 2 entries for 3 texts"):
        _given_labels(["card", None], 3, CLASSES)


def test_zero_shot_without_labels_and_no_certificate_without_them():
    texts, truth = corpus()
    enc = WordHashEncoder()
    r = autolabel_texts(texts, CLASSES, encoder=enc, max_error=0.02)
    assert r.summary["method"] == "zero-shot" and (r.labels.method == "zero-shot").all()
    assert r.certify is None
    assert (r.labels.decision == "review").all()
    assert "at least 149 of them" in r.message and "nothing certified" in r.message
    np.testing.assert_allclose(r.pred_probs.sum(axis=1), 1.0)
    # every text encoded once, in one call (class prompts are encoded separately)
    assert sum(len(c) for c in enc.calls if set(c) & set(texts)) == len(set(texts))


def test_labeled_rows_are_scored_by_models_that_never_saw_them(monkeypatch):
    texts, truth = corpus()
    seen: list[tuple[set[str], list[str]]] = []
    from truelabel.model import _fewshot

    Original = _fewshot.FewShotClassifier

    class Spy(Original):  # type: ignore[misc, valid-type]
        def fit(self, X, y):
            self.trained_on_ = set(X)
            return super().fit(X, y)

        def predict_proba(self, X):
            seen.append((self.trained_on_, list(X)))
            return super().predict_proba(X)

    monkeypatch.setattr(_fewshot, "FewShotClassifier", Spy)
    labels = np.array([None] * len(texts), dtype=object)
    rows = np.r_[0:8, 20:28, 40:48]
    labels[rows] = np.array(truth, dtype=object)[rows]
    r = autolabel_texts(texts, CLASSES, labels, encoder=WordHashEncoder(), max_error=0.3)
    labeled = {texts[i] for i in rows}
    pool = [t for i, t in enumerate(texts) if i not in set(rows)]
    scored_labeled = []
    for trained, predicted in seen:
        if set(predicted) <= labeled:
            assert not trained & set(predicted)  # cross-fitted: held out of its model
            scored_labeled += predicted
        else:
            assert predicted == pool and trained == labeled  # final model: all labeled rows
    assert sorted(scored_labeled) == sorted(labeled)
    assert (r.labels.loc[rows, "method"] == "given").all()
    assert (r.labels.loc[rows, "label"] == np.array(truth, dtype=object)[rows]).all()


def test_certificate_equals_the_certify_step_on_the_same_probabilities():
    texts, truth = corpus(30)
    labels = np.array([None] * len(texts), dtype=object)
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(len(texts), 45, replace=False))
    labels[rows] = np.array(truth, dtype=object)[rows]
    r = autolabel_texts(texts, CLASSES, labels, encoder=WordHashEncoder(), max_error=0.2)
    pool = np.setdiff1d(np.arange(len(texts)), rows)
    codes = np.array([CLASSES.index(truth[i]) for i in rows])
    ref = certify_pool(
        r.pred_probs[pool], r.pred_probs[rows], codes, max_error=0.2, classes=CLASSES, index=pool
    )
    assert r.certify is not None
    pd.testing.assert_frame_equal(r.certify.decisions, ref.decisions)
    accepted = ref.decisions["accepted"].to_numpy()
    assert (r.labels.loc[pool, "decision"] == np.where(accepted, "accepted", "review")).all()
    assert (r.labels.loc[rows, "decision"] == "given").all()
    assert r.summary["certificate"]["n_accepted"] == int(accepted.sum())
    assert r.message.endswith(ref.summary["message"])


def test_top3_and_probability_columns_match_pred_probs():
    texts, truth = corpus(5)
    r = autolabel_texts(texts, CLASSES, encoder=WordHashEncoder())
    p = r.pred_probs
    best = p.argmax(axis=1)
    np.testing.assert_allclose(r.labels.probability, p[np.arange(len(p)), best])
    first = r.labels.top3.str.split("|").str[0].str.split(":")
    assert (first.str[0] == np.array(CLASSES, dtype=object)[best]).all()
    np.testing.assert_allclose(first.str[1].astype(float), p.max(axis=1), atol=5e-4)


def test_bad_arguments_name_themselves():
    texts, _ = corpus(2)
    enc = WordHashEncoder()
    with pytest.raises(ValidationError, match=r"max_error: got 0"):
        autolabel_texts(texts, CLASSES, encoder=enc, max_error=0)
    with pytest.raises(ValidationError, match=r"confidence: got 1.0"):
        autolabel_texts(texts, CLASSES, encoder=enc, confidence=1.0)
    with pytest.raises(ValidationError, match=r"classes: got 1 class"):
        autolabel_texts(texts, ["only"], encoder=enc)


def test_cli_writes_labels_pred_probs_and_summary(tmp_path, monkeypatch):
    texts, truth = corpus(10)
    given = [t if i % 4 == 0 else "" for i, t in enumerate(truth)]
    pd.DataFrame({"id": [f"x{i}" for i in range(30)], "text": texts, "given": given}).to_csv(
        tmp_path / "d.csv", index=False
    )
    (tmp_path / "classes.txt").write_text("card\nrefund\nweather\n")
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: WordHashEncoder())
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    args = ["autolabel", str(tmp_path / "d.csv"), "--text-col", "text", "--classes"]
    res = runner.invoke(
        app,
        [
            *args,
            str(tmp_path / "classes.txt"),
            "--label-col",
            "given",
            "--id-col",
            "id",
            "--out",
            str(tmp_path / "o"),
            "--max-error",
            "0.3",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "labels.csv")
    assert table.columns.tolist()[:5] == ["id", "label", "probability", "top3", "method"]
    assert table.id.tolist() == [f"x{i}" for i in range(30)]
    assert (table.method[::4] == "given").all() and (table.method[1::4] == "few-shot").all()
    assert np.load(tmp_path / "o" / "pred_probs.npy").shape == (30, 3)
    summary = json.loads((tmp_path / "o" / "autolabel.json").read_text())
    assert summary["n_labeled"] == 8 and summary["method"] == "few-shot"
    assert "certified" in res.output or "nothing certified" in res.output
    assert "0 of 30 distinct texts from the cache, 30 encoded" in res.output
    res = runner.invoke(
        app,
        [*args, str(tmp_path / "classes.txt"), "--out", str(tmp_path / "o2"), "--quiet"],
    )
    assert res.exit_code == 0, res.output
    assert "30 of 30 distinct texts from the cache, 0 encoded" in res.output
    cached = json.loads((tmp_path / "o2" / "autolabel.json").read_text())["embedding_cache"]
    assert cached["hits"] == 30 and str(tmp_path / "cache") in cached["path"]

    res = runner.invoke(app, [*args, str(tmp_path / "nope.txt"), "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and "--classes: no file" in res.output
    res = runner.invoke(
        app,
        [*args, str(tmp_path / "classes.txt"), "--label-col", "text", "--out", str(tmp_path / "q")],
    )
    assert res.exit_code == 2 and "--label-col: row 0 has" in res.output
    res = runner.invoke(app, [*args, str(tmp_path / "classes.txt"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_the_memo_keeps_the_encoders_capabilities():
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    from truelabel.autolabel._texts import _MemoEncoder
    from truelabel.encode import OnnxTextEncoder
    from truelabel.model._token_view import supports_first_token

    # float32 kernels: "card lost" alone and batched with "refund" give the same vector
    # (int8 kernels scale activations per batch)
    enc = OnnxTextEncoder(quantize=False)
    memo = _MemoEncoder(enc, ["card lost"], enc.encode(["card lost"]))
    assert supports_first_token(memo) and memo.dim == enc.dim
    assert not supports_first_token(_MemoEncoder(WordHashEncoder(), ["a"], np.ones((1, 64))))
    np.testing.assert_array_equal(
        memo.encode(["card lost", "refund"]), enc.encode(["card lost", "refund"])
    )


def test_cli_rows_without_text_are_refused_by_row(tmp_path):
    pd.DataFrame({"text": ["card lost", None, "refund now"]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    (tmp_path / "classes.txt").write_text("card\nrefund\nweather\n")
    res = CliRunner().invoke(
        app,
        [
            "autolabel",
            str(tmp_path / "d.csv"),
            "--text-col",
            "text",
            "--classes",
            str(tmp_path / "classes.txt"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2
    assert "--text-col: row 1 has no text" in res.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize("with_labels", [False, True])
def test_predictions_in_blocks_of_distinct_texts_equal_one_call(monkeypatch, with_labels):
    from truelabel.autolabel import _texts
    from truelabel.model._fewshot import FewShotClassifier
    from truelabel.model._zeroshot import ZeroShotClassifier

    texts, truth = corpus(12)
    texts = texts + texts[:20] + texts[5:9]  # repeated rows: predicted once each
    truth = truth + truth[:20] + truth[5:9]
    labels = [t if i % 6 == 0 else None for i, t in enumerate(truth)] if with_labels else None
    whole = autolabel_texts(texts, CLASSES, labels, encoder=WordHashEncoder())
    seen: list[list[str]] = []
    cls = FewShotClassifier if with_labels else ZeroShotClassifier
    original = cls.predict_proba

    def spy(self, items):
        seen.append(list(items))
        return original(self, items)

    monkeypatch.setattr(cls, "predict_proba", spy)
    monkeypatch.setattr(_texts, "PREDICT_BLOCK", 5)
    blocks = autolabel_texts(texts, CLASSES, labels, encoder=WordHashEncoder())
    np.testing.assert_allclose(blocks.pred_probs, whole.pred_probs, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(blocks.labels, whole.labels)
    given = labels or [None] * len(texts)
    pool = list(dict.fromkeys(t for t, lab in zip(texts, given, strict=True) if lab is None))
    n_calls = -(-len(pool) // 5)
    # the first calls predict the pool: each distinct text once, in blocks of at most 5
    assert [len(c) for c in seen[:n_calls]] == [5] * (n_calls - 1) + [len(pool) - 5 * (n_calls - 1)]
    assert [t for c in seen[:n_calls] for t in c] == pool
