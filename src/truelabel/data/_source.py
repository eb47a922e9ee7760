"""Row sources: an array, a memory-mapped ``.npy`` file or a Parquet file, read by row range.

A heavy pass over 100M items must never hold the whole input in the driver. A per-chunk
function therefore receives a *source* (picklable and small: an ``.npy`` or Parquet source
pickles as its path and column spec, never as its data) and reads only its own rows with
``source.read(start, stop)``. The same per-chunk function then runs on a thread of
:class:`~truelabel.backend.LocalBackend` or as a task of a Ray backend.

- :class:`ArraySource`: an in-memory (or already memory-mapped) array; ``read`` is a slice.
- :class:`NpySource`: an ``.npy`` file opened with ``mmap_mode="r"`` in each process on first
  use; ``read`` touches only the pages of its rows.
- :class:`ParquetSource`: one list / fixed-size-list column (a vector per row) or several
  numeric columns (one value each, e.g. ``p_0 ... p_K``); ``read`` decodes only the row
  groups that overlap its rows.

:func:`open_source` turns what a user passes (array, path, ``data.parquet:COLUMN``) into a
source; :func:`to_array` gives the array-based passes an ndarray without loading the data:
an ``.npy`` stays memory-mapped, a Parquet file is copied chunk by chunk into a read-only
memory-mapped scratch file (disk, not memory; deleted when the array is freed).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._spill import spill_folder
from .._validation import closest
from ..backend import DEFAULT_CHUNK_ROWS
from ..exceptions import DataFormatError, ValidationError

__all__ = ["ArraySource", "NpySource", "ParquetSource", "Source", "open_source", "to_array"]

_PARQUET = (".parquet", ".pq")


class Source:
    """Rows ``[start, stop)`` of a 2-D (or 1-D) numeric array, read on demand."""

    argument: str = "source"

    @property
    def shape(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        """Rows ``start:stop`` as an ndarray (only those rows are read)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.shape[0])


class ArraySource(Source):
    """An array already in memory (or memory-mapped); ``read`` returns a view."""

    def __init__(self, array: np.ndarray, *, argument: str = "source") -> None:
        self.array = array
        self.argument = argument

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.array.dtype

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.array[start:stop])

    def __repr__(self) -> str:
        return f"ArraySource(shape={self.shape}, dtype={self.dtype})"


class NpySource(Source):
    """An ``.npy`` file, memory-mapped read-only on first use in each process.

    Pickles as its path, so a task on another process or machine maps the file itself
    (the file must be visible there under the same path).
    """

    def __init__(self, path: str | os.PathLike[str], *, argument: str = "source") -> None:
        self.path = Path(path)
        self.argument = argument
        self._array: np.ndarray | None = None
        arr = self._open()  # validates once, here
        self._shape = tuple(arr.shape)
        self._dtype = arr.dtype

    def _open(self) -> np.ndarray:
        if self._array is None:
            if not self.path.is_file():
                raise DataFormatError(
                    self.argument, f"file {str(self.path)!r} does not exist", "check the path"
                )
            try:
                arr = np.load(self.path, allow_pickle=False, mmap_mode="r")
            except (ValueError, OSError) as err:
                raise DataFormatError(
                    self.argument,
                    f"{str(self.path)!r} is not a .npy array of numbers ({err})",
                    "save the array with numpy.save(path, array)",
                ) from err
            if not np.issubdtype(arr.dtype, np.number):
                raise ValidationError(
                    self.argument,
                    f"{str(self.path)!r} holds dtype {arr.dtype}, not numbers",
                    "save a float array with numpy.save(path, array.astype('float32'))",
                )
            self._array = arr
        return self._array

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self._open()[start:stop])

    def memmap(self) -> np.ndarray:
        """The whole file as a read-only memory map (nothing is read until sliced)."""
        return self._open()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_array"] = None  # a memmap would pickle its data; the path is enough
        return state

    def __repr__(self) -> str:
        return f"NpySource({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


