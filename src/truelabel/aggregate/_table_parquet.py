"""An annotation table read from Parquet in record batches, never as one DataFrame.

Two passes over the file's batches: the first collects the distinct item, annotator and
label values (memory O(distinct values)), the second turns each batch into integer codes
(three int32 per answer). The result is the :class:`~truelabel.aggregate.Annotations` that
``Annotations(pd.read_parquet(path))`` would give (same codes, counts, classes and order),
so every aggregator runs on it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._spill import scratch
from .._validation import check_choice, check_column
from ..exceptions import DataFormatError, TruelabelWarning, ValidationError, warn_at_caller
from ._table import DUPLICATE_MODES, Annotations, _classes_index, _codes, _label_values, _py

__all__ = ["annotations_from_parquet"]

#: answers decoded per record batch
BATCH_ROWS = 1 << 18


def _check_present(values: pd.Series, start: int, argument: str, what: str) -> None:
    missing = values.isna().to_numpy()
    if missing.any():
        row = start + int(np.flatnonzero(missing)[0])
        raise ValidationError(
            argument,
            f"row {row} has a missing {what}",
            "drop the rows without one (a long table lists only the answers given)",
        )


def _batches(pf: Any, columns: list[str], batch_rows: int) -> Any:
    start = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        yield start, frame
        start += len(frame)


class _DistinctIds:
    """Each batch's distinct values of an id column, in batch order. Integer ones are
    appended to one scratch array of ``n`` slots (a batch never has more distinct ids than
    answers; a spill file when large) instead of a list of one small array per batch: at
    1e7 items those held 80 MB of anonymous memory through the first pass, in pieces small
    enough for the heap, which they kept from shrinking. A batch of another dtype (or of
    non-integers) and every later one are kept as a list, as before."""

    def __init__(self, n: int) -> None:
        self.n, self.used = n, 0
        self.ints: np.ndarray | None = None
        self.other: list[Any] = []

    def add(self, values: pd.Series) -> None:
        if values.dtype.kind not in "iu":
            self.other.append(pd.unique(values))
            return
        distinct = np.unique(values.to_numpy())  # sorted, no hash table
        if (
            distinct.dtype.kind not in "iu"
            or self.other
            or (self.ints is not None and self.ints.dtype != distinct.dtype)
        ):
            self.other.append(distinct)
            return
        if self.ints is None:
            self.ints = scratch(self.n, distinct.dtype)
        self.ints[self.used : self.used + distinct.size] = distinct
        self.used += distinct.size

    def pieces(self) -> list[Any]:
        """The batches' distinct values (the integer ones as one piece)."""
        head = [] if self.ints is None else [self.ints[: self.used]]
        self.ints = None
        return head + self.other


def _id_index(pieces: list[Any], argument: str) -> pd.Index:
    """The sorted distinct ids from each batch's distinct values (what ``_codes`` gives).

    Integer ids (each piece sorted by ``np.unique``) are merged by one in-place sort of
    their concatenation and a comparison with the next value: no hash table of all ids
    (``pd.factorize`` of 1e7 item ids holds several hundred MB at once); other ids take
    ``_codes``.
    """
    if not all(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in pieces):
        return _codes(pd.Series(np.concatenate(pieces)).drop_duplicates(), argument)[1]
    # the concatenation and the first-of-run flags are scratch arrays (spill files when
    # large): only the distinct ids, the index itself, are made in anonymous memory
    ids = scratch(sum(p.size for p in pieces), np.result_type(*pieces))
    np.concatenate(pieces, out=ids)
    pieces.clear()
    ids.sort()
    new = scratch(ids.size, bool)
    new[:1] = True
    np.not_equal(ids[1:], ids[:-1], out=new[1:])
    return pd.Index(ids[new])


def _sorted_indexer(index: pd.Index) -> Any:
    """``index.get_indexer`` for the ids of a batch, by binary search when ``index`` holds
    integers in strictly increasing order (the item ids, sorted: the usual case).

    ``get_indexer`` builds and keeps a hash table of the whole index on it (about 30 bytes
    per item at 1e7 items, held by the consensus's ``probas_`` index for as long as it
    lives); ``np.searchsorted`` needs none and gives the same positions (-1 for an id not
    in ``index``). Other indexes (strings, mixed, unsorted) keep ``get_indexer``.
    """
    keys = index.to_numpy()
    if keys.dtype.kind not in "iu" or keys.size < 2 or not bool(np.all(keys[1:] > keys[:-1])):
        return index.get_indexer

    def indexer(values: pd.Series) -> np.ndarray:
        v = values.to_numpy()
        if v.dtype != keys.dtype:  # a batch of another type (no mixed-type search): as pandas
            return index.get_indexer(pd.Index(values))
        pos = np.searchsorted(keys, v)
        found = pos < keys.size
        found[found] = keys[pos[found]] == v[found]
        return np.where(found, pos, -1)

    return indexer


