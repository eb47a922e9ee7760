"""Encode: the Encoder protocol, the ONNX sentence encoder (all-MiniLM-L6-v2), the fast
TF-IDF/LSA text encoder, precomputed vectors, a sentence-transformers encoder (torch
extra), ``load_encoder(path)`` and the on-disk embedding cache."""

from ._base import Encoder, PrecomputedEncoder
from ._cache import CachedEncoder
from ._image import OpenClipImageEncoder
from ._load import load_encoder
from ._onnx import OnnxTextEncoder
from ._tfidf import TfidfEncoder
from ._torch import SentenceTransformerEncoder

__all__ = [
    "CachedEncoder",
    "Encoder",
    "OnnxTextEncoder",
    "OpenClipImageEncoder",
    "PrecomputedEncoder",
    "SentenceTransformerEncoder",
    "TfidfEncoder",
    "load_encoder",
]
