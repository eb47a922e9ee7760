"""autolabel_texts(llm=...): the LLM labels the pool; its probabilities are the classifier's."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.autolabel._texts import autolabel_texts
from truelabel.exceptions import ValidationError
from truelabel.llm import LLMClassifier, LLMClient

from ._stub import KEY, StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = ["positive", "negative"]
TOPS = {
    "good film": {" positive": 0.7, " negative": 0.2},
    "bad film": {" positive": 0.3, " negative": 0.6},
    "odd film": {" positive": 0.45, " negative": 0.45},
    "fine film": {" positive": 0.6, " negative": 0.3},
    "N/A": {" positive": 0.6, " negative": 0.4},
    "[MASK]": {" positive": 0.5, " negative": 0.5},
    "": {" positive": 0.7, " negative": 0.3},
}


def _client(server):
    return LLMClient(URL, "smol", KEY, transport=server.transport, cache=False)


def test_zero_shot_llm_labels_are_the_calibrated_classifier_s():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    texts = ["good film", "bad film", "odd film", "good film"]
    res = autolabel_texts(texts, CLASSES, llm={"client": _client(server)})
    want = LLMClassifier(CLASSES, client=_client(server)).fit().predict_proba(texts)
    np.testing.assert_allclose(res.pred_probs, want)
    # contextual calibration (p_cf = (.6, .4)): good (.7, .3), bad (.25, .75), odd (.4, .6)
    np.testing.assert_allclose(res.pred_probs[:3], [[0.7, 0.3], [0.25, 0.75], [0.4, 0.6]])
    assert res.labels["label"].tolist() == ["positive", "negative", "negative", "positive"]
    assert set(res.labels["method"]) == {"llm zero-shot"}
    assert res.summary["encoder"] == "llm $TRUELABEL_LLM_MODEL"


def test_labeled_rows_fit_the_temperature_and_are_cross_fitted():
    server = StubServer(tops=lambda p: TOPS[last_text(p)])
    texts = ["good film", "bad film", "fine film", "odd film", "good film", "bad film"]
    labels = ["positive", "negative", "positive", None, None, None]
    res = autolabel_texts(texts, CLASSES, labels, llm={"client": _client(server)})
    model = LLMClassifier(CLASSES, client=_client(server)).fit(texts[:3], labels[:3])
    np.testing.assert_allclose(res.pred_probs[3:], model.predict_proba(texts[3:]))
    assert res.labels["method"].tolist() == ["given"] * 3 + ["llm"] * 3
    assert res.labels["label"].tolist()[:3] == labels[:3]  # a given label is kept
    with pytest.raises(ValidationError, match="labels"):
        autolabel_texts(texts, CLASSES, ["maybe"] + [None] * 5, llm={"client": _client(server)})