class ParquetSource(Source):
    """Numeric rows of a Parquet file, decoded row group by row group.

    Parameters
    ----------
    path : path
    columns : str or sequence of str
        One list / fixed-size-list column (a vector per row: shape ``(n, dim)``), or several
        numeric columns (one value per row each: shape ``(n, len(columns))``), or one
        numeric column (shape ``(n,)``).
    argument : str
        The argument named in error messages.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        columns: str | Sequence[str],
        *,
        argument: str = "source",
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.argument = argument
        if not self.path.is_file():
            raise DataFormatError(
                argument, f"file {str(self.path)!r} does not exist", "check the path"
            )
        self.columns = [columns] if isinstance(columns, str) else list(columns)
        if not self.columns:
            raise ValidationError(argument, "names no column", f"pass {self.path}:COLUMN")
        try:
            meta = pq.ParquetFile(self.path).metadata
        except (OSError, pa.ArrowException) as err:
            raise DataFormatError(
                argument, f"{str(self.path)!r} is not a Parquet file ({err})", "check the path"
            ) from err
        schema = meta.schema.to_arrow_schema()
        for col in self.columns:
            if col not in schema.names:
                hint = closest(col, schema.names)
                fix = (
                    f"did you mean {hint!r}?"
                    if hint
                    else f"columns: {', '.join(schema.names[:20])}"
                )
                raise ValidationError(argument, f"{str(self.path)!r} has no column {col!r}", fix)
        kinds = [schema.field(c).type for c in self.columns]
        self._vector = len(kinds) == 1 and (
            pa.types.is_list(kinds[0])
            or pa.types.is_large_list(kinds[0])
            or pa.types.is_fixed_size_list(kinds[0])
        )
        values = [kinds[0].value_type] if self._vector else kinds
        for col, kind in zip(self.columns, values, strict=True):
            if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
                raise ValidationError(
                    argument,
                    f"column {col!r} of {str(self.path)!r} holds {kind}, not numbers",
                    "store numbers (a float column per class, or one list column of floats)",
                )
        self._dtype = np.dtype(np.result_type(*[k.to_pandas_dtype() for k in values]))
        sizes = np.array([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        self._offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        n = int(self._offsets[-1])
        if self._vector:
            dim = kinds[0].list_size if pa.types.is_fixed_size_list(kinds[0]) else None
            if dim is None:
                dim = len(self._decode(0, min(n, 1))[0]) if n else 0
            self._shape: tuple[int, ...] = (n, int(dim))
        elif len(self.columns) == 1:
            self._shape = (n,)
        else:
            self._shape = (n, len(self.columns))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._dtype

    def _decode(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``, reading only the row groups that hold them."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        off = self._offsets
        first = int(np.searchsorted(off, start, side="right")) - 1
        last = int(np.searchsorted(off, stop, side="left"))
        groups = list(range(max(first, 0), max(last, first + 1)))
        table = pq.ParquetFile(self.path).read_row_groups(groups, columns=self.columns)
        lo = start - int(off[groups[0]])
        table = table.slice(lo, stop - start)
        for i, col in enumerate(self.columns):
            if table.column(i).null_count:
                nulls = table.column(i).is_null().to_numpy(zero_copy_only=False)
                row = start + int(np.flatnonzero(nulls)[0])
                raise ValidationError(
                    self.argument,
                    f"column {col!r} of {str(self.path)!r} is null at row {row}",
                    "fill or drop that row",
                )
        if not self._vector:
            cols = [table.column(i).to_numpy() for i in range(len(self.columns))]
            out = cols[0] if len(cols) == 1 else np.column_stack(cols)
            return np.asarray(out, dtype=self._dtype)
        arr = table.column(0).combine_chunks()
        if isinstance(arr, pa.ChunkedArray):  # pragma: no cover - pyarrow versions
            arr = arr.chunk(0)
        lengths = (
            np.diff(np.asarray(arr.offsets))
            if not pa.types.is_fixed_size_list(arr.type)
            else np.full(len(arr), arr.type.list_size)
        )
        dim = self._shape[1] if hasattr(self, "_shape") else int(lengths[0]) if len(lengths) else 0
        if len(lengths) and (lengths != dim).any():
            row = start + int(np.flatnonzero(lengths != dim)[0])
            raise ValidationError(
                self.argument,
                f"column {self.columns[0]!r} of {str(self.path)!r} has a vector of length "
                f"{int(lengths[row - start])} at row {row}, expected {dim}",
                "store vectors of one length",
            )
        flat = np.asarray(arr.flatten().to_numpy(), dtype=self._dtype)
        return flat.reshape(len(arr), dim)

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, int(start)), min(int(stop), len(self))
        if stop <= start:
            return np.empty((0, *self._shape[1:]), dtype=self._dtype)
        return self._decode(start, stop)

    def __repr__(self) -> str:
        return f"ParquetSource({str(self.path)!r}, columns={self.columns!r}, shape={self.shape})"


def _split_spec(spec: str) -> tuple[Path, str | None]:
    """``data.parquet:COLUMN[,COLUMN...]`` -> (path, columns); anything else -> (path, None)."""
    head, sep, column = spec.rpartition(":")
    if sep and Path(head).suffix.lower() in _PARQUET:
        return Path(head), column
    return Path(spec), None


def open_source(
    data: Any, *, argument: str = "source", columns: str | Sequence[str] | None = None
) -> Source:
    """The :class:`Source` for an array, an ``.npy`` path or ``data.parquet:COLUMN``.

    Parameters
    ----------
    data : ndarray, Source, path or str
        An array (kept as is), a source (returned), ``x.npy`` (memory-mapped), ``x.parquet``
        with ``columns=``, or ``x.parquet:COL`` / ``x.parquet:COL1,COL2,...``.
    argument : str
        Named in error messages (``"pred_probs"``, ``"features"``).
    columns : str or sequence of str, optional
        Parquet columns (instead of the ``:COLUMN`` suffix).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "p.npy")
    >>> np.save(path, np.arange(6.0).reshape(3, 2))
    >>> src = open_source(path)
    >>> src.shape, src.read(1, 3).tolist()
    ((3, 2), [[2.0, 3.0], [4.0, 5.0]])
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, str | os.PathLike):
        path, spec = _split_spec(os.fspath(data))
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return NpySource(path, argument=argument)
        if suffix in _PARQUET:
            cols = columns if columns is not None else spec
            if not cols:
                raise ValidationError(
                    argument,
                    f"{str(path)!r} names no column",
                    f"pass {path!s}:COLUMN (a list column) or {path!s}:p_0,p_1,... "
                    "(one numeric column per class)",
                )
            if isinstance(cols, str):
                cols = [c for c in cols.split(",") if c] if "," in cols else cols
            return ParquetSource(path, cols, argument=argument)
        raise ValidationError(
            argument,
            f"{str(path)!r} is neither a .npy file nor a Parquet file",
            "pass an array, x.npy (numpy.save) or x.parquet:COLUMN",
        )
    return ArraySource(np.asarray(data), argument=argument)


