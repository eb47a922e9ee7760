"""Rich progress for long operations, silent when not wanted.

``progress(total, description)`` yields a callable ``advance(n)``. It prints only when
``enabled`` (the CLI turns it on; library calls default to quiet unless the
``TRUELABEL_PROGRESS`` environment variable is ``1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

__all__ = ["progress", "progress_enabled", "set_progress"]

_ENABLED: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Turn progress bars on or off globally (``None`` = follow ``TRUELABEL_PROGRESS``)."""
    global _ENABLED
    _ENABLED = enabled


@contextmanager
def progress_enabled(enabled: bool | None) -> Iterator[None]:
    """Turn progress bars on or off inside the block, then restore the previous setting."""
    previous = _ENABLED
    set_progress(enabled)
    try:
        yield
    finally:
        set_progress(previous)


def _enabled() -> bool:
    if _ENABLED is not None:
        return _ENABLED
    return os.environ.get("TRUELABEL_PROGRESS", "0") == "1"


class RateColumn(ProgressColumn):
    """Items per second (Rich's running estimate), e.g. ``812 texts/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "--" if speed is None else f"{speed:,.0f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


@contextmanager
def progress(
    total: int | None, description: str, *, unit: str | None = None, show: bool = True
) -> Iterator[Callable[[int], None]]:
    """Context manager yielding ``advance(n)``; shows a Rich bar when enabled.

    ``unit`` (e.g. ``"texts"``) adds a rate column, ``<n> texts/s``. ``show=False``: never a
    bar (a caller whose step is part of a longer one).
    """
    if not (show and _enabled()):

        def noop(n: int = 1) -> None:
            return None

        yield noop
        return
    columns: list[ProgressColumn] = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if unit:
        columns.append(RateColumn(unit))
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
        if total is not None:
            bar.update(task, completed=total)
