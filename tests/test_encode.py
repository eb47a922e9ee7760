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
