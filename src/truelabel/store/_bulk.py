"""Columns in, rows out: batched inserts (one ``executemany`` per chunk, never a row at a time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

__all__ = ["CHUNK_ROWS", "insert_columns", "pylist"]

#: rows per executemany batch: bounds the Python rows held at once
CHUNK_ROWS = 20_000


def pylist(values: Any) -> list[Any]:
    """A column as a list of plain Python values (NumPy scalars -> int/float/str, NaN -> None)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "f":
            out = values.astype(object)
            out[np.isnan(values)] = None
            return list(out)
        return values.tolist()
    return [None if isinstance(v, float) and v != v else v for v in values]


def insert_columns(
    session: Session,
    table: Any,
    columns: Mapping[str, Sequence[Any] | np.ndarray | Any],
    *,
    n_rows: int,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Insert ``n_rows`` rows given column-wise, ``chunk_rows`` per executemany.

    A column that is not a sequence/array (e.g. a run id) is repeated on every row.
    """
    if n_rows == 0:
        return 0
    keys = list(columns)
    stmt = insert(table)
    for start in range(0, n_rows, chunk_rows):
        stop = min(n_rows, start + chunk_rows)
        cols = []
        for key in keys:
            value = columns[key]
            if isinstance(value, np.ndarray | list | tuple):
                cols.append(pylist(value[start:stop]))
            else:
                cols.append([value] * (stop - start))
        rows = [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)]
        session.execute(stmt, rows)
    return n_rows
