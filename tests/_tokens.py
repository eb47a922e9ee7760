"""A stand-in tokenizer for encoders built without a model (hand-made hidden states)."""

from __future__ import annotations

from types import SimpleNamespace


class CharTokens:
    """``encode_batch`` as the tokenizers library's, one token a character plus ``[CLS]`` and
    ``[SEP]``: what ``OnnxTextEncoder`` sorts and batches texts by."""

    def encode_batch(self, texts: list[str]) -> list[SimpleNamespace]:
        return [SimpleNamespace(ids=list(range(len(t) + 2))) for t in texts]
