"""SelfTrainingClassifier and its pieces, against a small stand-in base with the
``fit_embeddings`` / ``predict_proba_embeddings`` / ``classes_`` interface."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from truelabel import LocalBackend, NotFittedError, TruelabelWarning, ValidationError
from truelabel.model import SelfTrainingClassifier
from truelabel.model._pseudo import (
    fit_temperature,
    knn_cache_probs,
    select_balanced,
    stratified_folds,
    temper,
    unit_rows,
)


class CentroidBase(BaseEstimator):
    """Stand-in text classifier: softmax(scale * cosine to each class centroid)."""

    def __init__(self, classes=None, scale=5.0):
        self.classes = classes
        self.scale = scale

    def fit_embeddings(self, X, labels):
        self.classes_ = np.asarray(list(self.classes), dtype=object)
        x = unit_rows(np.asarray(X))
        lab = np.asarray(labels, dtype=str)
        self.centroids_ = unit_rows(np.stack([x[lab == c].mean(axis=0) for c in self.classes_]))
        return self

    def predict_proba_embeddings(self, X):
        z = self.scale * unit_rows(np.asarray(X)) @ self.centroids_.T
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


CLASSES = ["a", "b", "c"]


def blobs(n_per, rng, spread=0.8, priors=None, dim=8):
    """Three Gaussian blobs on unit directions; labels as class names."""
    centers = np.eye(dim)[:3] * 2.0
    counts = [n_per] * 3 if priors is None else [int(n_per * 3 * p) for p in priors]
    y = np.repeat(np.arange(3), counts)
    x = centers[y] + rng.normal(scale=spread, size=(y.size, dim))
    return x.astype(np.float32), np.asarray(CLASSES, dtype=object)[y]


def shots(x, y, k, rng):
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False) for c in CLASSES])
    rest = np.setdiff1d(np.arange(y.size), idx)
    return x[idx], y[idx], x[rest], y[rest]


# ---------------------------------------------------------------- pieces
def naive_select(p, quota, min_conf=0.0):
    idx, lab = [], []
    pred = p.argmax(1)
    for k in range(p.shape[1]):
        cand = [i for i in range(p.shape[0]) if pred[i] == k and p[i, k] >= min_conf]
        cand.sort(key=lambda i: (-p[i, k], i))
        idx += cand[: quota[k]]
        lab += [k] * min(quota[k], len(cand))
    order = np.argsort(idx)
    return np.asarray(idx)[order], np.asarray(lab)[order]


def test_select_balanced_hand_example_gives_hard_class_its_share():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6], [0.45, 0.55]])
    idx, lab = select_balanced(p, np.array([2, 2]))
    # a global top-4 by confidence would take items 0, 1, 2, 3 (three of class 0)
    assert idx.tolist() == [0, 1, 3, 4] and lab.tolist() == [0, 0, 1, 1]
    idx, lab = select_balanced(p, np.array([1, 2]), min_confidence=0.58)
    assert idx.tolist() == [0, 3] and lab.tolist() == [0, 1]


def test_select_balanced_matches_naive_loop():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3, 1.0, 3.0, 0.5], size=300)
    p[:10] = p[0]  # ties are broken by index
    quota = np.array([5, 0, 17, 300])
    for mc in (0.0, 0.5):
        got = select_balanced(p, quota, mc)
        want = naive_select(p, quota, mc)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def naive_cache(q, mem, mem_lab, k_cls, n_nb, beta, exclude=None):
    out = np.zeros((q.shape[0], k_cls))
    for i in range(q.shape[0]):
        sims = [(float(q[i] @ mem[j]), j) for j in range(mem.shape[0])]
        if exclude is not None and exclude[i] >= 0:
            sims = [s for s in sims if s[1] != exclude[i]]
        sims.sort(key=lambda s: -s[0])
        for s, j in sims[:n_nb]:
            out[i, mem_lab[j]] += np.exp(beta * (s - 1))
        out[i] /= out[i].sum()
    return out


def test_knn_cache_matches_naive_loop_and_skips_self():
    rng = np.random.default_rng(1)
    mem = unit_rows(rng.normal(size=(30, 5)))
    lab = rng.integers(0, 3, 30)
    q = unit_rows(rng.normal(size=(20, 5)))
    got = knn_cache_probs(q, mem, lab, 3, n_neighbors=4, sharpness=3.0)
    np.testing.assert_allclose(got, naive_cache(q, mem, lab, 3, 4, 3.0), rtol=1e-5)
    # queries that are memory rows: without exclusion they vote for themselves
    exclude = np.full(30, -1)
    exclude[:10] = np.arange(10)
    got = knn_cache_probs(mem, mem, lab, 3, n_neighbors=4, sharpness=3.0, exclude=exclude)
    np.testing.assert_allclose(got, naive_cache(mem, mem, lab, 3, 4, 3.0, exclude), rtol=1e-5)
    ref = knn_cache_probs(mem, mem, lab, 3, n_neighbors=4, exclude=exclude, backend=LocalBackend(1))
    for be, cs in ((LocalBackend(2), 7), (LocalBackend(1), 3)):
        got = knn_cache_probs(
            mem, mem, lab, 3, n_neighbors=4, exclude=exclude, backend=be, chunk_size=cs
        )
        assert np.array_equal(got, ref)


def test_stratified_folds_deal_each_class_evenly():
    y = np.repeat(np.arange(3), [8, 5, 4])
    folds = stratified_folds(y, 4, np.random.default_rng(0))
    for c in range(3):
        counts = np.bincount(folds[y == c], minlength=4)
        assert counts.max() - counts.min() <= 1
    assert not np.array_equal(folds, stratified_folds(y, 4, np.random.default_rng(1)))


def test_fit_temperature_recovers_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=1.5, size=(20_000, 4))
    truth = temper(np.exp(z), 1.0)
    y = (rng.random(20_000)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    overconfident = temper(truth, 0.5)  # logits doubled
    assert fit_temperature(overconfident, y) == pytest.approx(2.0, abs=0.1)


# ---------------------------------------------------------------- estimator
def fitted(rng_seed=0, **kw):
    rng = np.random.default_rng(rng_seed)
    x, y = blobs(200, rng, spread=1.1)
    xl, yl, xp, yp = shots(x, y, 3, rng)
    kw.setdefault("random_state", 0)
    kw.setdefault("prior_shift", False)
    st = SelfTrainingClassifier(CentroidBase(classes=CLASSES), **kw)
    return st.fit_embeddings(xl, yl, xp), (xl, yl, xp, yp)


def test_round_zero_is_the_base_and_the_mixture_is_exact():
    st, (xl, yl, xp, _) = fitted(max_rounds=0, cache_weight=0.0, calibrate=False)
    base = CentroidBase(classes=CLASSES).fit_embeddings(xl, yl)
    np.testing.assert_allclose(
        st.predict_proba_embeddings(xp), base.predict_proba_embeddings(xp), rtol=1e-6
    )
    st, _ = fitted(max_rounds=0, cache_weight=0.5, calibrate=False)
    cache = knn_cache_probs(unit_rows(xp), unit_rows(xl), np.searchsorted(CLASSES, yl), 3)
    want = 0.5 * base.predict_proba_embeddings(xp) + 0.5 * cache
    np.testing.assert_allclose(st.predict_proba_embeddings(xp), want, rtol=1e-6)


def test_round_one_pseudo_labels_are_class_balanced_quotas():
    # class "c" is hard: its items are noisier, so its confidences are low
    rng = np.random.default_rng(4)
    x, y = blobs(150, rng, spread=0.6)
    hard = y == "c"
    x[hard] += rng.normal(scale=1.2, size=(hard.sum(), x.shape[1])).astype(np.float32)
    xl, yl, xp, _ = shots(x, y, 3, rng)
    kw = {"max_rounds": 1, "per_class": 20, "cache_weight": 0.0, "stop": "changes"}
    st = SelfTrainingClassifier(CentroidBase(classes=CLASSES), calibrate=False, **kw)
    st.fit_embeddings(xl, yl, xp)
    base = CentroidBase(classes=CLASSES).fit_embeddings(xl, yl)
    p = base.predict_proba_embeddings(xp)
    quota = np.minimum(20, np.ceil(0.5 * np.bincount(p.argmax(1), minlength=3))).astype(int)
    want = naive_select(p, quota)
    assert np.array_equal(st.pseudo_indices_, want[0])
    assert np.array_equal(st.pseudo_labels_, want[1])
    assert st.history_[1]["pseudo_per_class"] == [20, 20, 20]
    # a single global threshold taking the 60 most confident would starve class "c"
    top = np.argsort(-p.max(1), kind="stable")[:60]
    assert np.bincount(p[top].argmax(1), minlength=3)[2] < 10


def test_quota_grows_by_per_class_every_round():
    st, _ = fitted(
        max_rounds=3, per_class=5, max_share=1.0, cache_weight=0.0, stop="changes", stop_tol=0.0
    )
    counts = [h["pseudo_per_class"] for h in st.history_]
    assert counts[:3] == [[0, 0, 0], [5, 5, 5], [10, 10, 10]]


def test_auto_step_is_the_median_labeled_count_per_class():
    """per_class="auto": labels 9, 3, 3 per class give 3 pseudo-labels per class per round
    (the median; the mean would give 5, the old share 0.03 of 591 / 3 pool items 6)."""
    rng = np.random.default_rng(0)
    x, y = blobs(200, rng, spread=1.1)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in zip(CLASSES, (9, 3, 3))]
    )
    rest = np.setdiff1d(np.arange(y.size), idx)
    st = SelfTrainingClassifier(
        CentroidBase(classes=CLASSES), max_rounds=2, max_share=1.0, cache_weight=0.0,
        stop="changes", stop_tol=0.0, prior_shift=False, random_state=0,
    ).fit_embeddings(x[idx], y[idx], x[rest])  # fmt: skip
    assert st.per_class == "auto"  # the default
    counts = [h["pseudo_per_class"] for h in st.history_]
    assert counts == [[0, 0, 0], [3, 3, 3], [6, 6, 6]]


def test_max_share_caps_a_class_rare_in_the_pool():
    rng = np.random.default_rng(5)
    x, y = blobs(100, rng, spread=0.6, priors=[0.48, 0.48, 0.04])
    xl, yl, xp, _ = shots(x, y, 3, rng)
    st = SelfTrainingClassifier(
        CentroidBase(classes=CLASSES),
        max_rounds=1,
        per_class=40,
        max_share=0.5,
        cache_weight=0.0,
        calibrate=False,
        stop="changes",
    ).fit_embeddings(xl, yl, xp)
    n_c = int(
        (
            CentroidBase(classes=CLASSES)
            .fit_embeddings(xl, yl)
            .predict_proba_embeddings(xp)
            .argmax(1)
            == 2
        ).sum()
    )
    assert st.history_[1]["pseudo_per_class"][2] == int(np.ceil(0.5 * n_c)) < 40


def test_self_training_improves_on_the_base():
    gains = []
    for seed in range(3):
        st, (xl, yl, xp, yp) = fitted(seed, max_rounds=4, stop="changes")
        base = CentroidBase(classes=CLASSES).fit_embeddings(xl, yl)
        acc_base = (base.classes_[base.predict_proba_embeddings(xp).argmax(1)] == yp).mean()
        acc_st = (st.predict_embeddings(xp) == yp).mean()
        gains.append(acc_st - acc_base)
        assert st.n_rounds_ >= 1
    assert np.mean(gains) > 0.03


def test_stopping_rule_converged_fires_before_max_rounds():
    st, _ = fitted(max_rounds=20, stop="changes", stop_tol=0.02)
    assert st.stop_reason_ == "converged" and st.n_rounds_ < 20
    assert st.history_[-1]["changed"] <= 0.02
    assert all(h["changed"] > 0.02 for h in st.history_[1:-1])


def test_stopping_rule_exhausted(monkeypatch):
    import truelabel.model._strounds as mod

    calls = []

    def fixed(q, quota, min_confidence=0.0):  # a selection that cannot grow
        calls.append(quota.copy())
        idx = np.arange(12)
        return idx, idx % 3

    monkeypatch.setattr(mod, "select_balanced", fixed)
    st, _ = fitted(max_rounds=6, stop="changes", stop_tol=0.0, calibrate=False)
    assert st.stop_reason_ == "exhausted" and st.n_rounds_ == 1
    assert len(calls) == 2 and np.all(calls[1] >= calls[0])
    assert st.pseudo_indices_.tolist() == list(range(12))


def test_holdout_rule_keeps_the_best_round(monkeypatch):
    losses = iter([10.0, 0.5, 0.7, 0.1])
    seen = []

    def scripted(self, oof_p, oof_c, y):
        seen.append(1)
        return 0.0, 1.0, next(losses)

    monkeypatch.setattr(SelfTrainingClassifier, "_choose", scripted)
    st, _ = fitted(max_rounds=5, stop_tol=0.0, calibrate=False)
    assert st.stop_reason_ == "holdout" and st.n_rounds_ == 1
    assert len(seen) == 3 and len(st.history_) == 3
    assert st.pseudo_indices_.size == st.history_[1]["n_pseudo"]


def test_no_gain_over_round_zero_keeps_round_zero(monkeypatch):
    def scripted(self, oof_p, oof_c, y):  # later rounds look better, optimistically
        return 0.0, 1.0, 1e-3 if not self.history_ else 1e-4

    monkeypatch.setattr(SelfTrainingClassifier, "_choose", scripted)
    st, (xl, yl, xp, _) = fitted(max_rounds=3, stop_tol=0.0, calibrate=False)
    assert st.stop_reason_ == "no_gain" and st.n_rounds_ == 0
    assert st.pseudo_indices_.size == 0 and st.holdout_log_loss_["round_0"] == 1e-3
    assert st.holdout_log_loss_["kept"] > 1e-3 and len(st.history_) >= 2
    base = CentroidBase(classes=CLASSES).fit_embeddings(xl, yl)
    np.testing.assert_allclose(
        st.predict_proba_embeddings(xp), base.predict_proba_embeddings(xp), rtol=1e-6
    )


def test_temperature_comes_from_the_honest_nested_cross_fit():
    rng = np.random.default_rng(2)
    x, y = blobs(120, rng, spread=1.1)
    xl, yl, xp, _ = shots(x, y, 4, rng)
    kw = {"per_class": 10, "stop": "changes", "stop_tol": 0.0, "prior_shift": False}
    st = SelfTrainingClassifier(
        CentroidBase(classes=CLASSES, scale=2.0), max_rounds=2, random_state=5, **kw
    ).fit_embeddings(xl, yl, xp)
    assert st.n_rounds_ >= 1
    folds = stratified_folds(np.searchsorted(CLASSES, yl), 4, np.random.default_rng(5))
    oof = np.empty((yl.size, 3))
    for f in range(4):  # each fold: a whole self-training run without its labels
        tr, te = folds != f, folds == f
        sub = SelfTrainingClassifier(
            CentroidBase(classes=CLASSES, scale=2.0),
            max_rounds=st.n_rounds_,
            cache_weight=st.cache_weight_,
            calibrate=False,
            **kw,
        ).fit_embeddings(xl[tr], yl[tr], xp)
        oof[te] = sub.predict_proba_embeddings(xl[te])
    assert st.temperature_ == pytest.approx(fit_temperature(oof, np.searchsorted(CLASSES, yl)))


def test_calibration_lowers_held_out_log_loss():
    rng = np.random.default_rng(7)
    x, y = blobs(300, rng, spread=1.0)
    xl, yl, xp, yp = shots(x, y, 8, rng)
    xt, yt = blobs(300, np.random.default_rng(8), spread=1.0)
    iy = np.searchsorted(CLASSES, yt)
    losses = {}
    for cal in (False, True):
        st = SelfTrainingClassifier(
            CentroidBase(classes=CLASSES, scale=1.0),
            max_rounds=2,
            cache_weight=0.0,
            calibrate=cal,
            random_state=0,
        ).fit_embeddings(xl, yl, xp)
        p = st.predict_proba_embeddings(xt)
        losses[cal] = -np.log(p[np.arange(iy.size), iy]).mean()
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert st.temperature_ < 0.5  # the base (scale 1) is under-confident
    assert losses[True] < losses[False] - 0.05


def test_prior_shift_estimates_pool_priors_and_reweights():
    rng = np.random.default_rng(9)
    x, y = blobs(200, rng, spread=1.0, priors=[0.7, 0.2, 0.1])
    xl, yl, xp, yp = shots(x, y, 6, rng)
    st = SelfTrainingClassifier(
        CentroidBase(classes=CLASSES), max_rounds=1, prior_shift=True, random_state=0
    ).fit_embeddings(xl, yl, xp)
    true = np.bincount(np.searchsorted(CLASSES, yp), minlength=3) / yp.size
    assert np.abs(st.pool_priors_ - true).sum() < np.abs(st.train_priors_ - true).sum() / 2
    plain = SelfTrainingClassifier(
        CentroidBase(classes=CLASSES), max_rounds=1, prior_shift=False, random_state=0
    ).fit_embeddings(xl, yl, xp)
    q = plain.predict_proba_embeddings(xp) * st.pool_priors_ / st.train_priors_
    np.testing.assert_allclose(
        st.predict_proba_embeddings(xp), q / q.sum(1, keepdims=True), rtol=1e-9, atol=1e-15
    )
    np.testing.assert_allclose(st.transduction_.sum(axis=1), 1.0)


def test_deterministic_with_random_state():
    a, (_, _, xp, _) = fitted(3, max_rounds=2)
    b, _ = fitted(3, max_rounds=2)
    assert np.array_equal(a.predict_proba_embeddings(xp), b.predict_proba_embeddings(xp))
    assert a.temperature_ == b.temperature_
    # the seed draws the calibration folds: another seed, another temperature
    c, _ = fitted(3, max_rounds=2, random_state=1)
    assert c.temperature_ != a.temperature_


def test_report_per_class_accuracy():
    st, (_, _, xp, yp) = fitted(max_rounds=1)
    pred = st.predict_embeddings(xp)
    df = st.report_embeddings(xp, yp)
    for c in CLASSES:
        m = yp == c
        assert df.loc[c, "n"] == m.sum() and df.loc[c, "accuracy"] == (pred[m] == c).mean()
    assert df.loc["all", "accuracy"] == (pred == yp).mean()
    assert st.per_class_accuracy_.index.tolist() == CLASSES


def test_texts_path_matches_embeddings_path():
    rng = np.random.default_rng(0)
    x, y = blobs(40, rng)
    texts = [f"t{i}" for i in range(y.size)]
    table = dict(zip(texts, x, strict=True))

    class FakeEncoder:
        name = "fake"

        def encode(self, items):
            return np.stack([table[t] for t in items]).astype(np.float32)

    lab = np.r_[0:3, 40:43, 80:83]
    pool = np.setdiff1d(np.arange(y.size), lab)
    kw = {"max_rounds": 1, "random_state": 0}
    a = SelfTrainingClassifier(CentroidBase(classes=CLASSES), encoder=FakeEncoder(), **kw)
    a.fit([texts[i] for i in lab], y[lab], [texts[i] for i in pool])
    b = SelfTrainingClassifier(CentroidBase(classes=CLASSES), **kw)
    b.fit_embeddings(x[lab], y[lab], x[pool])
    assert np.array_equal(a.predict([texts[i] for i in pool]), b.predict_embeddings(x[pool]))
    assert a.score([texts[i] for i in pool], y[pool]) == pytest.approx(
        (b.predict_embeddings(x[pool]) == y[pool]).mean()
    )


def test_single_shot_warns_and_stays_uncalibrated():
    rng = np.random.default_rng(0)
    x, y = blobs(30, rng)
    xl, yl, xp, _ = shots(x, y, 1, rng)
    with pytest.warns(TruelabelWarning, match="fewer than 2 labeled items"):
        st = SelfTrainingClassifier(CentroidBase(classes=CLASSES), max_rounds=1).fit_embeddings(
            xl, yl, xp
        )
    assert st.temperature_ == 1.0 and st.cache_weight_ == 0.5


# ---------------------------------------------------------------- bad inputs
def _data():
    rng = np.random.default_rng(0)
    x, y = blobs(20, rng)
    return shots(x, y, 3, rng)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: (d[0], d[1], d[2][:, :5]), "X_pool: has 5 columns but X_labeled has 8"),
        (lambda d: (d[0], d[1], d[2][:0]), "X_pool: is empty"),
        (lambda d: (d[0], np.r_[d[1][:-1], ["B"]], d[2]), "labels: 'B' is not one of the classes"),
        (lambda d: (d[0], d[1][:-1], d[2]), r"labels: has shape \(8,\), expected \(9,\)"),
        (
            lambda d: (
                d[0],
                d[1],
                np.where(np.arange(d[2].size).reshape(d[2].shape) == 3, np.nan, d[2]),
            ),
            "X_pool: row 0 contains NaN",
        ),
    ],
)
def test_bad_inputs(change, match):
    xl, yl, xp = change(_data()[:3])
    with pytest.raises(ValidationError, match=match):
        SelfTrainingClassifier(CentroidBase(classes=CLASSES)).fit_embeddings(xl, yl, xp)


def test_bad_label_suggests_the_closest_class():
    xl, yl, xp, _ = _data()
    yl = np.r_[yl[:-1], ["B"]]
    with pytest.raises(ValidationError, match="did you mean 'b'"):
        SelfTrainingClassifier(CentroidBase(classes=CLASSES)).fit_embeddings(xl, yl, xp)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"per_class": 0}, "per_class: got 0"),
        ({"per_class": 1.5}, "per_class: got 1.5"),
        ({"per_class": "fast"}, "per_class: got 'fast'; pass 'auto'"),
        ({"cache_weight": 2.0}, "cache_weight: got 2.0"),
        ({"stop": "never"}, "stop: got 'never'"),
        ({"max_share": 0.0}, "max_share: got 0.0"),
        ({"n_folds": 1}, "n_folds: got 1"),
        ({"max_rounds": -1}, "max_rounds: got -1"),
    ],
)
def test_bad_settings(kwargs, match):
    xl, yl, xp, _ = _data()
    with pytest.raises(ValidationError, match=match):
        SelfTrainingClassifier(CentroidBase(classes=CLASSES), **kwargs).fit_embeddings(xl, yl, xp)


def test_base_without_interface_and_unfitted_use():
    xl, yl, xp, _ = _data()
    with pytest.raises(ValidationError, match=r"base: .* has no fit_embeddings\(\)"):
        SelfTrainingClassifier(object()).fit_embeddings(xl, yl, xp)
    with pytest.raises(NotFittedError, match="not fitted"):
        SelfTrainingClassifier(CentroidBase(classes=CLASSES)).predict_proba_embeddings(xp)
    st = SelfTrainingClassifier(CentroidBase(classes=CLASSES), max_rounds=0).fit_embeddings(
        xl, yl, xp
    )
    with pytest.raises(ValidationError, match="X: has 4 columns, the model was fitted on 8"):
        st.predict_proba_embeddings(xp[:, :4])
    with pytest.raises(ValidationError, match="unlabeled_texts: got str"):
        st.fit(["x"], ["a"], "pool")


def test_eval_set_history_is_each_rounds_accuracy_and_never_steers_the_fit():
    rng = np.random.default_rng(0)
    x, y = blobs(200, rng, spread=1.1)
    xl, yl, xp, yp = shots(x, y, 3, rng)
    kw = {"max_rounds": 2, "per_class": 10, "stop": "changes", "stop_tol": 0.0, "random_state": 0}
    st = SelfTrainingClassifier(CentroidBase(classes=CLASSES), **kw)
    st.fit_embeddings(xl, yl, xp, eval_set=(xp, yp))
    plain = SelfTrainingClassifier(CentroidBase(classes=CLASSES), **kw).fit_embeddings(xl, yl, xp)
    np.testing.assert_array_equal(
        st.predict_proba_embeddings(xp), plain.predict_proba_embeddings(xp)
    )
    base = CentroidBase(classes=CLASSES).fit_embeddings(xl, yl)
    pred = base.classes_[base.predict_proba_embeddings(xp).argmax(1)]
    h0 = st.history_[0]
    assert h0["base"]["accuracy"] == pytest.approx((pred == yp).mean())
    want = {c: float((pred[yp == c] == c).mean()) for c in CLASSES}
    assert h0["base"]["per_class"] == pytest.approx(want)
    assert len(st.history_) == 3 and all("accuracy" in h for h in st.history_)
