"""The :class:`Dataset`: items, their labels, and optional features and texts."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Concatenate, ParamSpec, TypedDict, Unpack

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._validation import check_column, check_features, relay_warnings
from ..exceptions import ValidationError
from ._labels import _NO_LABELS_FIX, LabelEncoding, as_object_array, parse_multilabel
from ._readers import (
    check_unique_ids,
    ids_from_column,
    numeric_features,
    read_table,
    select_feature_columns,
)

_COLLECTIONS = (list, tuple, set, frozenset)

__all__ = ["Dataset", "TableOptions"]

_P = ParamSpec("_P")


class TableOptions(TypedDict, total=False):
    """Keyword arguments shared by the ``Dataset.from_*`` table readers."""

    label_col: str | None
    text_col: str | None
    feature_cols: str | Sequence[str] | None
    id_col: str | None
    classes: Sequence[Any] | None
    multi_label: bool
    label_sep: str | None


def _encode_labels(
    values: Any, classes: Sequence[Any] | None, multi_label: bool, label_sep: str | None
) -> tuple[np.ndarray, LabelEncoding]:
    """Labels as int64 ``(n,)`` (``-1`` missing) or int8 ``(n, K)`` (missing rows all ``-1``)."""
    if multi_label:
        matrix, names, missing = parse_multilabel(values, sep=label_sep, classes=classes)
        matrix[missing] = -1
        labels: np.ndarray = matrix
        enc = LabelEncoding(names)
        labelled = ~missing
    else:
        enc = LabelEncoding.from_labels(values, classes=classes)
        labels = enc.encode(values)
        labelled = labels >= 0
    if not labelled.any() and classes is None:
        raise ValidationError("labels", "no labelled rows", _NO_LABELS_FIX)
    return labels, enc


def _keeps_warnings(
    build: Callable[Concatenate[type[Dataset], _P], Dataset],
) -> Callable[Concatenate[type[Dataset], _P], Dataset]:
    """Store the truelabel warnings raised while building the Dataset on it (and emit them)."""

    @functools.wraps(build)
    def wrapper(cls: type[Dataset], /, *args: _P.args, **kwargs: _P.kwargs) -> Dataset:
        sink: list[str] = []
        with relay_warnings(sink):
            ds = build(cls, *args, **kwargs)
        ds.warnings = sink
        return ds

    return wrapper


class Dataset:
    """Items with labels (possibly missing), and optional features and texts.

    Build one with a ``from_*`` constructor rather than directly.

    Parameters
    ----------
    frame : pandas.DataFrame
        The source rows; the index holds the item ids.
    labels : ndarray
        Shape ``(n_items,)`` int64 class indices with ``-1`` for unlabelled items, or for
        multi-label data shape ``(n_items, n_classes)`` int8 0/1 with unlabelled rows all ``-1``.
    encoding : LabelEncoding
        The class names, in index order.
    features : ndarray of float32, shape (n_items, n_features), optional
    texts : list of str, optional
    multi_label : bool

    Attributes
    ----------
    warnings : list of str
        The :class:`~truelabel.exceptions.TruelabelWarning` messages raised while reading
        and encoding the data (label variants, stripped spaces, a guessed delimiter); they
        are also emitted as warnings.
    """

    def __init__(
        self,
        *,
        frame: pd.DataFrame,
        labels: np.ndarray,
        encoding: LabelEncoding,
        features: np.ndarray | None = None,
        texts: list[str] | None = None,
        multi_label: bool = False,
    ) -> None:
        n = len(frame)
        labels = np.asarray(labels)
        expected_ndim = 2 if multi_label else 1
        if labels.ndim != expected_ndim or labels.shape[0] != n:
            raise ValidationError(
                "labels",
                f"has shape {labels.shape}, expected {(n, encoding.n_classes)[:expected_ndim]}",
                "pass one label (or for multi_label one 0/1 row) per row of frame",
            )
        if features is not None and (features.ndim != 2 or features.shape[0] != n):
            raise ValidationError(
                "features", f"has shape {features.shape}", f"pass a ({n}, n_features) array"
            )
        if texts is not None and len(texts) != n:
            raise ValidationError("texts", f"has {len(texts)} items, expected {n}", "one per row")
        self.frame = frame
        self.labels = labels
        self.encoding = encoding
        self.features = features
        self.texts = texts
        self.multi_label = bool(multi_label)
        self.warnings: list[str] = []

    # -- properties ------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        """Number of items (labelled or not)."""
        return len(self.frame)

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return self.encoding.n_classes

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in index order."""
        return self.encoding.classes

    @property
    def ids(self) -> pd.Index:
        """Item ids (the index of :attr:`frame`)."""
        return self.frame.index

    @property
    def is_multi_label(self) -> bool:
        """True if each item may have several classes."""
        return self.multi_label

    @property
    def labeled_mask(self) -> npt.NDArray[np.bool_]:
        """Boolean ``(n_items,)``: True where the item has a label."""
        if self.multi_label:
            return np.asarray((self.labels >= 0).all(axis=1))
        return np.asarray(self.labels >= 0)

    @property
    def label_names(self) -> np.ndarray:
        """Object ``(n_items,)``: the class name (or for multi-label a tuple of names);
        None where unlabelled."""
        if not self.multi_label:
            return self.encoding.decode(self.labels)
        out = np.empty(self.n_items, dtype=object)
        mask = self.labeled_mask
        for i in range(self.n_items):
            if mask[i]:
                out[i] = tuple(self.classes[j] for j in np.flatnonzero(self.labels[i]))
        return out

    @property
    def class_counts(self) -> pd.Series:
        """Labelled items per class (classes listed in ``classes=`` may count 0)."""
        if self.multi_label:
            counts = self.labels[self.labeled_mask].sum(axis=0, dtype=np.int64)
        else:
            counts = np.bincount(self.labels[self.labeled_mask], minlength=self.n_classes)
        return pd.Series(counts.astype(np.int64), index=pd.Index(self.classes), name="count")

    # -- methods ---------------------------------------------------------------------------
    def labeled(self) -> Dataset:
        """A new Dataset holding only the labelled items (same classes)."""
        mask = self.labeled_mask
        out = Dataset(
            frame=self.frame[mask],
            labels=self.labels[mask],
            encoding=self.encoding,
            features=None if self.features is None else self.features[mask],
            texts=None
            if self.texts is None
            else [t for t, m in zip(self.texts, mask, strict=True) if m],
            multi_label=self.multi_label,
        )
        out.warnings = list(self.warnings)
        return out

    def __len__(self) -> int:
        return self.n_items

    def __repr__(self) -> str:
        feats = "None" if self.features is None else f"{self.features.shape}"
        return (
            f"Dataset(n_items={self.n_items}, n_labeled={int(self.labeled_mask.sum())}, "
            f"n_classes={self.n_classes}, multi_label={self.multi_label}, "
            f"features={feats}, texts={'yes' if self.texts is not None else 'None'})"
        )

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    @_keeps_warnings
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        label_col: str | None,
        text_col: str | None = None,
        feature_cols: str | Sequence[str] | None = None,
        id_col: str | None = None,
        classes: Sequence[Any] | None = None,
        multi_label: bool = False,
        label_sep: str | None = None,
    ) -> Dataset:
        """Build a Dataset from a DataFrame.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per item.
        label_col : str or None
            Column of labels: class names or integer indices; missing = None, NaN or ``""``.
            With ``multi_label=True``: lists of classes or delimited strings (``"a|b"``).
            ``None``: no item is labelled yet (a cold start; ``classes`` must be given).
        text_col : str, optional
            Column of texts; missing texts become ``""``.
        feature_cols : str or list of str, optional
            Numeric feature columns, or a glob such as ``"f_*"`` (matching columns in order).
        id_col : str, optional
            Column of unique item ids (kept as strings); default: the DataFrame's index.
        classes : list of str, optional
            All class names, in order. Classes without examples are allowed (see
            :attr:`class_counts`); labels outside ``classes`` raise ``ValidationError``.
            With ``classes`` given, no row needs a label yet.
        multi_label : bool, default False
        label_sep : str, optional
            Separator of multi-label strings; default: detect ``|``, ``;`` or ``,``.

        Returns
        -------
        Dataset

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"text": ["good", "bad", None], "label": ["pos", "neg", None]})
        >>> ds = Dataset.from_pandas(df, label_col="label", text_col="text")
        >>> ds.classes
        ('neg', 'pos')
        >>> ds.labels.tolist()
        [1, 0, -1]
        >>> ds.texts
        ['good', 'bad', '']
        >>> len(ds.labeled())
        2
        """
        if not isinstance(df, pd.DataFrame):
            raise ValidationError(
                "df", f"got {type(df).__name__}", "pass a pandas DataFrame (or use from_arrays)"
            )
        if len(df) == 0:
            raise ValidationError("df", "has no rows", "pass a DataFrame with at least one row")
        columns = [str(c) for c in df.columns]
        if columns != list(df.columns):
            df = df.set_axis(columns, axis=1)
        if label_col is None:
            if classes is None:
                raise ValidationError(
                    "label_col",
                    "is None and no classes are named",
                    "pass label_col=COLUMN, or classes=[...] to start with no labels",
                )
        else:
            check_column("label_col", label_col, columns)
        if text_col is not None:
            check_column("text_col", text_col, columns)
        if id_col is not None:
            ids = ids_from_column(df, id_col)
        else:
            ids = df.index
        check_unique_ids(ids, "id_col" if id_col is not None else "df.index")
        frame = df.set_axis(ids, axis=0)
        features = None
        if feature_cols is not None:
            exclude = {c for c in (label_col, text_col, id_col) if c is not None}
            cols = select_feature_columns(feature_cols, columns, exclude)
            features = numeric_features(frame, cols, ids)
        texts = None
        if text_col is not None:
            text = frame[text_col]
            texts = [str(t) for t in text.astype(object).where(text.notna(), "")]
        given = np.full(len(frame), None, dtype=object) if label_col is None else frame[label_col]
        labels, enc = _encode_labels(given, classes, multi_label, label_sep)
        return cls(
            frame=frame,
            labels=labels,
            encoding=enc,
            features=features,
            texts=texts,
            multi_label=multi_label,
        )

    @classmethod
    @_keeps_warnings
    def _from_path(
        cls, path: str | os.PathLike[str], fmt: str | None, options: TableOptions
    ) -> Dataset:
        df = read_table(path, id_col=options.get("id_col"), format=fmt)
        return cls.from_pandas(df, **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Unpack[TableOptions]) -> Dataset:
        """Read a ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson`` or ``.json``
        file (chosen by suffix); ``options`` are those of :meth:`from_pandas`."""
        return cls._from_path(path, None, options)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], **options: Unpack[TableOptions]) -> Dataset:
        """Read a CSV file; ``options`` are those of :meth:`from_pandas`."""
        return cls._from_path(path, "CSV", options)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], **options: Unpack[TableOptions]) -> Dataset:
        """Read a Parquet file; ``options`` are those of :meth:`from_pandas`."""
        return cls._from_path(path, "Parquet", options)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike[str], **options: Unpack[TableOptions]) -> Dataset:
        """Read a JSON Lines file (one object per line); ``options`` as in :meth:`from_pandas`."""
        return cls._from_path(path, "JSON Lines", options)

    @classmethod
    @_keeps_warnings
    def from_arrays(
        cls,
        X: npt.ArrayLike | None = None,
        labels: npt.ArrayLike | None = None,
        *,
        classes: Sequence[Any] | None = None,
        ids: Iterable[Any] | None = None,
        texts: Sequence[Any] | None = None,
        multi_label: bool | None = None,
        label_sep: str | None = None,
    ) -> Dataset:
        """Build a Dataset from arrays.

        Parameters
        ----------
        X : array-like of shape (n_items, n_features), optional
            Numeric features (stored as float32).
        labels : array-like
            Shape ``(n_items,)`` class names or integer indices (missing = None, NaN, ``""``),
            or a 2-D 0/1 matrix ``(n_items, n_classes)`` for multi-label data.
        classes : list of str, optional
            All class names, in order (see :meth:`from_pandas`).
        ids : sequence, optional
            Unique item ids; default ``0..n_items-1``.
        texts : sequence of str, optional
            One text per item; missing texts become ``""``.
        multi_label : bool, optional
            Default: True if ``labels`` is 2-D or holds lists/tuples/sets of classes.
        label_sep : str, optional
            Separator for multi-label strings such as ``"a|b"``.

        Examples
        --------
        >>> import numpy as np
        >>> ds = Dataset.from_arrays(np.eye(3), ["b", "a", None])
        >>> ds.classes, ds.labels.tolist(), ds.features.dtype
        (('a', 'b'), [1, 0, -1], dtype('float32'))
        """
        if labels is None:
            raise ValidationError("labels", "is required", "pass one label per item")
        lab = labels if isinstance(labels, np.ndarray) else as_object_array(labels)
        if multi_label is None:
            multi_label = lab.ndim == 2 or any(isinstance(v, _COLLECTIONS) for v in lab)
        n = lab.shape[0]
        features = None
        if X is not None:
            x = np.asarray(X)
            if x.ndim == 2 and x.shape[0] != n:
                raise ValidationError(
                    "X",
                    f"has {x.shape[0]} rows but labels has {n} items",
                    "pass one feature row per label, in the same order",
                )
            features = check_features(x, argument="X").astype(np.float32, copy=False)
        index = pd.RangeIndex(n) if ids is None else pd.Index(list(ids))
        if len(index) != n:
            raise ValidationError(
                "ids", f"has {len(index)} items but labels has {n}", "pass one id per item"
            )
        check_unique_ids(index, "ids")
        text_list = None
        if texts is not None:
            text_list = ["" if t is None or pd.isna(t) else str(t) for t in texts]
            if len(text_list) != n:
                raise ValidationError(
                    "texts", f"has {len(text_list)} items but labels has {n}", "one text per item"
                )
        codes, enc = _encode_labels(lab, classes, multi_label, label_sep)
        data: dict[str, Any] = {}
        if multi_label:
            data = {f"label_{c}": codes[:, j] for j, c in enumerate(enc.classes)}
        else:
            data["label"] = enc.decode(codes)
        if text_list is not None:
            data["text"] = text_list
        frame = pd.DataFrame(data, index=index)
        return cls(
            frame=frame,
            labels=codes,
            encoding=enc,
            features=features,
            texts=text_list,
            multi_label=multi_label,
        )
