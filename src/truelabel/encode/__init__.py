"""Encode: the Encoder protocol, the ONNX sentence encoder (all-MiniLM-L6-v2), the fast
TF-IDF/LSA text encoder, precomputed vectors."""

from ._base import Encoder, PrecomputedEncoder
from ._image import OpenClipImageEncoder
from ._onnx import OnnxTextEncoder
from ._tfidf import TfidfEncoder

__all__ = [
    "Encoder",
    "OnnxTextEncoder",
    "OpenClipImageEncoder",
    "PrecomputedEncoder",
    "TfidfEncoder",
]
