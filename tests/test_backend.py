"""The chunk-map seam: order, exactness across backends and chunk sizes, errors, interrupts."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from truelabel.backend import Backend, Chunk, LocalBackend, chunk_ranges, get_backend, map_reduce
from truelabel.exceptions import ValidationError


def _bincount_chunk(chunk: Chunk, arr: np.ndarray) -> np.ndarray:
    return np.bincount(arr[chunk.slice], minlength=7)


def test_chunk_ranges_cover_exactly_once() -> None:
    chunks = chunk_ranges(10, 4)
    assert [(c.index, c.start, c.stop) for c in chunks] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert chunk_ranges(0, 4) == []
    assert len(chunk_ranges(5)) == 1


@pytest.mark.parametrize("bad", [0, -3])
def test_chunk_size_must_be_positive(bad: int) -> None:
    with pytest.raises(
        ValidationError, match=r"chunk_size: must be a positive number of rows, got"
    ):
        chunk_ranges(10, bad)


@pytest.mark.parametrize("n_jobs", [1, 2, 3])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 5000])
def test_counts_identical_for_every_backend_and_chunk_size(n_jobs: int, chunk_size: int) -> None:
    arr = np.random.default_rng(0).integers(0, 7, size=2345)
    got = map_reduce(
        _bincount_chunk,
        chunk_ranges(arr.size, chunk_size),
        arr,
        combine=np.add,
        backend=LocalBackend(n_jobs=n_jobs),
    )
    np.testing.assert_array_equal(got, np.bincount(arr, minlength=7))


def test_map_returns_results_in_chunk_order_even_when_later_chunks_finish_first() -> None:
    import time

    def slow_first(chunk: Chunk, _: None) -> int:
        if chunk.index == 0:
            time.sleep(0.05)
        return chunk.index

    out = list(LocalBackend(n_jobs=3).map(slow_first, chunk_ranges(9, 1), None))
    assert out == list(range(9))


def test_threads_really_run_in_parallel() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def wait_for_partner(chunk: Chunk, _: None) -> int:
        barrier.wait()  # deadlocks (BrokenBarrierError after 5 s) when chunks run one at a time
        return 1

    assert sum(LocalBackend(n_jobs=2).map(wait_for_partner, chunk_ranges(2, 1), None)) == 2


def test_error_in_a_chunk_propagates_and_cancels_the_rest() -> None:
    seen: list[int] = []

    def boom(chunk: Chunk, _: None) -> int:
        seen.append(chunk.index)
        if chunk.index == 1:
            raise KeyboardInterrupt
        return chunk.index

    with pytest.raises(KeyboardInterrupt):
        list(LocalBackend(n_jobs=2).map(boom, chunk_ranges(100, 1), None))
    # bounded in-flight window: far fewer than 100 chunks were ever started
    assert len(seen) <= 8


def test_map_reduce_initial_and_empty() -> None:
    assert map_reduce(_bincount_chunk, [], np.arange(3), combine=np.add, initial=0) == 0
    with pytest.raises(ValidationError, match="chunks: is empty and no initial value"):
        map_reduce(_bincount_chunk, [], np.arange(3), combine=np.add)


def test_on_chunk_called_once_per_chunk() -> None:
    calls: list[int] = []
    arr = np.arange(10) % 7
    map_reduce(
        _bincount_chunk,
        chunk_ranges(10, 3),
        arr,
        combine=np.add,
        on_chunk=lambda c: calls.append(len(c)),
    )
    assert calls == [3, 3, 3, 1]


def test_get_backend_resolves_and_refuses() -> None:
    assert isinstance(get_backend(None), LocalBackend)
    assert isinstance(get_backend("local"), LocalBackend)
    b = LocalBackend(n_jobs=1)
    assert get_backend(b) is b
    assert isinstance(b, Backend)
    with pytest.raises(ValidationError, match="backend: unknown backend 'spark'"):
        get_backend("spark")
    with pytest.raises(ValidationError, match="backend: int has no map"):
        get_backend(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_local_backend_n_jobs_validated(bad: object) -> None:
    with pytest.raises(ValidationError, match="n_jobs: must be a positive int"):
        LocalBackend(n_jobs=bad)  # type: ignore[arg-type]


def test_n_workers() -> None:
    assert LocalBackend(n_jobs=3).n_workers == 3
    assert LocalBackend().n_workers >= 1
    assert LocalBackend(n_jobs=-1).n_workers == LocalBackend().n_workers


# -- what the Ray backend needed: held objects, share, errors that cross processes ------------


def _count_build(calls: list[int], n: int) -> list[int]:
    calls.append(n)
    return list(range(n))


def _sum_held(chunk: Chunk, shared: tuple[list[int], int]) -> int:
    table, offset = shared
    return sum(table[chunk.slice]) + offset


def test_per_worker_built_once_per_map_and_kept_across_maps() -> None:
    from truelabel.backend import PerWorker

    calls: list[int] = []
    held = PerWorker(_count_build, calls, 10)
    for n_jobs in (1, 2):
        got = list(LocalBackend(n_jobs=n_jobs).map(_sum_held, chunk_ranges(10, 3), (held, 100)))
        assert got == [103, 112, 121, 109]
    assert calls == [10]  # built once, on first use, kept for the second map
    assert held.get() is held.get()
    held.release()
    list(LocalBackend(n_jobs=1).map(_sum_held, chunk_ranges(10, 5), (held, 0)))
    assert calls == [10, 10]
    held.release()
    assert "PerWorker(_count_build" in repr(held)


def test_per_worker_alone_as_shared_and_not_built_for_no_chunks() -> None:
    from truelabel.backend import PerWorker

    calls: list[int] = []
    held = PerWorker(_count_build, calls, 4)
    assert list(LocalBackend(n_jobs=1).map(_sum_held, [], (held, 0))) == []
    assert calls == []

    def first(chunk: Chunk, table: list[int]) -> int:
        return table[chunk.start]

    assert list(LocalBackend(n_jobs=2).map(first, chunk_ranges(4, 2), held)) == [0, 2]
    held.release()


def test_per_worker_pickles_the_recipe_not_the_object() -> None:
    import pickle

    from truelabel.backend import PerWorker

    held = PerWorker(_count_build, [], 3)
    held.get()
    copy = pickle.loads(pickle.dumps(held))
    assert copy.token == held.token and copy.args == held.args
    assert copy.get() == [0, 1, 2]
    held.release()


def test_per_worker_cache_keeps_the_last_four() -> None:
    from truelabel import backend as be

    calls: list[int] = []
    helds = [be.PerWorker(_count_build, calls, i) for i in range(5)]
    for h in helds:
        h.get()
    assert calls == [0, 1, 2, 3, 4]
    helds[1].get()  # still cached
    helds[0].get()  # evicted: built again
    assert calls == [0, 1, 2, 3, 4, 0]
    for h in helds:
        h.release()
    with pytest.raises(ValidationError, match=r"^factory: must be callable, got int"):
        be.PerWorker(3)  # type: ignore[arg-type]


def test_resolve_shared_leaves_other_values_alone() -> None:
    from truelabel.backend import resolve_shared

    arr = np.arange(3)
    assert resolve_shared(arr) is arr
    tup = (arr, 1)
    assert resolve_shared(tup) is tup
    assert resolve_shared(None) is None


def test_share_is_identity_locally() -> None:
    from truelabel.backend import share

    arr = np.arange(5)
    assert share(LocalBackend(), arr) is arr
    assert LocalBackend().share(arr) is arr
    assert share(object(), arr) is arr  # type: ignore[arg-type]  # no share(): unchanged


def test_get_backend_address_only_with_ray() -> None:
    with pytest.raises(ValidationError, match=r"^address: is for the Ray backend, got"):
        get_backend(None, address="auto")
    with pytest.raises(ValidationError, match=r"pass 'local', 'ray', None"):
        get_backend("spark")


@pytest.mark.parametrize(
    "err",
    [
        ValidationError("x", "bad", "fix"),
        ValidationError("x", "bad"),
    ],
)
def test_errors_survive_pickling(err: Exception) -> None:
    """A task's error on another process comes back as the same error (Ray, processes)."""
    import pickle

    from truelabel.exceptions import DataFormatError, MissingDependencyError

    for e in (
        err,
        DataFormatError("f", "broken", "re-save it"),
        MissingDependencyError("ray", "distributed", "x"),
    ):
        e.extra_note = "kept"  # type: ignore[attr-defined]
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e) and back.__dict__ == e.__dict__
