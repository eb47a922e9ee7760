"""How the self-trainer fits and queries copies of its base classifier.

Two kinds of base: one that works on embeddings only (``fit_embeddings(X, labels)`` /
``predict_proba_embeddings(X)``), and one with its own per-item views of the texts
(``compute_views(texts, X)`` / ``fit_views(views, labels)`` / ``predict_proba_views(views)``,
e.g. :class:`~truelabel.model.FewShotClassifier`: embedding, word n-grams, first-token
vectors). For the second kind the views of the labeled items and of the pool are computed
once, and every round fits on rows of them: nothing is encoded twice and no view is lost.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..exceptions import ValidationError

__all__ = ["BaseFits", "check_base", "class_names", "uses_views"]

_VIEW_METHODS = ("compute_views", "fit_views", "predict_proba_views")
_EMB_METHODS = ("fit_embeddings", "predict_proba_embeddings")


def uses_views(base: Any) -> bool:
    """True when ``base`` computes its own per-item views (see the module docstring)."""
    return all(callable(getattr(base, m, None)) for m in _VIEW_METHODS)


def check_base(base: Any) -> None:
    """Refuse a base the self-trainer cannot refit on pseudo-labels."""
    from ._zeroshot import ZeroShotClassifier

    if isinstance(base, ZeroShotClassifier):
        raise ValidationError(
            "base",
            "is a ZeroShotClassifier, which learns from no labels, but self-training refits "
            "its base on labeled and pseudo-labeled items",
            "use base=FewShotClassifier(classes=...) (its prior is the zero-shot classifier), "
            "or ZeroShotClassifier(classes=...).fit(unlabeled_texts) to adapt to the pool "
            "without labels",
        )
    if not uses_views(base):
        for name in _EMB_METHODS:
            if not callable(getattr(base, name, None)):
                raise ValidationError(
                    "base",
                    f"{type(base).__name__} has no {name}()",
                    "wrap a classifier with fit_embeddings(X, labels) and "
                    "predict_proba_embeddings(X), e.g. FewShotClassifier",
                )


def class_names(base: Any) -> list[str] | None:
    """The base's class names before any fit: its ``classes_`` when that is known
    unfitted (the text classifiers read it from ``classes``), else its ``classes``."""
    try:
        names = getattr(base, "classes_", None)
    except AttributeError:
        names = None
    if names is None:
        spec = getattr(base, "classes", None)
        if not isinstance(spec, dict | list | tuple | np.ndarray):
            return None
        names = list(spec)
    return [str(c) for c in names]


class BaseFits:
    """Fitted copies of ``base`` on rows of one input bundle, columns in ``classes`` order.

    The first fit keeps the settings the base chose on the labeled items
    (``selected_params_``, when it has them) and every later copy is given them with
    ``set_params``: refits on pseudo-labels do not re-run the base's own cross-validation
    (the pseudo-labels are its own predictions, a poor judge of its settings).
    """

    def __init__(self, base: Any, classes: np.ndarray) -> None:
        self.base = base
        self.classes = classes
        self.views = uses_views(base)
        self.fixed: dict[str, Any] | None = None

    def inputs(self, X: np.ndarray, texts: list[str] | None) -> Any:
        """Everything the base reads about these items: its views, or the embeddings."""
        return self.base.compute_views(texts, X) if self.views else X

    def inputs_for(self, model: Any, X: np.ndarray, texts: list[str] | None) -> Any:
        """The inputs a fitted copy needs for new items (only the views it uses)."""
        return model.compute_views(texts, X) if self.views else X

    def take(self, data: Any, rows: np.ndarray) -> Any:
        return data.take(rows) if self.views else data[rows]

    def _copy(self) -> Any:
        share = getattr(self.base, "_copy_unfitted", None)
        if callable(share):  # the text classifiers: same encoder, class vectors embedded once
            model = share()
        else:
            try:
                from sklearn.base import clone

                model = clone(self.base)
            except TypeError:
                model = copy.deepcopy(self.base)
        if self.fixed:
            model.set_params(**self.fixed)
        return model

    def fit(self, data: Any, rows: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
        """A copy of the base fitted on ``rows`` of ``data`` with class indices ``y``, and
        the columns of its output in ``classes`` order."""
        model = self._copy()
        labels = self.classes[y]
        if self.views:
            model.fit_views(data.take(rows), labels)
        else:
            model.fit_embeddings(data[rows], labels)
        if self.fixed is None:
            chosen = getattr(model, "selected_params_", None)
            self.fixed = dict(chosen) if isinstance(chosen, dict) else {}
        got = [str(c) for c in model.classes_]
        missing = [c for c in self.classes if c not in got]
        if missing:
            raise ValidationError(
                "base",
                f"its classes_ lack {missing[:5]}",
                "give the base every class (its classes= setting)",
            )
        return model, np.asarray([got.index(c) for c in self.classes])

    def probs(self, fitted: tuple[Any, np.ndarray], data: Any) -> np.ndarray:
        """Probabilities of every item of ``data``, rows summing to 1."""
        model, cols = fitted
        if self.views:
            p = model.predict_proba_views(data)
        else:
            p = model.predict_proba_embeddings(data)
        p = np.asarray(p, dtype=np.float64)[:, cols]
        return np.asarray(p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12))
