"""LLMJudge: the yes/no verification prompt and its combination, oracles worked by hand."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.base import clone

from truelabel.exceptions import TruelabelWarning, ValidationError
from truelabel.llm import LLMClient, LLMJudge, LLMResponseError

from ._stub import StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = {"positive": "likes the film", "negative": "dislikes the film"}
ASK = "Is the label right?"

# the classification prompt (as in test_classifier): calibrated rows good (.7, .3), bad (.25, .75)
CLASSIFY = {
    "good film": {" positive": 0.7, " negative": 0.2, " the": 0.1},
    "bad film": {" positive": 0.3, " Negative": 0.6, " the": 0.1},
    "N/A": {" positive": 0.6, " negative": 0.4},
    "[MASK]": {" positive": 0.5, " negative": 0.5},
    "": {" positive": 0.7, " negative": 0.3},
}
# the yes/no prompt, by (text, label)
VERIFY = {
    ("good film", "positive"): {" yes": 0.8, " no": 0.2},
    ("good film", "negative"): {" yes": 0.3, " no": 0.6, " maybe": 0.1},
    ("bad film", "positive"): {" Yes": 0.5, " no": 0.5},
    ("bad film", "negative"): {" yes": 0.9, " No": 0.1},
    ("weird", "positive"): {" maybe": 1.0},
    # content-free: p(yes) .6 for positive; for negative .5 and .2 (the [MASK] answer is
    # neither yes nor no and is left out of the mean): .35
    ("N/A", "positive"): {" yes": 0.6, " no": 0.4},
    ("[MASK]", "positive"): {" yes": 0.6, " no": 0.4},
    ("", "positive"): {" yes": 0.6, " no": 0.4},
    ("N/A", "negative"): {" yes": 0.4, " no": 0.4, " the": 0.2},
    ("[MASK]", "negative"): {" maybe": 1.0},
    ("", "negative"): {" yes": 0.2, " no": 0.8},
}


def tops(prompt: str):
    if ASK in prompt:
        label = re.findall(r"Label: (.*?)\n" + re.escape(ASK), prompt)[-1]
        return VERIFY[(last_text(prompt), label)]
    return CLASSIFY[last_text(prompt)]


def judge(server: StubServer, **kw) -> LLMJudge:
    client = LLMClient(URL, "smol", transport=server.transport, cache=False)
    return LLMJudge(CLASSES, client=client, **kw)


TEXTS = ["good film", "good film", "bad film", "bad film"]
LABELS = ["positive", "negative", "positive", "negative"]
# calibrated p(yes) = odds / odds_cf, as a probability:
# good/positive 4 / 1.5 -> 8/11; good/negative .5 / (7/13) -> 13/27;
# bad/positive 1 / 1.5 -> 2/5; bad/negative 9 / (7/13) -> 117/124
P_VERIFY = np.array([8 / 11, 13 / 27, 2 / 5, 117 / 124])
P_CLASSIFY = np.array([0.7, 0.3, 0.25, 0.75])


def test_the_yes_no_prompt_is_the_chat_template_with_the_label_asked():
    server = StubServer(tops=tops)
    judge(server, method="verify", calibrate=None).score(["good film"], ["negative"])
    (path, body, _), *_ = server.requests
    assert path == "/v1/completions" and body["max_tokens"] == 1 and body["logprobs"] == 20
    assert body["prompt"] == (
        "<|im_start|>system\nYou check labels. A text was labeled with one of these classes:\n"
        "- positive: likes the film\n- negative: dislikes the film\n"
        "Answer yes if the label is right for the text, no if it is wrong.<|im_end|>\n"
        "<|im_start|>user\nText: good film\nLabel: negative\nIs the label right?<|im_end|>\n"
        "<|im_start|>assistant\nAnswer:"
    )


def test_verify_uncalibrated_is_the_yes_share():
    server = StubServer(tops=tops)
    s = judge(server, method="verify", calibrate=None).score(TEXTS, LABELS)
    np.testing.assert_allclose(s, [0.8, 1 / 3, 0.5, 0.9])
    assert len(server.requests) == 4  # one per item, no classification prompt


def test_verify_contextual_calibration_by_hand():
    server = StubServer(tops=tops)
    j = judge(server, method="verify").fit()
    np.testing.assert_allclose(j.verify_content_free_, [0.6, 0.35])
    assert j.verify_temperature_ == 1.0
    np.testing.assert_allclose(j.score(TEXTS, LABELS), P_VERIFY)
    np.testing.assert_allclose(j.verify_proba(TEXTS, LABELS), P_VERIFY)
    # before fit: the same calibration, computed on first use
    np.testing.assert_allclose(judge(StubServer(tops=tops), method="verify").score(TEXTS, LABELS),
                               P_VERIFY)  # fmt: skip


def test_both_is_the_weighted_pool_and_classify_ignores_the_yes_no_prompt():
    server = StubServer(tops=tops)
    np.testing.assert_allclose(judge(server, method="classify").score(TEXTS, LABELS), P_CLASSIFY)
    assert not any(ASK in b["prompt"] for _, b, _ in server.requests)
    for w in (0.25, 0.5, 1.0):
        s = judge(StubServer(tops=tops), method="both", verify_weight=w).score(TEXTS, LABELS)
        np.testing.assert_allclose(s, (1 - w) * P_CLASSIFY + w * P_VERIFY)
    s0 = judge(StubServer(tops=tops), method="both", verify_weight=0).score(TEXTS, LABELS)
    np.testing.assert_allclose(s0, P_CLASSIFY)


def test_verify_temperature_fitted_on_checked_labels_matches_a_grid_oracle():
    server = StubServer(tops=tops)
    j = judge(server, method="verify").fit(["good film", "bad film"], ["positive", "negative"])
    # each text asked with its own label (yes) and with the next class (no)
    right = np.log([8 / 3, 117 / 7])
    wrong = np.log([13 / 14, 2 / 3])

    def loss(T):
        return np.mean(np.r_[np.log1p(np.exp(-right / T)), np.log1p(np.exp(wrong / T))])

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 200001))
    best = grid[np.argmin([loss(t) for t in grid])]
    assert j.verify_temperature_ == pytest.approx(best, rel=1e-3)
    z = np.log(8 / 3) / j.verify_temperature_
    assert j.score(["good film"], ["positive"])[0] == pytest.approx(1 / (1 + np.exp(-z)))


def test_neither_yes_nor_no_is_a_half_and_a_warning():
    server = StubServer(tops=tops)
    with pytest.warns(
        TruelabelWarning, match=r"neither yes nor no for 1 of 2 labels \(first: item 1\)"
    ):
        s = judge(server, method="verify").score(["good film", "weird"], ["positive", "positive"])
    np.testing.assert_allclose(s, [8 / 11, 0.5])


def test_verify_needs_logprobs():
    server = StubServer(tops=lambda p: None, chat=lambda m: '{"label": "positive"}')
    with pytest.raises(LLMResponseError, match=r"yes/no verification \(method='verify'\).*no JSON"):
        judge(server, method="verify").score(["good film"], ["positive"])


def test_judge_settings_are_checked_and_cloned():
    server = StubServer(tops=tops)
    with pytest.raises(ValidationError, match=r"method: got 'vote'; pass one of \('classify'"):
        judge(server, method="vote").score(["good film"], ["positive"])
    for bad in (1.5, -0.1, True, "half"):
        with pytest.raises(
            ValidationError, match=r"verify_weight: got .*; pass a number in \[0, 1\]"
        ):
            judge(server, method="both", verify_weight=bad).fit()
    assert server.requests == []
    j = LLMJudge(["a", "b"], base_url=URL, model="m", method="both", verify_weight=0.3)
    assert clone(j).get_params()["verify_weight"] == 0.3 and clone(j).method == "both"
