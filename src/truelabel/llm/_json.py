"""The constrained-JSON fallback: one chat answer per text, read as a smoothed vote."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._client import LLMClient
from ._errors import LLMResponseError

__all__ = ["json_label", "json_votes", "vote_probs"]


def json_votes(
    client: LLMClient, conversations: Sequence[Sequence[tuple[str, str]]], names: Sequence[str]
) -> np.ndarray:
    """Class index answered for each conversation (-1: no class), via ``/chat/completions``.

    The answer is constrained by ``response_format={"type": "json_object", "schema": ...}``
    (llama-cpp-python's form) to ``{"label": <one of names>}``; a server that ignores it
    still works when the model answers JSON or a bare class name.
    """
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": list(names)}},
        "required": ["label"],
    }
    bodies = [
        {
            "messages": [{"role": r, "content": c} for r, c in msgs],
            "max_tokens": 32,
            "temperature": 0.0,
            "response_format": {"type": "json_object", "schema": schema},
        }
        for msgs in conversations
    ]
    answers = client.post_many("chat/completions", bodies)
    folded = {n.strip().casefold(): k for k, n in enumerate(names)}
    votes = np.full(len(bodies), -1)
    for i, answer in enumerate(answers):
        if not answer["choices"] or not isinstance(answer["choices"][0], dict):
            raise LLMResponseError(f"an answer has an empty 'choices' list: {str(answer)[:200]!r}")
        message = answer["choices"][0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        votes[i] = json_label(content, folded)
    return votes


def vote_probs(votes: np.ndarray, K: int) -> np.ndarray:
    """``(one-hot + 1/2) / (1 + K/2)`` per vote (Jeffreys); a -1 vote is a uniform row."""
    probs = np.full((len(votes), K), 1.0 / K)
    inside = votes >= 0
    onehot = np.zeros((int(inside.sum()), K))
    onehot[np.arange(onehot.shape[0]), votes[inside]] = 1.0
    probs[inside] = (onehot + 0.5) / (1.0 + 0.5 * K)
    return probs


def json_label(content: Any, folded: dict[str, int]) -> int:
    """Class index of a JSON (or bare) answer; -1 when it names no class."""
    if not isinstance(content, str):
        return -1
    text = content.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text.strip("\"'`. \n")
    if isinstance(value, dict):
        value = value.get("label")
    if not isinstance(value, str):
        return -1
    return folded.get(value.strip().casefold(), -1)
