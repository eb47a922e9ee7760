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
    """True for encoders running a transformer session we can read token states from
    (:class:`truelabel.encode.OnnxTextEncoder` and its kin)."""
    return all(hasattr(encoder, a) for a in ("_session", "_tokenizer", "_inputs"))


def first_token_vectors(encoder: Any, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length last hidden state at token position 1 of each text, (n, dim) float64."""
    texts = list(texts)
    out = np.empty((len(texts), 0))
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        enc = encoder._tokenizer.encode_batch([texts[i] for i in rows])
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for r, e in enumerate(enc):  # over one batch's token lists (<= batch_size)
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in encoder._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = np.asarray(encoder._session.run(None, feeds)[0], dtype=np.float64)
        first = hidden[:, min(1, width - 1)]
        if out.shape[1] == 0:
            out = np.empty((len(texts), first.shape[1]))
        out[rows] = first / np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-12)
    return out
