"""How ``shared`` travels to Ray workers: memory-mapped files by path, not by value.

A pass given an ``.npy`` file (:class:`~truelabel.data.NpySource`, ``to_array``) holds it as a
read-only memory map; pickled as it is, the whole array would be copied into Ray's object
store and into every worker that reads it. :func:`by_path` replaces every array that is a
contiguous window of a read-only memory-mapped file (the map itself, or a view of it such as
``np.asarray(memmap)`` or a row slice) with :class:`MappedFile`, which pickles as (path,
offset, dtype, shape) and unpickles as a read-only memory map of the same bytes: each task
then touches only the pages of the rows it reads. The file must be visible to the workers
under the same path (always on one machine; shared storage on a cluster). The read-only
copy of a Parquet input (``to_array``, in the driver's private spill folder) goes by path
only to a cluster this process started on this machine, by value to any other. So does a
spilled intermediate (:func:`truelabel._spill.scratch` above the spill threshold: the kNN
graph, the neighbour label distribution): its unnamed file gets a name in the private spill
folder the first time it is shipped (:func:`truelabel._spill.spill_file`), kept until the
array is freed; the workers map that name read-only and see the driver's pages themselves.

It looks inside tuples, lists, dicts and dataclasses (``shared`` of the chunked passes);
anything else is shipped as it is.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
from typing import Any

import numpy as np

from .._spill import spill_file

__all__ = ["MappedFile", "by_path", "mapped_file"]


def _remap(path: str, offset: int, dtype: str, shape: tuple[int, ...], order: str) -> np.ndarray:
    """The worker's side: a read-only memory map of the same bytes (a plain ndarray view)."""
    if 0 in shape:
        return np.empty(shape, dtype=np.dtype(dtype))
    mapped = np.memmap(
        path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape, order=order
    )  # type: ignore[call-overload]
    return np.asarray(mapped)


class MappedFile:
    """A window of a memory-mapped file that pickles as its path (see the module docstring)."""

    def __init__(
        self, path: str, offset: int, dtype: np.dtype[Any], shape: tuple[int, ...], order: str
    ) -> None:
        self.path = path
        self.offset = offset
        self.dtype = dtype
        self.shape = shape
        self.order = order

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _remap, (self.path, self.offset, self.dtype.str, self.shape, self.order)

    def __repr__(self) -> str:
        return f"MappedFile({self.path!r}, offset={self.offset}, shape={self.shape})"


def _root_map(arr: np.ndarray) -> np.memmap[Any, Any] | None:
    """The memory map of a named file that ``arr`` views, if any."""
    base: Any = arr
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap) and isinstance(base.base, mmap.mmap):
            return base if getattr(base, "filename", None) else None
        base = base.base
    return None


def _private(path: str) -> bool:
    """Whether ``path`` is in this process's spill folder (a Parquet input's copy)."""
    from .._spill import _DIR

    return any(os.path.dirname(path) == folder for folder in _DIR)


def mapped_file(arr: np.ndarray, *, local: bool = True) -> MappedFile | None:
    """``arr`` as a :class:`MappedFile` when it is a contiguous, read-only window of a
    memory-mapped file that still exists, or (only when ``local``: the workers run on this
    machine) a contiguous window of a spill file (:func:`truelabel._spill.spill_file`, named
    now if it is not yet); else None. A file in this process's private spill folder (the
    copy of a Parquet input) also only when ``local``."""
    if arr.size == 0:
        return None
    if arr.flags.c_contiguous:
        order = "C"
    elif arr.flags.f_contiguous:
        order = "F"
    else:
        return None
    if local:
        spilled = spill_file(arr)
        if spilled is not None:
            # writable on this side: tasks see this process's later writes, as threads do
            return MappedFile(spilled[0], spilled[1], arr.dtype, tuple(arr.shape), order)
    if arr.flags.writeable:
        return None
    root = _root_map(arr)
    if root is None or root.flags.writeable or root.mode not in ("r", "c"):
        return None
    start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    path = os.fspath(root.filename)  # type: ignore[arg-type]
    if start < 0 or start + arr.nbytes > root.nbytes or not os.path.isfile(path):
        return None
    if not local and _private(path):
        return None
    return MappedFile(path, int(root.offset) + int(start), arr.dtype, tuple(arr.shape), order)


def by_path(obj: Any, *, local: bool = True) -> Any:
    """``obj`` with every memory-mapped file window replaced by its :class:`MappedFile`
    (the same object when there is none); ``local``: see :func:`mapped_file`."""
    if isinstance(obj, np.ndarray):
        found = mapped_file(obj, local=local)
        return obj if found is None else found
    if type(obj) is tuple or type(obj) is list:
        parts = [by_path(x, local=local) for x in obj]
        if all(a is b for a, b in zip(parts, obj, strict=True)):
            return obj
        return type(obj)(parts)
    if type(obj) is dict:
        new = {key: by_path(value, local=local) for key, value in obj.items()}
        return obj if all(new[key] is obj[key] for key in obj) else new
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changed = {}
        for f in dataclasses.fields(obj):
            if f.init:
                value = getattr(obj, f.name)
                new_value = by_path(value, local=local)
                if new_value is not value:
                    changed[f.name] = new_value
        return dataclasses.replace(obj, **changed) if changed else obj
    return obj
