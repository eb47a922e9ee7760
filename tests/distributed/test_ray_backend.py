"""RayBackend on a real local cluster: the Backend contract, bounded queue, cancellation,
errors, held objects, and that the cluster listens on loopback only."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from truelabel.backend import Chunk, LocalBackend, PerWorker, chunk_ranges, map_reduce, share
from truelabel.exceptions import ValidationError

from .conftest import STARTUP


def _bincount_chunk(chunk: Chunk, arr: np.ndarray) -> np.ndarray:
    return np.bincount(arr[chunk.slice], minlength=7)


def _index_after_delay(chunk: Chunk, delays: list[float]) -> tuple[int, int]:
    time.sleep(delays[chunk.index])
    return chunk.index, os.getpid()


def _fail_on_two(chunk: Chunk, _: None) -> int:
    if chunk.index == 2:
        raise ValidationError("x", f"chunk {chunk.index} is bad", "fix it")
    return chunk.index


def _write_into_shared(chunk: Chunk, out: np.ndarray) -> None:
    out[chunk.slice] = 1.0


def _sleep(chunk: Chunk, seconds: float) -> int:
    """Chunk 0 at once, the others after ``seconds``."""
    for _ in range(
        round(seconds / 0.01) if chunk.index else 0
    ):  # short sleeps: a cancel interrupts between them
        time.sleep(0.01)
    return chunk.index


def _build_table(n: int, marker: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "built": time.monotonic_ns(), "table": np.arange(n) ** 2}


def _use_table(chunk: Chunk, shared: tuple[dict[str, Any], int]) -> tuple[int, int, int]:
    held, offset = shared
    return held["pid"], held["built"], int(held["table"][chunk.slice].sum()) + offset


def _pid(chunk: Chunk, _: object) -> int:
    return os.getpid()


def test_cluster_started_with_two_cpus(ray_backend: Any) -> None:
    assert ray_backend.n_workers == 2
    assert STARTUP["seconds"] > 0
    print(f"\nRay local cluster start-up: {STARTUP['seconds']:.1f} s")


@pytest.mark.parametrize("chunk_size", [11, 500, 5000])
def test_counts_identical_to_local(ray_backend: Any, chunk_size: int) -> None:
    arr = np.random.default_rng(0).integers(0, 7, size=2345)
    chunks = chunk_ranges(arr.size, chunk_size)
    got = map_reduce(_bincount_chunk, chunks, arr, combine=np.add, backend=ray_backend)
    np.testing.assert_array_equal(got, np.bincount(arr, minlength=7))


def test_results_in_chunk_order_from_other_processes(ray_backend: Any) -> None:
    delays = [0.3, 0.0, 0.0, 0.0, 0.1, 0.0]  # the first chunk finishes last
    out = list(ray_backend.map(_index_after_delay, chunk_ranges(6, 1), delays))
    assert [i for i, _ in out] == list(range(6))
    assert os.getpid() not in {pid for _, pid in out}  # tasks, not this process
    assert list(ray_backend.map(_index_after_delay, [], delays)) == []


def test_error_in_a_task_is_raised_as_itself(ray_backend: Any) -> None:
    with pytest.raises(ValidationError, match=r"^x: chunk 2 is bad; fix it$"):
        list(ray_backend.map(_fail_on_two, chunk_ranges(6, 1), None))


def test_writing_into_shared_is_refused_with_the_fix(ray_backend: Any) -> None:
    out = np.zeros(4)
    with pytest.raises(ValidationError, match=r"_write_into_shared wrote into its shared inputs"):
        list(ray_backend.map(_write_into_shared, chunk_ranges(4, 2), out))
    # LocalBackend threads do write into this process's array (why the rule matters)
    list(LocalBackend(n_jobs=2).map(_write_into_shared, chunk_ranges(4, 2), out))
    assert out.tolist() == [1.0] * 4


class _CountingRemote:
    """Wraps the backend's remote function: counts submissions and keeps the references."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refs: list[Any] = []

    def remote(self, *args: Any) -> Any:
        ref = self.inner.remote(*args)
        self.refs.append(ref)
        return ref


