"""Size limits of an import (``truelabel init``): the data file, the number of items, the
length of one text, the size of one image file. Checked before anything is written (the
file size before it is even read), each refusal naming the flag that raises the limit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ValidationError

__all__ = ["ImportLimits"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class ImportLimits:
    """What one import may hold (defaults: a 4 GiB data file, 10 million items, texts of
    100,000 characters, images of 50 MiB; raise them with the flags named in the errors).

    >>> ImportLimits().max_items
    10000000
    """

    max_file_mb: float = 4096.0
    max_items: int = 10_000_000
    max_text_chars: int = 100_000
    max_image_mb: float = 50.0

    def __post_init__(self) -> None:
        for flag, value in (
            ("--max-file-mb", self.max_file_mb),
            ("--max-items", self.max_items),
            ("--max-text-chars", self.max_text_chars),
            ("--max-image-mb", self.max_image_mb),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValidationError(flag, f"got {value!r}", "pass a positive number")

    def check_file(self, data: Path) -> None:
        """Refuse a data file above ``max_file_mb`` (before reading it)."""
        size = os.stat(data).st_size
        if size > self.max_file_mb * _MB:
            raise ValidationError(
                "--data",
                f"{str(data)!r} is {size / _MB:.1f} MiB, above the import limit of "
                f"{self.max_file_mb:g} MiB",
                "split the file, or raise the limit with --max-file-mb",
            )

    def check_items(self, n_items: int) -> None:
        if n_items > self.max_items:
            raise ValidationError(
                "--data",
                f"has {n_items} items, above the import limit of {self.max_items}",
                "import a part of it, or raise the limit with --max-items",
            )

    def check_texts(self, texts: list[Any]) -> None:
        """Refuse texts longer than ``max_text_chars`` (the first such row is named)."""
        lengths = np.fromiter((0 if t is None else len(t) for t in texts), np.int64, len(texts))
        over = np.flatnonzero(lengths > self.max_text_chars)
        if over.size:
            row = int(over[0])
            raise ValidationError(
                "--text-col",
                f"row {row} has {int(lengths[row])} characters ({over.size} rows are above "
                f"the limit of {self.max_text_chars})",
                "shorten those texts, or raise the limit with --max-text-chars",
            )

    def check_image(self, row: int, file: Path) -> None:
        size = file.stat().st_size
        if size > self.max_image_mb * _MB:
            raise ValidationError(
                "--image-col",
                f"row {row}: image {file.name!r} is {size / _MB:.1f} MiB, above the limit of "
                f"{self.max_image_mb:g} MiB",
                "shrink the image, or raise the limit with --max-image-mb",
            )
