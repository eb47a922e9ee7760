"""LLMClassifier on the in-memory server: prompts, probabilities by hand, fallbacks."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from truelabel.exceptions import TruelabelWarning, ValidationError
from truelabel.llm import LLMClassifier, LLMClient, LLMResponseError

from ._stub import KEY, StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = {"positive": "likes the film", "negative": "dislikes the film"}

# next-token distributions by item text (content-free inputs included)
TOPS = {
    "good film": {" positive": 0.7, " negative": 0.2, " the": 0.1},
    "bad film": {" positive": 0.3, " Negative": 0.6, " the": 0.1},
    "odd film": {" positive": 0.45, " negative": 0.45, " the": 0.1},
    "N/A": {" positive": 0.6, " negative": 0.4},
    "[MASK]": {" positive": 0.5, " negative": 0.5},
    "": {" positive": 0.7, " negative": 0.3},
    "weird": {" maybe": 0.9, " the": 0.1},
}


def tops(prompt: str):
    return TOPS[last_text(prompt)]


def classifier(server: StubServer, cache=False, **kw) -> LLMClassifier:
    client = LLMClient(URL, "smol", KEY, transport=server.transport, cache=cache)
    return LLMClassifier(CLASSES, client=client, **kw)


def test_prompt_is_the_chat_template_with_an_opened_assistant_turn():
    server = StubServer(tops=tops)
    clf = classifier(server, examples=[("great", "positive")], calibrate=None)
    clf.predict_proba(["good film"])
    (path, body, _), *_ = server.requests
    assert path == "/v1/completions"
    assert body == {
        "model": "smol",
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": 20,
        "prompt": "<|im_start|>system\nYou label texts. Choose exactly one of these classes:\n"
        "- positive: likes the film\n- negative: dislikes the film\n"
        "Answer with the class name only.<|im_end|>\n"
        "<|im_start|>user\nText: great<|im_end|>\n"
        "<|im_start|>assistant\nLabel: positive<|im_end|>\n"
        "<|im_start|>user\nText: good film<|im_end|>\n"
        "<|im_start|>assistant\nLabel:",
    }


def test_probabilities_with_contextual_calibration_by_hand():
    server = StubServer(tops=tops)
    clf = classifier(server).fit()
    # p_cf = mean of the normalised content-free rows = (.6, .4)
    np.testing.assert_allclose(clf.content_free_probs_, [0.6, 0.4])
    assert clf.temperature_ == 1.0 and clf.method_ == "logprobs"
    p = clf.predict_proba(["good film", "bad film", "odd film"])
    # good: (.7/.9/.6, .2/.9/.4) = (1.2963, .5556) -> (.7, .3)
    # bad: (.3/.9/.6, .6/.9/.4) = (.5556, 1.6667) -> (.25, .75)
    # odd: (.5/.6, .5/.4) = (.8333, 1.25) -> (.4, .6)
    np.testing.assert_allclose(p, [[0.7, 0.3], [0.25, 0.75], [0.4, 0.6]])
    assert clf.predict(["good film", "odd film"]).tolist() == ["positive", "negative"]
    raw = classifier(server, calibrate=None).predict_proba(["odd film"])
    np.testing.assert_allclose(raw, [[0.5, 0.5]])


def test_predict_proba_before_fit_applies_contextual_calibration():
    server = StubServer(tops=tops)
    np.testing.assert_allclose(classifier(server).predict_proba(["good film"]), [[0.7, 0.3]])


def test_temperature_fitted_on_labels_matches_a_grid_oracle():
    server = StubServer(tops=tops)
    texts = ["good film", "bad film", "odd film", "good film"]
    labels = ["positive", "negative", "positive", "negative"]
    clf = classifier(server).fit(texts, labels)
    cal = np.log(np.array([[0.7, 0.3], [0.25, 0.75], [0.4, 0.6], [0.7, 0.3]]))
    y = np.array([0, 1, 0, 1])

    def loss(T):
        z = cal / T
        z = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -z[np.arange(4), y].mean()

    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 200001))
    best = grid[np.argmin([loss(t) for t in grid])]
    assert clf.temperature_ == pytest.approx(best, rel=1e-3)
    assert clf.temperature_ > 1.5  # one of four labels contradicts a confident answer
    z = cal[:1] / clf.temperature_
    np.testing.assert_allclose(clf.predict_proba(["good film"]), np.exp(z) / np.exp(z).sum())


def test_answer_outside_the_classes_is_a_uniform_row_and_a_warning():
    server = StubServer(tops=tops)
    clf = classifier(server).fit()
    with pytest.warns(
        TruelabelWarning, match=r"outside the class set for 1 of 2 texts \(first: item 1\)"
    ):
        p = clf.predict_proba(["good film", "weird"])
    np.testing.assert_allclose(p, [[0.7, 0.3], [0.5, 0.5]])
    scores = clf.score_texts(["good film", "weird"])
    assert scores.outside.tolist() == [False, True]
    np.testing.assert_allclose(scores.class_mass, [0.9, 0.0])


def chat_answers(messages):
    text = messages[-1]["content"][len("Text: ") :]
    return {"good film": '{"label": "positive"}', "bad film": "Negative", "weird": "no idea"}[text]


def test_no_logprobs_server_falls_back_to_constrained_json():
    server = StubServer(tops=lambda p: None, chat=chat_answers)
    clf = classifier(server, examples=[("great", "positive")])
    with pytest.warns(TruelabelWarning, match="sent no log-probabilities: falling back"):
        clf.fit()
    assert clf.method_ == "json" and clf.content_free_probs_ is None
    with pytest.warns(
        TruelabelWarning, match=r"outside the class set for 1 of 3 texts \(first: item 2\)"
    ):
        p = clf.predict_proba(["good film", "bad film", "weird"])
    # Jeffreys-smoothed vote: (1 + .5) / (1 + 2 * .5) = .75
    np.testing.assert_allclose(p, [[0.75, 0.25], [0.25, 0.75], [0.5, 0.5]])
    chat = [b for path, b, _ in server.requests if path.endswith("/chat/completions")]
    assert chat[0]["response_format"] == {
        "type": "json_object",
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["positive", "negative"]}},
            "required": ["label"],
        },
    }
    roles = [m["role"] for m in chat[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert json.loads(chat[0]["messages"][2]["content"]) == {"label": "positive"}
    # one probe of /completions, never repeated
    assert sum(p.endswith("/v1/completions") for p in server.paths()) == 1


def test_json_fallback_temperature_from_labels():
    server = StubServer(tops=lambda p: None, chat=chat_answers)
    clf = classifier(server, scoring="json")
    clf.fit(["good film", "bad film", "good film"], ["positive", "negative", "negative"])
    # log-odds log 3 scaled by 1/T; two of three right: the fitted p(right) = 2/3
    p = clf.predict_proba(["good film"])[0, 0]
    assert p == pytest.approx(2 / 3, abs=1e-4)


def test_logprobs_required_but_absent_is_a_clear_error():
    server = StubServer(tops=lambda p: None)
    with pytest.raises(LLMResponseError, match=r"no log-probabilities.*pass scoring='json'"):
        classifier(server, scoring="logprobs").predict_proba(["good film"])


def test_second_run_makes_zero_requests(tmp_path):
    server = StubServer(tops=tops)
    texts = ["good film", "bad film", "odd film"]
    first = classifier(server, cache=tmp_path).fit().predict_proba(texts)
    n = len(server.requests)
    assert n == 3 + 3  # content-free (the first is also the probe), items
    again = classifier(server, cache=tmp_path).fit().predict_proba(texts)
    assert len(server.requests) == n
    np.testing.assert_array_equal(first, again)


def test_nearest_examples_are_chosen_per_text():
    class Enc:
        name = "fake"

        def encode(self, texts):
            table = {
                "good film": [1, 0],
                "bad film": [0, 1],
                "great": [1, 0.1],
                "awful": [0.1, 1],
                "fine": [1, 1],
            }
            return np.array([table[t] for t in texts], dtype=float)

    server = StubServer(tops=tops)
    ex = [("great", "positive"), ("awful", "negative"), ("fine", "positive")]
    clf = classifier(server, examples=ex, n_examples=2, encoder=Enc(), calibrate=None)
    clf.predict_proba(["good film", "bad film"])
    shots = [[t for t in body["prompt"].split("Text: ")[1:-1]] for _, body, _ in server.requests]
    assert len(server.requests) == 2  # the "auto" probe is the first item's request, reused
    # nearest last: good film -> fine (cos .71), great (.995); bad film -> fine, awful
    assert [[s.split("<")[0] for s in row] for row in shots] == [
        ["fine", "great"],
        ["fine", "awful"],
    ]


def test_settings_are_checked_with_the_fix():
    server = StubServer(tops=tops)
    with pytest.raises(ValidationError, match=r"scoring: got 'best'; pass one of"):
        classifier(server, scoring="best").predict_proba(["a"])
    with pytest.raises(ValidationError, match=r"template: got 'alpaca'; pass one of \['chatml'"):
        classifier(server, template="alpaca").predict_proba(["a"])
    with pytest.raises(ValidationError, match=r"examples: example 0 is \('x', 'meh'\)"):
        classifier(server, examples=[("x", "meh")]).predict_proba(["a"])
    with pytest.raises(ValidationError, match=r"top_logprobs: got 0; pass an integer >= 1"):
        classifier(server, top_logprobs=0).predict_proba(["a"])
    with pytest.raises(ValidationError, match=r"calibrate: got 'platt'"):
        classifier(server, calibrate="platt").fit()
    with pytest.raises(ValidationError, match=r"labels: label 'meh' at item 0 is not one of"):
        classifier(server).fit(["good film"], ["meh"])
    with pytest.raises(ValidationError, match=r"texts: item 0 is an empty string"):
        classifier(server).predict_proba([""])


def test_estimator_contract_params_clone_and_pickle():
    clf = LLMClassifier(["a", "b"], base_url=URL, model="m", top_logprobs=5)
    assert clf.get_params()["top_logprobs"] == 5
    assert clone(clf).get_params() == clf.get_params()
    assert list(clf.classes_) == ["a", "b"]
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.get_params() == clf.get_params()
    assert not hasattr(clf, "temperature_")
    shown = repr(LLMClassifier(["a"], client=LLMClient(URL, "m", KEY, cache=False)))
    assert KEY not in shown and "api_key='***'" in shown


def test_judge_scores_the_given_label():
    from truelabel.llm import LLMJudge

    server = StubServer(tops=tops)
    judge = LLMJudge(
        CLASSES, client=LLMClient(URL, "smol", transport=server.transport, cache=False)
    )
    s = judge.score(["good film", "bad film", "odd film"], ["negative", "negative", "positive"])
    np.testing.assert_allclose(s, [0.3, 0.75, 0.4])  # the calibrated rows pinned above
    with pytest.raises(ValidationError, match=r"labels: has 1 items for 2 texts"):
        judge.score(["good film", "bad film"], ["positive"])


def test_branch_settings_reach_the_scoring():
    def sci_tops(prompt):
        if prompt.endswith("Label: sci"):
            return {"ence": 0.25, "-fi": 0.75}
        return {" sci": 0.04, " science": 0.6, " x": 0.36}

    def run(**kw):
        server = StubServer(tops=sci_tops)
        client = LLMClient(URL, "smol", transport=server.transport, cache=False)
        clf = LLMClassifier(["science", "sci-fi"], client=client, calibrate=None, **kw)
        return clf.predict_proba(["a text"])[0], len(server.requests)

    p, n = run()  # .04 < .05: shared in proportion, science keeps everything
    np.testing.assert_allclose(p, [1.0, 0.0], atol=1e-12)
    assert n == 1
    p, n = run(min_branch_mass=0.01)  # split: science .6 + .01, sci-fi .03
    np.testing.assert_allclose(p, [0.61 / 0.64, 0.03 / 0.64])
    assert n == 2
    p, n = run(min_branch_mass=0.01, max_depth=0)
    np.testing.assert_allclose(p, [1.0, 0.0], atol=1e-12)
    assert n == 1