def test_at_most_two_tasks_per_worker_in_flight(ray_backend: Any) -> None:
    counting = _CountingRemote(ray_backend._remote)
    ray_backend._remote = counting
    try:
        submitted_when_yielded = []
        for _ in ray_backend.map(_sleep, chunk_ranges(12, 1), 0.0):
            submitted_when_yielded.append(len(counting.refs))
    finally:
        ray_backend._remote = counting.inner
    # window 2 * 2 workers: the i-th result (0-based) is yielded after 4 + i submissions
    assert submitted_when_yielded == [min(12, 5 + i) for i in range(12)]


def _n_cancelled(refs: list[Any]) -> int:
    """How many of ``refs`` ended cancelled. Running tasks are interrupted and queued ones
    never run; a task being handed to a worker at the very moment of the cancel may still
    finish (Ray's cancel is best effort), hence ">= all but one" in the tests."""
    import ray

    n = 0
    for ref in refs:
        try:
            ray.get(ref, timeout=30)
        except ray.exceptions.TaskCancelledError:
            n += 1
    return n


def test_leaving_early_cancels_the_pending_tasks(ray_backend: Any) -> None:
    counting = _CountingRemote(ray_backend._remote)
    ray_backend._remote = counting
    try:
        gen = ray_backend.map(_sleep, chunk_ranges(40, 1), 3.0)
        t0 = time.perf_counter()
        assert next(gen) == 0
        gen.close()  # what a KeyboardInterrupt in the consumer does
    finally:
        ray_backend._remote = counting.inner
    assert len(counting.refs) == 5  # never more than the window (+1 after the first result)
    assert time.perf_counter() - t0 < 2.5  # close() did not wait for the running task
    assert _n_cancelled(counting.refs[1:]) >= 3
    assert time.perf_counter() - t0 < 6  # cancelled, not run (4 x 3 s on 2 CPUs)


def test_keyboard_interrupt_in_the_consumer_cancels(ray_backend: Any) -> None:
    counting = _CountingRemote(ray_backend._remote)
    ray_backend._remote = counting
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in ray_backend.map(_sleep, chunk_ranges(40, 1), 2.0):
                raise KeyboardInterrupt
    finally:
        ray_backend._remote = counting.inner
    assert _n_cancelled(counting.refs[1:]) >= 3


def test_per_worker_object_built_once_per_process(ray_backend: Any) -> None:
    held = PerWorker(_build_table, 10, marker="m")
    chunks = chunk_ranges(10, 1)
    first = list(ray_backend.map(_use_table, chunks, (held, 5)))
    second = list(ray_backend.map(_use_table, chunks, (held, 0)))
    expected = [i * i for i in range(10)]
    assert [s for _, _, s in first] == [e + 5 for e in expected]
    assert [s for _, _, s in second] == expected
    built_by_pid: dict[int, set[int]] = {}
    for pid, built, _ in first + second:
        built_by_pid.setdefault(pid, set()).add(built)
    assert os.getpid() not in built_by_pid
    assert all(len(b) == 1 for b in built_by_pid.values()), built_by_pid  # kept across calls
    # local: built once in this process, shared by the threads
    local = list(LocalBackend(n_jobs=2).map(_use_table, chunks, (held, 0)))
    assert {(pid, b) for pid, b, _ in local} == {(os.getpid(), local[0][1])}
    assert [s for _, _, s in local] == expected
    held.release()


