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

from ._spill import scratch
from ._validation import iter_chunks
from .exceptions import ValidationError

__all__ = ["ISSUES_BLOCK", "sort_order", "write_csv_blocks"]

#: rows per block of the CSV (a block of a wide issue table with texts is a few MB)
ISSUES_BLOCK = 1 << 16


def sort_order(key: pd.Series) -> np.ndarray:
    """Positions of the rows in ascending ``key`` order, ties in input order, missing last:
    the order of ``sort_values(kind="stable", na_position="last")``, as a spill file when
    large (the argsort's own array is freed on return)."""
    values = key.to_numpy(dtype=np.float64, na_value=np.nan)
    # NumPy sorts NaN after every number and a stable sort keeps ties (NaN too) in input
    # order: pandas' nargsort for one float column (non-NaN argsorted, NaN appended) exactly
    order = scratch(values.shape, np.intp)
    order[:] = np.argsort(values, kind="stable")
    return order


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
