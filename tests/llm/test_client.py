"""LLMClient against an in-memory server: retries, errors, cache, accounting, secrecy."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time

import httpx
import pytest

from truelabel.exceptions import ValidationError
from truelabel.llm import (
    LLMAuthError,
    LLMClient,
    LLMConnectionError,
    LLMRateLimitError,
    LLMResponseError,
    Usage,
)

from ._stub import KEY, StubServer

URL = "http://llm.test/v1"
OK = {"choices": [{"text": "a"}], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}


def make(server: StubServer, sleeps: list[float] | None = None, **kw) -> LLMClient:
    kw.setdefault("cache", False)
    kw.setdefault("random_state", 0)
    return LLMClient(
        URL,
        "m",
        KEY,
        transport=server.transport,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **kw,
    )


def test_backoff_doubles_with_seeded_jitter_then_succeeds():
    server = StubServer(
        script=[(503, "busy", {}), (502, "busy", {}), (500, "x", {}), (200, OK, {})]
    )
    sleeps: list[float] = []
    client = make(server, sleeps, backoff=0.5, max_backoff=30.0, random_state=7)
    assert client.post("completions", {"prompt": "p"}) == OK
    rng = random.Random(7)  # oracle: d_i = 0.5 * 2**i drawn in [d/2, d]
    assert sleeps == [rng.uniform(0.25, 0.5), rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.0)]
    assert client.usage == Usage(requests=4, retries=3, prompt_tokens=7, completion_tokens=2)


def test_backoff_is_capped_by_max_backoff():
    server = StubServer(script=[(503, "", {})] * 3 + [(200, OK, {})])
    sleeps: list[float] = []
    make(server, sleeps, backoff=1.0, max_backoff=1.5).post("completions", {})
    rng = random.Random(0)
    assert sleeps == [rng.uniform(0.5, 1.0), rng.uniform(0.75, 1.5), rng.uniform(0.75, 1.5)]


def test_retry_after_seconds_and_http_date_are_honoured():
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    server = StubServer(
        script=[(429, "", {"Retry-After": "3"}), (429, "", {"Retry-After": later}), (200, OK, {})]
    )
    sleeps: list[float] = []
    make(server, sleeps).post("completions", {})
    assert sleeps[0] == 3.0
    assert 117 <= sleeps[1] <= 120


def test_retry_after_longer_than_allowed_fails_at_once():
    server = StubServer(script=[(429, "", {"Retry-After": "900"}), (200, OK, {})])
    with pytest.raises(LLMRateLimitError, match=r"asks to wait 900 s .*max_retry_after=300"):
        make(server).post("completions", {})
    assert len(server.requests) == 1


def test_429_storm_gives_up_after_max_retries_with_a_clear_message():
    server = StubServer(script=[(429, "slow down", {})] * 50)
    sleeps: list[float] = []
    client = make(server, sleeps, max_retries=3)
    with pytest.raises(
        LLMRateLimitError,
        match=r"gave up after 4 attempts over [0-9.]+ s of waiting: the server kept answering "
        r"HTTP 429 \(rate limited\); lower max_concurrency \(now 4\), raise max_retries \(now 3\)",
    ):
        client.post("completions", {})
    assert len(server.requests) == 4 and len(sleeps) == 3
    assert client.usage.retries == 3


def test_401_is_not_retried_and_never_shows_the_key():
    # the server echoes the key back: the client masks it
    server = StubServer(script=[(401, f"invalid key {KEY}", {})])
    with pytest.raises(
        LLMAuthError, match=r"HTTP 401 \('invalid key \*\*\*'\); pass api_key="
    ) as e:
        make(server).post("completions", {})
    assert KEY not in str(e.value)
    assert isinstance(e.value, PermissionError)
    assert len(server.requests) == 1


def test_other_4xx_is_not_retried():
    server = StubServer(script=[(400, "unknown parameter logprobs", {})])
    with pytest.raises(LLMResponseError, match=r"HTTP 400 for model 'm': 'unknown parameter"):
        make(server).post("completions", {})
    assert len(server.requests) == 1


def test_malformed_bodies_are_clear_errors():
    server = StubServer(script=[(200, "<html>proxy</html>", {}), (200, {"data": []}, {})])
    client = make(server)
    with pytest.raises(LLMResponseError, match=r"HTTP 200 but the body is not JSON: '<html>"):
        client.post("completions", {})
    with pytest.raises(LLMResponseError, match=r"the answer has no 'choices' list"):
        client.post("completions", {})


def test_connection_errors_are_retried_then_explained():
    boom = httpx.ConnectError("Connection refused")
    server = StubServer(script=[(0, boom, {})] * 3)
    sleeps: list[float] = []
    with pytest.raises(
        LLMConnectionError, match=r"llm.test/v1/completions: cannot reach the server \(ConnectError"
    ) as e:
        make(server, sleeps, max_retries=2).post("completions", {})
    assert "after 3 attempts" in str(e.value) and len(sleeps) == 2
    timeout = httpx.ReadTimeout("slow")
    server = StubServer(script=[(0, timeout, {}), (200, OK, {})])
    assert make(server, timeout=2).post("completions", {}) == OK


def test_a_real_closed_port_is_an_unreachable_endpoint():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LLMClient(f"http://127.0.0.1:{port}/v1", "m", cache=False, max_retries=0)
    with pytest.raises(LLMConnectionError, match=rf"127.0.0.1:{port}/v1/completions: cannot reach"):
        client.post("completions", {})


def test_cache_second_run_sends_no_request(tmp_path):
    server = StubServer(script=[(200, OK, {})] * 3)
    bodies = [{"prompt": "a", "max_tokens": 1}, {"prompt": "b", "max_tokens": 1}]
    first = make(server, cache=tmp_path / "c")
    assert first.post_many("completions", bodies) == [OK, OK]
    assert len(server.requests) == 2
    again = make(server, cache=tmp_path / "c")
    assert again.post_many("completions", bodies) == [OK, OK]
    assert len(server.requests) == 2  # zero requests
    assert again.usage == Usage(cache_hits=2)
    # any change of parameter, model or endpoint is a miss
    again.post("completions", {"prompt": "a", "max_tokens": 2})
    assert len(server.requests) == 3
    other = LLMClient("http://other.test/v1", "m", cache=tmp_path / "c", transport=server.transport)
    server.script.append((200, OK, {}))
    other.post("completions", {"prompt": "a", "max_tokens": 1})
    assert len(server.requests) == 4
    assert KEY.encode() not in (tmp_path / "c" / "responses.sqlite3").read_bytes()


def test_failed_answers_are_not_cached(tmp_path):
    server = StubServer(script=[(400, "bad", {}), (200, OK, {})])
    client = make(server, cache=tmp_path)
    with pytest.raises(LLMResponseError):
        client.post("completions", {"prompt": "a"})
    assert client.post("completions", {"prompt": "a"}) == OK


def test_tokens_and_cost_are_accounted():
    server = StubServer(tops=lambda p: {"a": 1.0}, usage=(1000, 3))
    client = make(server, prompt_price=0.5, completion_price=2.0)
    client.post_many("completions", [{"prompt": str(i)} for i in range(4)])
    u = client.usage
    assert (u.requests, u.prompt_tokens, u.completion_tokens) == (4, 4000, 12)
    assert u.cost == pytest.approx((4000 * 0.5 + 12 * 2.0) / 1e6)


def test_concurrency_is_limited_and_order_kept():
    state = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json={"choices": [{"text": request.content.decode()}]})

    client = LLMClient(
        URL, "m", cache=False, max_concurrency=3, transport=httpx.MockTransport(handler)
    )
    out = client.post_many("completions", [{"prompt": str(i)} for i in range(12)])
    assert state["max"] == 3
    assert [o["choices"][0]["text"] for o in out] == [
        f'{{"model":"m","prompt":"{i}"}}' for i in range(12)
    ]


def test_first_error_of_a_batch_is_raised():
    server = StubServer(script=[(401, "no", {})] + [(200, OK, {})] * 9)
    with pytest.raises(LLMAuthError):
        make(server, max_concurrency=2).post_many("completions", [{"p": i} for i in range(10)])


def test_key_never_in_repr_logs_or_request_bodies(caplog):
    caplog.set_level(logging.DEBUG)
    server = StubServer(tops=lambda p: {"a": 1.0}, script=[(503, f"oops {KEY}", {})])
    client = make(server)
    client.post("completions", {"prompt": "x"})
    assert repr(client) == "LLMClient(base_url='http://llm.test/v1', model='m', api_key='***')"
    assert KEY not in caplog.text and caplog.records  # httpx did log the requests
    (_, body, headers), *_ = server.requests
    assert headers["authorization"] == f"Bearer {KEY}"  # sent where it belongs, only there
    assert KEY not in str(body)
    with pytest.raises(TypeError, match="do not pickle"):
        import pickle

        pickle.dumps(client)


def test_credentials_in_the_url_are_redacted():
    client = LLMClient("http://user:pw@llm.test/v1", "m", cache=False)
    assert "pw" not in repr(client) and "***@llm.test" in repr(client)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUELABEL_LLM_URL", "http://env.test/v1/")
    monkeypatch.setenv("TRUELABEL_LLM_MODEL", "envmodel")
    monkeypatch.setenv("TRUELABEL_LLM_KEY", KEY)
    seen = []
    transport = httpx.MockTransport(lambda r: (seen.append(r), httpx.Response(200, json=OK))[1])
    client = LLMClient(cache=False, transport=transport)
    client.post("completions", {})
    assert str(seen[0].url) == "http://env.test/v1/completions"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert b'"model":"envmodel"' in seen[0].content
    assert repr(client).endswith("api_key='***')")


def test_missing_or_bad_settings_are_named():
    with pytest.raises(ValidationError, match=r"base_url: not given and \$TRUELABEL_LLM_URL"):
        LLMClient(model="m")
    with pytest.raises(ValidationError, match=r"model: not given and \$TRUELABEL_LLM_MODEL"):
        LLMClient(URL)
    with pytest.raises(ValidationError, match=r"base_url: got 'ftp://x'; pass an http"):
        LLMClient("ftp://x", "m")
    with pytest.raises(ValidationError, match=r"max_concurrency: got 0; pass an integer > 0"):
        LLMClient(URL, "m", max_concurrency=0)
    with pytest.raises(ValidationError, match=r"max_retries: got -1; pass an integer >= 0"):
        LLMClient(URL, "m", max_retries=-1)
    with pytest.raises(ValidationError, match=r"timeout: got 0; pass a number > 0"):
        LLMClient(URL, "m", timeout=0)


def test_close_and_with_block_release_connections_and_cache(tmp_path):
    server = StubServer(tops=lambda p: {"a": 1.0})
    with LLMClient(URL, "m", transport=server.transport, cache=tmp_path) as client:
        client.post("completions", {"prompt": "x"})
    with pytest.raises(
        RuntimeError, match=r"LLMClient\(base_url='http://llm.test/v1', model='m'\) is closed"
    ):
        client.post("completions", {"prompt": "new"})
    import sqlite3

    with pytest.raises(sqlite3.ProgrammingError, match="Cannot operate on a closed database"):
        client.cache.get("k")
