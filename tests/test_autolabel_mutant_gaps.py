"""Tests that kill the mutmut survivors of autolabel/_texts.py and cli/_autolabel.py
(``tools/mutation.sh``, issue 7): the memo encoder, blank labels, top-3 ties, every message
and reason column of ``autolabel_texts``."""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from truelabel.autolabel._texts import _given_labels, _MemoEncoder, _top3, autolabel_texts
from truelabel.exceptions import ValidationError


def _exact(text: str) -> str:
    return f"^{re.escape(text)}$"


class Words:
    """Bag-of-words vectors (deterministic, no model), recording its calls."""

    name = "words"
    identity = "words-32"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, items):
        items = list(items)
        self.calls.append(items)
        out = np.full((len(items), 32), 1e-3, dtype=np.float32)
        for i, t in enumerate(items):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 32] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


CLASSES = ["card", "refund"]
TEXTS = ["card lost", "my card", "card blocked", "refund now", "a refund", "refund late"]


# ------------------------------------------------------------------ the memo encoder


def test_the_memo_serves_known_texts_without_calling_the_encoder():
    words = Words()
    vecs = words.encode(["a", "b"])
    words.calls.clear()
    memo = _MemoEncoder(words, ["a", "b"], vecs)
    assert memo.name == "words" and memo.identity == "words-32"
    np.testing.assert_array_equal(memo.encode(["b", "a", "a"]), vecs[[1, 0, 0]])
    assert words.calls == []
    assert memo.encode([]).shape == (0, 32)
    mixed = memo.encode(["c", "a"])
    np.testing.assert_array_equal(mixed[1], vecs[0])
    np.testing.assert_allclose(mixed[0], Words().encode(["c"])[0])
    assert words.calls == [["c"]]


def test_the_memo_of_an_encoder_without_name_or_identity():
    class Bare:
        def encode(self, items):
            return np.zeros((len(items), 2), dtype=np.float32)

    memo = _MemoEncoder(Bare(), ["a"], np.ones((1, 2), dtype=np.float32))
    assert memo.name == "encoder" and memo.identity == "encoder"


# ------------------------------------------------------------------ labels and top-3


def test_a_missing_label_is_unlabeled_even_when_a_class_is_called_none():
    codes = _given_labels([None, "b", "None", float("nan")], 4, ["None", "b"])
    assert codes.tolist() == [-1, 1, 0, -1]
    with pytest.raises(
        ValidationError,
        match=_exact(
            "labels: row 1 has 'x', which is not one of the classes ['None', 'b']; "
            "fix the label or add the class to the classes"
        ),
    ):
        _given_labels(["b", "x"], 2, ["None", "b"])


def test_top3_ties_keep_the_class_order_with_many_classes():
    names = [f"c{i:02d}" for i in range(20)]
    p = np.full((2, 20), 0.05)
    p[1, 5] = 0.1
    p[1] /= p[1].sum()
    got = _top3(p, names)
    assert got[0] == "c00:0.050|c01:0.050|c02:0.050"
    assert got[1] == "c05:0.095|c00:0.048|c01:0.048"


# ------------------------------------------------------------------ autolabel_texts


def test_bad_max_error_and_confidence_messages_are_exact():
    with pytest.raises(ValidationError, match=_exact("max_error: got 1.0; pass a value in (0, 1)")):
        autolabel_texts(TEXTS, CLASSES, encoder=Words(), max_error=1.0)
    with pytest.raises(
        ValidationError, match=_exact("confidence: got 0.0; pass a value in (0, 1)")
    ):
        autolabel_texts(TEXTS, CLASSES, encoder=Words(), confidence=0.0)


def test_without_labeled_rows_nothing_is_certified_and_each_row_says_why():
    r = autolabel_texts(TEXTS, CLASSES, encoder=Words(), max_error=0.1)
    assert r.certify is None
    assert r.message == (
        "zero-shot labels for 6 unlabeled rows (0 labeled rows given); nothing certified: the "
        "certificate needs reviewed labels to calibrate on, and at least 29 of them, all "
        "predicted right, before anything can be certified at 10.00% error with 95% "
        "confidence: pass them with labels (--label-col)"
    )
    assert r.labels.decision.tolist() == ["review"] * 6
    assert r.labels.reason.tolist() == ["no labeled rows to certify on"] * 6
    assert r.summary == {
        "n_items": 6,
        "n_labeled": 0,
        "n_unlabeled": 6,
        "method": "zero-shot",
        "classes": CLASSES,
        "encoder": "words",
        "message": r.message,
    }
    # one labeled row: the few-shot model needs two
    with pytest.raises(ValidationError, match=r"^labels: got 1 labeled example"):
        autolabel_texts(TEXTS, CLASSES, ["card", *[None] * 5], encoder=Words(), max_error=0.1)


def test_every_row_labeled_leaves_nothing_to_certify():
    r = autolabel_texts(
        TEXTS, CLASSES, ["card"] * 3 + ["refund"] * 3, encoder=Words(), max_error=0.1
    )
    assert r.certify is None and "decision" not in r.labels
    assert r.message == (
        "few-shot labels for 0 unlabeled rows (6 labeled rows given); nothing to certify: "
        "every row is labeled"
    )


