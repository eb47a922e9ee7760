"""Shared plumbing of the text classifiers: classes, encoder, input checks, softmax."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import iter_chunks
from ..exceptions import NotFittedError, ValidationError
from ._classes import ClassSpec, check_classes, check_template, class_prompts

__all__ = ["TextClassifierBase", "check_texts", "softmax_rows"]


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row maximum is subtracted first)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def check_texts(texts: Any, argument: str = "texts") -> list[str]:
    """A list of non-empty strings; the first bad item is named with its position."""
    if isinstance(texts, str):
        raise ValidationError(argument, "got one string", "pass a list of texts, e.g. [text]")
    try:
        items = list(texts.tolist() if hasattr(texts, "tolist") else texts)
    except TypeError as exc:
        raise ValidationError(
            argument, f"got {type(texts).__name__}", "pass a list of strings"
        ) from exc
    if not items:
        raise ValidationError(argument, "is empty", "pass at least one text")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise ValidationError(
                argument, f"item {i} is {type(t).__name__} {t!r}, not text", "pass strings"
            )
        if not t.strip():
            raise ValidationError(
                argument, f"item {i} is an empty string", "drop empty texts or fill them"
            )
    return items


class TextClassifierBase(BaseEstimator):
    """Classes, encoder and embedding checks shared by the zero- and few-shot classifiers."""

    classes: Any
    encoder: Any
    template: str

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_default_encoder", None)  # an onnxruntime session: rebuilt on first use
        return state

    def _copy_unfitted(self) -> Any:
        """An unfitted copy with the same settings that shares this one's encoder object
        and cached class vectors (sklearn's ``clone`` would deep-copy the encoder and the
        copy would embed the class prompts again)."""
        other = type(self)(**self.get_params(deep=False))
        for key in ("_spec_cache", "_class_cache", "_default_encoder"):
            if key in self.__dict__:
                other.__dict__[key] = self.__dict__[key]
        return other

    @property
    def classes_(self) -> np.ndarray:
        """Class names in the order of ``classes`` (the columns of ``predict_proba``)."""
        return np.array(self._spec().names, dtype=object)

    def _spec(self) -> ClassSpec:
        key = (repr(self.classes), self.template)
        cached = self.__dict__.get("_spec_cache")
        if cached is None or cached[0] != key:
            check_template(self.template)
            cached = (key, check_classes(self.classes))
            self.__dict__["_spec_cache"] = cached
        return cached[1]

    def _get_encoder(self) -> Any:
        if self.encoder is not None:
            if not callable(getattr(self.encoder, "encode", None)):
                raise ValidationError(
                    "encoder",
                    f"{type(self.encoder).__name__} has no encode method",
                    "pass an Encoder (name, encode(texts) -> (n, dim) array) or None",
                )
            return self.encoder
        enc = self.__dict__.get("_default_encoder")
        if enc is None:
            from ..encode import OnnxTextEncoder

            enc = OnnxTextEncoder()
            self.__dict__["_default_encoder"] = enc
        return enc

    def _encode(self, texts: Any, argument: str = "texts") -> np.ndarray:
        items = check_texts(texts, argument)
        X = np.asarray(self._get_encoder().encode(items))
        return self._check_embeddings(X, "encoder output")

    def _class_matrix(self) -> np.ndarray:
        """Unit vectors of the class prompts, (n_classes, dim), cached per spec/template."""
        spec = self._spec()
        prompts = class_prompts(spec, self.template)
        key = (tuple(prompts), id(self.encoder))
        cached = self.__dict__.get("_class_cache")
        if cached is None or cached[0] != key:
            C = np.asarray(self._get_encoder().encode(prompts), dtype=np.float64)
            C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
            cached = (key, C)
            self.__dict__["_class_cache"] = cached
        return cached[1]

    def _check_embeddings(self, X: Any, argument: str = "X") -> np.ndarray:
        """Float64 rows scaled to unit length; a zero or non-finite row is refused."""
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.dtype.kind not in "fiu":
            raise ValidationError(
                argument,
                f"expected a non-empty 2-D numeric array, got shape {arr.shape} dtype {arr.dtype}",
                "pass one embedding row per text",
            )
        dim = int(self._class_matrix().shape[1])
        if arr.shape[1] != dim:
            raise ValidationError(
                argument,
                f"has {arr.shape[1]} columns but the encoder's class vectors have {dim}",
                "embed the texts with the same encoder as the classifier",
            )
        out = np.empty((arr.shape[0], dim), dtype=np.float64)
        for rows in iter_chunks(arr.shape[0]):
            block = np.asarray(arr[rows], dtype=np.float64)
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0]) + int(rows.start or 0)
                raise ValidationError(
                    argument, f"row {i} is zero or not finite", "embed every text first"
                )
            out[rows] = block / norms
        return out

    def _label_indices(self, labels: Any, n_items: int) -> np.ndarray:
        """Class-name labels -> indices into ``classes_``; unknown names are refused."""
        names = self._spec().names
        if isinstance(labels, str):
            raise ValidationError("labels", "got one string", "pass one class name per text")
        values = list(labels.tolist() if hasattr(labels, "tolist") else labels)
        if len(values) != n_items:
            raise ValidationError(
                "labels", f"has {len(values)} items for {n_items} texts", "pass one per text"
            )
        index = {n: i for i, n in enumerate(names)}
        folded = {n.casefold(): i for i, n in enumerate(names)}
        out = np.empty(len(values), dtype=np.int64)
        for j, v in enumerate(values):
            i = index.get(v) if isinstance(v, str) else None
            if i is None and isinstance(v, str):
                i = folded.get(v.strip().casefold())
            if i is None:
                raise ValidationError(
                    "labels",
                    f"label {v!r} at item {j} is not one of the classes {names}",
                    "add it to classes or fix the label",
                )
            out[j] = i
        return out

    def _require_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call fit(texts, labels) first"
            )

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Most probable class name of each text, shape (n_items,)."""
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (n_items, n_classes), columns in ``classes_`` order."""
        return self.predict_proba_embeddings(self._encode(texts))

    def predict_proba_embeddings(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
