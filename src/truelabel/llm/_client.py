"""An OpenAI-compatible HTTP client: retries, concurrency, timeouts, accounting, a cache.

httpx, not the ``openai`` package: the classifier needs two plain POSTs
(``/completions`` with ``logprobs`` and ``/chat/completions`` with a JSON schema) whose
raw answers it parses itself (llama.cpp and vLLM return fields the ``openai`` models do
not type); the retry policy (Retry-After honoured, jitter from a seed, a fake clock in
tests) and the cache must sit below any SDK retry loop; and an ``httpx.MockTransport``
stands in for the server in the unit tests. httpx is already a dependency of the web
app's tests; ``openai`` would add pydantic, jiter, distro and anyio for none of this.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .._progress import progress
from ..exceptions import MissingDependencyError, ValidationError
from ._cache import ResponseCache, request_key
from ._errors import (
    LLMAuthError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
)

__all__ = ["LLMClient", "Usage"]

#: statuses worth another try: rate limited, server overloaded or restarting
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Usage:
    """What a client has spent so far.

    ``requests`` counts HTTP attempts (retries included), ``cache_hits`` answers read from
    the cache (no request, no tokens, no cost); tokens are the servers' ``usage`` counts of
    the answered requests; ``cost`` = tokens x the prices per million tokens.
    """

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


def _close(http: Any, cache: ResponseCache | None) -> None:
    http.close()
    if cache is not None:
        cache.close()


def redact_url(url: str) -> str:
    """``url`` without a ``user:password@`` part (it may hold credentials)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _positive(name: str, value: Any, *, integer: bool = False, zero: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if not ok or not (value >= 0 if zero else value > 0) or value != value:
        need = "an integer" if integer else "a number"
        raise ValidationError(name, f"got {value!r}", f"pass {need} {'>= 0' if zero else '> 0'}")
    return value


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class LLMClient:
    """POST JSON to an OpenAI-compatible server, with retries, a thread pool and a cache.

    Parameters
    ----------
    base_url : str or None
        Up to and including the API version, e.g. ``"http://127.0.0.1:8080/v1"``. None:
        ``$TRUELABEL_LLM_URL``.
    model : str or None
        Model name sent in every request. None: ``$TRUELABEL_LLM_MODEL``.
    api_key : str or None
        Bearer token. None: ``$TRUELABEL_LLM_KEY``, else no Authorization header. Kept out
        of reprs, errors, logs and the cache.
    timeout : float, default 60
        Seconds per request (connect, read and write each).
    max_concurrency : int, default 4
        Requests in flight at once.
    max_retries : int, default 6
        Further attempts after a 408/429/5xx answer or a connection error or timeout.
        401/403 and other 4xx answers are never retried.
    backoff, max_backoff : float, default 0.5, 30
        Wait before retry ``i`` (0-based): ``d = min(max_backoff, backoff * 2**i)``, drawn
        uniformly in ``[d / 2, d]`` (jitter, seeded by ``random_state``); a ``Retry-After``
        header replaces it (seconds or an HTTP date) up to ``max_retry_after``.
    max_retry_after : float, default 300
        A server asking to wait longer than this is an immediate :class:`LLMRateLimitError`.
    cache : bool or path, default True
        True: ``$TRUELABEL_CACHE_DIR/llm`` (or the user cache folder); a path: that folder;
        False: no cache.
    prompt_price, completion_price : float, default 0
        Prices per million prompt / completion tokens, for :attr:`usage` ``.cost``.
    random_state : int or None
        Seed of the jitter.
    transport : httpx.BaseTransport or None
        For tests (``httpx.MockTransport``).
    sleep : callable or None
        ``sleep(seconds)``; None: :func:`time.sleep` (tests pass a fake clock).
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_concurrency: int = 4,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        cache: bool | str | Path = True,
        prompt_price: float = 0.0,
        completion_price: float = 0.0,
        random_state: int | None = None,
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx ships with the [llm] extra
            raise MissingDependencyError("httpx", "llm", "LLMClient") from exc
        url = base_url if base_url is not None else os.environ.get("TRUELABEL_LLM_URL")
        if not url:
            raise ValidationError(
                "base_url",
                "not given and $TRUELABEL_LLM_URL is not set",
                "pass base_url='http://127.0.0.1:8080/v1' or set TRUELABEL_LLM_URL",
            )
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ValidationError(
                "base_url", f"got {redact_url(str(url))!r}", "pass an http:// or https:// URL"
            )
        name = model if model is not None else os.environ.get("TRUELABEL_LLM_MODEL")
        if not name or not isinstance(name, str):
            raise ValidationError(
                "model",
                "not given and $TRUELABEL_LLM_MODEL is not set",
                "pass model='...' (the server's model name) or set TRUELABEL_LLM_MODEL",
            )
        self.base_url = url.rstrip("/")
        self.model = name
        self._key = api_key if api_key is not None else os.environ.get("TRUELABEL_LLM_KEY")
        self.timeout = float(_positive("timeout", timeout))
        self.max_concurrency = _positive("max_concurrency", max_concurrency, integer=True)
        self.max_retries = _positive("max_retries", max_retries, integer=True, zero=True)
        self.backoff = float(_positive("backoff", backoff, zero=True))
        self.max_backoff = float(_positive("max_backoff", max_backoff, zero=True))
        self.max_retry_after = float(_positive("max_retry_after", max_retry_after, zero=True))
        self.prompt_price = float(_positive("prompt_price", prompt_price, zero=True))
        self.completion_price = float(_positive("completion_price", completion_price, zero=True))
        self._rng = random.Random(random_state)
        self._sleep = sleep if sleep is not None else time.sleep
        self._lock = threading.Lock()
        self._usage = Usage()
        if cache is True:
            from ..encode._cache import default_cache_dir

            self.cache: ResponseCache | None = ResponseCache(default_cache_dir() / "llm")
        elif cache is False or cache is None:
            self.cache = None
        else:
            self.cache = ResponseCache(cache)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout), headers=headers, transport=transport
        )
        # connections and the database close when the client is garbage-collected, or at
        # close() / the end of a with block
        self._finalizer = weakref.finalize(self, _close, self._http, self.cache)

    # -- public ----------------------------------------------------------------------------
    @property
    def usage(self) -> Usage:
        """A snapshot of the requests, cache hits, tokens and cost so far."""
        with self._lock:
            return self._usage

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` (``model`` added) to ``base_url + path``; the parsed JSON answer."""
        return self.post_many(path, [body])[0]

    def post_many(self, path: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`post` for each body, ``max_concurrency`` at a time; answers in order.

        Cached answers are read without a request. A Rich progress bar counts the requests
        when progress is on (the CLI; ``TRUELABEL_PROGRESS=1``). The first error, or an
        interrupt, stops the batch: requests not yet sent are cancelled, those in flight
        finish and are cached, then it is raised.
        """
        if not self._finalizer.alive:
            raise LLMError(f"{self!r} is closed; build a new client")
        url = self.base_url + "/" + path.lstrip("/")
        full = [{"model": self.model, **b} for b in bodies]
        keys = [request_key(url, b) for b in full]
        out: list[dict[str, Any] | None] = [None] * len(full)
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        if len(todo) < len(full):
            self._add(cache_hits=len(full) - len(todo))
        if not todo:
            return [o for o in out if o is not None]
        with progress(len(todo), f"LLM {path.strip('/')}", unit="requests") as advance:
            if len(todo) == 1 or self.max_concurrency == 1:
                for i in todo:
                    out[i] = self._fetch(url, full[i], keys[i])
                    advance(1)
            else:
                self._fetch_pooled(url, full, keys, todo, out, advance)
        return [o for o in out if o is not None]

    def _fetch_pooled(
        self,
        url: str,
        full: list[dict[str, Any]],
        keys: list[str],
        todo: list[int],
        out: list[dict[str, Any] | None],
        advance: Callable[[int], None],
    ) -> None:
        """The requests of ``todo`` on a thread pool; an error or an interrupt (Ctrl-C)
        cancels the requests not yet sent and waits for those in flight, whose answers
        are committed to the cache one whole row each (an SQLite transaction), so a
        re-run asks only for what is missing."""
        pool = ThreadPoolExecutor(min(self.max_concurrency, len(todo)))
        try:
            futures = {pool.submit(self._fetch, url, full[i], keys[i]): i for i in todo}
            for f in as_completed(futures):
                out[futures[f]] = f.result()  # the first error is raised here
                advance(1)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Close the HTTP connections and the cache."""
        self._finalizer()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        key = ", api_key='***'" if self._key else ""
        return f"LLMClient(base_url={redact_url(self.base_url)!r}, model={self.model!r}{key})"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("LLMClient holds connections and a key: build a new one, do not pickle it")

    # -- internals -------------------------------------------------------------------------
    def _add(self, **counts: float) -> None:
        with self._lock:
            u = self._usage
            values = {f: getattr(u, f) + counts.get(f, 0) for f in u.__dataclass_fields__}
            self._usage = Usage(**values)

    def _clean(self, text: str) -> str:
        """Server text made safe to show: cut to 300 characters, the key masked."""
        text = text[:300]
        return text.replace(self._key, "***") if self._key else text

    def _fetch(self, url: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        import httpx

        shown = redact_url(url)
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            self._add(requests=1, retries=1 if attempt else 0)
            retry_after: float | None = None
            try:
                response = self._http.post(url, json=body)
            except httpx.TimeoutException as exc:
                problem = f"no answer within {self.timeout:g} s ({type(exc).__name__})"
                failure: Exception = LLMConnectionError(
                    f"{shown}: {problem} after {attempt + 1} attempts; is the server up and "
                    f"the model loaded? raise timeout= for slow models"
                )
            except httpx.TransportError as exc:
                failure = LLMConnectionError(
                    f"{shown}: cannot reach the server ({type(exc).__name__}: "
                    f"{self._clean(str(exc))}) after {attempt + 1} attempts; check base_url / "
                    f"$TRUELABEL_LLM_URL and that the server is running"
                )
            else:
                status = response.status_code
                if status == 200:
                    return self._accept(response, shown, key)
                detail = self._clean(response.text)
                if status in (401, 403):
                    raise LLMAuthError(
                        f"{shown}: the server refused the request with HTTP {status} "
                        f"({detail!r}); pass api_key= or set $TRUELABEL_LLM_KEY to a valid key"
                    )
                if status not in RETRY_STATUSES:
                    raise LLMResponseError(
                        f"{shown}: HTTP {status} for model {self.model!r}: {detail!r}; check "
                        f"the model name and the request parameters the server accepts"
                    )
                retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
                reason = "429 (rate limited)" if status == 429 else f"{status}"
                failure = LLMRateLimitError(
                    f"{shown}: gave up after {attempt + 1} attempts over {waited:.1f} s of "
                    f"waiting: the server kept answering HTTP {reason}; lower max_concurrency "
                    f"(now {self.max_concurrency}), raise max_retries (now {self.max_retries}) "
                    f"or check the server's quota and health"
                )
                if retry_after is not None and retry_after > self.max_retry_after:
                    raise LLMRateLimitError(
                        f"{shown}: the server asks to wait {retry_after:.0f} s (Retry-After), "
                        f"more than max_retry_after={self.max_retry_after:g}; try later or "
                        f"raise max_retry_after"
                    )
            if attempt == self.max_retries:
                raise failure
            if retry_after is None:
                d = min(self.max_backoff, self.backoff * 2.0**attempt)
                with self._lock:
                    delay = self._rng.uniform(d / 2.0, d)
            else:
                delay = retry_after
            waited += delay
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept(self, response: Any, shown: str, key: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise LLMResponseError(
                f"{shown}: HTTP 200 but the body is not JSON: {self._clean(response.text)!r}; "
                f"is base_url the OpenAI-compatible API (usually ending in /v1)?"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise LLMResponseError(
                f"{shown}: the answer has no 'choices' list: {self._clean(response.text)!r}; "
                f"is base_url an OpenAI-compatible API (usually ending in /v1)?"
            )
        usage = data.get("usage") or {}
        p = int(usage.get("prompt_tokens") or 0)
        c = int(usage.get("completion_tokens") or 0)
        cost = (p * self.prompt_price + c * self.completion_price) / 1e6
        self._add(prompt_tokens=p, completion_tokens=c, cost=cost)
        if self.cache is not None:
            self.cache.put(key, data)
        return data
