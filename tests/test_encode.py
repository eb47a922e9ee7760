from __future__ import annotations

import numpy as np
import pytest

from truelabel import NotFittedError, ValidationError
from truelabel.encode import Encoder, PrecomputedEncoder, TfidfEncoder

TEXTS = [
    "my card was lost",
    "card stolen yesterday",
    "refund my money",
    "I want a refund",
    "card not arrived",
    "refund not received",
] * 5


def test_tfidf_encoder_is_deterministic_and_normalised():
    a = TfidfEncoder(n_components=4).encode(TEXTS)
    b = TfidfEncoder(n_components=4).encode(TEXTS)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (30, 4)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert isinstance(TfidfEncoder(), Encoder)


def test_similar_texts_are_closer():
    enc = TfidfEncoder(n_components=4)
    v = enc.encode(TEXTS)
    assert v[3] @ v[2] > v[3] @ v[1]  # "I want a refund": closer to "refund my money"


def test_encoder_errors():
    with pytest.raises(NotFittedError, match="call fit"):
        TfidfEncoder().transform_sparse(["a"])
    with pytest.raises(ValidationError, match="texts: got a single string"):
        TfidfEncoder().encode("hello")
    with pytest.raises(ValidationError, match="texts: are all empty"):
        TfidfEncoder().encode(["", " "])


def test_precomputed_encoder():
    enc = PrecomputedEncoder(["a", "b"], np.eye(2))
    np.testing.assert_array_equal(enc.encode(["b", "a"]), [[0, 1], [1, 0]])
    with pytest.raises(ValidationError, match="items: no precomputed vector for 'c'"):
        enc.encode(["c"])


def test_transform_raw_keeps_every_term_and_equates_normalised_texts():
    texts = ["What is BPH ?", "What is DSL ?", "What is 5 + 5 ?", "What is 6 + 6 ?"] * 3
    enc = TfidfEncoder(n_components=2).fit(texts + ["Who is it ?"] * 20)
    raw = enc.transform_raw(["What is BPH ?", "what is  bph", "What is DSL ?", "What is 5 + 5 ?"])
    assert raw.dtype == np.float32 and raw.shape[1] == 2**20
    np.testing.assert_allclose(np.sqrt(raw.multiply(raw).sum(axis=1)).A1, 1.0, rtol=1e-6)
    cos = (raw @ raw.T).toarray()
    assert cos[0, 1] == pytest.approx(1.0, abs=1e-6)  # case and punctuation ignored
    assert cos[0, 2] < 0.6  # the rare word counts
    # one-character tokens count too: "5" and "6" differ
    other = enc.transform_raw(["What is 6 + 6 ?"])
    assert (raw[3].multiply(other)).sum() < 0.6
    with pytest.raises(NotFittedError, match="call fit"):
        TfidfEncoder().transform_raw(["a"])
