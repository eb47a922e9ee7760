"""LLMClient and log-probability parsing at their edges (each test kills a mutmut survivor)."""

from __future__ import annotations

import math
import random
import sys

import httpx
import pytest

from truelabel.exceptions import MissingDependencyError, ValidationError
from truelabel.llm import LLMClient, LLMConnectionError, LLMRateLimitError, Usage
from truelabel.llm._scoring import parse_top_logprobs

from ._stub import StubServer
from .test_client import OK, URL, make


def test_one_request_at_a_time_still_fills_and_reads_the_cache(tmp_path):
    # the sequential path (max_concurrency=1, or one request) stores each answer under its key
    server = StubServer(script=[(200, OK, {})] * 2)
    bodies = [{"prompt": "a"}, {"prompt": "b"}]
    assert make(server, cache=tmp_path, max_concurrency=1).post_many("completions", bodies)
    again = make(server, cache=tmp_path, max_concurrency=1)
    assert again.post_many("completions", bodies) == [OK, OK]
    assert len(server.requests) == 2 and again.usage == Usage(cache_hits=2)


def test_timeouts_until_the_last_attempt_are_a_connection_error():
    slow = httpx.ReadTimeout("slow")
    server = StubServer(script=[(0, slow, {})] * 2)
    with pytest.raises(
        LLMConnectionError, match=r"no answer within 2 s \(ReadTimeout\) after 2 attempts"
    ):
        make(server, timeout=2, max_retries=1).post("completions", {})


def test_an_answer_without_usage_counts_no_tokens():
    server = StubServer(script=[(200, {"choices": [{"text": "a"}]}, {})])
    client = make(server)
    client.post("completions", {})
    assert (client.usage.prompt_tokens, client.usage.completion_tokens) == (0, 0)


def test_max_retry_after_zero_means_never_wait_for_retry_after():
    server = StubServer(script=[(429, "slow down", {"retry-after": "1"})])
    with pytest.raises(LLMRateLimitError, match="max_retry_after=0"):
        make(server, max_retry_after=0).post("completions", {})
    with pytest.raises(ValidationError, match=r"^max_retry_after: got -1; pass a number >= 0"):
        make(server, max_retry_after=-1)


def test_backoff_is_capped_at_30_seconds_by_default():
    server = StubServer(script=[(503, "busy", {})] * 3)
    sleeps: list[float] = []
    with pytest.raises(LLMRateLimitError):
        make(server, sleeps, backoff=1000.0, max_retries=2).post("completions", {})
    rng = random.Random(0)  # oracle: both delays drawn in [30/2, 30]
    assert sleeps == [rng.uniform(15.0, 30.0), rng.uniform(15.0, 30.0)]


def test_a_bad_base_url_says_which_schemes_work():
    with pytest.raises(ValidationError, match=r"base_url.*pass an http:// or https:// URL"):
        LLMClient("ftp://x/v1", "m")


def test_missing_httpx_names_the_package_the_extra_and_the_class(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(
        MissingDependencyError,
        match=r"LLMClient needs the optional package 'httpx'.*truelabel\[llm\]",
    ):
        LLMClient(URL, "m")


def test_empty_text_alone_is_not_an_end_of_text_answer():
    # only empty text AND empty lists mean "stopped at once"; empty text with a top list is
    # a normal first-token distribution
    choice = {"text": "", "logprobs": {"tokens": ["a"], "top_logprobs": [{"a": math.log(0.5)}]}}
    assert parse_top_logprobs(choice) == [("a", pytest.approx(0.5))]
    no_top = {"text": "", "logprobs": {"tokens": ["a"], "top_logprobs": []}}
    assert parse_top_logprobs(no_top) is None


def test_chat_form_needs_a_list_of_entries():
    assert parse_top_logprobs({"logprobs": {"content": "a"}}) is None
    assert parse_top_logprobs({"logprobs": {"content": []}}) is None
    assert parse_top_logprobs({"logprobs": {"content": ["a"]}}) is None
