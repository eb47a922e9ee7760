"""Encode: the Encoder protocol, the fast TF-IDF/LSA text encoder, precomputed vectors."""

from ._base import Encoder, PrecomputedEncoder
from ._image import OpenClipImageEncoder
from ._tfidf import TfidfEncoder

__all__ = ["Encoder", "OpenClipImageEncoder", "PrecomputedEncoder", "TfidfEncoder"]