def to_array(
    data: Any,
    argument: str = "source",
    *,
    chunk_size: int | None = None,
    dtype: Any = None,
) -> np.ndarray:
    """An ndarray over ``data`` for the array-based passes, never loading it whole.

    An array is returned as is; an ``.npy`` file as its read-only memory map; any other
    source (Parquet) is copied ``chunk_size`` rows at a time into a scratch file in the
    process's private spill folder (:func:`truelabel._spill.spill_folder` under ``$TMPDIR``;
    deleted when the array is freed, the folder at exit), returned as its read-only memory
    map, so the driver's memory holds one chunk at a time.

    Examples
    --------
    >>> to_array([[0.5, 0.5]]).tolist()
    [[0.5, 0.5]]
    """
    if not isinstance(data, Source | str | os.PathLike):
        return np.asarray(data)
    src = open_source(data, argument=argument)
    if isinstance(src, ArraySource):
        return src.array
    if isinstance(src, NpySource):
        return src.memmap()
    size = DEFAULT_CHUNK_ROWS if chunk_size is None else int(chunk_size)
    if size < 1:
        raise ValidationError("chunk_size", f"got {chunk_size!r}", "pass a positive number of rows")
    out_dtype = np.dtype(dtype) if dtype is not None else src.dtype
    n = len(src)
    if n == 0:
        return np.empty(src.shape, dtype=out_dtype)
    # a named file in the private spill folder (removed when the array is freed, or at exit):
    # a Ray cluster started here maps it by path (distributed/_ship.py) instead of receiving it
    fd, name = tempfile.mkstemp(prefix="truelabel-", suffix=".scratch", dir=spill_folder())
    with os.fdopen(fd, "r+b") as f:
        f.truncate(max(1, int(np.prod(src.shape)) * out_dtype.itemsize))
    try:
        out = np.memmap(name, dtype=out_dtype, mode="r+", shape=src.shape)
        for start in range(0, n, size):
            stop = min(start + size, n)
            out[start:stop] = src.read(start, stop)
        out.flush()
        del out
        done = np.memmap(name, dtype=out_dtype, mode="r", shape=src.shape)
    except BaseException:
        os.unlink(name)
        raise
    weakref.finalize(done, _unlink, name)
    return done


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # already gone (the spill folder removed at exit)
        pass
