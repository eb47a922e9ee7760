"""Shared fixtures of the active-learning tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from truelabel.backend import Chunk, LocalBackend


class RecordingBackend:
    """A backend that runs chunks serially and records each pass: its chunk function's name
    and the largest chunk it was handed. ``arm()`` then makes any pass that falls back to
    the default backend (``get_backend(None)`` builds a ``LocalBackend``) fail the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inner = LocalBackend(n_jobs=1)
        self.passes: list[tuple[str, int]] = []
        self._monkeypatch = monkeypatch

    @property
    def n_workers(self) -> int:
        return 1

    def map(
        self, fn: Callable[[Chunk, Any], Any], chunks: Sequence[Chunk], shared: Any
    ) -> Iterator[Any]:
        self.passes.append((fn.__name__, max((c.stop - c.start for c in chunks), default=0)))
        return self.inner.map(fn, chunks, shared)

    def arm(self) -> None:
        def no_default(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a chunk pass ran on the default backend, not the one given")

        self._monkeypatch.setattr(LocalBackend, "__init__", no_default)

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.passes}

    @property
    def largest_chunk(self) -> int:
        return max(rows for _, rows in self.passes)


@pytest.fixture
def recording_backend(monkeypatch: pytest.MonkeyPatch) -> RecordingBackend:
    return RecordingBackend(monkeypatch)
