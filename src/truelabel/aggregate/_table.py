"""The annotation-table contract: one long table ``item_id, annotator_id, label``, encoded once.

Every aggregator takes the same input: a pandas DataFrame with one row per answer (an AI labeler
is just another annotator) or an :class:`Annotations` built from one. Encoding turns item,
annotator and label values into integer codes (items and annotators in sorted order, so the
result never depends on the row order) and builds the sparse count matrix every algorithm works
on: ``counts[i, j * n_classes + l]`` = how many times annotator ``j`` gave item ``i`` label ``l``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._spill import scratch
from .._validation import check_choice, check_column, iter_chunks
from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller
from ._table_sort import gathered, pair_order

__all__ = ["DUPLICATE_MODES", "Annotations", "as_annotations"]

#: what to do when one annotator answered the same item more than once
DUPLICATE_MODES = ("raise", "first", "last", "all")
#: answers whose count-matrix column is computed at once
_INDEX_BLOCK = 1 << 20


def _py(value: Any) -> Any:
    """A plain Python value for messages (``1`` rather than ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _small(codes: np.ndarray) -> np.ndarray:
    """Codes as int32 when they fit (halves the memory of the per-answer arrays)."""
    return codes.astype(np.int32 if len(codes) < 2**31 else np.int64, copy=False)


def _codes(values: pd.Series, argument: str) -> tuple[np.ndarray, pd.Index]:
    """Sorted factorization (falls back to first-appearance order for unsortable ids)."""
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValidationError(
            argument, f"row {row} has a missing value", "drop or fill the rows without an id"
        )
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed types that cannot be ordered
        codes, uniques = pd.factorize(values, sort=False)
    return _small(codes), pd.Index(uniques)


def _label_values(values: pd.Series, argument: str) -> pd.Series:
    """Labels as given (strings or ints); NaN refused; integral floats become ints."""
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValidationError(
            argument,
            f"row {row} has a missing label ({values.iloc[row]!r}); {int(missing.sum())} row(s) "
            "have none",
            "drop the rows without an answer (a long table lists only the answers given)",
        )
    if values.dtype.kind == "f":
        arr = values.to_numpy()
        frac = arr != np.round(arr)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise ValidationError(
                argument,
                f"row {row} has the non-integer label {_py(arr[row])!r}",
                "pass class names or integer class codes",
            )
        return pd.Series(arr.astype(np.int64), index=values.index)
    if values.dtype.kind == "b":
        return values.astype(object)
    return values


def _classes_index(labels: pd.Series, classes: Any, argument: str) -> tuple[np.ndarray, pd.Index]:
    if classes is None:
        codes, uniques = _codes(labels, argument)
        return codes, uniques
    if isinstance(classes, str):
        raise ValidationError(
            "classes", f"got the string {classes!r}", "pass a list of class labels, e.g. [0, 1]"
        )
    order = pd.Index(list(classes))
    if len(order) < 2:
        raise ValidationError("classes", f"has {len(order)} class(es)", "pass at least two")
    if order.has_duplicates:
        dup = order[order.duplicated()][0]
        raise ValidationError("classes", f"lists {dup!r} twice", "list each class once")
    codes = order.get_indexer(labels)
    bad = codes < 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = _py(labels.iloc[row])
        shown = ", ".join(repr(_py(c)) for c in order[:20])
        fix = f"classes are [{shown}]; add {value!r} to classes or drop those rows"
        if str(value) in {str(c) for c in order}:
            fix = f"classes hold {value!r} as another type ({shown}); pass labels of the same type"
        raise ValidationError(
            argument,
            f"row {row} has label {value!r}, which is not in classes ({int(bad.sum())} such rows)",
            fix,
        )
    return _small(codes), order


class Annotations:
    """A long annotation table, validated and encoded once for every aggregator.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per answer.
    item, annotator, label : str
        Column names (defaults ``"item_id"``, ``"annotator_id"``, ``"label"``). Labels may be
        strings or ints; items and annotators any hashable ids.
    classes : sequence, optional
        The class set and its order (columns of ``probas_``). Default: the labels seen, sorted.
        A label outside ``classes`` is an error.
    gold : pandas.Series or mapping, optional
        Known true labels, ``item_id -> label``. Aggregators clamp these items to their gold
        label and annotator quality is measured on them. Gold items that nobody annotated are
        dropped with a warning (they carry no information about annotators).
    duplicates : {"raise", "first", "last", "all"}, default "raise"
        One annotator answering one item more than once. ``"raise"``: identical repeats count
        once (with a warning); different answers are an error naming the pair. ``"first"`` /
        ``"last"``: keep the annotator's first / last answer in row order. ``"all"``: every
        answer counts as a vote (what crowd-kit does).

    Attributes
    ----------
    items, annotators : pandas.Index
        Item and annotator ids in code order (sorted).
    classes : pandas.Index
    item_codes, annotator_codes, label_codes : ndarray of int32 (int64 above 2**31 answers)
        One entry per kept answer, ordered by item then annotator.
    counts : scipy.sparse.csr_matrix, shape (n_items, n_annotators * n_classes)
        ``counts[i, j * n_classes + l]``: answers ``l`` of annotator ``j`` on item ``i``.
    gold_codes : ndarray of int64, shape (n_items,)
        Gold class code per item, -1 where unknown.
    n_duplicates : int
        Answers dropped or merged by the duplicate rule.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"item_id": [1, 1, 2], "annotator_id": ["a", "b", "a"],
    ...                    "label": ["cat", "dog", "cat"]})
    >>> ann = Annotations(df)
    >>> list(ann.classes), ann.counts.toarray().tolist()
    (['cat', 'dog'], [[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    """

    def __init__(
        self,
        data: pd.DataFrame,
        *,
        item: str = "item_id",
        annotator: str = "annotator_id",
        label: str = "label",
        classes: Any = None,
        gold: Any = None,
        duplicates: str = "raise",
    ) -> None:
        if not isinstance(data, pd.DataFrame):
            raise ValidationError(
                "annotations",
                f"got {type(data).__name__}",
                "pass a pandas DataFrame with one row per answer (item_id, annotator_id, label)",
            )
        for arg, col in (("item", item), ("annotator", annotator), ("label", label)):
            try:
                check_column(arg, col, data.columns)
            except ValidationError as err:
                raise ValidationError(
                    "annotations",
                    f"has no {arg} column {col!r} (columns: {', '.join(map(str, data.columns[:10]))})",
                    f"{err.fix}; or name the column: Annotations(df, {arg}=...)",
                ) from None
        if len(data) == 0:
            raise ValidationError("annotations", "has no rows", "pass at least one answer")
        self.duplicates = check_choice("duplicates", duplicates, DUPLICATE_MODES)
        self.columns = (item, annotator, label)
        items, self.items = _codes(data[item], f"annotations[{item!r}]")
        annots, self.annotators = _codes(data[annotator], f"annotations[{annotator!r}]")
        values = _label_values(data[label], f"annotations[{label!r}]")
        labels, self.classes = _classes_index(values, classes, f"annotations[{label!r}]")
        if classes is None and len(self.classes) < 2:
            warn_at_caller(
                f"annotations: every answer is {_py(self.classes[0])!r}; pass classes= to name the "
                "other classes",
                TruelabelWarning,
            )
        self._encode(items, annots, labels, data)
        self.gold_codes = self._gold_codes(gold)

    # -- encoding ---------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_labels(self) -> int:
        return len(self.item_codes)

    def _encode(
        self,
        items: np.ndarray,
        annots: np.ndarray,
        labels: np.ndarray,
        data: pd.DataFrame | None,
    ) -> None:
        n_i, n_a, k = len(self.items), len(self.annotators), len(self.classes)
        # order: the rows by item, then annotator, then row order; first: the first row of
        # each (item, annotator) pair in that order
        order, first = pair_order(items, annots, n_i, n_a, _INDEX_BLOCK)
        keep = order
        self.n_duplicates = int(len(order) - np.count_nonzero(first))
        if self.n_duplicates and self.duplicates != "all":
            keep = self._resolve_duplicates(order, first, (items, annots, labels), data)
        del first
        # the table's arrays grow with the answers: spill files when large (truelabel._spill)
        self.item_codes, self.annotator_codes, self.label_codes = (
            gathered(codes, keep, _INDEX_BLOCK) for codes in (items, annots, labels)
        )
        del keep, order
        # rows are already sorted by item: build the CSR arrays directly (no COO copy)
        width = n_a * k
        idx_dtype = np.int32 if max(width, self.n_labels) < 2**31 else np.int64
        indptr = scratch(n_i + 1, idx_dtype)
        for sl in iter_chunks(n_i + 1, _INDEX_BLOCK):  # the sorted item codes' row starts
            starts = np.arange(sl.start, sl.stop, dtype=self.item_codes.dtype)  # no cast of codes
            indptr[sl] = np.searchsorted(self.item_codes, starts)
        indices = scratch(self.n_labels, idx_dtype)
        for sl in iter_chunks(self.n_labels, _INDEX_BLOCK):
            indices[sl] = self.annotator_codes[sl] * k + self.label_codes[sl]
        ones = scratch(self.n_labels, np.float64, fill=1.0)
        self.counts = sp.csr_matrix((ones, indices, indptr), shape=(n_i, width))
        if self.duplicates == "all" and self.n_duplicates:
            self.counts.sum_duplicates()  # repeats of one answer: one cell with count > 1
        else:
            self.counts.has_canonical_format = True  # one entry per (item, annotator)

    def _resolve_duplicates(
        self,
        order: np.ndarray,
        first: np.ndarray,
        codes: tuple[np.ndarray, np.ndarray, np.ndarray],
        data: pd.DataFrame | None,
    ) -> np.ndarray:
        items, annots, labels = codes
        group = np.cumsum(first) - 1  # pair group of each sorted row
        lab = labels[order]
        start = np.flatnonzero(first)
        conflict = lab != lab[start[group]]
        n_conflict_pairs = len(np.unique(group[conflict]))
        if self.duplicates == "raise":
            if conflict.any():
                row = int(order[np.flatnonzero(conflict)[0]])
                item_col, annot_col, label_col = self.columns
                g = group[np.flatnonzero(conflict)[0]]
                rows = np.sort(order[group == g])
                if data is None:  # read in batches (from_parquet): the values from the codes
                    answers = [_py(self.classes[labels[r]]) for r in rows]
                    who, what = self.annotators[annots[row]], self.items[items[row]]
                else:
                    answers = [_py(data[label_col].iloc[r]) for r in rows]
                    who, what = data[annot_col].iloc[row], data[item_col].iloc[row]
                raise ValidationError(
                    "annotations",
                    f"annotator {_py(who)!r} labeled item "
                    f"{_py(what)!r} more than once with different labels "
                    f"({', '.join(map(repr, answers))} in rows {rows.tolist()}); "
                    f"{n_conflict_pairs} (item, annotator) pair(s) conflict",
                    "resolve them, or encode with Annotations(df, duplicates='last') (keep the "
                    "latest answer), 'first', or 'all' (every answer is a vote)",
                )
            warn_at_caller(
                f"annotations: {self.n_duplicates} repeated answer(s) (same annotator, item and "
                "label) were counted once; pass duplicates='all' to count every repeat",
                TruelabelWarning,
            )
            return order[first]
        if self.duplicates == "first":
            return order[first]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = first[1:]
        return order[last]

    def _gold_codes(self, gold: Any) -> np.ndarray:
        # one int64 per item, -1 where unknown: a scratch array (a spill file when large)
        codes = scratch(self.n_items, np.int64, fill=-1)
        if gold is None:
            return codes
        if isinstance(gold, Mapping):
            gold = pd.Series(dict(gold))
        if not isinstance(gold, pd.Series):
            raise ValidationError(
                "gold", f"got {type(gold).__name__}", "pass a pandas Series item_id -> label"
            )
        if gold.index.has_duplicates:
            dup = gold.index[gold.index.duplicated()][0]
            raise ValidationError(
                "gold", f"item {_py(dup)!r} appears twice", "give one gold per item"
            )
        values = _label_values(gold.reset_index(drop=True), "gold")
        cls = self.classes.get_indexer(pd.Index(values))
        if (cls < 0).any():
            i = int(np.flatnonzero(cls < 0)[0])
            raise ValidationError(
                "gold",
                f"item {_py(gold.index[i])!r} has gold label {_py(values.iloc[i])!r}, not in "
                f"classes [{', '.join(repr(_py(c)) for c in self.classes[:20])}]",
                "pass gold labels from the class set (same type as the annotations' labels)",
            )
        pos = self.items.get_indexer(gold.index)
        absent = pos < 0
        if absent.any():
            warn_at_caller(
                f"gold: {int(absent.sum())} of {len(gold)} gold item(s) have no annotation "
                f"(e.g. {_py(gold.index[np.flatnonzero(absent)[0]])!r}); they are ignored",
                TruelabelWarning,
            )
        codes[pos[~absent]] = cls[~absent]
        return codes

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], **kwargs: Any) -> Annotations:
        """The same table from a Parquet file, read in record batches (never one
        DataFrame): see :func:`~truelabel.aggregate._table_parquet.annotations_from_parquet`
        (keywords ``item``, ``annotator``, ``label``, ``classes``, ``gold``, ``duplicates``,
        ``batch_rows``). Equal to ``Annotations(pd.read_parquet(path), ...)``."""
        from ._table_parquet import annotations_from_parquet

        return annotations_from_parquet(path, **kwargs)

    def with_gold(self, gold: Any) -> Annotations:
        """A shallow copy with other gold labels (``None`` removes them)."""
        out = object.__new__(Annotations)
        out.__dict__.update(self.__dict__)
        out.gold_codes = self._gold_codes(gold)
        return out

    def vote_counts(self) -> np.ndarray:
        """Votes per item and class, shape ``(n_items, n_classes)`` (float64)."""
        k = self.n_classes
        cell = self.item_codes.astype(np.int64) * k + self.label_codes
        # float64 counts straight from bincount (unit weights: exact), no int64 copy beside
        flat = np.bincount(cell, weights=np.ones(cell.size), minlength=self.n_items * k)
        return flat.reshape(self.n_items, k)

    def __repr__(self) -> str:
        return (
            f"Annotations({self.n_labels} labels, {self.n_items} items, "
            f"{self.n_annotators} annotators, {self.n_classes} classes)"
        )


def as_annotations(annotations: Any, gold: Any = None) -> Annotations:
    """An :class:`Annotations` from a DataFrame (default column names), a Parquet file
    (read in batches, :meth:`Annotations.from_parquet`) or an Annotations."""
    if isinstance(annotations, str | os.PathLike):
        return Annotations.from_parquet(annotations, gold=gold)
    if isinstance(annotations, Annotations):
        return annotations if gold is None else annotations.with_gold(gold)
    return Annotations(annotations, gold=gold)
