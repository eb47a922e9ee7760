"""Near-duplicates judged in the original space, and outliers on text features."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from truelabel import Audit, ValidationError
from truelabel.backend import LocalBackend
from truelabel.detect._duplicates import near_duplicate_sets
from truelabel.detect._original_space import original_neighbors
from truelabel.encode import TfidfEncoder

FIXTURE = Path(__file__).parent / "fixtures" / "near_duplicate_verdicts.csv"


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _pinned(cos: float = 0.96) -> tuple[np.ndarray, np.ndarray]:
    """Raw rows: 0 and 1 at exact cosine ``cos``; 2..7 orthogonal to everything.

    The reduced features put rows 2..7 on one point (as LSA does to short texts that differ
    only in rare words) and rows 0, 1 on two others.
    """
    raw = np.zeros((8, 10))
    raw[0, 0] = 1.0
    raw[1, :2] = [cos, np.sqrt(1 - cos**2)]
    raw[2:, 2:8] = np.eye(6)
    feats = np.zeros((8, 3))
    feats[0] = [1.0, 0.0, 0.0]
    feats[1] = _unit(np.array([[1.0, 0.5, 0.0]]))[0]  # cosine 0.89
    feats[2:] = [0.0, 0.0, 1.0]
    return raw, feats


@pytest.mark.parametrize(("threshold", "joined"), [(0.959, True), (0.961, False)])
def test_near_duplicate_threshold_flips_a_pinned_pair(threshold, joined):
    raw, feats = _pinned(0.96)
    res = Audit({"near_duplicate": {"threshold": threshold}}, n_neighbors=2).run(
        features=feats, raw_features=sp.csr_matrix(raw)
    )
    flags = res.issues["is_near_duplicate_issue"].to_numpy()
    assert flags.tolist() == [joined, joined] + [False] * 6
    np.testing.assert_allclose(res.issues["near_duplicate_score"].iloc[:2], 0.04, atol=1e-6)
    assert res.info["near_duplicate"]["threshold"] == threshold


def test_near_duplicates_use_the_original_rows_not_the_reduced_features():
    raw, feats = _pinned(0.5)
    res = Audit({"near_duplicate": {}}, n_neighbors=2).run(features=feats, raw_features=raw)
    # rows 2..7 coincide in the reduced space but are orthogonal in the original one
    assert not res.issues["is_near_duplicate_issue"].any()
    np.testing.assert_allclose(res.issues["near_duplicate_score"].iloc[2:], 1.0)
    # without raw rows the (unit-norm) features are the original space: 2..7 are copies
    res = Audit({"near_duplicate": {}}, n_neighbors=2).run(features=feats)
    assert res.issues["is_near_duplicate_issue"].tolist() == [False] * 2 + [True] * 6


def test_exact_copies_beyond_the_k_neighbours_form_one_set(monkeypatch):
    import truelabel.detect._original_space as orig

    monkeypatch.setattr(orig, "RARE_DF", 5)  # the copies' one term is "frequent": no shortcut
    rng = np.random.default_rng(0)
    raw = sp.csr_matrix(np.abs(rng.normal(size=(30, 40))) * (rng.random((30, 40)) < 0.2))
    raw = sp.vstack([raw, sp.csr_matrix(np.tile(np.eye(40)[:1] * 3.0, (12, 1)))]).tocsr()
    feats = np.zeros((42, 2))
    feats[:, 0] = 1.0  # every row on one point: the graph alone cannot tell the copies
    res = Audit({"near_duplicate": {}}, n_neighbors=2).run(features=feats, raw_features=raw)
    sets = res.issues["near_duplicate_set"].to_numpy()
    assert len(set(sets[30:])) == 1 and sets[30] >= 0
    np.testing.assert_allclose(res.issues["near_duplicate_score"].iloc[30:], 0.0, atol=1e-6)


def test_a_row_hash_collision_never_joins_different_rows(monkeypatch):
    import truelabel.detect._duplicates as dup

    monkeypatch.setattr(dup, "_sparse_row_hash", lambda m: np.zeros(m.shape[0], dtype=np.uint64))
    raw, feats = _pinned(0.5)
    res = Audit({"near_duplicate": {}}, n_neighbors=2).run(
        features=feats, raw_features=sp.csr_matrix(raw)
    )
    assert not res.issues["is_near_duplicate_issue"].any()


def test_original_neighbors_match_brute_force():
    # with fewer items than RARE_DF every term is "rare": the candidates cover every
    # item sharing a term, so the top-k must equal the brute-force cosine top-k
    rng = np.random.default_rng(3)
    dense = np.abs(rng.normal(size=(60, 25))) * (rng.random((60, 25)) < 0.15)
    dense[:, 0] += 0.01  # no empty rows
    raw = sp.csr_matrix(dense)
    knn = rng.integers(0, 60, size=(60, 4))
    g = original_neighbors(raw, knn, backend=LocalBackend(1), chunk_size=7)
    unit = _unit(dense)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    top = -np.sort(-sims, axis=1)[:, :4]
    np.testing.assert_allclose(g.similarities, top, atol=1e-5)
    picked = np.take_along_axis(sims, g.indices, axis=1)
    np.testing.assert_allclose(picked, g.similarities, atol=1e-5)
    for backend, size in ((LocalBackend(2), 5), (LocalBackend(1), 60), (None, 1)):
        other = original_neighbors(raw, knn, backend=backend, chunk_size=size)
        np.testing.assert_array_equal(other.indices, g.indices)
        np.testing.assert_array_equal(other.similarities, g.similarities)


def test_near_duplicate_sets_are_the_same_for_any_chunking():
    rng = np.random.default_rng(1)
    n = 200
    idx = rng.integers(0, n, size=(n, 3))
    sim = rng.random((n, 3))
    lead = np.arange(n)
    lead[150:160] = 150
    ref = near_duplicate_sets(idx, sim, 0.97, leaders=lead, backend=LocalBackend(1))
    # naive oracle: repeated label propagation over the accepted pairs
    a, b = np.nonzero(sim >= 0.97)
    pairs = list(zip(a, idx[a, b], strict=True)) + [(i, 150) for i in range(151, 160)]
    comp = np.arange(n)
    changed = True
    while changed:
        changed = False
        for i, j in pairs:
            m = min(comp[i], comp[j])
            if comp[i] != m or comp[j] != m:
                comp[i] = comp[j] = m
                changed = True
    sizes = np.bincount(comp, minlength=n)
    assert ((ref >= 0) == (sizes[comp] > 1)).all()
    for i, j in pairs:
        assert ref[i] == ref[j]
    assert len(set(ref[ref >= 0])) == len({c for c in comp if sizes[c] > 1})
    for backend, size in ((LocalBackend(2), 7), (LocalBackend(1), 1), (LocalBackend(2), 1000)):
        got = near_duplicate_sets(idx, sim, 0.97, leaders=lead, backend=backend, chunk_size=size)
        np.testing.assert_array_equal(got, ref)


QUESTIONS = [
    "What is the capital of {} ?",
    "Who was the first president of {} ?",
    "How many people live in {} ?",
    "What language do people speak in {} ?",
    "What currency is used in {} ?",
]
PLACES = [
    "France", "Peru", "Chile", "Kenya", "Norway", "Japan", "Egypt", "Canada", "Brazil",
    "India", "Spain", "Italy", "Mexico", "Ghana", "Nepal", "Cuba", "Iran", "Fiji",
    "Laos", "Oman", "Chad", "Mali", "Togo", "Benin",
]  # fmt: skip
CHATTER = [
    "lol ok see u later at the mall then",
    "Sorry, I'll call later, in a meeting now",
    "Hey babe, had a great time last night xx",
    "Free entry to win a brand new car!! Text WIN now",
]


def _text_audit(texts: list[str], **kwargs):
    enc = TfidfEncoder(n_components=16, random_state=0).fit(texts)
    return Audit(n_neighbors=5, **kwargs).run(
        features=enc.encode(texts), raw_features=enc.transform_raw(texts)
    )


def test_text_outliers_are_found_and_flagged():
    texts = [q.format(p) for q in QUESTIONS for p in PLACES] + CHATTER
    issues = _text_audit(texts).issues
    score = issues["outlier_score"].to_numpy()
    chatter = np.arange(len(texts) - len(CHATTER), len(texts))
    assert set(np.argsort(score, kind="stable")[: len(CHATTER)]) == set(chatter)
    flagged = np.flatnonzero(issues["is_outlier_issue"].to_numpy())
    assert set(flagged) == set(chatter)
    assert (score >= 0).all() and (score <= 1).all()


def test_short_texts_differing_in_one_rare_word_are_not_duplicates():
    # observation: "What is BPH ?" / "What is DSL ?" collapse in the LSA space
    texts = [f"What is {w} ?" for w in ("BPH", "DSL", "RCD", "SAP", "AFS", "DTMF")]
    texts += [q.format(p) for q in QUESTIONS for p in PLACES[:8]]
    texts += ["what is BPH?", "Who was the first president of Peru ?"]
    enc = TfidfEncoder(n_components=16, random_state=0).fit(texts)
    assert np.allclose(enc.encode(texts[1:2]), enc.encode(texts[2:3]), atol=1e-6)  # DSL, RCD
    issues = _text_audit(texts).issues
    flagged = set(np.flatnonzero(issues["is_near_duplicate_issue"].to_numpy()))
    peru = 6 + len(PLACES[:8]) + 1  # "Who was the first president of Peru ?"
    assert flagged == {0, len(texts) - 2, peru, len(texts) - 1}


def test_pred_probs_only_outliers_hand_worked():
    # class 0: nine items at p_max 0.9 and one at 0.45; class 1: ten items at 0.8
    p0 = np.array([[0.9, 0.1]] * 9 + [[0.45 + 0.1, 0.45]])
    p0[9] = [0.55, 0.45]
    p1 = np.array([[0.2, 0.8]] * 10)
    p = np.vstack([p0, p1])
    res = Audit({"outlier": {}}).run(pred_probs=p)
    t0 = (9 * 0.9 + 0.55) / 10  # typical confidence of class 0
    expected = np.r_[np.minimum(1.0, np.full(9, 0.9 / t0)), 0.55 / t0, np.ones(10)]
    np.testing.assert_allclose(res.issues["outlier_score"], expected, rtol=1e-12)
    assert np.flatnonzero(res.issues["is_outlier_issue"]).tolist() == [9]
    assert res.info["outlier"]["source"] == "pred_probs"
    strict = Audit({"outlier": {"z": 1e6}}).run(pred_probs=p)
    assert not strict.issues["is_outlier_issue"].any()


def test_near_duplicate_settings_and_raw_features_are_validated():
    raw, feats = _pinned()
    with pytest.raises(ValidationError, match=r"threshold: must be in \(0.0, 1.0\], got 1.5"):
        Audit({"near_duplicate": {"threshold": 1.5}}, n_neighbors=2).run(
            features=feats, raw_features=raw
        )
    with pytest.raises(ValidationError, match="metric: .*did you mean 'cosine'"):
        Audit({"near_duplicate": {"metric": "cosin"}}, n_neighbors=2).run(features=feats)
    with pytest.raises(ValidationError, match="raw_features: were given without features"):
        Audit({"outlier": {}}).run(pred_probs=np.full((8, 2), 0.5), raw_features=raw)
    with pytest.raises(ValidationError, match=r"raw_features: has shape \(3, 10\), expected 8"):
        Audit(n_neighbors=2).run(features=feats, raw_features=sp.csr_matrix(raw[:3]))
    res = Audit({"near_duplicate": {"metric": "euclidean", "threshold": 0.5}}, n_neighbors=2)
    out = res.run(features=feats, raw_features=raw)
    assert out.info["near_duplicate"]["metric"] == "euclidean"


# --- the shared text sets -------------------------------------------------------------


def _normalize(t: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", str(t).lower())).strip()


def _precision(texts: list[str], issues: pd.DataFrame, verdicts: pd.DataFrame) -> dict:
    norm = pd.Series([_normalize(t) for t in texts])
    twin = norm.map(norm.value_counts()).to_numpy() > 1
    flagged = issues["is_near_duplicate_issue"].to_numpy()
    sets = issues["near_duplicate_set"].to_numpy()
    ok = {
        frozenset((a, b))
        for a, b, v in verdicts[["text_a", "text_b", "verdict"]].itertuples(index=False)
        if v == "accept"
    }
    by_hand = sum(
        any(
            frozenset((texts[i], texts[j])) in ok for j in np.flatnonzero(sets == sets[i]) if j != i
        )
        for i in np.flatnonzero(flagged & ~twin)
    )
    return {
        "precision": ((flagged & twin).sum() + by_hand) / flagged.sum(),
        "recall": (flagged & twin).sum() / twin.sum(),
    }


@pytest.mark.parametrize(
    ("folder", "name"), [("text_trec", "trec"), ("text_banking77", "banking77")]
)
def test_near_duplicate_precision_on_shared_text_sets(shared_datasets, folder, name):
    texts = pd.read_csv(shared_datasets / folder / "train.csv")["text"].tolist()
    verdicts = pd.read_csv(FIXTURE)
    got = _precision(texts, _text_audit_default(texts), verdicts[verdicts.dataset == name])
    assert got["precision"] >= 0.9
    assert got["recall"] >= 0.95


def _text_audit_default(texts: list[str]) -> pd.DataFrame:
    enc = TfidfEncoder(random_state=0).fit(texts)
    return (
        Audit({"near_duplicate": {}, "outlier": {}})
        .run(features=enc.encode(texts), raw_features=enc.transform_raw(texts))
        .issues
    )


def test_sms_injected_into_trec_are_outliers(shared_datasets):
    from sklearn.metrics import roc_auc_score

    host = pd.read_csv(shared_datasets / "text_trec" / "train.csv")["text"].tolist()
    sms = pd.read_csv(shared_datasets / "text_sms_spam" / "train.csv")["text"]
    n_in = round(0.02 * len(host) / 0.98)
    rng = np.random.default_rng(0)
    texts = host + sms.iloc[rng.choice(len(sms), n_in, replace=False)].tolist()
    is_out = np.r_[np.zeros(len(host), dtype=bool), np.ones(n_in, dtype=bool)]
    issues = _text_audit_default(texts)
    assert roc_auc_score(is_out, -issues["outlier_score"].to_numpy()) >= 0.9


def test_text_audit_pipeline_judges_duplicates_on_raw_tfidf():
    from truelabel import Dataset
    from truelabel.pipeline import audit_dataset

    texts = [f"What is {w} ?" for w in ("BPH", "DSL", "RCD", "SAP", "AFS", "DTMF")]
    texts += [q.format(p) for q in QUESTIONS for p in PLACES[:8]] + ["what is BPH?"]
    labels = ["abbr"] * 6 + [str(i // 8) for i in range(40)] + ["abbr"]
    ds = Dataset.from_pandas(pd.DataFrame({"t": texts, "y": labels}), label_col="y", text_col="t")
    res = audit_dataset(ds, random_state=0)
    assert np.flatnonzero(res.issues["is_near_duplicate_issue"]).tolist() == [0, len(texts) - 1]
    assert res.info["near_duplicate"]["metric"] == "cosine"
