"""The chunk-map seam: every heavy pass is map over row chunks -> small statistics -> combine.

A heavy algorithm is written as a pure, top-level per-chunk function
``fn(chunk, shared) -> stats`` (picklable, testable alone) and an associative ``combine``.
A :class:`Backend` runs the per-chunk function over the chunks; :class:`LocalBackend` does so
on threads (NumPy releases the GIL, so both cores work), ``truelabel.distributed.RayBackend``
runs the same functions as Ray tasks. ``shared`` holds the inputs every chunk reads (arrays,
possibly memory-mapped ``.npy`` files) and is sent to each worker once per ``map``; a per-chunk
function only reads it (on Ray every task gets a read-only copy) and returns its block.

Two things go beyond "map a function": :meth:`LocalBackend.share` (and ``RayBackend.share``)
keeps a large input on the workers across many ``map`` calls (an EM loop's data), and
:class:`PerWorker` is an object built once per worker process from a picklable recipe and
kept there across tasks (a loaded model); a backend hands the built object to ``fn``.

Examples
--------
>>> import numpy as np
>>> from truelabel.backend import LocalBackend, chunk_ranges, map_reduce
>>> x = np.arange(10.0)
>>> def chunk_sum(chunk, arr):
...     return float(arr[chunk.start:chunk.stop].sum())
>>> map_reduce(chunk_sum, chunk_ranges(10, 3), x, combine=lambda a, b: a + b,
...            backend=LocalBackend(n_jobs=2))
45.0
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from typing import Any, Protocol, TypeVar, runtime_checkable

from .exceptions import ValidationError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Backend",
    "Chunk",
    "LocalBackend",
    "PerWorker",
    "chunk_ranges",
    "get_backend",
    "map_reduce",
    "resolve_shared",
    "share",
]

S = TypeVar("S")
R = TypeVar("R")

#: rows per chunk by default (32k rows x 100 float32 classes = 12.5 MiB per block)
DEFAULT_CHUNK_ROWS = 1 << 15


@dataclass(frozen=True)
class Chunk:
    """A half-open row range ``[start, stop)`` of the shared inputs, and its position."""

    index: int
    start: int
    stop: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def __len__(self) -> int:
        return self.stop - self.start


def chunk_ranges(n_items: int, chunk_size: int | None = None) -> list[Chunk]:
    """Cover ``range(n_items)`` with consecutive chunks of at most ``chunk_size`` rows.

    >>> [(c.start, c.stop) for c in chunk_ranges(7, 3)]
    [(0, 3), (3, 6), (6, 7)]
    """
    size = DEFAULT_CHUNK_ROWS if chunk_size is None else int(chunk_size)
    if size < 1:
        raise ValidationError(
            "chunk_size",
            f"must be a positive number of rows, got {chunk_size!r}",
            "pass e.g. 32768",
        )
    if n_items <= 0:
        return []
    return [
        Chunk(i, start, min(start + size, n_items))
        for i, start in enumerate(range(0, n_items, size))
    ]


#: per-process cache of built :class:`PerWorker` objects (a few at most: they are models)
_BUILT: OrderedDict[str, Any] = OrderedDict()
_BUILT_MAX = 4
_BUILT_LOCK = threading.Lock()


class PerWorker:
    """An object built once per worker process from a picklable recipe, kept across tasks.

    Put it in ``shared`` (alone or as an element of a ``shared`` tuple); every backend calls
    ``fn`` with the built object in its place. :class:`LocalBackend` builds it once in this
    process (its threads share it); ``RayBackend`` builds it in each worker process the first
    time a task there needs it and keeps it for later tasks and later ``map`` calls. Only the
    recipe (``factory``, ``args``, ``kwargs``) is pickled, never the object, so it suits what
    cannot be pickled or is slow to load (an ONNX session). A process keeps the last four
    objects built; :meth:`release` drops this process's copy.

    >>> from truelabel.backend import LocalBackend, PerWorker, chunk_ranges
    >>> def square_table(n):
    ...     return [i * i for i in range(n)]
    >>> def lookup(chunk, table):
    ...     return table[chunk.start:chunk.stop]
    >>> list(LocalBackend(n_jobs=1).map(lookup, chunk_ranges(4, 2), PerWorker(square_table, 4)))
    [[0, 1], [4, 9]]
    """

    def __init__(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(factory):
            raise ValidationError(
                "factory",
                f"must be callable, got {type(factory).__name__}",
                "pass a top-level function or class, e.g. PerWorker(load_model, path)",
            )
        self.factory = factory
        self.args = args
        self.kwargs = kwargs
        self.token = uuid.uuid4().hex

    def __repr__(self) -> str:
        name = getattr(self.factory, "__qualname__", repr(self.factory))
        return f"PerWorker({name}, token={self.token[:8]})"

    def get(self) -> Any:
        """The object built in this process (built now if it is not yet)."""
        with _BUILT_LOCK:
            if self.token in _BUILT:
                _BUILT.move_to_end(self.token)
                return _BUILT[self.token]
            obj = self.factory(*self.args, **self.kwargs)
            _BUILT[self.token] = obj
            while len(_BUILT) > _BUILT_MAX:
                _BUILT.popitem(last=False)
            return obj

    def release(self) -> None:
        """Drop this process's built object (a later :meth:`get` builds it again)."""
        with _BUILT_LOCK:
            _BUILT.pop(self.token, None)


