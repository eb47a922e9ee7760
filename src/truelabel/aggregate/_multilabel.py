"""Multi-label consensus: each annotator gives a set of classes per item.

One-vs-rest Dawid-Skene: for every class ``c`` the answers become binary ("``c`` is in the
annotator's set" or not), and a binary Dawid-Skene is fitted by the shared EM core
(:func:`~truelabel.aggregate._em.run_em`, the M-step of :class:`DawidSkene`). Each annotator
so gets a 2 x 2 confusion matrix per class (its sensitivity and specificity for that class),
and each item a probability per class; the consensus set holds the classes whose probability
reaches ``threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._progress import progress
from ..backend import Backend
from ..exceptions import NotFittedError, ValidationError
from ._base import check_positive, check_positive_int
from ._dawid_skene import DawidSkene
from ._em import counts_from_codes, run_em
from ._table import Annotations

__all__ = ["MultiLabelDawidSkene", "parse_label_sets"]


def _canonical(value: Any, sep: str) -> str:
    """One answer as its sorted, de-duplicated set joined by ``sep`` ("" = empty set)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        parts = value.split(sep)
    elif isinstance(value, list | tuple | set | frozenset | np.ndarray):
        parts = [str(v) for v in value]
    else:
        parts = [str(value)]
    return sep.join(sorted({p.strip() for p in parts if p.strip()}))


def parse_label_sets(
    values: pd.Series, sep: str = "|", classes: Any = None
) -> tuple[pd.Series, list[str], np.ndarray]:
    """Canonical set strings per answer, the class list, and the ``(n_sets, K)`` indicator of
    each distinct set (rows in ``pd.factorize`` order of the canonical strings).

    >>> canon, classes, _ = parse_label_sets(pd.Series(["b|a", "a", ""]))
    >>> canon.tolist(), classes
    (['a|b', 'a', ''], ['a', 'b'])
    """
    canon = pd.Series([_canonical(v, sep) for v in values], index=values.index)
    uniques = pd.unique(canon)
    members = [set(u.split(sep)) - {""} for u in uniques]
    seen = sorted(set().union(*members)) if members else []
    if classes is None:
        names = seen
    else:
        names = [str(c) for c in classes]
        unknown = sorted(set(seen) - set(names))
        if unknown:
            row = int(np.flatnonzero(canon.map(lambda s: unknown[0] in s.split(sep)))[0])
            raise ValidationError(
                "annotations",
                f"row {row} names class {unknown[0]!r}, which is not in classes "
                f"({len(unknown)} unknown class(es): {', '.join(map(repr, unknown[:5]))})",
                "add them to classes or fix the answers",
            )
    if len(names) < 1:
        raise ValidationError("annotations", "no answer names any class", "pass label sets")
    col = {n: i for i, n in enumerate(names)}
    ind = np.zeros((len(uniques), len(names)), dtype=np.int8)
    for r, m in enumerate(members):  # a loop over distinct sets, not over answers
        ind[r, [col[c] for c in m]] = 1
    return canon, names, ind


