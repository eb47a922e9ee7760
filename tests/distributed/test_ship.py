"""Memory-mapped inputs travel to Ray workers as their path (distributed/_ship.py); these run
without Ray (pickle is what Ray does to ``shared``), the Ray run is in test_equal_to_local."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np

from truelabel._spill import scratch, spill_at, spill_folder
from truelabel.data import NpySource
from truelabel.distributed._ship import MappedFile, by_path


@dataclasses.dataclass(frozen=True)
class Holder:
    arr: np.ndarray
    k: int


def _npy(tmp_path: Path, arr: np.ndarray) -> np.ndarray:
    np.save(tmp_path / "a.npy", arr)
    return NpySource(tmp_path / "a.npy").memmap()


def test_a_mapped_file_ships_as_its_path_and_maps_the_same_rows(tmp_path: Path) -> None:
    want = np.arange(6000, dtype=np.float32).reshape(1000, 6)
    mapped = _npy(tmp_path, want)
    view = np.asarray(mapped)[137:905]  # what the passes hold: an ndarray view, a row slice
    shipped = by_path((view, 3, [mapped], {"x": view}, Holder(mapped, 2)))
    assert isinstance(shipped[0], MappedFile) and shipped[1] == 3
    assert isinstance(shipped[2][0], MappedFile) and isinstance(shipped[3]["x"], MappedFile)
    assert isinstance(shipped[4].arr, MappedFile) and shipped[4].k == 2
    blob = pickle.dumps(shipped)
    assert len(blob) < 2000  # the path, not 24 kB of values
    back = pickle.loads(blob)
    assert back[0].tolist() == want[137:905].tolist()  # the view's own offset, not the file's
    assert back[2][0].tolist() == want.tolist() and back[4].arr.tolist() == want.tolist()
    assert not back[0].flags.writeable


def test_arrays_that_are_not_read_only_file_maps_ship_by_value(tmp_path: Path) -> None:
    plain = np.arange(12.0).reshape(4, 3)
    mapped = _npy(tmp_path, plain)
    with spill_at(0):
        spilled = scratch((4, 3), np.float64)  # a spill file: by path only to this machine
    strided = np.asarray(mapped)[:, ::2]  # not contiguous
    shared = (plain, strided, np.asarray(mapped)[:0])
    assert by_path(shared) is shared
    assert by_path((spilled,), local=False)[0] is spilled  # test_ship_spilled.py: local
    assert by_path({"a": plain}) == {"a": plain}


def test_a_parquet_copy_goes_by_path_only_to_workers_on_this_machine(tmp_path: Path) -> None:
    import pandas as pd

    from truelabel.data import to_array

    want = np.arange(60, dtype=np.float64).reshape(20, 3)
    pd.DataFrame({f"p_{j}": want[:, j] for j in range(3)}).to_parquet(tmp_path / "p.parquet")
    copy = np.asarray(to_array(str(tmp_path / "p.parquet:p_0,p_1,p_2"), chunk_size=7))
    local = by_path((copy,), local=True)[0]
    assert isinstance(local, MappedFile) and local.path.startswith(spill_folder())
    assert pickle.loads(pickle.dumps(local)).tolist() == want.tolist()
    remote = by_path((copy,), local=False)[0]
    assert remote is copy  # another machine has no such file: the values travel
    mapped = _npy(tmp_path, want)  # a user's file goes by path either way
    assert isinstance(by_path(mapped, local=False), MappedFile)
