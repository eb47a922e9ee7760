"""Errors of the LLM client: each says what happened, where, and what to do.

They derive from :class:`truelabel.TruelabelError` and from the builtin they stand for, so
``except ConnectionError`` or ``except PermissionError`` keep working. No message ever
contains the API key (tested).
"""

from __future__ import annotations

from ..exceptions import TruelabelError

__all__ = [
    "LLMAuthError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponseError",
]


class LLMError(TruelabelError, RuntimeError):
    """The LLM server could not give a usable answer."""


class LLMConnectionError(LLMError, ConnectionError):
    """The endpoint could not be reached (refused, DNS, timeout) after the retries."""


class LLMAuthError(LLMError, PermissionError):
    """The server refused the credentials (HTTP 401 or 403); never retried."""


class LLMRateLimitError(LLMError):
    """The server kept answering 429 / 5xx until the retries ran out."""


class LLMResponseError(LLMError, ValueError):
    """The server answered, but not with what an OpenAI-compatible server sends
    (a body that is not JSON, a missing field, a 4xx other than 401/403/429)."""
