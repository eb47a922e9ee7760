"""First-token scoring: hand-worked oracles for plain, colliding and nested class names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from truelabel.llm._errors import LLMResponseError
from truelabel.llm._scoring import classify_tokens, parse_top_logprobs, score_first_tokens


def fetcher(table: dict[str, dict[str, float]], calls: list[list[str]]):
    def fetch(prompts: list[str]):
        calls.append(prompts)
        return [list(table[p].items()) if p in table else None for p in prompts]

    return fetch


def test_plain_names_case_and_space_folded_and_the_rest_outside():
    step = classify_tokens(
        [
            (" positive", 0.5),
            (" Positive", 0.1),
            ("negative", 0.2),
            (" neutral", 0.15),
            (" pos", 0.05),
        ],
        "",
        ["positive", "negative"],
    )
    assert step.credit.tolist() == pytest.approx([0.65, 0.2])  # " pos" starts "positive" only
    assert step.outside == pytest.approx(0.15) and step.branches == {}
    assert step.floor == 0.0  # the returned tokens hold all the mass


def test_a_name_followed_by_punctuation_counts_but_not_by_letters():
    step = classify_tokens([(" spam.", 0.3), (" spammy", 0.7)], "", ["spam", "ham"])
    assert step.credit.tolist() == [0.3, 0.0] and step.outside == 0.7


def test_colliding_first_tokens_are_split_by_the_chain_rule():
    targets = ["science", "sci-fi", "sports"]
    table = {
        "P": {" sci": 0.5, " sports": 0.3, " the": 0.2},
        "P sci": {"ence": 0.6, "-fi": 0.3, "ssors": 0.1},
    }
    calls: list[list[str]] = []
    masses, outside = score_first_tokens(["P"], targets, fetcher(table, calls))
    # science .5*.6, sci-fi .5*.3, sports .3; outside .2 + .5*.1
    np.testing.assert_allclose(masses, [[0.3, 0.15, 0.3]])
    np.testing.assert_allclose(outside, [0.25])
    assert calls == [["P"], ["P sci"]]


def test_a_name_inside_another_is_resolved_by_what_follows():
    targets = ["spam", "spammer", "ham"]
    table = {"P": {" spam": 0.8, " ham": 0.2}, "P spam": {"\n": 0.5, "mer": 0.25, "": 0.25}}
    masses, _ = score_first_tokens(["P"], targets, fetcher(table, []))
    # "spam\n" -> spam .4; "spammer" -> .2; end of text after "spam" -> spam .2
    np.testing.assert_allclose(masses, [[0.6, 0.2, 0.2]])


def test_white_space_first_token_is_ambiguous_then_resolved():
    table = {"P": {"\n": 0.4, " yes": 0.6}, "P\n": {"no": 0.5, "yes": 0.5}}  # .4 >= .05
    masses, _ = score_first_tokens(["P"], ["yes", "no"], fetcher(table, []))
    np.testing.assert_allclose(masses, [[0.8, 0.2]])


def test_depth_and_small_branches_are_shared_without_a_request():
    targets = ["science", "sci-fi"]
    table = {
        "P": {" sci": 0.5, " x": 0.5},
        "Q": {" sci": 0.04, " science": 0.3, " sci-fi": 0.1, " x": 0.56},
        "R": {" sci": 0.06, " science": 0.3, " sci-fi": 0.1, " x": 0.54},
        "R sci": {"ence": 0.5, "-fi": 0.5},
    }
    calls: list[list[str]] = []
    masses, _ = score_first_tokens(["P"], targets, fetcher(table, calls), max_depth=0)
    np.testing.assert_allclose(masses, [[0.25, 0.25]])  # no resolved mass: equal shares
    assert calls == [["P"]]
    calls.clear()
    masses, _ = score_first_tokens(["Q", "R"], targets, fetcher(table, calls), min_branch_mass=0.05)
    # Q's .04 branch is below the bar: shared .3 : .1 (the rows' ratio is unchanged)
    np.testing.assert_allclose(masses, [[0.33, 0.11], [0.33, 0.13]])
    assert calls == [["Q", "R"], ["R sci"]]


def test_unseen_class_gets_the_smallest_returned_probability_and_none_is_outside():
    table = {
        "A": {" positive": 0.9, " other": 0.03, " x": 0.02},  # bound: the smallest, .02
        "B": {" maybe": 1.0},
        "C": {" positive": 0.9, " other": 0.09},  # bound: the .01 left
        "D": {" positive": 1.0},  # bound 0: nothing left
    }
    prompts = ["A", "B", "C", "D"]
    masses, outside = score_first_tokens(prompts, ["positive", "negative"], fetcher(table, []))
    np.testing.assert_allclose(masses, [[0.9, 0.02], [0.0, 0.0], [0.9, 0.01], [1.0, 0.0]])
    np.testing.assert_allclose(outside, [0.05, 1.0, 0.09, 0.0])


def test_items_are_batched_per_depth():
    table = {
        "A": {" sci": 1.0},
        "B": {" sports": 1.0},
        "C": {" sci": 1.0},
        "A sci": {"ence": 1.0},
        "C sci": {"-fi": 1.0},
    }
    calls: list[list[str]] = []
    masses, _ = score_first_tokens(
        ["A", "B", "C"], ["science", "sci-fi", "sports"], fetcher(table, calls)
    )
    np.testing.assert_allclose(masses, [[1, 0, 0], [0, 0, 1], [0, 1, 0]])
    assert calls == [["A", "B", "C"], ["A sci", "C sci"]]


def test_missing_logprobs_raise():
    with pytest.raises(LLMResponseError, match="no log-probabilities"):
        score_first_tokens(["Z"], ["a", "b"], fetcher({}, []))


def test_parse_both_logprob_forms():
    completions = {"logprobs": {"top_logprobs": [{" a": math.log(0.25), " b": -math.inf}]}}
    assert parse_top_logprobs(completions) == [(" a", pytest.approx(0.25)), (" b", 0.0)]
    chat = {"logprobs": {"content": [{"top_logprobs": [{"token": "a", "logprob": 0.0}]}]}}
    assert parse_top_logprobs(chat) == [("a", 1.0)]
    assert parse_top_logprobs({"logprobs": None}) is None
    assert parse_top_logprobs({"text": "a"}) is None
    assert parse_top_logprobs({"logprobs": {"top_logprobs": []}}) is None
    # llama-cpp-python when the model stops at once: no token, no top list -> end of text
    stopped = {"text": "", "logprobs": {"tokens": [], "top_logprobs": []}, "finish_reason": "stop"}
    assert parse_top_logprobs(stopped) == [("", 1.0)]
    with pytest.raises(LLMResponseError, match=r"not \(token, logprob\): ' a': 'x'"):
        parse_top_logprobs({"logprobs": {"top_logprobs": [{" a": "x"}]}})
