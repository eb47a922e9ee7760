"""recheck_issues: the judge scores only the `top` most doubtful labels, in that order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.exceptions import TruelabelWarning, ValidationError
from truelabel.llm import LLMClient, LLMJudge, recheck_issues

from ._stub import KEY, StubServer, last_text

URL = "http://llm.test/v1"
# the judge's next-token distribution per item text (calibration off: scores by hand)
TOPS = {
    "great film": {" positive": 0.9, " negative": 0.1},
    "awful film": {" positive": 0.2, " negative": 0.8},
    "fine film": {" positive": 0.6, " negative": 0.4},
    "dull film": {" positive": 0.3, " negative": 0.7},
}


def _judge(server: StubServer) -> LLMJudge:
    client = LLMClient(URL, "smol", KEY, transport=server.transport, cache=False)
    return LLMJudge(["positive", "negative"], client=client, calibrate=None)


def _issues() -> tuple[pd.DataFrame, list[str]]:
    texts = ["great film", "awful film", "fine film", "dull film", "no label"]
    issues = pd.DataFrame(
        {
            "given_label": ["negative", "positive", "positive", "negative", None],
            "label_score": [0.05, 0.10, 0.90, 0.10, np.nan],
        },
        index=pd.Index(["a", "b", "c", "d", "e"], name="id"),
    )
    return issues, texts


def test_the_top_doubtful_labels_are_judged_and_the_rest_left_nan():
    server = StubServer(tops=lambda prompt: TOPS[last_text(prompt)])
    issues, texts = _issues()
    got = recheck_issues(issues, texts, _judge(server), top=3)
    # the 3 lowest label scores: a (0.05), then b and d tied at 0.10 (by position);
    # their judge scores are p(given label): a 0.1, b 0.2, d 0.7; c and e not asked
    assert got.name == "judge_score" and got.index.tolist() == list("abcde")
    np.testing.assert_allclose(got.to_numpy(), [0.1, 0.2, np.nan, 0.7, np.nan])
    asked = [last_text(body["prompt"]) for _, body, _ in server.requests]
    assert sorted(asked) == ["awful film", "dull film", "great film"]
    # an unlabelled row is never judged, however many are asked for
    all_rows = recheck_issues(issues, texts, _judge(server), top=50)
    assert all_rows.notna().tolist() == [True, True, True, True, False]
    assert all_rows["c"] == pytest.approx(0.6)


def test_recheck_refusals():
    server = StubServer(tops=lambda prompt: TOPS[last_text(prompt)])
    issues, texts = _issues()
    judge = _judge(server)
    for bad in (0, True, 2.5):
        with pytest.raises(ValidationError, match=r"top: got .*pass an int >= 1"):
            recheck_issues(issues, texts, judge, top=bad)
    with pytest.raises(ValidationError, match=r"texts: has 4 texts for 5 issue rows"):
        recheck_issues(issues, texts[:4], judge)
    with pytest.raises(ValidationError, match=r"issues: has no column\(s\) \['label_score'\]"):
        recheck_issues(issues.drop(columns="label_score"), texts, judge)
    assert server.requests == []  # nothing asked before the inputs are checked


def test_an_answer_outside_the_classes_is_named_by_its_row():
    # "dull film" (row d, the 3rd text re-checked: position 2) gets no class at all
    tops = {**TOPS, "dull film": {" maybe": 1.0}}
    server = StubServer(tops=lambda prompt: tops[last_text(prompt)])
    issues, texts = _issues()
    with pytest.warns(TruelabelWarning, match=r"for 1 of 3 texts \(first: row 'd'\)"):
        got = recheck_issues(issues, texts, _judge(server), top=3)
    assert got["d"] == pytest.approx(0.5)  # a uniform row: p(given) = 1/2
