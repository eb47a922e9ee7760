"""``issues.csv`` written block by block in sorted order, without a sorted copy of the table.

``write_audit`` lists the issue table worst first (stable sort on a score, missing scores
last). Sorting the DataFrame itself copies every column (about 5 GB at 10^8 items); here the
sort order is computed once as an index array (:func:`sort_order`, a spill file when large)
and the CSV is written in blocks of rows taken in that order (:func:`write_csv_blocks`), so
what the writer holds beyond the table is the order and one block. The bytes are those of
``table.sort_values(key, kind="stable", na_position="last").to_csv(fh)``: pandas formats each
value by its column's dtype alone, so a block formats as the same rows of the whole table do.

Examples
--------
>>> import io
>>> import numpy as np
>>> import pandas as pd
>>> t = pd.DataFrame({"score": [0.5, np.nan, 0.1, 0.5], "name": ["a", "b,c", "d", "e"]})
>>> buf = io.StringIO()
>>> write_csv_blocks(buf, t, sort_order(t["score"]), block=2, index_label="id")
>>> print(buf.getvalue(), end="")
id,score,name
2,0.1,d
0,0.5,a
3,0.5,e
1,,"b,c"
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np
import pandas as pd

from ._spill import bucket_positions, scratch
from ._validation import iter_chunks
from .exceptions import ValidationError

__all__ = ["ISSUES_BLOCK", "SORT_BLOCK", "sort_order", "write_csv_blocks"]

#: rows per block of the CSV (a block of a wide issue table with texts is a few MB)
ISSUES_BLOCK = 1 << 16
#: values sorted at once by :func:`sort_order` (above: by ranges of about this many rows)
SORT_BLOCK = 1 << 20


def sort_order(key: pd.Series, *, block: int = SORT_BLOCK) -> np.ndarray:
    """Positions of the rows in ascending ``key`` order, ties in input order, missing last:
    the order of ``sort_values(kind="stable", na_position="last")``, as a spill file when
    large.

    Up to ``block`` rows this is one ``np.argsort``. Above, a bucket sort that never holds
    more than about ``block`` values or positions at once besides the result: value ranges
    cut at quantiles of a strided sample, the positions scattered into their range's slice
    of the result chunk by chunk (input order within a range), then each range sorted in
    place by its values; the rows equal to a range's lower edge (where a heavily repeated
    value lands) are compacted to its front in input order without a sort, and missing
    values form the last range, left in input order. The positions are exactly
    ``np.argsort(values, kind="stable")``'s: any cut of the value axis into ranges gives
    them, whatever the sample picked.
    """
    if not isinstance(block, int) or isinstance(block, bool) or block < 2:
        raise ValidationError("block", f"got {block!r}", "pass a number of rows >= 2")
    values = key.to_numpy(dtype=np.float64, na_value=np.nan)  # a float64 column: no copy
    n = values.shape[0]
    if n <= block:
        # NumPy sorts NaN after every number and a stable sort keeps ties (NaN too) in input
        # order: pandas' nargsort for one float column (non-NaN argsorted, NaN appended)
        order = scratch(values.shape, np.intp)
        order[:] = np.argsort(values, kind="stable")
        return order
    edges = _edges(values, -(-n // block))
    n_ranges = edges.size + 2  # range i < edges.size + 1: [edges[i - 1], edges[i]); last: NaN
    # each range's rows in input order (a counting sort by range, block by block)
    order, starts = bucket_positions(
        n, lambda sl: _range_of(values[sl], edges), n_ranges, block=block
    )
    for i in range(n_ranges - 1):  # the last range (missing values) stays in input order
        a, b = int(starts[i]), int(starts[i + 1])
        if b - a > 1:
            _sort_range(order, a, b, values, edges[i - 1] if i > 0 else None, block)
    return order


def _edges(values: np.ndarray, n_ranges: int) -> np.ndarray:
    """Distinct cut points at quantiles of a strided sample of the finite values (about 64
    samples per range): ranges of about ``len(values) / n_ranges`` rows."""
    stride = max(1, values.shape[0] // (64 * n_ranges))
    sample = values[::stride]
    sample = np.sort(sample[~np.isnan(sample)])
    if sample.size == 0:
        return np.empty(0, dtype=np.float64)
    picks = (np.arange(1, n_ranges) * sample.size) // n_ranges
    return np.unique(sample[picks] + 0.0)  # -0.0 + 0.0 is 0.0: one value, as in the sort


def _range_of(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The range of each value: ``i`` when ``edges[i - 1] <= v < edges[i]``, the last one
    (``edges.size + 1``) when missing."""
    r = np.searchsorted(edges, v, side="right")
    r[np.isnan(v)] = edges.size + 1
    return r


def _sort_range(
    order: np.ndarray, a: int, b: int, values: np.ndarray, low: float | None, block: int
) -> None:
    """Sort ``order[a:b]`` (positions in input order) stably by value, in place: the rows
    equal to ``low`` (the range's smallest possible value) compacted to the front a block
    at a time, the others gathered, sorted and written after them."""
    if low is None:
        pos = np.asarray(order[a:b])
        order[a:b] = pos[np.argsort(values[pos], kind="stable")]
        return
    rest: list[np.ndarray] = []
    w = a
    for start in range(a, b, block):  # writes never pass the rows still to be read
        pos = np.array(order[start : min(start + block, b)])
        tie = values[pos] == low
        head = pos[tie]
        order[w : w + head.size] = head
        w += head.size
        rest.append(pos[~tie])
    if w < b:
        other = np.concatenate(rest)
        order[w:b] = other[np.argsort(values[other], kind="stable")]


def write_csv_blocks(
    fh: IO[str],
    table: pd.DataFrame,
    order: np.ndarray | None,
    *,
    block: int = ISSUES_BLOCK,
    **to_csv: Any,
) -> None:
    """Write ``table.iloc[order].to_csv(fh, **to_csv)`` (``order`` None: the table as is)
    in blocks of ``block`` rows: the header with the first block, no whole copy."""
    if not isinstance(block, int) or block < 1:
        raise ValidationError("block", f"got {block!r}", "pass a number of rows >= 1")
    n = len(table)
    if n == 0:
        table.to_csv(fh, **to_csv)
        return
    for sl in iter_chunks(n, block):
        part = table.iloc[sl] if order is None else table.iloc[np.asarray(order[sl])]
        part.to_csv(fh, header=sl.start == 0, **to_csv)
