"""Progress of LLM requests, and an interrupt that leaves the cache whole."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest

from truelabel._progress import progress_enabled
from truelabel.llm import LLMClient

from ._stub import StubServer

URL = "http://llm.test/v1"
PROMPTS = [f"p{i}" for i in range(10)]


def slow_tops(prompt: str):
    time.sleep(0.01)
    return {f" {prompt}": 0.5, " x": 0.5}


def bodies() -> list[dict]:
    return [{"prompt": p, "max_tokens": 1, "logprobs": 2} for p in PROMPTS]


def fake_progress(calls: list, stop_after: int | None = None):
    @contextmanager
    def progress(total, description, *, unit=None):
        seen: list[int] = []
        calls.append((total, description, unit, seen))

        def advance(n: int = 1) -> None:
            seen.append(n)
            if stop_after is not None and len(seen) >= stop_after:
                raise KeyboardInterrupt  # Ctrl-C arriving in the main thread

        yield advance

    return progress


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_answered_request_advances_the_bar_and_cached_ones_do_not(
    monkeypatch, tmp_path, concurrency
):
    calls: list = []
    monkeypatch.setattr("truelabel.llm._client.progress", fake_progress(calls))
    server = StubServer(tops=slow_tops)
    client = LLMClient(URL, "m", transport=server.transport, cache=tmp_path,
                       max_concurrency=concurrency)  # fmt: skip
    client.post_many("completions", bodies()[:4])
    client.post_many("completions", bodies())  # 4 cached, 6 asked
    assert [(t, d, u, sum(s)) for t, d, u, s in calls] == [
        (4, "LLM completions", "requests", 4),
        (6, "LLM completions", "requests", 6),
    ]
    client.post_many("completions", bodies())  # all cached: no bar at all
    assert len(calls) == 2 and len(server.requests) == 10


def test_the_rich_bar_is_shown_when_progress_is_on(capsys):
    server = StubServer(tops=slow_tops)
    client = LLMClient(URL, "m", transport=server.transport, cache=False, max_concurrency=2)
    with progress_enabled(True):
        client.post_many("completions", bodies())
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "LLM completions" in shown and "10/10" in shown and "requests/s" in shown


def test_an_interrupt_keeps_every_answer_received_and_a_rerun_asks_only_the_rest(
    monkeypatch, tmp_path
):
    calls: list = []
    monkeypatch.setattr("truelabel.llm._client.progress", fake_progress(calls, stop_after=3))
    server = StubServer(tops=slow_tops)
    client = LLMClient(URL, "m", transport=server.transport, cache=tmp_path, max_concurrency=2)
    with pytest.raises(KeyboardInterrupt):
        client.post_many("completions", bodies())
    client.close()
    sent = len(server.requests)
    with sqlite3.connect(tmp_path / "responses.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    # requests not yet sent were cancelled; every one sent finished and was cached
    assert 3 <= stored == sent < len(PROMPTS)
    monkeypatch.undo()
    again = LLMClient(URL, "m", transport=server.transport, cache=tmp_path, max_concurrency=2)
    answers = again.post_many("completions", bodies())
    assert len(server.requests) == len(PROMPTS)  # only the missing ones were asked
    assert again.usage.cache_hits == stored and again.usage.requests == len(PROMPTS) - stored
    fresh = LLMClient(URL, "m", transport=server.transport, cache=False)
    assert answers == fresh.post_many("completions", bodies())