def annotations_from_parquet(
    path: str | os.PathLike[str],
    *,
    item: str = "item_id",
    annotator: str = "annotator_id",
    label: str = "label",
    classes: Any = None,
    gold: Any = None,
    duplicates: str = "raise",
    batch_rows: int = BATCH_ROWS,
) -> Annotations:
    """:class:`Annotations` from a Parquet file with one row per answer, read in batches.

    Parameters
    ----------
    path : path
        A Parquet file with the item, annotator and label columns.
    item, annotator, label, classes, gold, duplicates
        As in :class:`Annotations`.
    batch_rows : int, default 262144
        Answers decoded at a time (bounds the memory of the raw values).

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "answers.parquet")
    >>> pd.DataFrame({"item_id": [1, 1, 2], "annotator_id": ["a", "b", "a"],
    ...               "label": ["cat", "dog", "cat"]}).to_parquet(path)
    >>> ann = annotations_from_parquet(path, batch_rows=2)
    >>> list(ann.classes), ann.counts.toarray().tolist()
    (['cat', 'dog'], [[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ValidationError("batch_rows", f"got {batch_rows!r}", "pass an integer >= 1")
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("annotations", f"file {str(path)!r} does not exist", "check the path")
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise DataFormatError(
            "annotations", f"{str(path)!r} is not a Parquet file ({err})", "check the path"
        ) from err
    names = pf.schema_arrow.names
    for arg, col in (("item", item), ("annotator", annotator), ("label", label)):
        try:
            check_column(arg, col, names)
        except ValidationError as err:
            raise ValidationError(
                "annotations",
                f"{str(path)!r} has no {arg} column {col!r} (columns: {', '.join(names[:10])})",
                f"{err.fix}; or name the column: Annotations.from_parquet(path, {arg}=...)",
            ) from None
    n = pf.metadata.num_rows
    if n == 0:
        raise ValidationError("annotations", "has no rows", "pass at least one answer")
    duplicates = check_choice("duplicates", duplicates, DUPLICATE_MODES)
    cols = [item, annotator, label]
    args = [f"annotations[{c!r}]" for c in cols]
    # pass 1: the distinct values of each column
    ids = [_DistinctIds(n), _DistinctIds(n)]
    labels_seen_parts: list[Any] = []
    for start, frame in _batches(pf, cols, batch_rows):
        for j, (col, arg) in enumerate(zip(cols, args, strict=True)):
            values = frame[col]
            _check_present(values, start, arg, "label" if j == 2 else "value")
            if j == 2:
                labels_seen_parts.append(pd.unique(_label_values(values, arg)))
            else:  # integer ids: sorted per batch, no hash table
                ids[j].add(values)
    items_index, annot_index = (_id_index(ids[j].pieces(), args[j]) for j in (0, 1))
    del ids
    labels_seen = pd.Series(np.concatenate(labels_seen_parts)).drop_duplicates()
    if classes is None:
        class_index = _classes_index(labels_seen, None, args[2])[1]
    else:
        class_index = _classes_index(labels_seen.iloc[:0], classes, args[2])[1]
    # pass 2: codes, batch by batch
    dtype = np.int32 if n < 2**31 else np.int64
    codes = [scratch(n, dtype) for _ in range(3)]  # spill files when large
    item_codes = _sorted_indexer(items_index)
    for start, frame in _batches(pf, cols, batch_rows):
        stop = start + len(frame)
        codes[0][start:stop] = item_codes(frame[item])
        codes[1][start:stop] = annot_index.get_indexer(frame[annotator])
        values = _label_values(frame[label], args[2])
        got = class_index.get_indexer(pd.Index(values))
        bad = got < 0
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            shown = ", ".join(repr(_py(c)) for c in class_index[:20])
            raise ValidationError(
                args[2],
                f"row {start + r} has label {_py(values.iloc[r])!r}, which is not in classes",
                f"classes are [{shown}]; add it to classes or drop those rows",
            )
        codes[2][start:stop] = got
    pa.default_memory_pool().release_unused()  # the decoded batches' buffers, cached by the pool
    ann = object.__new__(Annotations)
    ann.duplicates = duplicates
    ann.columns = (item, annotator, label)
    ann.items, ann.annotators, ann.classes = items_index, annot_index, class_index
    if classes is None and len(class_index) < 2:
        warn_at_caller(
            f"annotations: every answer is {_py(class_index[0])!r}; pass classes= to name the "
            "other classes",
            TruelabelWarning,
        )
    ann._encode(codes[0], codes[1], codes[2], None)
    ann.gold_codes = ann._gold_codes(gold)
    return ann
