"""A second view from the same ONNX forward pass: the first word's contextual vector.

Mean pooling over all tokens blurs what the opening word says (on TREC the question
type sits in "who", "how many", "where"); the last hidden state at the first token after
``[CLS]`` keeps it. Measured on TREC with 8 examples per class (5 seeds, frozen body):
0.618 -> 0.717 accuracy added to the embedding and n-gram views; ``[CLS]`` or max
pooling did not help (0.602, 0.625).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["first_token_vectors", "supports_first_token"]


def supports_first_token(encoder: Any) -> bool:
    """True for encoders that give token states (:class:`truelabel.encode.OnnxTextEncoder`,
    and wrappers that hand its attributes through: the cache, the autolabel memo)."""
    return callable(getattr(encoder, "first_token_vectors", None))


def first_token_vectors(encoder: Any, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length last hidden state at token position 1 of each text, (n, dim) float64."""
    return np.asarray(encoder.first_token_vectors(list(texts), batch_size=batch_size))
