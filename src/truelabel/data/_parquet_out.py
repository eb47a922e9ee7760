"""Results written chunk by chunk to Parquet: one row group per chunk, atomically.

A per-chunk result (a DataFrame, or named arrays) is appended as a row group as soon as
it arrives, so writing N rows holds one chunk in memory, never the whole table. The file
appears under its name only when every chunk was written (temporary file + ``os.replace``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_path
from ..exceptions import ValidationError

__all__ = ["ParquetChunkWriter", "write_frame_parquet", "write_parquet_chunks"]


def _table(part: Any) -> Any:
    import pyarrow as pa

    if isinstance(part, pd.DataFrame):
        return pa.Table.from_pandas(part, preserve_index=False)
    if isinstance(part, Mapping):
        cols = {}
        for name, values in part.items():
            arr = np.asarray(values)
            if arr.ndim == 2:  # a vector per row: a fixed-size list column
                flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
                cols[str(name)] = pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
            elif arr.ndim == 1:
                cols[str(name)] = pa.array(arr)
            else:
                raise ValidationError(
                    "chunk", f"column {name!r} has shape {arr.shape}", "pass 1-D or 2-D arrays"
                )
        return pa.table(cols)
    raise ValidationError(
        "chunk",
        f"got {type(part).__name__}",
        "pass a DataFrame or a mapping column name -> array",
    )


class ParquetChunkWriter:
    """Append chunks to a Parquet file, one row group each.

    Every chunk must have the first chunk's columns and types. Use as a context manager:
    the file is moved into place when the block ends without error, else removed.

    Examples
    --------
    >>> import numpy as np, tempfile, os, pandas as pd
    >>> path = os.path.join(tempfile.mkdtemp(), "scores.parquet")
    >>> with ParquetChunkWriter(path) as w:
    ...     w.write({"score": np.array([0.1, 0.2])})
    ...     w.write({"score": np.array([0.3])})
    >>> pd.read_parquet(path)["score"].tolist(), w.n_rows, w.n_row_groups
    ([0.1, 0.2, 0.3], 3, 2)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.n_rows = 0
        self.n_row_groups = 0
        self._stack = ExitStack()
        self._tmp: Path | None = None
        self._writer: Any = None

    def __enter__(self) -> ParquetChunkWriter:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def write(self, part: Any) -> None:
        """Append one chunk (a DataFrame or a mapping name -> 1-D / 2-D array)."""
        import pyarrow.parquet as pq

        if self._tmp is None:
            raise ValidationError("ParquetChunkWriter", "is not open", "use it in a with block")
        table = _table(part)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        elif not table.schema.equals(self._writer.schema):
            raise ValidationError(
                "chunk",
                f"chunk {self.n_row_groups} has columns {table.schema.names} "
                f"({', '.join(map(str, table.schema.types))}), the first had "
                f"{self._writer.schema.names} ({', '.join(map(str, self._writer.schema.types))})",
                "give every chunk the same columns and dtypes",
            )
        if table.num_rows:
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self.n_row_groups += 1
            self.n_rows += table.num_rows

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.close()
        elif exc_type is None:
            raise ValidationError("chunks", "were empty", "write at least one chunk")
        self._stack.__exit__(exc_type, exc, tb)


def write_parquet_chunks(path: str | os.PathLike[str], parts: Iterable[Any]) -> Path:
    """Write every chunk of ``parts`` (DataFrames or mappings of arrays) as a row group.

    ``parts`` may be a generator (e.g. the results of ``backend.map``): each chunk is
    written as it arrives and then dropped.
    """
    with ParquetChunkWriter(path) as writer:
        for part in parts:
            writer.write(part)
    return Path(path)


def write_frame_parquet(
    path: str | os.PathLike[str], frame: pd.DataFrame, *, chunk_size: int | None = None
) -> Path:
    """Write ``frame`` (its index as the first column, named after it or ``item``) one row
    group per ``chunk_size`` rows (default 32,768), so a reader can stream it; atomically
    (an interrupted write leaves no file).

    Each row group is built from slices of the frame's columns and index (views: no copy
    of the whole frame is ever made, so a frame over spill files is written holding one
    chunk in memory); the file equals ``frame.reset_index()`` written chunk by chunk.
    """
    from ..backend import chunk_ranges

    name = frame.index.name or "item"
    if not isinstance(frame.index, pd.MultiIndex) and name in frame.columns:
        raise ValidationError(
            "frame",
            f"has a column {name!r}, the name its index is written under",
            "rename the index or that column",
        )
    if not frame.columns.is_unique:
        raise ValidationError("frame", "has repeated column names", "give each column one name")
    columns = [frame.iloc[:, i].array for i in range(frame.shape[1])]  # views
    index = frame.index

    def parts() -> Iterator[pd.DataFrame]:
        for c in chunk_ranges(len(frame), chunk_size):
            if isinstance(index, pd.MultiIndex):  # its levels become columns
                yield frame.iloc[c.slice].reset_index(names=list(index.names))
                continue
            cols = {name: index[c.slice]}
            cols.update(
                (col, values[c.slice]) for col, values in zip(frame.columns, columns, strict=True)
            )
            yield pd.DataFrame(cols, copy=False)

    return write_parquet_chunks(path, parts())
