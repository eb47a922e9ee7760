"""The llm_judge audit detector and the annotator adapter, on the in-memory server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit
from truelabel.aggregate import Annotations, DawidSkene, choose_best_labels
from truelabel.exceptions import TruelabelWarning, ValidationError
from truelabel.llm import LLMClassifier, LLMClient, LLMJudge, annotator_table

from ._stub import StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = ["positive", "negative"]
TEXTS = [f"t{i}" for i in range(6)]
# the judge's next tokens per text (calibrate=None: p(given) is the renormalised share)
TOPS = {
    "t0": {" positive": 0.9, " negative": 0.1},
    "t1": {" positive": 0.6, " negative": 0.4},
    "t2": {" positive": 0.9, " negative": 0.1},
    "t3": {" positive": 0.2, " negative": 0.8},
    "t4": {" positive": 0.5, " negative": 0.5},
    "t5": {" positive": 0.7, " negative": 0.3},
}
PROBS = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.2], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3]])
LABELS = np.array([0, 0, 1, 1, 1, 0])


def make_judge(server: StubServer) -> LLMJudge:
    client = LLMClient(URL, "smol", transport=server.transport, cache=False)
    return LLMJudge(CLASSES, client=client, calibrate=None, scoring="logprobs")


def audit(server: StubServer, **settings) -> pd.DataFrame:
    judge = {"judge": make_judge(server), "texts": TEXTS, **settings}
    types = {"label": {"use_knn": False}, "llm_judge": judge}
    res = Audit(issue_types=types).run(labels=LABELS, pred_probs=PROBS, classes=CLASSES)
    return res.issues, res.info["llm_judge"]


def p_given(i: int) -> float:
    top = TOPS[TEXTS[i]]
    return top[" " + CLASSES[LABELS[i]]] / sum(top.values())


def test_the_top_suspects_are_judged_and_combined_by_weight():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    issues, info = audit(server, top=3, weight=0.25)
    label = issues["label_score"].to_numpy()
    pick = np.argsort(label, kind="stable")[:3]
    assert sorted(pick.tolist()) == [1, 2, 4]  # the three labels the probabilities doubt
    assert sorted(last_text(b["prompt"]) for _, b, _ in server.requests) == ["t1", "t2", "t4"]
    judged = np.full(6, np.nan)
    judged[pick] = [p_given(i) for i in pick]  # t1 .6, t2 .1, t4 .5
    np.testing.assert_allclose(issues["judge_score"], judged)
    combined = label.copy()
    combined[pick] = 0.75 * label[pick] + 0.25 * judged[pick]
    np.testing.assert_allclose(issues["llm_judge_score"], combined)
    # confirmed: flagged by the label check and judged below .5 (t2 only; t1 is cleared)
    flagged = issues["is_label_issue"].to_numpy()
    want = np.zeros(6, dtype=bool)
    want[pick] = flagged[pick] & (judged[pick] < 0.5)
    assert issues["is_llm_judge_issue"].tolist() == want.tolist() and want[2] and not want[1]
    assert info["n_rechecked"] == 3 and info["n_confirmed"] == int(want.sum())
    assert info["n_cleared"] == int((flagged[pick] & (judged[pick] >= 0.5)).sum())


def test_weight_ends_and_doubt_threshold():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    issues, _ = audit(server, top=2, weight=0.0)
    np.testing.assert_allclose(issues["llm_judge_score"], issues["label_score"])
    issues, _ = audit(server, top=2, weight=1.0)
    asked = issues["judge_score"].notna().to_numpy()
    assert asked.sum() == 2
    np.testing.assert_allclose(issues["llm_judge_score"][asked], issues["judge_score"][asked])
    issues, _ = audit(server, top=6, doubt_below=0.75)  # t1's .6 now confirms too
    flagged = issues["is_label_issue"].to_numpy()
    doubted = issues["judge_score"].to_numpy() < 0.75
    assert flagged.tolist() == [False, True, True, False, True, False]
    assert doubted.tolist() == [False, True, True, False, True, True]  # t5: p .7
    # t5 is doubted by the judge but not flagged by the label check: not confirmed
    assert issues["is_llm_judge_issue"].tolist() == [False, True, True, False, True, False]


def test_without_a_judge_the_type_is_skipped_by_default_and_refused_when_asked():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    make_judge(server)  # the detector is registered
    res = Audit().run(labels=LABELS, pred_probs=PROBS, classes=CLASSES)
    assert "judge_score" not in res.issues and "is_label_issue" in res.issues
    with pytest.raises(ValidationError, match=r"'llm_judge' needs labels and issue_types\['llm_j"):
        Audit(issue_types={"label": {}, "llm_judge": {}}).run(labels=LABELS, pred_probs=PROBS)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"texts": TEXTS[:5]}, r"\['texts'\]: got 5 texts for 6 items"),
        ({"top": 0}, r"\['top'\]: got 0; pass an int >= 1"),
        ({"weight": 1.5}, r"\['weight'\]: got 1.5; pass a number in \[0, 1\]"),
        ({"doubt_below": 0}, r"\['doubt_below'\]: got 0; pass a number in \(0, 1\]"),
        ({"judge": "gpt"}, r"\['judge'\]: got str; pass an LLMJudge"),
    ],
)
def test_bad_settings_are_refused_before_any_request(settings, match):
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    with pytest.raises(ValidationError, match=match):
        audit(server, **settings)
    assert server.requests == []


def test_order_and_class_mismatch_are_refused():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    judge = {"judge": make_judge(server), "texts": TEXTS}
    with pytest.raises(ValidationError, match=r"list 'label' before 'llm_judge'"):
        Audit(issue_types={"llm_judge": judge, "label": {}}).run(labels=LABELS, pred_probs=PROBS,
                                                                 classes=CLASSES)  # fmt: skip
    with pytest.raises(ValidationError, match=r"has no class\(es\) \['pos'\] of the audit"):
        Audit(issue_types={"label": {}, "llm_judge": judge}).run(
            labels=LABELS, pred_probs=PROBS, classes=["pos", "negative"]
        )
    assert server.requests == []


# -- annotators ------------------------------------------------------------------------
LLM_A = {"t0": " positive", "t1": " negative", "t2": " positive", "t3": " negative",
         "t4": " maybe", "t5": " positive"}  # fmt: skip
LLM_B = {"t0": " positive", "t1": " positive", "t2": " negative", "t3": " negative",
         "t4": " negative", "t5": " negative"}  # fmt: skip


def llm(answers: dict[str, str]) -> LLMClassifier:
    server = StubServer(tops=lambda p: {answers[last_text(p)]: 0.9, " the": 0.1})
    client = LLMClient(URL, "smol", transport=server.transport, cache=False)
    return LLMClassifier(CLASSES, client=client, calibrate=None)


def test_llms_the_model_and_people_become_one_annotation_table():
    rater = ["positive", None, "negative", "negative", np.nan, "positive"]
    with pytest.warns(TruelabelWarning, match="outside the class set for 1 of 6"):
        table = annotator_table(
            {"a": llm(LLM_A), "b": llm(LLM_B), "model": PROBS, "rater": rater},
            TEXTS,
            item_ids=[f"i{k}" for k in range(6)],
        )
    want = pd.DataFrame(
        {
            "item_id": ["i0", "i1", "i2", "i3", "i5"]  # a: t4 answered outside -> no row
            + [f"i{k}" for k in range(6)] * 2
            + ["i0", "i2", "i3", "i5"],
            "annotator_id": ["a"] * 5 + ["b"] * 6 + ["model"] * 6 + ["rater"] * 4,
            "label": [
                *["positive", "negative", "positive", "negative", "positive"],  # a
                *["positive", "positive", "negative", "negative", "negative", "negative"],  # b
                *["positive", "negative", "positive", "negative", "positive", "positive"],  # model
                *["positive", "negative", "negative", "positive"],  # rater
            ],
        }
    )
    pd.testing.assert_frame_equal(table, want)
    # the consensus machinery takes it as is: the same Dawid-Skene fit as on the table
    choice = choose_best_labels(table)
    ds = DawidSkene().fit(Annotations(want))
    assert choice.labels["label"].tolist() == ds.labels_.tolist()
    np.testing.assert_allclose(choice.labelers.loc[list(ds.skills_.index), "accuracy"],
                               ds.skills_.to_numpy())  # fmt: skip
    assert set(choice.labelers.index) == {"a", "b", "model", "rater"}


def test_annotator_table_refusals():
    with pytest.raises(
        ValidationError, match=r"labelers\['model'\]: has 2 probability columns and no"
    ):
        annotator_table({"model": PROBS})
    with pytest.raises(
        ValidationError, match=r"texts: not given; pass the texts for labelers\['a'\]"
    ):
        annotator_table({"a": llm(LLM_A)})
    with pytest.raises(
        ValidationError, match=r"labelers\['r'\]: got list of shape \(2,\) for 6 items"
    ):
        annotator_table({"r": ["a", "b"]}, TEXTS)
    with pytest.raises(ValidationError, match=r"item_ids: has 2 ids for 6 items"):
        annotator_table({"model": PROBS}, TEXTS, item_ids=[1, 2], classes=CLASSES)


def test_detector_contract_order_invariance_untouched_settings_and_typos():
    """The registry-wide conformance checks (tests/test_common.py), for this detector."""
    from truelabel.detect import get_detector

    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    given = {"judge": make_judge(server), "texts": TEXTS, "top": 6, "weight": 0.5}
    before = dict(given)
    a, _ = audit(server, **given)
    assert given == before  # settings are read, never written
    perm = np.array([3, 0, 5, 1, 4, 2])
    types = {"label": {"use_knn": False}, "llm_judge": {**given, "texts": [TEXTS[i] for i in perm]}}
    b = Audit(issue_types=types).run(labels=LABELS[perm], pred_probs=PROBS[perm], classes=CLASSES)
    for col in ("judge_score", "llm_judge_score", "is_llm_judge_issue"):
        np.testing.assert_array_equal(b.issues[col].to_numpy(), a[col].to_numpy()[perm])
    score = a["llm_judge_score"].to_numpy()
    assert ((score >= 0) & (score <= 1)).all() and a["is_llm_judge_issue"].dtype == bool
    with pytest.raises(
        ValidationError, match=r"issue_types\['llm_judge'\]: unknown setting 'weightt'; did you"
    ):
        get_detector("llm_judge", weightt=0.5)


def test_importing_the_package_registers_the_issue_type_and_the_judge_module_stays_lazy():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from truelabel.detect import available_detectors\n"
        "assert 'llm_judge' not in available_detectors()\n"
        "import truelabel.llm\n"
        "assert 'llm_judge' in available_detectors(), available_detectors()\n"
        "assert 'truelabel.llm._judge' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
