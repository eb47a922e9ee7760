"""An in-memory OpenAI-compatible server for the unit tests (httpx.MockTransport)."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx

KEY = "sk-test-SECRET-4242"


def last_text(prompt: str) -> str:
    """The item text of a rendered prompt (its last ``Text: ...`` turn)."""
    return re.findall(r"Text: (.*?)(?:<\|im_end\|>|\n|$)", prompt, flags=re.S)[-1]


class StubServer:
    """Answers ``/completions`` from ``tops(prompt) -> {token: prob} | None`` and
    ``/chat/completions`` from ``chat(messages) -> content``; records every request.

    ``script`` is a list of (status, body, headers) answered first, one per request,
    before the normal answers (for retries, 401, malformed bodies).
    """

    def __init__(
        self,
        tops: Callable[[str], dict[str, float] | None] | None = None,
        chat: Callable[[list[dict[str, str]]], str] | None = None,
        script: list[tuple[int, Any, dict[str, str]]] | None = None,
        usage: tuple[int, int] = (10, 1),
    ) -> None:
        self.tops = tops
        self.chat = chat
        self.script = list(script or [])
        self.usage = usage
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.lock = threading.Lock()

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self.lock:
            self.requests.append((request.url.path, body, dict(request.headers)))
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            status, content, headers = scripted
            if isinstance(content, Exception):
                raise content
            text = content if isinstance(content, str) else json.dumps(content)
            return httpx.Response(status, text=text, headers=headers)
        usage = {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1]}
        if request.url.path.endswith("/chat/completions"):
            assert self.chat is not None
            content = self.chat(body["messages"])
            choice = {"index": 0, "message": {"role": "assistant", "content": content}}
            return httpx.Response(200, json={"choices": [choice], "usage": usage})
        assert self.tops is not None
        top = self.tops(body["prompt"])
        choice: dict[str, Any] = {"index": 0, "text": "x", "logprobs": None}
        if top is not None:
            logprobs = {t: math.log(p) for t, p in top.items()}
            choice["logprobs"] = {"tokens": ["x"], "top_logprobs": [logprobs]}
        return httpx.Response(200, json={"choices": [choice], "usage": usage})

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.requests]
