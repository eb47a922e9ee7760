"""ModelAssistedConsensus: exact oracles, conformance, recovery on a synthetic crowd, bad inputs."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

import truelabel
from truelabel import LocalBackend, NotFittedError, TruelabelWarning, ValidationError
from truelabel.aggregate import (
    MACE,
    Annotations,
    DawidSkene,
    ModelAssistedConsensus,
    OneCoinDawidSkene,
)
from truelabel.aggregate._model_assisted import aitken, fit_model_weight, model_log_ratio


def crowd(seed: int = 0, n_items: int = 400, n_annot: int = 20, k: int = 3, model_acc: float = 0.8):
    """1-3 answers per item from annotators of known accuracy, and a model of known accuracy
    whose probabilities put 0.6 on its guess (under-confident, like a model trained on noisy
    votes)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    acc = np.linspace(0.4, 0.9, n_annot)
    rows = []
    for i in range(n_items):
        for a in rng.choice(n_annot, size=rng.integers(1, 4), replace=False):
            lab = truth[i] if rng.random() < acc[a] else (truth[i] + rng.integers(1, k)) % k
            rows.append((i, f"w{a:02d}", int(lab)))
    guess = np.where(
        rng.random(n_items) < model_acc, truth, (truth + rng.integers(1, k, n_items)) % k
    )
    pp = np.full((n_items, k), 0.4 / (k - 1))
    pp[np.arange(n_items), guess] = 0.6
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    return df, pp, truth, pd.Series(acc, index=[f"w{a:02d}" for a in range(n_annot)])


