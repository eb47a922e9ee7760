"""Label proportions, partial and complementary labels: E-step oracles and synthetic truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from truelabel.exceptions import NotFittedError, ValidationError
from truelabel.weak import (
    ComplementaryLabelClassifier,
    LabelProportionClassifier,
    PartialLabelClassifier,
    candidate_matrix,
    candidate_posteriors,
    proportion_posteriors,
)


def _blobs(n, k, seed, sep=2.0, d=5):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(100).normal(size=(k, d)) * sep
    y = rng.integers(0, k, n)
    return rng.normal(size=(n, d)) + centers[y], y


def _supervised(X, y, Xt, yt):
    return LogisticRegression(max_iter=1000).fit(X, y).score(Xt, yt)


def test_proportion_projection_hand_example_and_structure():
    f = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = proportion_posteriors(f, np.array([0, 0]), np.array([[0.5, 0.5]]))
    np.testing.assert_allclose(q, [[0.25, 0.75], [0.75, 0.25]], atol=1e-9)  # r1/r0 = 3
    rng = np.random.default_rng(0)
    f = rng.dirichlet(np.ones(3), size=60)
    bags = rng.integers(0, 4, 60)
    props = rng.dirichlet(np.ones(3), size=4)
    q = proportion_posteriors(f, bags, props)
    for b in range(4):  # each bag's mean is its proportions
        np.testing.assert_allclose(q[bags == b].mean(axis=0), props[b], atol=1e-8)
        # q = f * r[bag] / Z: the ratio (q_c / f_c) / (q_0 / f_0) is one number per bag
        ratio = (q[bags == b] / f[bags == b]) / (q[bags == b, :1] / f[bags == b, :1])
        np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-7)
    uniform = proportion_posteriors(np.full((60, 3), 1 / 3), bags, props)
    np.testing.assert_allclose(uniform, props[bags], atol=1e-9)
    zero = proportion_posteriors(f, np.zeros(60, dtype=int), np.array([[0.7, 0.3, 0.0]]))
    assert (zero[:, 2] == 0).all()


def test_candidate_posteriors_hand_example():
    q = candidate_posteriors(
        np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]), np.array([[1, 0, 1], [0, 1, 0]]) == 1
    )
    np.testing.assert_allclose(q, [[0.5 / 0.7, 0, 0.2 / 0.7], [0, 1, 0]])


def test_label_proportions_recover_items_and_train_a_classifier():
    X, y = _blobs(1200, 3, seed=1)
    Xt, yt = _blobs(1000, 3, seed=2)
    rng = np.random.default_rng(3)
    order = np.argsort(rng.random(1200) + rng.random(1200) * (y == 0))  # bags of uneven mixes
    X, y = X[order], y[order]
    bags = np.repeat(np.arange(60), 20)
    props = np.stack([np.bincount(y[bags == b], minlength=3) / 20 for b in range(60)])
    model = LabelProportionClassifier().fit(X, bags, props)
    item_acc = (model.item_probas_.argmax(axis=1) == y).mean()
    baseline = (props[bags].argmax(axis=1) == y).mean()
    assert baseline < 0.7 and item_acc > 0.9
    for b in range(60):
        np.testing.assert_allclose(model.item_probas_[bags == b].mean(axis=0), props[b], atol=1e-6)
    assert (model.predict(Xt) == yt).mean() > _supervised(X, y, Xt, yt) - 0.03
    # the same with named classes and bag ids
    frame = pd.DataFrame(props, index=[f"bag{b}" for b in range(60)], columns=["a", "b", "c"])
    ids = np.array([f"bag{b}" for b in bags])
    named = LabelProportionClassifier(max_iter=3).fit(X[:200], ids[:200], frame)
    by_index = LabelProportionClassifier(max_iter=3).fit(X[:200], bags[:200], props)
    assert list(named.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(named.item_probas_, by_index.item_probas_)
    assert set(named.predict(Xt[:50])) <= {"a", "b", "c"}


def test_partial_labels_recover_most_of_the_truth():
    X, y = _blobs(1000, 4, seed=4)
    Xt, yt = _blobs(1000, 4, seed=5)
    rng = np.random.default_rng(6)
    cands = rng.random((1000, 4)) < 0.5
    cands[np.arange(1000), y] = True
    model = PartialLabelClassifier().fit(X, cands)
    assert (model.item_probas_.argmax(axis=1) == y).mean() > 0.9
    assert (model.item_probas_[~cands] == 0).all()
    assert (model.predict(Xt) == yt).mean() > _supervised(X, y, Xt, yt) - 0.03
    # picking a candidate at random is far worse
    assert (cands / cands.sum(axis=1, keepdims=True))[np.arange(1000), y].mean() < 0.65


def test_complementary_labels_recover_most_of_the_truth():
    X, y = _blobs(2000, 4, seed=7)
    Xt, yt = _blobs(1000, 4, seed=8)
    comp = (y + np.random.default_rng(9).integers(1, 4, 2000)) % 4  # one wrong class, uniform
    model = ComplementaryLabelClassifier().fit(X, comp)
    assert (model.item_probas_[np.arange(2000), comp] == 0).all()
    assert (model.item_probas_.argmax(axis=1) == y).mean() > 0.85
    assert (model.predict(Xt) == yt).mean() > _supervised(X, y, Xt, yt) - 0.05
    as_matrix = np.zeros((300, 4), dtype=bool)
    as_matrix[np.arange(300), comp[:300]] = True
    a = ComplementaryLabelClassifier(max_iter=3).fit(X[:300], comp[:300])
    b = ComplementaryLabelClassifier(max_iter=3).fit(X[:300], as_matrix)
    np.testing.assert_allclose(a.item_probas_, b.item_probas_)


def test_candidate_matrix_and_errors():
    assert candidate_matrix([["b"], ["a", "c"]], ["a", "b", "c"]).tolist() == [
        [False, True, False],
        [True, False, True],
    ]
    X = np.zeros((3, 2))
    with pytest.raises(ValidationError, match="sets: item 1 names 'd'"):
        candidate_matrix([["a"], ["d"]], ["a", "b"])
    with pytest.raises(ValidationError, match="candidates: item 1 has an empty candidate set"):
        PartialLabelClassifier().fit(X, np.array([[1, 0], [0, 0], [1, 1]]))
    with pytest.raises(ValidationError, match="candidates: has 2 rows, X has 3"):
        PartialLabelClassifier().fit(X, np.array([[1, 0], [0, 1]]))
    with pytest.raises(ValidationError, match="candidates: holds values other than 0/1"):
        PartialLabelClassifier().fit(X, np.array([[1, 0], [2, 1], [1, 1]]))
    with pytest.raises(ValidationError, match="complementary: item 0 excludes every class"):
        ComplementaryLabelClassifier().fit(X, np.array([[1, 1], [0, 1], [1, 0]]))
    with pytest.raises(
        ValidationError, match=r"complementary: item 2 excludes class 5, outside \[-1, 3\)"
    ):
        ComplementaryLabelClassifier(n_classes=3).fit(X, np.array([0, 1, 5]))
    with pytest.raises(
        ValidationError, match="proportions: bag 1 has shares \\[0.5, 0.4\\] summing to 0.9, not 1"
    ):
        LabelProportionClassifier().fit(X, np.array([0, 1, 1]), np.array([[0.5, 0.5], [0.5, 0.4]]))
    with pytest.raises(ValidationError, match="bags: bag 'z' has no row in proportions"):
        LabelProportionClassifier().fit(
            X, np.array(["x", "x", "z"]), pd.DataFrame([[1.0, 0.0]], index=["x"])
        )
    with pytest.raises(
        ValidationError,
        match=r"bags: with an array of proportions, bags must be row indices in \[0, 1\)",
    ):
        LabelProportionClassifier().fit(X, np.array([0, 0, 1]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValidationError, match="bags: expected one bag per item \\(3\\)"):
        LabelProportionClassifier().fit(X, np.array([0, 0]), np.array([[1.0, 0.0]]))
    with pytest.raises(NotFittedError, match="PartialLabelClassifier is not fitted"):
        PartialLabelClassifier().predict(X)
    with pytest.raises(
        ValidationError, match="estimator: KNeighborsClassifier.fit does not take sample_weight"
    ):
        from sklearn.neighbors import KNeighborsClassifier

        PartialLabelClassifier(KNeighborsClassifier()).fit(X, np.array([[1, 0], [0, 1], [1, 1]]))