def test_share_stores_once_and_is_used_by_many_maps(ray_backend: Any) -> None:
    arr = np.random.default_rng(1).integers(0, 7, size=1000)
    held = share(ray_backend, arr)
    assert held is not arr and type(held).__name__ == "Shared"
    assert share(ray_backend, held) is held
    for size in (100, 333):
        got = map_reduce(
            _bincount_chunk, chunk_ranges(arr.size, size), held, combine=np.add, backend=ray_backend
        )
        np.testing.assert_array_equal(got, np.bincount(arr, minlength=7))
    assert share(LocalBackend(), arr) is arr
    assert share(object(), arr) is arr  # type: ignore[arg-type]  # a backend without share


def _shared_tuple_chunk(chunk: Chunk, shared: tuple[np.ndarray, int, np.ndarray]) -> int:
    a, k, b = shared
    return int(a[chunk.slice].sum() * k + b[chunk.slice].sum())


def test_shared_parts_of_a_tuple(ray_backend: Any) -> None:
    a, b = np.arange(20), np.arange(20) * 10
    held_a = share(ray_backend, a)
    got = list(ray_backend.map(_shared_tuple_chunk, chunk_ranges(20, 6), (held_a, 3, b)))
    want = list(LocalBackend(n_jobs=2).map(_shared_tuple_chunk, chunk_ranges(20, 6), (a, 3, b)))
    assert (
        got
        == want
        == [
            int(a[s].sum() * 3 + b[s].sum())
            for s in (np.s_[0:6], np.s_[6:12], np.s_[12:18], np.s_[18:20])
        ]
    )


def _listening(path: str) -> list[str]:
    rows = Path(path).read_text().splitlines()[1:]
    return [r.split()[1].rsplit(":", 1)[0] for r in rows if r.split()[3] == "0A"]  # LISTEN


def test_every_listener_is_on_loopback(ray_backend: Any) -> None:
    v4 = _listening("/proc/net/tcp")
    v6 = _listening("/proc/net/tcp6") if Path("/proc/net/tcp6").exists() else []
    assert v4, "Ray listens on something"
    assert set(v4) == {"0100007F"}, v4  # 127.0.0.1
    # ::1 or ::ffff:127.0.0.1 (IPv4-mapped loopback)
    assert set(v6) <= {"00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}, v6


def test_local_cluster_files_stay_in_its_temp_folder(ray_backend: Any) -> None:
    temp = Path(os.environ["RAY_AUTH_TOKEN_PATH"]).parent
    assert temp.name.startswith("truelabel-ray-") and temp.parent == Path(
        __import__("tempfile").gettempdir()
    )
    assert (temp / "auth_token").stat().st_mode & 0o077 == 0
    assert any(p.name.startswith("session_") for p in temp.iterdir())
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert not (Path.home() / ".ray" / "auth_token").exists()


def _rows_from_a_file_map(chunk: Chunk, arr: np.ndarray) -> tuple[str, list[float]]:
    """Where this task's array lives (a file map, seen through its bases) and its rows' sums."""
    base: Any = arr
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base
    where = str(getattr(base, "filename", None))
    return where, arr[chunk.slice].sum(axis=1).tolist()


def test_an_npy_input_reaches_the_tasks_as_a_file_map(ray_backend: Any, tmp_path: Path) -> None:
    """The workers map the .npy themselves (each reads only its rows' pages); the object
    store never holds the array, and the rows are those of the local run."""
    from truelabel.data import NpySource

    want = np.arange(40 * 3, dtype=np.float64).reshape(40, 3)
    np.save(tmp_path / "p.npy", want)
    mapped = np.asarray(NpySource(tmp_path / "p.npy").memmap())[5:]  # a row slice of it
    chunks = chunk_ranges(35, 8)
    got = list(ray_backend.map(_rows_from_a_file_map, chunks, mapped))
    assert {where for where, _ in got} == {str(tmp_path / "p.npy")}
    assert [s for _, part in got for s in part] == want[5:].sum(axis=1).tolist()
    held = list(ray_backend.map(_rows_from_a_file_map, chunks, np.array(mapped)))
    assert {where for where, _ in held} == {"None"}  # an ordinary array: by value
