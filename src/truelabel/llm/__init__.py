"""LLMs as annotators: an OpenAI-compatible client, a calibrated LLM classifier, an LLM
judge (an audit detector too) and the adapter that makes LLMs annotators for consensus.

Needs the ``[llm]`` extra (httpx). ``LLMClassifier`` is built on scikit-learn's
``BaseEstimator`` and loads on first use.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from . import _detector as _detector  # registers the "llm_judge" issue type
from ._cache import ResponseCache
from ._client import LLMClient, Usage
from ._errors import LLMAuthError, LLMConnectionError, LLMError, LLMRateLimitError, LLMResponseError
from ._prompt import CHAT_TEMPLATES, read_gguf_chat_template, template_name_for

if _typing.TYPE_CHECKING:
    from ._annotators import annotator_table
    from ._classifier import LLMClassifier, LLMScores
    from ._judge import JUDGE_METHODS, LLMJudge, recheck_issues
    from ._verbal import check_verbalizers

_LAZY = {
    "JUDGE_METHODS": "_judge",
    "annotator_table": "_annotators",
    "check_verbalizers": "_verbal",
    "LLMClassifier": "_classifier",
    "LLMJudge": "_judge",
    "LLMScores": "_classifier",
    "recheck_issues": "_judge",
}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "CHAT_TEMPLATES",
    "JUDGE_METHODS",
    "LLMAuthError",
    "LLMClassifier",
    "LLMClient",
    "LLMConnectionError",
    "LLMError",
    "LLMJudge",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMScores",
    "ResponseCache",
    "Usage",
    "annotator_table",
    "check_verbalizers",
    "read_gguf_chat_template",
    "recheck_issues",
    "template_name_for",
]
