"""Encode: the Encoder protocol, the fast TF-IDF/LSA text encoder, precomputed vectors."""

from ._base import Encoder, PrecomputedEncoder
from ._tfidf import TfidfEncoder

__all__ = ["Encoder", "PrecomputedEncoder", "TfidfEncoder"]