def test_given_rows_have_an_empty_reason_beside_the_certificate():
    texts = TEXTS * 4
    labels = [None] * len(texts)
    for i in range(12):
        labels[i] = "card" if "card" in texts[i] else "refund"
    r = autolabel_texts(texts, CLASSES, labels, encoder=Words(), max_error=0.3)
    assert r.certify is not None
    assert (r.labels.reason[:12] == "").all() and (r.labels.decision[:12] == "given").all()
    assert set(r.labels.decision[12:]) <= {"accepted", "review"}


# ------------------------------------------------------------------ truelabel autolabel (CLI)


def _cli_data(tmp_path):
    import pandas as pd

    rng = np.random.default_rng(0)
    words = {"card": ["card lost", "my card", "card blocked"], "refund": ["refund now", "a refund"]}
    texts, given = [], []
    for i in range(60):
        c = CLASSES[i % 2]
        texts.append(f"{words[c][i % len(words[c])]} {rng.integers(1000)}")
        given.append(c if i % 3 == 0 else "")
    pd.DataFrame({"text": texts, "given": given}).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "classes.txt").write_text("card\nrefund\n")
    return texts, [g or None for g in given]


def _invoke(tmp_path, *extra):
    from typer.testing import CliRunner

    from truelabel.cli import app

    args = ["autolabel", str(tmp_path / "d.csv"), "--text-col", "text", "--classes"]
    return CliRunner().invoke(app, [*args, str(tmp_path / "classes.txt"), *extra])


def test_cli_passes_seed_confidence_guarantee_and_max_error_on(tmp_path, monkeypatch):
    import json

    texts, given = _cli_data(tmp_path)
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: Words())
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "cache"))
    settings = {"random_state": 3, "confidence": 0.9, "guarantee": "pool", "max_error": 0.3}
    want = autolabel_texts(texts, CLASSES, given, encoder=Words(), **settings)
    default = autolabel_texts(texts, CLASSES, given, encoder=Words(), max_error=0.2)
    assert want.summary["certificate"] != default.summary["certificate"]
    res = _invoke(
        tmp_path,
        "--label-col",
        "given",
        "--out",
        str(tmp_path / "o"),
        "--seed",
        "3",
        "--confidence",
        "0.9",
        "--guarantee",
        "pool",
        "--max-error",
        "0.3",
        "--no-cache",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "o" / "autolabel.json").read_text())
    assert got["certificate"] == json.loads(json.dumps(want.summary["certificate"]))
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "pred_probs.npy"), want.pred_probs)
    # --no-cache: no cache folder, no cache line, no cache facts
    assert not (tmp_path / "cache").exists() and "embeddings:" not in res.output
    assert "embedding_cache" not in got
    shown = " ".join(res.output.split())  # the console wraps long lines
    assert " ".join(want.message.split()) in shown
    assert "wrote labels.csv, pred_probs.npy, autolabel.json to" in shown


def test_cli_interrupt_exits_130_and_says_no_file_is_partial(tmp_path, monkeypatch):
    _cli_data(tmp_path)
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: Words())

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("truelabel.autolabel._texts.autolabel_texts", interrupted)
    res = _invoke(tmp_path, "--out", str(tmp_path / "o"), "--no-cache")
    assert res.exit_code == 130
    assert "interrupted: files already written are complete; none is partial" in res.output


def test_cli_unknown_label_column_is_named(tmp_path, monkeypatch):
    _cli_data(tmp_path)
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: Words())
    res = _invoke(tmp_path, "--label-col", "nope", "--out", str(tmp_path / "o"), "--no-cache")
    assert res.exit_code == 2 and "--label-col" in res.output and "nope" in res.output
    assert not (tmp_path / "o").exists()


def test_cli_quiet_hides_the_encoders_progress_bar(tmp_path, monkeypatch):
    from truelabel._progress import progress

    class Shown(Words):
        def encode(self, items):
            items = list(items)
            with progress(len(items), "encoding (shown)", unit="texts") as advance:
                out = super().encode(items)
                advance(len(items))
            return out

    _cli_data(tmp_path)
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: Shown())
    loud = _invoke(tmp_path, "--out", str(tmp_path / "a"), "--no-cache")
    quiet = _invoke(tmp_path, "--out", str(tmp_path / "b"), "--no-cache", "--quiet")
    assert loud.exit_code == quiet.exit_code == 0, loud.output + quiet.output
    assert "encoding (shown)" in loud.output and "encoding (shown)" not in quiet.output


def test_cli_a_missing_classes_file_is_refused_before_anything_is_encoded(tmp_path, monkeypatch):
    _cli_data(tmp_path)
    loaded = []
    monkeypatch.setattr("truelabel.encode.load_encoder", lambda spec: loaded.append(spec))
    from typer.testing import CliRunner

    from truelabel.cli import app

    res = CliRunner().invoke(
        app,
        [
            "autolabel",
            str(tmp_path / "d.csv"),
            "--text-col",
            "text",
            "--classes",
            str(tmp_path / "nope.txt"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2 and "--classes: no file" in res.output
    assert loaded == [] and not (tmp_path / "o").exists()
