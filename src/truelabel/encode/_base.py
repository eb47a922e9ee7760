"""The Encoder protocol: anything that turns texts (or items) into fixed-size vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Encoder", "PrecomputedEncoder", "check_text_items"]


def check_text_items(items: Sequence[str]) -> list[str]:
    """``items`` as a list of strings; one string or a non-string item is refused by name."""
    from ..exceptions import ValidationError

    if isinstance(items, str):
        raise ValidationError("items", "got a single string", "pass a list of texts")
    texts = list(items)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValidationError(
            "items", f"item {bad} is {type(texts[bad]).__name__}, not text", "pass strings"
        )
    return texts


@runtime_checkable
class Encoder(Protocol):
    """Turns a batch of items into a float32 array of shape (n_items, dim).

    Implementations must be deterministic: the same input gives the same vectors.
    """

    name: str

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """Vectors for ``items``, shape (len(items), dim), float32."""
        ...


class PrecomputedEncoder:
    """Serve vectors computed elsewhere (the user's own embeddings), looked up by text."""

    name = "precomputed"

    def __init__(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(texts) != len(vectors):
            from ..exceptions import ValidationError

            raise ValidationError(
                "vectors", f"{len(vectors)} rows for {len(texts)} texts", "pass one row per text"
            )
        self._lookup = {t: i for i, t in enumerate(texts)}
        self._vectors = np.asarray(vectors, dtype=np.float32)

    def encode(self, items: Sequence[str]) -> np.ndarray:
        missing = [t for t in items if t not in self._lookup]
        if missing:
            from ..exceptions import ValidationError

            raise ValidationError(
                "items", f"no precomputed vector for {missing[0]!r}", "encode it first"
            )
        return self._vectors[[self._lookup[t] for t in items]]