def _quiet_fit(est, df, pp, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        return est.fit(df, pred_probs=pp, **kw)


# --- exact oracles --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "base", [None, DawidSkene(prior_strength=2.0), OneCoinDawidSkene(prior_accuracy=0.6), MACE()]
)
def test_weight_zero_is_the_base_aggregator_bit_for_bit(base):
    df, pp, _, _ = crowd(1)
    ours = _quiet_fit(ModelAssistedConsensus(base, model_weight=0.0), df, pp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        ref = (OneCoinDawidSkene() if base is None else clone(base)).fit(df)
    assert ours.model_weight_ == 0.0
    np.testing.assert_array_equal(ours.probas_.to_numpy(), ref.probas_.to_numpy())
    np.testing.assert_array_equal(ours.skills_.to_numpy(), ref.skills_.to_numpy())
    np.testing.assert_array_equal(ours.confusions_, ref.confusions_)
    pd.testing.assert_series_equal(ours.labels_, ref.labels_)


def test_hand_worked_three_items():
    # item 1: a and b say 0; item 2: only a says 1; item 3: only b says 1, the model says 0 (0.9)
    df = pd.DataFrame(
        {"item_id": [1, 1, 2, 3], "annotator_id": ["a", "b", "a", "b"], "label": [0, 0, 1, 1]}
    )
    pp = [[0.9, 0.1], [0.1, 0.9], [0.9, 0.1]]
    ds = DawidSkene()
    assert ModelAssistedConsensus(ds, model_weight=0.0).fit_predict(df, pred_probs=pp).tolist() == [
        0,
        1,
        1,
    ]
    m = ModelAssistedConsensus(ds, model_weight=2.0).fit(df, pred_probs=pp)
    assert m.labels_.tolist() == [0, 1, 0]
    # model ratio: log(p) - log(mean p) with mean p = (0.633.., 0.366..)
    ratio = np.log(np.array(pp)) - np.log(np.array(pp).mean(axis=0))
    np.testing.assert_allclose(model_log_ratio(np.array(pp)), ratio, rtol=1e-5)
    # the fitted posteriors are the E-step of the fitted model, computed here by a naive loop
    conf, prior = m.confusions_, m.class_prior_
    ann = Annotations(df)
    for i, item in enumerate(ann.items):
        logp = np.log(prior) + 2.0 * ratio[i]
        for _, row in df[df.item_id == item].iterrows():
            j = list(ann.annotators).index(row.annotator_id)
            logp = logp + np.log(conf[j, :, row.label])
        post = np.exp(logp - logp.max())
        np.testing.assert_allclose(m.probas_.iloc[i].to_numpy(), post / post.sum(), atol=1e-6)
    np.testing.assert_allclose(m.consensus_quality_.to_numpy(), m.probas_.max(axis=1).to_numpy())
    # annotator-only consensus on the one 2-answer item is class 0; the model says 0 there
    crowd_only = ModelAssistedConsensus(ds, model_weight=0.0).fit(df, pred_probs=pp)
    assert m.model_accuracy_ == pytest.approx(crowd_only.probas_.iloc[0, 0], abs=1e-9)


def test_fit_model_weight_recovers_the_temperature():
    rng = np.random.default_rng(0)
    ratio = rng.normal(size=(500, 3))
    log_prior = np.log([0.5, 0.3, 0.2])
    z = log_prior + 2.5 * ratio
    target = np.exp(z - z.max(axis=1, keepdims=True))
    target /= target.sum(axis=1, keepdims=True)
    assert fit_model_weight(ratio, target, log_prior) == pytest.approx(2.5, abs=2e-3)
    assert fit_model_weight(-ratio, target, log_prior) == 0.0  # anti-correlated: ignored
    assert fit_model_weight(ratio[:0], target[:0], log_prior) == 0.0
    assert aitken([1.0, 1.5, 1.75]) == pytest.approx(2.0)
    assert aitken([1.0, 2.0, 1.5]) == 1.5  # oscillating: no jump


@pytest.mark.parametrize("with_gold", [False, True])
def test_naive_model_accuracy_against_the_crowd_consensus(with_gold):
    df, pp, truth, _ = crowd(2)
    # gold on 40 items, the model right on all of them: they must not count (never gold)
    gold = pd.Series(truth[:40], index=range(40)) if with_gold else None
    pp = pp.copy()
    if with_gold:
        pp[:40] = 0.05
        pp[np.arange(40), truth[:40]] = 0.9
    m = _quiet_fit(ModelAssistedConsensus(), df, pp, gold=gold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        ds = OneCoinDawidSkene().fit(df, gold=gold)
    n_answers = df.groupby("item_id").size().reindex(ds.probas_.index).to_numpy()
    multi = (n_answers >= 2) & ~ds.probas_.index.isin(range(40) if with_gold else [])
    q = ds.probas_.to_numpy()[multi]
    expected = np.mean([q[r, c] for r, c in enumerate(pp[multi].argmax(axis=1))])
    assert m.model_accuracy_ == pytest.approx(expected, abs=1e-12)


# --- what the model buys --------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 3])
def test_a_good_model_earns_weight_and_lifts_accuracy_and_skills(seed):
    from scipy.stats import spearmanr

    df, pp, truth, acc = crowd(seed, n_items=600)
    m = _quiet_fit(ModelAssistedConsensus(), df, pp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        ds = OneCoinDawidSkene().fit(df)
    ours, plain = (m.labels_.to_numpy() == truth).mean(), (ds.labels_.to_numpy() == truth).mean()
    assert m.model_weight_ > 1.0
    assert ours >= plain + 0.04, (ours, plain)
    assert spearmanr(m.skills_, acc).statistic >= spearmanr(ds.skills_, acc).statistic - 0.01
    assert spearmanr(m.skills_, acc).statistic > 0.8
    assert 1 <= m.n_rounds_ < m.max_rounds


def test_a_useless_model_gets_no_weight():
    df, _, truth, _ = crowd(4, n_items=600)
    pp = np.random.default_rng(9).dirichlet(np.ones(3), size=600)  # unrelated to the truth
    m = _quiet_fit(ModelAssistedConsensus(), df, pp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        ds = OneCoinDawidSkene().fit(df)
    assert m.model_weight_ == 0.0  # the zero-weight guard of fit_model_weight
    pd.testing.assert_frame_equal(m.probas_, ds.probas_)  # and then exactly the base
    assert (
        abs((m.labels_.to_numpy() == truth).mean() - (ds.labels_.to_numpy() == truth).mean()) < 0.02
    )


def test_no_multi_answer_item_warns_and_falls_back_to_dawid_skene():
    df = pd.DataFrame({"item_id": [1, 2, 3], "annotator_id": ["a", "b", "a"], "label": [0, 1, 1]})
    pp = [[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]]
    with pytest.warns(TruelabelWarning) as caught:
        m = ModelAssistedConsensus().fit(df, pred_probs=pp)
    assert any("no item has two or more answers" in str(w.message) for w in caught)
    assert m.model_weight_ == 0.0 and np.isnan(m.model_accuracy_)
    assert m.labels_.tolist() == [0, 1, 1]


# --- conformance ----------------------------------------------------------------------------
def test_contract_params_order_pickle_backends():
    df, pp, _, _ = crowd(5, n_items=200)
    est = ModelAssistedConsensus(random_state=3)
    params = est.get_params()
    with pytest.raises(NotFittedError, match="not fitted"):
        _ = est.model_weight_
    assert _quiet_fit(est, df, pp) is est
    assert est.get_params() == params and clone(est).get_params() == params
    assert not hasattr(est, "_pred_probs")
    # order invariance: shuffled rows, and a DataFrame pred_probs in another row/column order
    items = sorted(df.item_id.unique())
    frame = pd.DataFrame(pp, index=items, columns=[0, 1, 2]).iloc[::-1][[2, 0, 1]]
    other = _quiet_fit(
        ModelAssistedConsensus(random_state=3), df.sample(frac=1, random_state=1), frame
    )
    pd.testing.assert_frame_equal(other.probas_, est.probas_)
    pd.testing.assert_series_equal(other.labels_, est.labels_)
    again = pickle.loads(pickle.dumps(est))
    pd.testing.assert_series_equal(again.consensus_quality_, est.consensus_quality_)
    assert again.model_weight_ == est.model_weight_
    for backend, chunk in ((LocalBackend(1), 64), (LocalBackend(2), 37)):
        m = _quiet_fit(
            ModelAssistedConsensus(
                OneCoinDawidSkene(backend=backend, chunk_size=chunk), random_state=3
            ),
            df,
            pp,
        )
        np.testing.assert_array_equal(m.probas_.to_numpy(), est.probas_.to_numpy())
        assert m.model_weight_ == est.model_weight_
    assert truelabel.ModelAssistedConsensus is ModelAssistedConsensus
    proba = _quiet_fit(ModelAssistedConsensus(random_state=3), df, pp).probas_
    pd.testing.assert_frame_equal(proba, est.probas_)  # a seed reproduces


def test_fit_predict_and_proba_match_fit():
    df, pp, _, _ = crowd(6, n_items=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)
        a = ModelAssistedConsensus().fit_predict(df, pred_probs=pp)
        b = ModelAssistedConsensus().fit_predict_proba(df, pred_probs=pp)
    m = _quiet_fit(ModelAssistedConsensus(), df, pp)
    pd.testing.assert_series_equal(a, m.labels_)
    pd.testing.assert_frame_equal(b, m.probas_)


# --- bad inputs -----------------------------------------------------------------------------
def test_bad_pred_probs_and_settings():
    df = pd.DataFrame({"item_id": [1, 1, 2], "annotator_id": ["a", "b", "a"], "label": [0, 1, 1]})
    good = [[0.5, 0.5], [0.2, 0.8]]
    est = ModelAssistedConsensus()
    with pytest.raises(ValidationError, match=r"pred_probs: has shape \(3, 2\), expected \(2, 2\)"):
        est.fit(df, pred_probs=[[0.5, 0.5]] * 3)
    with pytest.raises(ValidationError, match=r"pred_probs: row 1 sums to 0.9, not 1"):
        est.fit(df, pred_probs=[[0.5, 0.5], [0.1, 0.8]])
    with pytest.raises(ValidationError, match=r"pred_probs: has 3 columns, expected 2"):
        est.fit(df, pred_probs=[[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    with pytest.raises(ValidationError, match=r"pred_probs: holds negative, NaN"):
        est.fit(df, pred_probs=[[1.5, -0.5], [0.2, 0.8]])
    with pytest.raises(
        ValidationError, match=r"pred_probs: has no row for 1 annotated item\(s\), e.g. 2"
    ):
        est.fit(df, pred_probs=pd.DataFrame(good[:1], index=[1]))
    with pytest.raises(ValidationError, match=r"model_weight: got -1"):
        ModelAssistedConsensus(model_weight=-1).fit(df, pred_probs=good)
    with pytest.raises(ValidationError, match=r"model_weight: got 'autoo'"):
        ModelAssistedConsensus(model_weight="autoo").fit(df, pred_probs=good)
    with pytest.raises(ValidationError, match=r"max_rounds: got 0"):
        ModelAssistedConsensus(max_rounds=0).fit(df, pred_probs=good)
    with pytest.raises(ValidationError, match=r"base: got MajorityVote"):
        ModelAssistedConsensus(truelabel.MajorityVote()).fit(df, pred_probs=good)
    with pytest.raises(TypeError):
        est.fit(df)  # pred_probs is required


def test_weight_that_does_not_settle_warns():
    df, pp, _, _ = crowd(0, n_items=300)
    with pytest.warns(TruelabelWarning, match=r"did not settle in max_rounds=2"):
        m = ModelAssistedConsensus(max_rounds=2).fit(df, pred_probs=pp)
    assert m.n_rounds_ == 2
