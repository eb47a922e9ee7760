"""Load items and labels: :class:`Dataset`, table readers and label encodings; row sources
(array, memory-mapped ``.npy``, Parquet) read chunk by chunk, and a chunk-wise Parquet
writer."""

from __future__ import annotations

from ._dataset import Dataset
from ._labels import LabelEncoding, parse_multilabel
from ._parquet_out import ParquetChunkWriter, write_frame_parquet, write_parquet_chunks
from ._readers import read_table
from ._source import ArraySource, NpySource, ParquetSource, Source, open_source, to_array

__all__ = [
    "ArraySource",
    "Dataset",
    "LabelEncoding",
    "NpySource",
    "ParquetChunkWriter",
    "ParquetSource",
    "Source",
    "open_source",
    "parse_multilabel",
    "read_table",
    "to_array",
    "write_frame_parquet",
    "write_parquet_chunks",
]
