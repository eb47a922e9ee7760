"""Read a table (CSV, TSV, Parquet, JSON Lines) into a DataFrame, with clear errors, and pull
checked ids and numeric features out of it."""

from __future__ import annotations

import csv
import fnmatch
import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._validation import check_column, closest
from ..exceptions import DataFormatError, TruelabelWarning, ValidationError, warn_at_caller

__all__ = [
    "SUPPORTED_SUFFIXES",
    "check_unique_ids",
    "ids_from_column",
    "numeric_features",
    "read_table",
    "select_feature_columns",
    "sniff_delimiter",
]

#: File suffix -> format name.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".csv": "CSV",
    ".tsv": "TSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".jsonl": "JSON Lines",
    ".ndjson": "JSON Lines",
    ".json": "JSON",
}

_ROWS_FIX = "write at least one data row to the file"


_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
#: lines looked at to guess the delimiter
_SNIFF_LINES = 50


def sniff_delimiter(path: str | os.PathLike[str], default: str = ",") -> str:
    """The delimiter of a delimited text file, guessed from its first lines.

    :class:`csv.Sniffer` chooses among comma, tab, semicolon and pipe; its guess is kept
    only when it also splits the header line, else ``default`` is returned.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        lines = list(itertools.islice(fh, _SNIFF_LINES))
    if not lines:
        return default
    header = lines[0]
    if default in header and not any(d in header for d in _DELIMITER_NAMES if d != default):
        return default
    try:
        found = csv.Sniffer().sniff("".join(lines), delimiters="".join(_DELIMITER_NAMES))
    except csv.Error:
        return default
    return found.delimiter if found.delimiter in header else default


def _read_delimited(path: Path, id_col: str | None, default: str) -> pd.DataFrame:
    sep = sniff_delimiter(path, default)
    if sep != default:
        warn_at_caller(
            f"path: {str(path)!r} is {_DELIMITER_NAMES[sep]}-separated, not "
            f"{_DELIMITER_NAMES[default]}-separated as its suffix says; reading it with "
            f"{_DELIMITER_NAMES[sep]} as the delimiter",
            TruelabelWarning,
        )
    dtype = {id_col: str} if id_col is not None else None
    try:
        return pd.read_csv(path, sep=sep, dtype=dtype)
    except pd.errors.ParserError as exc:
        raise DataFormatError(
            "path",
            f"cannot read {str(path)!r} as {_DELIMITER_NAMES[sep]}-separated values: "
            + str(exc).strip(),
            "a line has more fields than the header: quote fields that contain the "
            f"delimiter ({sep!r}), or save the file with another delimiter",
        ) from exc


def _read_csv(path: Path, id_col: str | None) -> pd.DataFrame:
    return _read_delimited(path, id_col, ",")


def _read_tsv(path: Path, id_col: str | None) -> pd.DataFrame:
    return _read_delimited(path, id_col, "\t")


def _read_parquet(path: Path, id_col: str | None) -> pd.DataFrame:
    return pd.read_parquet(path)


def _first_bad_json_line(path: Path) -> tuple[int, str] | None:
    """Line number (1-based) and problem of the first line that is not a JSON object."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return number, f"{err.msg} at column {err.colno}"
            if not isinstance(value, dict):
                return number, f"holds a {type(value).__name__}, not an object"
    return None


def _read_jsonl(path: Path, id_col: str | None) -> pd.DataFrame:
    try:
        # dtype=False keeps the JSON types: the string "1" stays a string.
        return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, TypeError) as exc:
        bad = _first_bad_json_line(path)  # only on failure: pandas' reader is faster
        if bad is None:
            raise
        raise DataFormatError(
            "path",
            f"line {bad[0]} of {str(path)!r} is not a JSON object ({bad[1]})",
            'write one JSON object per line, e.g. {"text": "...", "label": "..."}',
        ) from exc


def _read_json(path: Path, id_col: str | None) -> pd.DataFrame:
    """A JSON array of records, or (if the file does not start with ``[``) JSON Lines."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        return pd.read_json(path, orient="records", dtype=False)
    return _read_jsonl(path, id_col)


_READERS: dict[str, Callable[[Path, str | None], pd.DataFrame]] = {
    "CSV": _read_csv,
    "TSV": _read_tsv,
    "Parquet": _read_parquet,
    "JSON Lines": _read_jsonl,
    "JSON": _read_json,
}


def _check_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        siblings = [c.name for c in p.parent.iterdir()] if p.parent.is_dir() else []
        hint = closest(p.name, siblings)
        fix = f"did you mean {str(p.parent / hint)!r}?" if hint else "check the path"
        raise DataFormatError("path", f"file {str(p)!r} does not exist", fix)
    if p.is_dir():
        tables = sorted(c.name for c in p.iterdir() if c.suffix.lower() in SUPPORTED_SUFFIXES)
        fix = "pass the path of a file" + (
            f", e.g. {str(p / tables[0])!r} (tables here: {', '.join(tables[:10])})"
            if tables
            else ""
        )
        raise DataFormatError("path", f"{str(p)!r} is a directory", fix)
    return p


def table_format(path: str | os.PathLike[str]) -> str:
    """The format name for ``path``'s suffix; raise if the suffix is not supported."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataFormatError(
            "path",
            f"unsupported file suffix {suffix or '(none)'!r} in {str(path)!r}",
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}",
        )
    return SUPPORTED_SUFFIXES[suffix]