def resolve_shared(shared: Any) -> Any:
    """``shared`` with every :class:`PerWorker` (itself, or an element of a tuple) built.

    A backend calls this once per ``map`` in the process that runs ``fn``; any other value is
    returned as it is (the same object).
    """
    if isinstance(shared, PerWorker):
        return shared.get()
    if type(shared) is tuple and any(isinstance(s, PerWorker) for s in shared):
        return tuple(s.get() if isinstance(s, PerWorker) else s for s in shared)
    return shared


def share(backend: Backend, obj: S) -> S:
    """Hand ``obj`` to ``backend`` once for many ``map`` calls (its ``share`` method, if any).

    The result is passed as ``shared`` (or an element of a ``shared`` tuple) instead of
    ``obj``: :class:`LocalBackend` returns ``obj`` itself; ``RayBackend`` stores it in the
    object store once, so an EM loop does not send its data again each iteration.
    """
    method = getattr(backend, "share", None)
    return obj if method is None else method(obj)


@runtime_checkable
class Backend(Protocol):
    """Runs a per-chunk function over chunks; results come back in chunk order."""

    @property
    def n_workers(self) -> int:  # pragma: no cover - protocol
        ...

    def map(
        self, fn: Callable[[Chunk, S], R], chunks: Sequence[Chunk], shared: S
    ) -> Iterator[R]:  # pragma: no cover - protocol
        ...


class LocalBackend:
    """Run chunks on this machine: serially (``n_jobs=1``) or on a thread pool.

    Parameters
    ----------
    n_jobs : int or None, default None
        Worker threads; ``None`` uses every core (``os.cpu_count()``), ``-1`` likewise.

    Notes
    -----
    At most ``2 * n_jobs`` chunks are in flight at once, so results that are large per chunk
    never pile up in memory. On ``KeyboardInterrupt`` pending chunks are cancelled.
    A :class:`PerWorker` in ``shared`` is built once here and shared by the threads.
    """

    def __init__(self, n_jobs: int | None = None) -> None:
        if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1):
            raise ValidationError(
                "n_jobs",
                f"must be a positive int, -1 or None, got {n_jobs!r}",
                "pass e.g. n_jobs=2",
            )
        self.n_jobs = n_jobs

    @property
    def n_workers(self) -> int:
        if self.n_jobs is None or self.n_jobs == -1:
            return max(1, os.cpu_count() or 1)
        return self.n_jobs

    def __repr__(self) -> str:
        return f"LocalBackend(n_jobs={self.n_jobs!r})"

    def share(self, obj: S) -> S:
        """``obj`` itself: threads read this process's memory (see :func:`share`)."""
        return obj

    def map(self, fn: Callable[[Chunk, S], R], chunks: Sequence[Chunk], shared: S) -> Iterator[R]:
        if chunks:
            shared = resolve_shared(shared)
        workers = min(self.n_workers, max(len(chunks), 1))
        if workers <= 1:
            for chunk in chunks:
                yield fn(chunk, shared)
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="truelabel")
        pending: list[Future[R]] = []
        it = iter(chunks)
        try:
            for chunk in it:
                pending.append(pool.submit(fn, chunk, shared))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                result = pending.pop(0).result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(fn, nxt, shared))
                yield result
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def get_backend(backend: Backend | str | None, *, address: str | None = None) -> Backend:
    """Resolve a ``backend=`` argument: ``None`` or ``"local"`` -> :class:`LocalBackend`,
    ``"ray"`` -> ``truelabel.distributed.RayBackend(address)`` (one per address, reused;
    needs ``pip install 'truelabel[distributed]'``). ``address`` is only for ``"ray"``.

    >>> get_backend(None)
    LocalBackend(n_jobs=None)
    """
    if backend == "ray":
        from .distributed import ray_backend

        return ray_backend(address)
    if address is not None:
        raise ValidationError(
            "address",
            f"is for the Ray backend, got address={address!r} with backend={backend!r}",
            "pass backend='ray' with it, or leave address out",
        )
    if backend is None or backend == "local":
        return LocalBackend()
    if isinstance(backend, str):
        raise ValidationError(
            "backend",
            f"unknown backend {backend!r}",
            "pass 'local', 'ray', None, or a Backend instance such as LocalBackend(n_jobs=2)",
        )
    if not isinstance(backend, Backend):
        raise ValidationError(
            "backend",
            f"{type(backend).__name__} has no map(fn, chunks, shared) / n_workers",
            "pass 'local', 'ray', None, or a Backend instance such as LocalBackend(n_jobs=2)",
        )
    return backend


def map_reduce(
    fn: Callable[[Chunk, S], R],
    chunks: Iterable[Chunk],
    shared: S,
    *,
    combine: Callable[[R, R], R],
    backend: Backend | str | None = None,
    initial: R | None = None,
    on_chunk: Callable[[Chunk], Any] | None = None,
) -> R:
    """``combine`` the per-chunk results of ``fn`` in chunk order.

    ``combine`` must be associative; results are folded left to right, so a reduction that is
    exact (integer counts) gives identical results for any backend and chunk size.
    ``on_chunk`` is called after each chunk (progress bars).
    """
    chunk_list = list(chunks)
    if initial is None and not chunk_list:
        raise ValidationError("chunks", "is empty and no initial value was given", "pass initial=")
    results = get_backend(backend).map(fn, chunk_list, shared)
    if on_chunk is not None:
        results = _tap(results, chunk_list, on_chunk)
    if initial is None:
        return reduce(combine, results)
    return reduce(combine, results, initial)


def _tap(
    results: Iterator[R], chunks: list[Chunk], on_chunk: Callable[[Chunk], Any]
) -> Iterator[R]:
    for chunk, result in zip(chunks, results, strict=True):
        on_chunk(chunk)
        yield result
