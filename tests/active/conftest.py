"""Shared fixtures of the active-learning tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests._backends import PickleBackend

from truelabel.backend import LocalBackend


@pytest.fixture
def recording_backend() -> PickleBackend:
    """A backend that records each pass: ``fns`` (its chunk function) and ``chunk_rows`` (its
    largest chunk)."""
    return PickleBackend()


@pytest.fixture
def forbid_default_backend(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make any chunk pass that falls back to the default backend
    (``get_backend(None)`` builds a ``LocalBackend``) fail the test."""

    def forbid() -> None:
        def no_default(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a chunk pass ran on the default backend, not the one given")

        monkeypatch.setattr(LocalBackend, "__init__", no_default)

    return forbid
