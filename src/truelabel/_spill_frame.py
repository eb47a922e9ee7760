"""Per-item outputs over spill files: the columns of the audit's issue table, Dawid-Skene's
posteriors and consensus labels.

An output that grows with the number of items (an ``(n_items,)`` column, an
``(n_items, n_classes)`` matrix) is an array of :func:`truelabel._spill.scratch`: in memory
below the spill threshold, else a memory-mapped unlinked file, so a result of 10^8 rows lives
in the page cache (file-backed pages) and not in the process's anonymous memory. The pandas
objects wrap these arrays without copying them (``copy=False``; pandas keeps one block per
column, and one 2-D block for a matrix); a column of class names is a pandas ``str`` column
whose Arrow buffers (offsets, bytes, validity) are such arrays too. Values and dtypes are the
in-memory ones exactly; only where the bytes live changes.

Examples
--------
>>> import numpy as np
>>> from truelabel._spill import is_spilled, spill_at
>>> codes = np.array([1, 0, -1, 1])
>>> with spill_at(0):
...     col = take_names(codes, ["cat", "dog"])
>>> list(col.astype(object)), str(col.dtype)
(['dog', 'cat', nan, 'dog'], 'str')
>>> with spill_at(0):
...     kept = spill_copy(np.arange(4.0))
>>> is_spilled(kept), kept.tolist()
(True, [0.0, 1.0, 2.0, 3.0])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._spill import is_spilled, scratch, spills
from ._validation import iter_chunks

__all__ = ["spill_copy", "take_names", "take_values"]

#: rows per block of the copies and of the names' bytes
_BLOCK = 1 << 16
#: rows per block of a names column built in memory (Arrow's ``take``, block by block)
_NAMES_BLOCK = 1 << 18


def spill_copy(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself when it is small or already a spill file, else a copy of it in one
    (copied block by block: no second in-memory array)."""
    arr = np.asarray(arr)
    if arr.dtype == object or is_spilled(arr) or not spills(arr.nbytes):
        return arr
    out = scratch(arr.shape, arr.dtype)
    rows = arr.shape[0] if arr.ndim else 1
    for sl in iter_chunks(rows, _BLOCK):
        out[sl] = arr[sl]
    return out


def take_names(codes: np.ndarray, names: Any, *, block: int = _NAMES_BLOCK) -> Any:
    """The class name of each code, missing (NaN) for -1: a pandas ``str`` column, as
    ``pd.Series(names).array.take(codes, allow_fill=True)`` gives it.

    Below the spill threshold it is exactly that (taken in blocks of ``block`` rows, no
    Python object per item); above it the Arrow buffers are spill files, filled by blocks.
    Names that pandas does not hold as an Arrow ``str`` array (string inference switched off)
    are taken by pandas itself, in memory.
    """
    codes = np.asarray(codes)
    table = pd.Series(np.asarray(list(names), dtype=object)).array
    # the offsets are the largest buffer
    if isinstance(table, pd.arrays.ArrowStringArray) and spills(8 * (codes.size + 1)):
        return _spilled_names(codes, [str(v) for v in names], table.dtype)
    blocks = [table.take(codes[sl], allow_fill=True) for sl in iter_chunks(codes.size, block)]
    # _concat_same_type: the ExtensionArray interface (absent from the stubs); chunks, no copy
    return type(table)._concat_same_type(blocks) if blocks else table[:0]  # type: ignore[attr-defined]


def _spilled_names(codes: np.ndarray, names: list[str], dtype: Any) -> Any:
    """A ``large_string`` Arrow array over spill files (offsets, UTF-8 bytes, validity bits)
    wrapped as a pandas ``str`` array of ``dtype``: two passes over ``codes`` by blocks."""
    import pyarrow as pa

    encoded = [s.encode("utf-8") for s in names]
    lens = np.array([len(b) for b in encoded] or [0], dtype=np.int64)
    width = max(int(lens.max()), 1)
    padded = np.zeros((max(len(encoded), 1), width), dtype=np.uint8)
    for k, b in enumerate(encoded):
        padded[k, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    n = codes.size
    offsets = scratch(n + 1, np.int64)
    offsets[0] = 0
    missing = 0
    for sl in iter_chunks(n, _BLOCK):
        c = codes[sl]
        length = np.where(c >= 0, lens[np.maximum(c, 0)], 0)
        missing += int(np.count_nonzero(c < 0))
        np.cumsum(length, out=offsets[sl.start + 1 : sl.stop + 1])
        offsets[sl.start + 1 : sl.stop + 1] += offsets[sl.start]
    data = scratch(int(offsets[n]), np.uint8)
    bits = scratch((n + 7) // 8, np.uint8) if missing else None
    for sl in iter_chunks(n, _BLOCK):  # _BLOCK is a multiple of 8: whole bytes of bits
        c = codes[sl]
        ok = c >= 0
        length = np.where(ok, lens[np.maximum(c, 0)], 0)
        chars = padded[np.maximum(c, 0)][np.arange(width) < length[:, None]]
        data[offsets[sl.start] : offsets[sl.stop]] = chars
        if bits is not None:
            packed = np.packbits(ok, bitorder="little")
            bits[sl.start // 8 : sl.start // 8 + packed.size] = packed
    buffers = [None if bits is None else pa.py_buffer(bits), pa.py_buffer(offsets)]
    arr = pa.Array.from_buffers(
        pa.large_string(), n, [*buffers, pa.py_buffer(data)], null_count=missing
    )
    return pd.arrays.ArrowStringArray(pa.chunked_array([arr]), dtype=dtype)  # type: ignore[call-arg]


def take_values(values: pd.Index, codes: np.ndarray) -> Any:
    """The values of ``values[codes]`` (codes >= 0), as an array a Series wraps without a
    copy: numbers and booleans in a spill file when large, class names as :func:`take_names`
    builds them when large, other kinds (objects, dates) as pandas takes them."""
    codes = np.asarray(codes)
    if values.dtype.kind in "biuf" and isinstance(values.dtype, np.dtype):
        out = scratch(codes.shape, values.dtype)
        plain = values.to_numpy()
        for sl in iter_chunks(codes.size, _BLOCK):
            np.take(plain, codes[sl], out=out[sl])
        return out
    if isinstance(values.array, pd.arrays.ArrowStringArray) and spills(8 * (codes.size + 1)):
        return _spilled_names(codes, [str(v) for v in values], values.dtype)
    return values[codes]