def read_table(
    path: str | os.PathLike[str], *, id_col: str | None = None, format: str | None = None
) -> pd.DataFrame:
    """Read a table file into a DataFrame.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson`` or ``.json``
        (an array of records, or JSON Lines) file.
    id_col : str, optional
        A column of item ids, read as strings (``"007"`` stays ``"007"``).
    format : str, optional
        Override the format implied by the suffix: ``"CSV"``, ``"TSV"``, ``"Parquet"``,
        ``"JSON Lines"`` or ``"JSON"``.

    Returns
    -------
    pandas.DataFrame
        The rows of the file, with a default ``RangeIndex``.

    Raises
    ------
    DataFormatError
        If the file does not exist, has an unsupported suffix, cannot be parsed, or has no
        rows. A wrong ``id_col`` raises a ``ValidationError`` naming the closest column.
    """
    p = _check_path(path)
    fmt = table_format(path) if format is None else format
    if fmt not in _READERS:
        raise DataFormatError(
            "format", f"got {fmt!r}", f"use one of {', '.join(map(repr, _READERS))}"
        )
    if p.stat().st_size == 0:
        raise DataFormatError("path", f"{str(p)!r} has no rows (the file is empty)", _ROWS_FIX)
    try:
        df = _READERS[fmt](p, id_col)
    except pd.errors.EmptyDataError as exc:
        raise DataFormatError("path", f"{str(p)!r} has no rows ({exc})", _ROWS_FIX) from exc
    except DataFormatError:
        raise
    except (ValueError, TypeError, OSError, pd.errors.ParserError) as exc:
        raise DataFormatError(
            "path",
            f"cannot read {str(p)!r} as {fmt}: {exc}",
            f"check that the file is valid {fmt} and was fully written",
        ) from exc
    if len(df) == 0:
        raise DataFormatError("path", f"{str(p)!r} has no rows (only a header)", _ROWS_FIX)
    df.columns = [str(c) for c in df.columns]
    if id_col is not None:
        check_column("id_col", id_col, df.columns)
        col = df[id_col]
        df[id_col] = col.astype(object).where(col.isna(), col.astype(str))
    return df


def ids_from_column(df: pd.DataFrame, id_col: str) -> pd.Index:
    """The ``id_col`` column as an Index of strings; every row must have an id."""
    check_column("id_col", id_col, df.columns)
    raw = df[id_col]
    if raw.isna().any():
        r = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise ValidationError("id_col", f"row {r} has a missing id", "give every row an id")
    return pd.Index(raw.astype(str).to_numpy(dtype=object), name=id_col)


def check_unique_ids(ids: pd.Index, argument: str) -> None:
    dup = ids.duplicated()
    if dup.any():
        first = ids[dup][0]
        times = int((ids == first).sum())
        n_dup = int(pd.Index(ids[dup]).nunique())
        raise ValidationError(
            argument,
            f"id {first!r} appears {times} times ({n_dup} duplicated id(s) in all)",
            "ids must be unique; drop the duplicate rows or choose another id column",
        )


def select_feature_columns(
    feature_cols: str | Sequence[str], columns: Sequence[str], exclude: set[str]
) -> list[str]:
    """Expand globs such as ``"f_*"`` (in column order) and check plain names; a list may
    mix both."""
    entries = [feature_cols] if isinstance(feature_cols, str) else list(feature_cols)
    if not entries:
        raise ValidationError("feature_cols", "is empty", "pass column names, or None")
    out: list[str] = []
    for entry in map(str, entries):
        if any(ch in entry for ch in "*?["):
            cols = [c for c in columns if fnmatch.fnmatchcase(c, entry) and c not in exclude]
            if not cols:
                hint = closest(entry.rstrip("*?"), columns)
                fix = (
                    f"did you mean {hint + '*'!r}?"
                    if hint
                    else f"columns: {', '.join(columns[:20])}"
                )
                raise ValidationError("feature_cols", f"no column matches {entry!r}", fix)
            out.extend(c for c in cols if c not in out)
        elif entry not in out:
            out.append(check_column("feature_cols", entry, columns))
    return out


def numeric_features(df: pd.DataFrame, cols: list[str], ids: pd.Index) -> np.ndarray:
    """A float32 ``(n_items, n_features)`` array; names the column and row of a bad value."""
    blocks = []
    for c in cols:
        col = df[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            num = pd.to_numeric(col, errors="coerce")
            bad = num.isna().to_numpy() & col.notna().to_numpy()
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                raise ValidationError(
                    "feature_cols",
                    f"column {c!r} is not numeric (row {r}, id {ids[r]!r}, has {col.iloc[r]!r})",
                    "convert the column to numbers or leave it out of feature_cols",
                )
            col = num
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                "feature_cols",
                f"column {c!r} has a missing or infinite value at row {r} (id {ids[r]!r})",
                "impute or drop those rows first",
            )
        blocks.append(values.astype(np.float32))
    return np.stack(blocks, axis=1)
