"""Precomputed vectors as the audit's features (any modality: the user's own embeddings).

Read from a memory-mapped ``.npy`` file, a list column of a Parquet file
(``data.parquet:COLUMN``) or the numeric columns of a DataFrame; row ``i`` is item ``i``.
Every problem is a :class:`~truelabel.exceptions.ValidationError` naming the argument, the
bad value and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_features, closest
from .exceptions import DataFormatError, ValidationError

__all__ = ["check_precomputed_features", "read_features"]

_PARQUET = (".parquet", ".pq")


def _split_spec(spec: str) -> tuple[Path, str | None]:
    """``data.parquet:COLUMN`` -> (path, column); anything else -> (path, None)."""
    head, sep, column = spec.rpartition(":")
    if sep and Path(head).suffix.lower() in _PARQUET:
        return Path(head), column
    return Path(spec), None


def read_features(
    spec: str | os.PathLike[str], *, n_items: int | None = None, argument: str = "features"
) -> np.ndarray:
    """Vectors from ``emb.npy`` (memory-mapped, not read into memory) or
    ``data.parquet:COLUMN`` (a list or fixed-size-list column of numbers).

    Parameters
    ----------
    spec : str or path
        The file, with ``:COLUMN`` for Parquet.
    n_items : int, optional
        Rows expected (one per item of the data).
    argument : str, default "features"
        Name used in error messages (the CLI passes ``--features``).

    Returns
    -------
    ndarray of shape (n_items, dim)
        float32 or float64; a ``.npy`` of either stays memory-mapped.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "emb.npy")
    >>> np.save(path, np.eye(3, dtype=np.float32))
    >>> read_features(path, n_items=3).shape
    (3, 3)
    """
    path, column = _split_spec(os.fspath(spec))
    if not path.is_file():
        raise DataFormatError(argument, f"file {str(path)!r} does not exist", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as err:
            raise DataFormatError(
                argument,
                f"{str(path)!r} is not a .npy array of numbers ({err})",
                "save the vectors with numpy.save(path, array)",
            ) from err
    elif suffix in _PARQUET:
        if column is None:
            raise ValidationError(
                argument,
                f"{str(path)!r} names no column",
                f"pass {path!s}:COLUMN, the list column that holds the vectors",
            )
        arr = _parquet_vectors(path, column, argument)
    else:
        raise ValidationError(
            argument,
            f"{str(path)!r} is neither a .npy file nor a Parquet file",
            "pass emb.npy (numpy.save) or data.parquet:COLUMN",
        )
    return check_precomputed_features(arr, n_items=n_items, argument=argument)


def _parquet_vectors(path: Path, column: str, argument: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if column not in names:
        hint = closest(column, names)
        fix = f"did you mean {hint!r}?" if hint else f"columns: {', '.join(names[:20])}"
        raise ValidationError(argument, f"{str(path)!r} has no column {column!r}", fix)
    col = pq.read_table(path, columns=[column]).column(0).combine_chunks()
    kind = col.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and not (
        pa.types.is_fixed_size_list(kind)
    ):
        raise ValidationError(
            argument,
            f"column {column!r} is {kind}, not a list of numbers per row",
            "store one vector per row as a list (or fixed-size list) column",
        )
    if not (pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise ValidationError(
            argument,
            f"column {column!r} holds {kind.value_type} values, not numbers",
            "store the vectors as lists of floats",
        )
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValidationError(argument, f"column {column!r} row {row} is null", "fill that row")
    if pa.types.is_fixed_size_list(kind):
        dim = kind.list_size
    else:
        lengths = col.value_lengths().to_numpy(zero_copy_only=False)
        dim = int(lengths[0]) if lengths.size else 0
        bad = np.flatnonzero(lengths != dim)
        if bad.size:
            r = int(bad[0])
            raise ValidationError(
                argument,
                f"column {column!r} row {r} has {int(lengths[r])} values, row 0 has {dim}",
                "give every row a vector of the same length",
            )
    values = col.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values).reshape(len(col), dim)


def check_precomputed_features(
    features: Any, *, n_items: int | None = None, argument: str = "features"
) -> np.ndarray:
    """A finite numeric 2-D array, one row per item, from an array or a DataFrame.

    The messages say both row counts on a mismatch and the first row holding NaN or inf.
    A DataFrame's columns must all be numeric (the first other one is named).
    """
    if isinstance(features, pd.DataFrame):
        bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if bad:
            raise ValidationError(
                argument,
                f"column {str(bad[0])!r} is {features[bad[0]].dtype}, not numeric",
                "pass only the numeric vector columns",
            )
        features = features.to_numpy(dtype=np.float32)
    arr = features if isinstance(features, np.ndarray) else np.asarray(features)
    if arr.ndim != 2:
        raise ValidationError(
            argument,
            f"expected shape (n_items, dim), got shape {arr.shape}",
            "pass one vector per row (reshape a single vector with x[None, :])"
            if arr.ndim == 1
            else "pass a 2-D array",
        )
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValidationError(
            argument, f"dtype {arr.dtype} is not a number type", "pass float vectors"
        )
    if n_items is not None and arr.shape[0] != n_items:
        raise ValidationError(
            argument,
            f"has {arr.shape[0]} rows but the data has {n_items} items",
            "pass one vector per item, row i for item i",
        )
    return check_features(arr, n_items=n_items, argument=argument)
