"""Load items and labels: :class:`Dataset`, table readers and label encodings."""

from __future__ import annotations

from ._dataset import Dataset
from ._labels import LabelEncoding, parse_multilabel
from ._readers import read_table

__all__ = ["Dataset", "LabelEncoding", "parse_multilabel", "read_table"]
