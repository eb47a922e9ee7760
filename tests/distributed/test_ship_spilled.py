"""Spilled intermediates (``_spill.scratch`` files) go to Ray workers on this machine by path.

The first tests run without Ray (pickling is what Ray does to ``shared``); the last ones use the
session's local cluster: the tasks map the spill file by its name, results equal the local
run's, a joined cluster gets the values, and the names are gone after the run and after an
exception.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import truelabel.distributed._ray as ray_module
from truelabel._spill import scratch, spill_at, spill_file, spill_folder
from truelabel.backend import Chunk, LocalBackend, chunk_ranges
from truelabel.distributed._ship import MappedFile, by_path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _spilled(rows: int = 100, cols: int = 3) -> np.ndarray:
    with spill_at(0):
        arr = scratch((rows, cols), np.float32)
    arr[:] = np.arange(rows * cols, dtype=np.float32).reshape(rows, cols)
    return arr


def _names() -> set[str]:
    return {n for n in os.listdir(spill_folder()) if n.endswith(".spill")}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_spilled_array_ships_as_a_name_for_workers_on_this_machine() -> None:
    arr = _spilled()
    before = _names()
    view = arr[37:61]  # a row window: its own offset in the file
    shipped = by_path((view, 3), local=True)
    assert isinstance(shipped[0], MappedFile) and shipped[1] == 3
    assert shipped[0].path.startswith(spill_folder() + os.sep)
    assert shipped[0].offset == 37 * 3 * 4
    assert _names() == before | {os.path.basename(shipped[0].path)}
    blob = pickle.dumps(shipped)
    assert len(blob) < 1000  # the name, not 288 bytes per row
    back = pickle.loads(blob)[0]
    assert back.tolist() == arr[37:61].tolist() and not back.flags.writeable
    arr[40, 1] = -5.0  # the worker maps the very pages this process writes (as threads see)
    assert back[3, 1] == -5.0
    again = by_path(arr, local=True)  # the same name for every later shipment
    assert isinstance(again, MappedFile) and again.path == shipped[0].path and again.offset == 0


def test_to_workers_elsewhere_the_values_travel_and_no_name_is_made() -> None:
    arr = _spilled()
    before = _names()
    assert by_path(arr, local=False) is arr
    assert by_path((arr, 1), local=False)[0] is arr
    assert _names() == before


def test_arrays_below_the_threshold_or_not_contiguous_go_by_value() -> None:
    small = scratch((4, 3), np.float32)  # in memory below the threshold
    arr = _spilled()
    shared = (small, arr[:, ::2], arr[:0])
    assert by_path(shared, local=True) is shared
    assert spill_file(small) is None and spill_file(np.zeros(3)) is None


def test_the_name_and_descriptor_go_with_the_array() -> None:
    fds = _open_fds()
    arr = _spilled()
    path = by_path(arr, local=True).path
    assert os.path.exists(path) and _open_fds() > fds
    del arr
    gc.collect()
    assert not os.path.exists(path)
    assert _open_fds() == fds


@pytest.mark.parametrize("how", ["exit", "interrupt"])
def test_the_names_are_removed_at_exit_and_on_an_interrupt(how: str, tmp_path: Path) -> None:
    """A process that still holds its spilled arrays when it ends (normally, or through
    Ctrl-C) leaves no name behind: the spill folder goes at exit."""
    code = textwrap.dedent(
        f"""
        import numpy as np
        from truelabel._spill import scratch, spill_at
        from truelabel.distributed._ship import by_path
        with spill_at(0):
            held = [scratch((50, 2), np.float64) for _ in range(2)]
        print(by_path(held[0], local=True).path, flush=True)
        if {how!r} == "interrupt":
            raise KeyboardInterrupt
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (done.returncode != 0) == (how == "interrupt"), done.stderr
    path = Path(done.stdout.strip())
    assert path.parent.parent == tmp_path and path.name.endswith(".spill")
    assert not path.exists() and not path.parent.exists()
    assert list(tmp_path.iterdir()) == []  # nothing else left in TMPDIR either


