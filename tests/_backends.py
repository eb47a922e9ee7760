"""Test backends that behave like a remote engine: fn and shared cross a pickle boundary.

``PickleBackend`` round-trips ``fn`` and ``shared`` through pickle for every chunk (a closure,
a lambda, an open session or a lock in ``shared`` fails here as it would on Ray);
``ProcessBackend`` runs the chunks in worker processes (another pid, like a Ray worker).
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from truelabel.backend import Chunk


class PickleBackend:
    """Serial, but every chunk gets ``fn`` and ``shared`` unpickled from bytes."""

    n_workers = 2

    def __init__(self) -> None:
        self.shared_bytes: list[int] = []
        self.fns: list[str] = []  # the per-chunk functions it ran, one per map
        self.chunk_rows: list[int] = []  # the largest chunk of each map

    def map(
        self, fn: Callable[[Chunk, Any], Any], chunks: Sequence[Chunk], shared: Any
    ) -> Iterator[Any]:
        blob = pickle.dumps((fn, shared))
        self.shared_bytes.append(len(blob))
        self.fns.append(fn.__name__)
        self.chunk_rows.append(max((c.stop - c.start for c in chunks), default=0))
        for chunk in chunks:
            f, s = pickle.loads(blob)
            yield pickle.loads(pickle.dumps(f(pickle.loads(pickle.dumps(chunk)), s)))


def _call(blob: bytes, chunk: Chunk) -> Any:
    fn, shared = pickle.loads(blob)
    return fn(chunk, shared)


class ProcessBackend:
    """Chunks run in 2 forked worker processes; results in chunk order."""

    n_workers = 2

    def map(
        self, fn: Callable[[Chunk, Any], Any], chunks: Sequence[Chunk], shared: Any
    ) -> Iterator[Any]:
        blob = pickle.dumps((fn, shared))
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            yield from pool.map(_call, [blob] * len(chunks), chunks)
