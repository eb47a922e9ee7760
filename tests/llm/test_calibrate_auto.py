"""calibrate="auto": contextual calibration kept only when labeled texts show it helps."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.exceptions import ValidationError
from truelabel.llm import LLMClassifier, LLMClient
from truelabel.llm._calibrate import fit_temperature, log_loss_at

from ._stub import KEY, StubServer, last_text

URL = "http://llm.test/v1"
CLASSES = ["a", "b"]


def classifier(tops: dict[str, dict[str, float]], **kw) -> LLMClassifier:
    server = StubServer(tops=lambda prompt: tops[last_text(prompt)])
    client = LLMClient(URL, "smol", KEY, transport=server.transport, cache=False)
    return LLMClassifier(CLASSES, client=client, **kw)


# the content-free inputs answer "a" almost always: dividing that out flips the a-items
OVERSHOOT = {
    "N/A": {" a": 0.99, " b": 0.01},
    "[MASK]": {" a": 0.99, " b": 0.01},
    "": {" a": 0.99, " b": 0.01},
    "x1": {" a": 0.8, " b": 0.2},
    "x2": {" a": 0.9, " b": 0.1},
    "x3": {" a": 0.7, " b": 0.3},
    "y1": {" a": 0.1, " b": 0.9},
}
TEXTS, LABELS = ["x1", "x2", "x3", "y1"], ["a", "a", "a", "b"]
Y = np.array([0, 0, 0, 1])
RAW = np.log(np.array([[0.8, 0.2], [0.9, 0.1], [0.7, 0.3], [0.1, 0.9]]))


def test_auto_drops_contextual_calibration_when_it_raises_the_labeled_log_loss():
    cal = RAW - np.log([0.99, 0.01])
    t_cal, t_raw = fit_temperature(cal, Y), fit_temperature(RAW, Y)
    assert log_loss_at(RAW, Y, t_raw) < log_loss_at(cal, Y, t_cal)  # the oracle's premise
    clf = classifier(OVERSHOOT).fit(TEXTS, LABELS)
    assert clf.calibration_ is None and clf.content_free_probs_ is None
    assert clf.temperature_ == pytest.approx(t_raw)
    z = RAW / t_raw
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected)
    assert clf.predict(TEXTS).tolist() == LABELS
    # asked for explicitly, contextual calibration stays (and gets every a-item wrong)
    forced = classifier(OVERSHOOT, calibrate="contextual").fit(TEXTS, LABELS)
    assert forced.calibration_ == "contextual" and forced.temperature_ == pytest.approx(t_cal)
    assert forced.predict(TEXTS).tolist() == ["b", "b", "b", "b"]


def test_auto_keeps_contextual_calibration_when_it_helps():
    # every text leans to "a" as the content-free inputs do: dividing the bias out separates
    biased = {
        "N/A": {" a": 0.8, " b": 0.2},
        "[MASK]": {" a": 0.8, " b": 0.2},
        "": {" a": 0.8, " b": 0.2},
        "x1": {" a": 0.9, " b": 0.1},
        "x2": {" a": 0.95, " b": 0.05},
        "y1": {" a": 0.6, " b": 0.4},
        "y2": {" a": 0.5, " b": 0.5},
    }
    clf = classifier(biased).fit(["x1", "x2", "y1", "y2"], ["a", "a", "b", "b"])
    assert clf.calibration_ == "contextual"
    np.testing.assert_allclose(clf.content_free_probs_, [0.8, 0.2])
    assert clf.predict(["x1", "x2", "y1", "y2"]).tolist() == ["a", "a", "b", "b"]


def test_auto_without_labels_is_contextual_and_refit_forgets_the_choice():
    clf = classifier(OVERSHOOT).fit(TEXTS, LABELS)
    assert clf.calibration_ is None
    clf.fit()  # no labels: nothing to choose by, contextual as documented
    assert clf.calibration_ == "contextual" and clf.temperature_ == 1.0
    np.testing.assert_allclose(clf.content_free_probs_, [0.99, 0.01])
    unfitted = classifier(OVERSHOOT)
    # x1: (.8/.99, .2/.01) -> b, as contextual calibration says before any fit
    assert unfitted.predict(["x1"]).tolist() == ["b"]
    assert classifier(OVERSHOOT, calibrate=None).predict(["x1"]).tolist() == ["a"]


def test_bad_calibrate_names_the_choices():
    with pytest.raises(ValidationError, match=r"calibrate: got 'yes'; pass 'auto', 'contextual'"):
        classifier(OVERSHOOT, calibrate="yes").fit()
