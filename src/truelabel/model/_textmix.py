"""Texts in, class names out: the text side of a classifier on embeddings (encode, then
call the ``*_embeddings`` methods) and per-class accuracy reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import closest
from ..exceptions import ValidationError

__all__ = ["TextEmbeddingMixin", "check_texts"]


def check_texts(argument: str, texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence | np.ndarray):
        raise ValidationError(argument, f"got {type(texts).__name__}", "pass a list of strings")
    out = list(texts)
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)][:1]
    if bad:
        raise ValidationError(
            argument, f"item {bad[0]} is {type(out[bad[0]]).__name__}", "pass strings only"
        )
    return out


class TextEmbeddingMixin:
    """Needs ``encoder`` and ``base`` settings, ``classes_`` and
    ``predict_proba_embeddings``; gives the text methods and reports."""

    classes_: np.ndarray
    encoder: Any
    base: Any

    def predict_proba_embeddings(
        self, X: Any, texts: Any | None = None
    ) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _label_ids(labels: Any, n: int, known: list[str], argument: str = "labels") -> np.ndarray:
        arr = np.asarray(labels)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise ValidationError(
                argument, f"has shape {arr.shape}, expected ({n},)", "pass one label per item"
            )
        names = arr.astype(str)
        lookup = {c: i for i, c in enumerate(known)}
        missing = sorted(set(names.tolist()) - set(lookup))
        if missing:
            hint = closest(missing[0], known)
            raise ValidationError(
                argument,
                f"{missing[0]!r} is not one of the classes {known[:10]}",
                f"did you mean {hint!r}?" if hint else "add it to the base's classes",
            )
        return np.fromiter((lookup[s] for s in names), dtype=np.int64, count=n)

    # ------------------------------------------------------------------ pieces

    def _evaluate(self, q: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        k = len(self.classes_)
        hit = q.argmax(axis=1) == y
        acc_k = np.bincount(y, weights=hit, minlength=k) / np.maximum(
            np.bincount(y, minlength=k), 1
        )
        return {
            "accuracy": float(hit.mean()),
            "per_class": dict(zip(self.classes_.tolist(), acc_k.tolist(), strict=True)),
        }

    # ------------------------------------------------------------------ fit
    def _encoder(self) -> Any:
        enc = self.encoder if self.encoder is not None else getattr(self.base, "encoder", None)
        if enc is None:
            from ..encode import OnnxTextEncoder

            enc = OnnxTextEncoder()
        return enc

    # ------------------------------------------------------------------ predict
    def predict_embeddings(self, X: Any, texts: Any | None = None) -> np.ndarray:
        """Class names, shape (n_items,) (``texts``: as ``predict_proba_embeddings``)."""
        proba = self.predict_proba_embeddings(X, texts=texts)
        return np.asarray(self.classes_[proba.argmax(axis=1)])

    def predict_proba(self, texts: Any) -> np.ndarray:
        """Calibrated probabilities of texts, columns in ``classes_`` order."""
        items = check_texts("texts", texts)
        return self.predict_proba_embeddings(self._encoder().encode(items), texts=items)

    def predict(self, texts: Any) -> np.ndarray:
        """Predicted class names of texts."""
        return np.asarray(self.classes_[self.predict_proba(texts).argmax(axis=1)])

    def report_embeddings(self, X: Any, labels: Any, texts: Any | None = None) -> Any:
        """Accuracy per class on labeled vectors (a DataFrame: ``n``, ``correct``,
        ``accuracy``, one row per class plus ``"all"``); sets ``per_class_accuracy_``.
        ``texts``: as ``predict_proba_embeddings``."""
        import pandas as pd

        pred = self.predict_proba_embeddings(X, texts=texts).argmax(axis=1)
        classes = self.classes_
        y = self._label_ids(labels, pred.shape[0], classes.tolist())
        k = len(classes)
        n = np.bincount(y, minlength=k)
        correct = np.bincount(y, weights=(pred == y), minlength=k).astype(np.int64)
        df = pd.DataFrame(
            {"n": n, "correct": correct, "accuracy": correct / np.maximum(n, 1)},
            index=pd.Index(classes.tolist(), name="class"),
        )
        df.loc["all"] = [int(n.sum()), int(correct.sum()), correct.sum() / n.sum()]
        self.per_class_accuracy_ = df["accuracy"].iloc[:-1]
        return df

    def report(self, texts: Any, labels: Any) -> Any:
        """:meth:`report_embeddings` on texts."""
        items = check_texts("texts", texts)
        return self.report_embeddings(self._encoder().encode(items), labels, texts=items)

    def score(self, texts: Any, labels: Any) -> float:
        """Mean accuracy on texts (also sets ``per_class_accuracy_``)."""
        return float(self.report(texts, labels).loc["all", "accuracy"])
