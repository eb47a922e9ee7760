"""The aggregator contract: ``fit(annotations)``, ``fit_predict``, ``fit_predict_proba``.

Every aggregator takes the long annotation table (a DataFrame or an
:class:`~truelabel.aggregate.Annotations`), and after ``fit`` holds

- ``probas_``: DataFrame ``(n_items, n_classes)``, rows indexed by item id, one column per class;
- ``labels_``: Series of class labels indexed by item id (ties broken at random, reproducibly
  from ``random_state``);
- ``skills_``: Series in [0, 1] indexed by annotator id, the estimated accuracy of each annotator;
- ``classes_``, ``n_items_``, ``n_annotators_``.

Subclasses implement ``_fit_encoded(table, rng) -> (posteriors, skills)`` on encoded arrays.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._spill import scratch
from .._spill_frame import take_values
from .._validation import check_random_state
from ..backend import DEFAULT_CHUNK_ROWS
from ..exceptions import NotFittedError, ValidationError
from ._table import Annotations, as_annotations

__all__ = ["Aggregator", "break_ties", "check_positive", "check_positive_int"]


#: rows per block of :func:`break_ties`
_TIE_BLOCK = DEFAULT_CHUNK_ROWS


def break_ties(posteriors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Argmax per row; rows whose maximum is shared pick one of the tied classes at random.

    The draws come from ``rng`` in item order (items are sorted by id), so a seed reproduces
    the result whatever the row order of the table.

    >>> break_ties(np.array([[0.2, 0.8], [0.5, 0.5]]), np.random.default_rng(0)).tolist()[0]
    1
    """
    n = posteriors.shape[0]
    out = scratch(n, np.intp)  # a spill file when large
    # blocks of rows: O(block x n_classes) temporaries, not four (n_items, n_classes) arrays;
    # the blocks' draws are consecutive, so they are exactly those of one rng.random((n, k))
    for start in range(0, n, _TIE_BLOCK):
        p = posteriors[start : start + _TIE_BLOCK]
        top = p.max(axis=1, keepdims=True)
        tied = p >= top - 1e-12 * np.maximum(np.abs(top), 1.0)
        draws = rng.random(p.shape)
        draws += 1.0
        out[start : start + _TIE_BLOCK] = np.argmax(np.where(tied, draws, 0.0), axis=1)
    return out


def check_positive(argument: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok and np.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    bound = ">= 0" if allow_zero else "> 0"
    raise ValidationError(argument, f"got {value!r}, expected a number {bound}", "e.g. 1.0")


def check_positive_int(argument: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= minimum:
        return int(value)
    raise ValidationError(
        argument, f"got {value!r}, expected an int >= {minimum}", f"e.g. {max(minimum, 10)}"
    )


class Aggregator(BaseEstimator):
    """Base class of the consensus estimators (see the module docstring for the contract)."""

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, annotations: Any, *, gold: Any = None) -> Aggregator:
        """Aggregate the answers of a long table.

        Parameters
        ----------
        annotations : DataFrame or Annotations
            One row per answer with columns ``item_id, annotator_id, label`` (other names:
            build ``Annotations(df, item=..., annotator=..., label=...)``).
        gold : Series item_id -> label, optional
            Known labels: these items are clamped to them (overrides the table's gold).

        Returns
        -------
        self
        """
        table = as_annotations(annotations, gold)
        rng = check_random_state(getattr(self, "random_state", 0))
        posteriors, skills = self._fit_encoded(table, rng)
        classes = table.classes
        items = table.items.rename(table.columns[0])
        self.annotations_ = table
        self.classes_ = np.asarray(classes)
        # a view, not a copy (pandas copies an ndarray by default): copy-on-write keeps it safe;
        # one 2-D block over the posteriors, a spill file when large (:func:`run_em`)
        self.probas_ = pd.DataFrame(posteriors, index=items, columns=classes, copy=False)
        codes = break_ties(posteriors, rng)
        # the values of classes[codes], in a spill file when large (names: Arrow buffers)
        labels = take_values(classes, codes)
        del codes
        self.labels_ = pd.Series(labels, index=items, name="label", copy=False)
        self.skills_ = pd.Series(
            np.clip(skills, 0.0, 1.0), index=table.annotators.rename(table.columns[1]), name="skill"
        )
        self.n_items_ = table.n_items
        self.n_annotators_ = table.n_annotators
        return self

    def fit_predict(self, annotations: Any, *, gold: Any = None) -> pd.Series:
        """Consensus label per item: a Series indexed by item id."""
        return self.fit(annotations, gold=gold).labels_

    def fit_predict_proba(self, annotations: Any, *, gold: Any = None) -> pd.DataFrame:
        """Consensus probabilities: a DataFrame ``(n_items, n_classes)`` indexed by item id."""
        return self.fit(annotations, gold=gold).probas_

    def to_parquet(self, path: str | os.PathLike[str], *, chunk_size: int | None = None) -> Path:
        """Write the consensus of every item: its id (named like the table's item column),
        ``label`` and ``p_<class>`` (each class's posterior, in ``classes_`` order), one row
        group per ``chunk_size`` rows (default 32,768), atomically
        (:func:`truelabel.data.write_frame_parquet`: built from slices, never a copy of the
        whole table; ``probas_`` and ``labels_`` may be spill files).

        >>> import os, tempfile, pandas as pd
        >>> from truelabel.aggregate import DawidSkene
        >>> df = pd.DataFrame({"item_id": [1, 1, 2, 2], "annotator_id": list("abab"),
        ...                    "label": ["x", "x", "y", "x"]})
        >>> path = DawidSkene().fit(df).to_parquet(os.path.join(tempfile.mkdtemp(), "c.parquet"))
        >>> pd.read_parquet(path).columns.tolist()
        ['item_id', 'label', 'p_x', 'p_y']
        """
        from ..data import write_frame_parquet

        probas = self.probas_
        named = probas.rename(columns=lambda c: f"p_{c}")  # copy-on-write: no copy
        frame = pd.concat([self.labels_, named], axis=1)
        return write_frame_parquet(path, frame, chunk_size=chunk_size)

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call fit(annotations) before reading {name}"
            )
        raise AttributeError(name)

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __sklearn_is_fitted__(self) -> bool:
        return "labels_" in self.__dict__
