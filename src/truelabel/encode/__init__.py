"""Encode: the Encoder protocol, the ONNX sentence encoder (all-MiniLM-L6-v2), the fast
TF-IDF/LSA text encoder, precomputed vectors."""

from ._base import Encoder, PrecomputedEncoder
from ._cache import CachedEncoder
from ._onnx import OnnxTextEncoder
from ._tfidf import TfidfEncoder

__all__ = ["CachedEncoder", "Encoder", "OnnxTextEncoder", "PrecomputedEncoder", "TfidfEncoder"]
