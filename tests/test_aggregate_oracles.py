"""Exact small oracles: EM steps against naive loops, agreement metrics against published
worked examples, annotator quality against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from truelabel import TruelabelWarning, ValidationError
from truelabel.aggregate import (
    MACE,
    Annotations,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    WeightedMajorityVote,
    annotator_quality,
    cohen_kappa_pairwise,
    fleiss_kappa,
    krippendorff_alpha,
    wilson_interval,
)


def _df(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


# six items, three annotators, two classes, worked by hand below
SIX = _df(
    [
        (1, "a", 0), (1, "b", 0), (1, "c", 1),
        (2, "a", 1), (2, "b", 1), (2, "c", 1),
        (3, "a", 0), (3, "b", 1),
        (4, "a", 1), (4, "c", 0),
        (5, "b", 0), (5, "c", 0),
        (6, "a", 0),
    ]
)  # fmt: skip


def test_majority_vote_by_hand():
    mv = MajorityVote(random_state=0).fit(SIX)
    np.testing.assert_allclose(
        mv.probas_.to_numpy(), [[2 / 3, 1 / 3], [0, 1], [0.5, 0.5], [0.5, 0.5], [1, 0], [1, 0]]
    )
    assert mv.labels_.loc[[1, 2, 5, 6]].tolist() == [0, 1, 0, 0]
    # skills: soft agreement with the vote shares, per annotator
    a = (2 / 3 + 1 + 0.5 + 0.5 + 1) / 5  # items 1, 2, 3, 4, 6
    b = (2 / 3 + 1 + 0.5 + 1) / 4
    c = (1 / 3 + 1 + 0.5 + 1) / 4
    np.testing.assert_allclose(mv.skills_.to_numpy(), [a, b, c])


def test_weighted_majority_vote_given_weights_by_hand():
    w = WeightedMajorityVote(weights={"a": 3.0, "b": 1.0, "c": 1.0}).fit(SIX)
    np.testing.assert_allclose(
        w.probas_.to_numpy(), [[0.8, 0.2], [0, 1], [0.75, 0.25], [0.25, 0.75], [1, 0], [1, 0]]
    )


def test_weighted_majority_vote_estimated_weights_one_round():
    w = WeightedMajorityVote(n_rounds=1).fit(SIX)
    mv = MajorityVote().fit(SIX).probas_.to_numpy()
    votes = {"a": [(1, 0), (2, 1), (3, 0), (4, 1), (6, 0)], "b": [(1, 0), (2, 1), (3, 1), (5, 0)],
             "c": [(1, 1), (2, 1), (4, 0), (5, 0)]}  # fmt: skip
    logits = np.zeros((6, 2))
    for answers in votes.values():
        agree = sum(mv[i - 1, lab] for i, lab in answers)
        p = (agree + 1) / (len(answers) + 2)
        weight = max(0.0, math.log(p / (1 - p)))
        for i, lab in answers:
            logits[i - 1, lab] += weight
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(w.probas_.to_numpy(), expected, atol=1e-12)


def _answers(df: pd.DataFrame) -> tuple[list[tuple[int, int, int]], int, int]:
    ann = Annotations(df)
    rows = list(zip(ann.item_codes, ann.annotator_codes, ann.label_codes, strict=True))
    return rows, ann.n_items, ann.n_annotators


def _naive_e(rows, n, conf, prior):
    logp = np.tile(np.log(prior), (n, 1))
    for i, j, lab in rows:
        logp[i] += np.log(conf[j, :, lab])
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def _naive_counts(rows, post, n_annot, k):
    counts = np.zeros((n_annot, k, k))
    for i, j, lab in rows:
        counts[j, :, lab] += post[i]
    return counts


def _naive_ds_m(rows, post, n_annot, k, smoothing, strength):
    counts = _naive_counts(rows, post, n_annot, k)
    alpha = np.full((k, k), smoothing / k)
    pooled = counts.sum(axis=0) + 1 / k
    alpha = alpha + strength * pooled / pooled.sum(axis=1, keepdims=True)
    conf = (counts + alpha) / (counts + alpha).sum(axis=2, keepdims=True)
    prior = (post.sum(axis=0) + 1) / (len(post) + k)
    return conf, prior


@pytest.mark.parametrize(("smoothing", "strength"), [(0.01, 0.0), (1.0, 2.0)])
def test_dawid_skene_one_em_step_against_naive_loops(smoothing, strength):
    rows, n, na = _answers(SIX)
    mv = MajorityVote().fit(SIX).probas_.to_numpy()
    # run_em: M(start) -> E -> M -> final E, with max_iter=1
    conf, prior = _naive_ds_m(rows, mv, na, 2, smoothing, strength)
    post1 = _naive_e(rows, n, conf, prior)
    conf, prior = _naive_ds_m(rows, post1, na, 2, smoothing, strength)
    post2 = _naive_e(rows, n, conf, prior)
    with pytest.warns(TruelabelWarning, match="did not converge"):
        ds = DawidSkene(max_iter=1, smoothing=smoothing, prior_strength=strength).fit(SIX)
    np.testing.assert_allclose(ds.probas_.to_numpy(), post2, atol=1e-6)
    np.testing.assert_allclose(ds.confusions_, conf, atol=1e-6)
    np.testing.assert_allclose(ds.class_prior_, prior, atol=1e-6)
    np.testing.assert_allclose(ds.skills_.to_numpy(), np.einsum("k,jkk->j", prior, conf), atol=1e-6)


def test_one_coin_one_em_step_against_naive_loops():
    rows, n, na = _answers(SIX)
    k, a, b = 2, 0.7 * 2.0, 0.3 * 2.0

    def m(post):
        right = np.zeros(na)
        total = np.zeros(na)
        for i, j, lab in rows:
            right[j] += post[i, lab]
            total[j] += 1
        p = np.maximum((right + a) / (total + a + b), 1 / k)
        conf = np.stack([np.array([[q, 1 - q], [1 - q, q]]) for q in p])
        return conf, np.full(k, 1 / k)

    post = MajorityVote().fit(SIX).probas_.to_numpy()
    for _ in range(2):
        post = _naive_e(rows, n, *m(post))
    with pytest.warns(TruelabelWarning):
        oc = OneCoinDawidSkene(max_iter=1).fit(SIX)
    np.testing.assert_allclose(oc.probas_.to_numpy(), post, atol=1e-6)


def test_mace_one_em_step_against_naive_loops():
    rows, n, na = _answers(SIX)
    k, a, b, s = 2, 0.5, 0.5, 1.0

    def m(post, comp, xi):
        known, total = np.zeros(na), np.zeros(na)
        spam = np.zeros((na, k))
        for i, j, lab in rows:
            r = comp[j] / (comp[j] + (1 - comp[j]) * xi[j, lab])  # P(knows | truth = lab)
            known[j] += post[i, lab] * r
            spam[j, lab] += 1 - post[i, lab] * r
            total[j] += 1
        comp = (known + a) / (total + a + b)
        xi = (spam + s) / (spam.sum(axis=1, keepdims=True) + k * s)
        conf = (1 - comp)[:, None, None] * xi[:, None, :] + comp[:, None, None] * np.eye(k)
        prior = (post.sum(axis=0) + 1) / (n + k)
        return conf, prior, comp, xi

    post = MajorityVote().fit(SIX).probas_.to_numpy()
    comp, xi = np.full(na, 0.5), np.full((na, k), 0.5)
    for _ in range(2):
        conf, prior, comp, xi = m(post, comp, xi)
        post = _naive_e(rows, n, conf, prior)
    with pytest.warns(TruelabelWarning):
        mace = MACE(max_iter=1).fit(SIX)
    np.testing.assert_allclose(mace.probas_.to_numpy(), post, atol=1e-6)
    np.testing.assert_allclose(mace.competence_, comp, atol=1e-6)
    np.testing.assert_allclose(mace.skills_.to_numpy(), comp, atol=1e-6)


# --- agreement metrics: published worked examples -------------------------------------------
FLEISS_WIKIPEDIA = [  # Wikipedia "Fleiss' kappa", worked example: 10 items, 14 raters, 5 classes
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def _from_counts(table):
    rows = []
    for i, counts in enumerate(table):
        rater = 0
        for k, c in enumerate(counts):
            for _ in range(c):
                rows.append((i, rater, k))
                rater += 1
    return _df(rows)


def test_fleiss_kappa_wikipedia_example():
    # P_bar = 0.378, P_e = 0.213 (p_j = .143 .200 .279 .150 .229), kappa = 0.210
    t = np.array(FLEISS_WIKIPEDIA, dtype=float)
    p_i = ((t**2).sum(axis=1) - 14) / (14 * 13)
    np.testing.assert_allclose(
        p_i, [1.0, 0.253, 0.308, 0.440, 0.330, 0.462, 0.242, 0.176, 0.286, 0.286], atol=5e-4
    )
    assert fleiss_kappa(_from_counts(FLEISS_WIKIPEDIA)) == pytest.approx(0.20993, abs=1e-5)


def test_krippendorff_alpha_nominal_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units,
    # nominal alpha = 0.743 (missing answers allowed; unit 12 has one answer and is not pairable)
    obs = """1 2 3 3 2 1 4 1 2 . . .
             1 2 3 3 2 2 4 1 2 5 . 3
             . 3 3 3 2 3 4 2 2 5 1 .
             1 2 3 3 2 4 4 1 2 5 1 ."""
    rows = [
        (u, o, int(v))
        for o, line in enumerate(obs.splitlines())
        for u, v in enumerate(line.split())
        if v != "."
    ]
    assert krippendorff_alpha(_df(rows)) == pytest.approx(0.7434, abs=5e-5)


def test_cohen_kappa_wikipedia_example():
    # 50 proposals: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    pairs = [("Y", "Y")] * 20 + [("Y", "N")] * 5 + [("N", "Y")] * 10 + [("N", "N")] * 15
    rows = [r for i, (x, y) in enumerate(pairs) for r in ((i, "A", x), (i, "B", y))]
    out = cohen_kappa_pairwise(_df(rows))
    assert out.to_dict("records") == [
        {"annotator_a": "A", "annotator_b": "B", "n_common": 50, "agreement": 0.7,
         "kappa": pytest.approx(0.4)}
    ]  # fmt: skip


def test_pairwise_kappa_matches_sklearn_for_every_pair():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    rows = [
        (i, a, int(rng.integers(0, 3))) for i in range(40) for a in range(5) if rng.random() < 0.7
    ]
    df = _df(rows)
    out = cohen_kappa_pairwise(df, min_common=3).set_index(["annotator_a", "annotator_b"])
    wide = df.pivot(index="item_id", columns="annotator_id", values="label")
    n_pairs = 0
    for a in range(5):
        for b in range(a + 1, 5):
            both = wide[[a, b]].dropna()
            if len(both) < 3:
                continue
            n_pairs += 1
            assert out.loc[(a, b), "n_common"] == len(both)
            assert out.loc[(a, b), "kappa"] == pytest.approx(
                cohen_kappa_score(both[a], both[b], labels=[0, 1, 2])
            )
    assert n_pairs == len(out) == 10


def test_agreement_needs_repeated_answers():
    with pytest.raises(ValidationError, match="no item has two or more answers"):
        fleiss_kappa(_df([(1, "a", 0), (2, "a", 1)]))
    with pytest.raises(ValidationError, match="no item has two or more answers"):
        krippendorff_alpha(_df([(1, "a", 0), (2, "a", 1)]))


# --- annotator quality ----------------------------------------------------------------------
def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.95996: center (0.8 + z^2/20) / (1 + z^2/10), half-width ... -> [.4902, .9433]
    lo, hi = wilson_interval(np.array([8.0, 0.0]), np.array([10.0, 0.0]))
    np.testing.assert_allclose([lo[0], hi[0]], [0.490162, 0.943318], atol=1e-6)
    assert (lo[1], hi[1]) == (0.0, 1.0)


def test_annotator_quality_by_hand_consensus_and_gold():
    mv = MajorityVote().fit(SIX)
    q = annotator_quality(SIX, mv)
    np.testing.assert_allclose(q["quality"], mv.skills_.to_numpy())
    assert (q["source"] == "consensus").all() and q["n_answers"].tolist() == [5, 4, 4]
    lo, hi = wilson_interval(q["quality"].to_numpy() * [5, 4, 4], np.array([5, 4, 4]))
    np.testing.assert_allclose(q["ci_low"], lo)
    # chance for c: label shares q = (0.5, 0.5) on items 1, 2, 4, 5 -> mean P(consensus=l) . q
    post = mv.probas_.to_numpy()
    chance_c = 0.5 * post[[0, 1, 3, 4]].sum(axis=0).sum() / 4
    assert q.loc["c", "chance"] == pytest.approx(chance_c)
    assert q.loc["c", "kappa"] == pytest.approx((q.loc["c", "quality"] - chance_c) / (1 - chance_c))
    # with gold on items 1 and 2: a answered both (0 right, 1 right) -> 2 / 2 from gold
    g = annotator_quality(SIX, mv, gold=pd.Series({1: 0, 2: 1}))
    assert g.loc["a", "source"] == "gold" and g.loc["a", "quality"] == 1.0
    assert g.loc["c", "quality"] == 0.5  # c said 1 on item 1 (wrong) and 1 on item 2 (right)


def test_annotator_quality_flags_an_always_yes_spammer():
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.85).astype(int)  # 85% "1"
    rows = []
    for i, t in enumerate(truth):
        for a in range(5):
            rows.append((i, f"good{a}", t if rng.random() < 0.85 else 1 - t))
        rows.append((i, "yes-man", 1))
    df = _df(rows)
    q = annotator_quality(df, DawidSkene().fit(df))
    assert q.loc["yes-man", "quality"] > 0.8  # agrees often ...
    assert q.loc["yes-man", "is_spammer"] and abs(q.loc["yes-man", "kappa"]) < 0.1  # ... by chance
    assert not q.loc[[f"good{a}" for a in range(5)], "is_spammer"].any()
    with pytest.raises(ValidationError, match="consensus: does not cover every item"):
        annotator_quality(df, DawidSkene().fit(df).probas_.iloc[:10])
    with pytest.raises(ValidationError, match="confidence: got 1.5"):
        annotator_quality(df, confidence=1.5)