class MultiLabelDawidSkene(BaseEstimator):
    """Consensus label sets from annotators who each give a set of classes per item.

    Parameters
    ----------
    sep : str, default "|"
        Separator of the classes in a string answer (``"cat|dog"``); list, tuple or set
        answers are taken as they are. An empty string or a missing cell is the empty set
        (the annotator saw the item and chose no class).
    classes : sequence of str, optional
        The class set (columns of ``probas_``); default: the classes named in the answers,
        sorted. A class outside it is an error.
    threshold : float in (0, 1), default 0.5
        A class is in the consensus set when its probability reaches this.
    smoothing, prior_strength, tol, max_iter, backend, chunk_size
        As in :class:`DawidSkene` (applied to each class's binary model).

    Attributes
    ----------
    probas_ : DataFrame (n_items, n_classes)
        ``P(class in the item's true set)``, indexed by item id.
    labels_ : Series of tuple
        The consensus set of each item (classes in ``classes_`` order).
    skills_ : DataFrame (n_annotators, n_classes)
        Per-class accuracy of each annotator (``P(right about c)`` on an item drawn from the
        class's prior).
    confusions_ : ndarray, shape (n_classes, n_annotators, 2, 2)
        ``confusions_[c, j, t, s] = P(annotator j says "c in set" = s | truth t)``.
    classes_, n_iter_ (per class), converged_ (per class)

    Examples
    --------
    >>> df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2, 2], "annotator_id": list("abcabc"),
    ...                    "label": ["x|y", "x", "x|y", "y", "y", ""]})
    >>> MultiLabelDawidSkene().fit_predict(df).tolist()
    [('x', 'y'), ('y',)]
    """

    def __init__(
        self,
        *,
        sep: str = "|",
        classes: Any = None,
        threshold: float = 0.5,
        smoothing: float = 0.01,
        prior_strength: float = 0.0,
        tol: float = 1e-5,
        max_iter: int = 100,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.sep = sep
        self.classes = classes
        self.threshold = threshold
        self.smoothing = smoothing
        self.prior_strength = prior_strength
        self.tol = tol
        self.max_iter = max_iter
        self.backend = backend
        self.chunk_size = chunk_size

    def fit(
        self,
        annotations: pd.DataFrame,
        *,
        item: str = "item_id",
        annotator: str = "annotator_id",
        label: str = "label",
        duplicates: str = "raise",
    ) -> MultiLabelDawidSkene:
        """Fit one binary Dawid-Skene per class on a long table of set answers."""
        if not isinstance(self.sep, str) or not self.sep:
            raise ValidationError("sep", f"got {self.sep!r}", "pass a separator such as '|'")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t < 1:
            raise ValidationError("threshold", f"got {t!r}", "pass a number in (0, 1)")
        tol = check_positive("tol", self.tol)
        max_iter = check_positive_int("max_iter", self.max_iter)
        if not isinstance(annotations, pd.DataFrame) or label not in annotations.columns:
            return self._refuse(annotations, label)
        canon, names, ind = parse_label_sets(annotations[label], self.sep, self.classes)
        frame = annotations[[item, annotator]].assign(**{label: canon})
        # the table contract checks ids and (set-level) duplicate answers once
        table = Annotations(frame, item=item, annotator=annotator, label=label,
                            duplicates=duplicates)  # fmt: skip
        set_rows = pd.Index(pd.unique(canon)).get_indexer(table.classes)
        answers = ind[set_rows][table.label_codes]  # (n_answers, K) 0/1
        ds = DawidSkene(smoothing=self.smoothing, prior_strength=self.prior_strength)
        ds._check_prior()
        shape = (table.n_items, table.n_annotators, 2)
        k = len(names)
        probas = np.empty((table.n_items, k))
        conf = np.empty((k, table.n_annotators, 2, 2))
        skills = np.empty((table.n_annotators, k))
        n_iter, converged = [], []
        with progress(k, "MultiLabelDawidSkene: classes") as advance:
            for c in range(k):  # one binary EM per class, each vectorized over items
                counts = counts_from_codes(
                    table.item_codes, table.annotator_codes, answers[:, c], shape
                )
                votes = np.asarray(counts.sum(axis=1)).ravel()
                yes = np.bincount(table.item_codes, weights=answers[:, c], minlength=table.n_items)
                share = np.column_stack([votes - yes, yes]) / np.maximum(votes, 1)[:, None]
                res = run_em(
                    counts, n_annotators=table.n_annotators, n_classes=2, m_step=ds._m_step,
                    inits=[share], tol=tol, max_iter=max_iter, backend=self.backend,
                    chunk_size=self.chunk_size, name=f"MultiLabelDawidSkene (class {names[c]!r})",
                )  # fmt: skip
                probas[:, c] = res.posteriors[:, 1]
                conf[c] = np.exp(res.model.log_conf)
                skills[:, c] = np.einsum("k,jkk->j", np.exp(res.model.log_prior), conf[c])
                n_iter.append(res.n_iter)
                converged.append(res.converged)
                advance(1)
        items = table.items.rename(item)
        self.classes_ = np.asarray(names, dtype=object)
        self.probas_ = pd.DataFrame(probas, index=items, columns=names)
        chosen = probas >= t
        self.labels_ = pd.Series(
            [tuple(self.classes_[row]) for row in chosen], index=items, name="label", dtype=object
        )
        self.skills_ = pd.DataFrame(skills, index=table.annotators.rename(annotator), columns=names)
        self.confusions_ = conf
        self.n_iter_ = np.asarray(n_iter)
        self.converged_ = np.asarray(converged)
        self.annotations_ = table
        return self

    @staticmethod
    def _refuse(annotations: Any, label: str) -> MultiLabelDawidSkene:
        if not isinstance(annotations, pd.DataFrame):
            raise ValidationError(
                "annotations", f"got {type(annotations).__name__}", "pass a pandas DataFrame"
            )
        cols = ", ".join(map(str, annotations.columns[:10]))
        raise ValidationError(
            "annotations", f"has no label column {label!r} (columns: {cols})", "pass label="
        )

    def fit_predict(self, annotations: pd.DataFrame, **kw: Any) -> pd.Series:
        """The consensus set of each item (a Series of tuples indexed by item id)."""
        return self.fit(annotations, **kw).labels_

    def fit_predict_proba(self, annotations: pd.DataFrame, **kw: Any) -> pd.DataFrame:
        """``P(class in set)`` per item and class."""
        return self.fit(annotations, **kw).probas_

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_") and not name.startswith("__"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call fit(annotations) before reading {name}"
            )
        raise AttributeError(name)
