"""Verbalizers: the model scores words, the caller gets class labels back."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.exceptions import TruelabelWarning, ValidationError
from truelabel.llm import LLMClassifier, LLMClient, LLMJudge, check_verbalizers

from ._stub import StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = {"spam": "an advertisement or scam", "ham": "a personal message"}
WORDS = {"spam": "spam", "ham": "normal message"}
TOPS = {"win cash": {" spam": 0.3, " normal": 0.6, " ham": 0.1}}


def clf(server: StubServer, **kw) -> LLMClassifier:
    client = LLMClient(URL, "smol", transport=server.transport, cache=False)
    return LLMClassifier(CLASSES, client=client, calibrate=None, **kw)


def test_the_words_are_scored_and_the_classes_returned():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    # by the class names: " ham" .1 is ham's mass, " normal" is outside -> (.75, .25)
    np.testing.assert_allclose(clf(server).predict_proba(["win cash"]), [[0.75, 0.25]])
    # by the words: " normal" starts "normal message" -> ham .6; " ham" is outside now
    m = clf(server, verbalizers=WORDS, examples=[("hi mum", "ham")])
    np.testing.assert_allclose(m.predict_proba(["win cash"]), [[1 / 3, 2 / 3]])
    assert m.predict(["win cash"]).tolist() == ["ham"] and list(m.classes_) == ["spam", "ham"]
    prompt = server.requests[-1][1]["prompt"]
    assert "- spam: an advertisement or scam\n- normal message: a personal message\n" in prompt
    assert (
        "Text: hi mum<|im_end|>\n<|im_start|>assistant\nLabel: normal message<|im_end|>" in prompt
    )


def test_json_fallback_answers_with_the_words():
    def chat(messages):
        return '{"label": "normal message"}'

    server = StubServer(tops=lambda p: None, chat=chat)
    with pytest.warns(TruelabelWarning, match="falling back"):
        p = clf(server, verbalizers=WORDS).predict_proba(["win cash"])
    np.testing.assert_allclose(p, [[0.25, 0.75]])  # a vote for ham
    body = next(b for path, b, _ in server.requests if path.endswith("chat/completions"))
    assert body["response_format"]["schema"]["properties"]["label"]["enum"] == [
        "spam",
        "normal message",
    ]
    assert "- normal message: a personal message" in body["messages"][0]["content"]


def test_the_yes_no_prompt_names_the_label_by_its_word():
    server = StubServer(tops=lambda p: {" yes": 0.75, " no": 0.25})
    client = LLMClient(URL, "smol", transport=server.transport, cache=False)
    judge = LLMJudge(CLASSES, client=client, verbalizers=WORDS, method="verify", calibrate=None)
    np.testing.assert_allclose(judge.score(["win cash"], ["ham"]), [0.75])
    assert "Label: normal message\nIs the label right?" in server.requests[0][1]["prompt"]


@pytest.mark.parametrize(
    ("words", "match"),
    [
        (["spam"], r"verbalizers: got list; pass a dict"),
        ({"spam": "spam", "hamm": "ok"}, r"verbalizers: unknown class\(es\) \['hamm'\]"),
        ({"spam": "spam"}, r"verbalizers: no word for class\(es\) \['ham'\]; give every class"),
        ({"spam": "spam", "ham": " "}, r"verbalizers: class 'ham' has word ' '"),
        ({"spam": "Junk", "ham": "junk "}, r"classes 'spam' and 'ham' both read 'junk '"),
        (
            {"spam": "not wanted", "ham": "not spam"},
            r"'not wanted' \(spam\) and 'not spam' \(ham\) start with the same word 'not': "
            r"their first tokens collide; start each",
        ),
        ({"spam": "normal", "ham": "normal message"}, r"start with the same word 'normal'"),
    ],
)
def test_bad_verbalizers_are_refused_before_any_request(words, match):
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    with pytest.raises(ValidationError, match=match):
        clf(server, verbalizers=words).predict_proba(["win cash"])
    assert server.requests == []


def test_check_verbalizers_keeps_class_order():
    assert check_verbalizers({"ham": " normal ", "spam": "spam"}, ["spam", "ham"]) == [
        "spam",
        "normal",
    ]
    assert check_verbalizers(None, ["a", "b"]) == ["a", "b"]