def test_a_forked_child_ending_normally_leaves_its_parents_name(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, sys
        import numpy as np
        from truelabel._spill import scratch, spill_at
        from truelabel.distributed._ship import by_path
        with spill_at(0):
            held = scratch((50, 2), np.float64)
        path = by_path(held, local=True).path
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # runs the child's exit hooks (its copy of the array's finalizer)
        os.waitpid(pid, 0)
        print(os.path.exists(path), flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert list(tmp_path.iterdir()) == []


# -- on the session's local cluster ---------------------------------------------------------


def _rows_and_where(chunk: Chunk, shared: tuple[np.ndarray, float]) -> tuple[str, list[float]]:
    """The file the task's array maps (None: a value) and its rows' sums, plus ``offset``."""
    arr, offset = shared
    base: Any = arr
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base
    where = str(getattr(base, "filename", None))
    return where, (arr[chunk.slice].sum(axis=1).astype(np.float64) + offset).tolist()


def _fail_on_one(chunk: Chunk, shared: tuple[np.ndarray, float]) -> int:
    if chunk.index == 1:
        raise ArithmeticError(f"chunk {chunk.index} of {shared[0].shape}")
    return chunk.index


class Recorder:
    """Records what RayBackend.map puts into the object store (the output of by_path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shipped: list[Any] = []
        real = ray_module.by_path

        def spy(obj: Any, *, local: bool = True) -> Any:
            out = real(obj, local=local)
            self.shipped.append(out)
            return out

        monkeypatch.setattr(ray_module, "by_path", spy)


def test_a_spilled_array_reaches_the_tasks_by_its_name_with_local_results(
    ray_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    arr = _spilled(400, 5)
    want = list(LocalBackend(n_jobs=2).map(_rows_and_where, chunk_ranges(400, 64), (arr, 0.5)))
    rec = Recorder(monkeypatch)
    got = list(ray_backend.map(_rows_and_where, chunk_ranges(400, 64), (arr, 0.5)))
    (shipped,) = rec.shipped
    assert isinstance(shipped[0], MappedFile) and len(pickle.dumps(shipped)) < 1000
    assert {where for where, _ in got} == {shipped[0].path}  # each task mapped the name
    assert [rows for _, rows in got] == [rows for _, rows in want]
    path = shipped[0].path
    del arr, want
    gc.collect()
    assert not os.path.exists(path)  # removed with the array, after the run


def test_a_joined_cluster_gets_the_values(
    ray_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster this process did not start may run elsewhere: the spill file's values
    travel (this joins the session's cluster: Ray is already initialised here)."""
    from truelabel.distributed import RayBackend

    joined = RayBackend("auto")
    assert not joined._local
    arr = _spilled(200, 4)
    before = _names()
    rec = Recorder(monkeypatch)
    got = list(joined.map(_rows_and_where, chunk_ranges(200, 64), (arr, 0.0)))
    (shipped,) = rec.shipped
    assert shipped[0] is arr and _names() == before
    assert {where for where, _ in got} == {"None"}
    assert [s for _, rows in got for s in rows] == arr.sum(axis=1).tolist()
    joined.close()  # it did not start the cluster: the session's cluster runs on
    assert ray_backend.n_workers == 2


def test_names_are_removed_after_an_exception_in_a_task(
    ray_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> str:
        arr = _spilled(300, 2)
        rec = Recorder(monkeypatch)
        try:
            list(ray_backend.map(_fail_on_one, chunk_ranges(300, 50), (arr, 0.0)))
        finally:
            path = rec.shipped[0][0].path
            assert os.path.exists(path)  # the tasks had it while they ran
        return path  # pragma: no cover - the map raises

    with pytest.raises(ArithmeticError, match=r"chunk 1 of \(300, 2\)") as info:
        run()
    del info
    gc.collect()
    assert _names() == set()


def test_share_keeps_the_name_while_the_handle_lives(ray_backend: Any) -> None:
    arr = _spilled(120, 3)
    held = ray_backend.share(arr)
    del arr
    gc.collect()
    got = list(ray_backend.map(_rows_and_where, chunk_ranges(120, 50), (held, 0.0)))
    assert [s for _, rows in got for s in rows] == (
        np.arange(360, dtype=np.float32).reshape(120, 3).sum(axis=1).tolist()
    )
    names = _names()
    assert len(names) >= 1
    del held
    gc.collect()
    assert _names() == set()


def test_an_audit_with_spilled_intermediates_on_ray_equals_local(
    ray_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every intermediate a spill file (threshold 0): the kNN graph and the neighbour label
    distribution reach the tasks by name, and the audit's table is the local one."""
    from truelabel import Audit
    from truelabel.detect import _confident_learning

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 600)
    X = (rng.normal(size=(600, 8)) + 3.0 * np.eye(3, 8)[truth]).astype(np.float32)
    X[100] = X[101]  # a near-duplicate pair
    labels = truth.copy()
    labels[:30] = (labels[:30] + 1) % 3
    p = np.full((600, 3), 0.1)
    p[np.arange(600), truth] = 0.8
    issues: dict[str, dict[str, Any]] = {"label": {}, "outlier": {}, "near_duplicate": {}}

    def run(backend: Any) -> Any:
        _confident_learning._CACHE.clear()
        with spill_at(0):
            audit = Audit(issues, random_state=0, backend=backend, chunk_size=128)
            return audit.run(labels=labels, pred_probs=p, features=X).issues

    want = run(LocalBackend(n_jobs=2))
    rec = Recorder(monkeypatch)
    got = run(ray_backend)
    import pandas as pd

    pd.testing.assert_frame_equal(want, got, check_exact=False, rtol=1e-9)
    assert want["is_label_issue"].sum() > 0 and want["is_near_duplicate_issue"].sum() >= 2

    def named(obj: Any) -> list[MappedFile]:
        found = []
        for part in obj if isinstance(obj, tuple | list) else [obj]:
            if isinstance(part, MappedFile):
                found.append(part)
            elif hasattr(part, "__dataclass_fields__"):
                found += named([getattr(part, f) for f in part.__dataclass_fields__])
            elif isinstance(part, dict):
                found += named(list(part.values()))
        return found

    spilled = [m for s in rec.shipped for m in named(s) if m.path.startswith(spill_folder())]
    assert len(spilled) >= 3  # the graph's indices and distances, the neighbour labels, ...
    shapes = {m.shape for m in spilled}
    assert (600, 10) in shapes and (600, 3) in shapes
    del want, got, rec
    gc.collect()
    assert _names() == set()
