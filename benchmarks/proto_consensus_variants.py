"""Prototypes measured before deciding what to ship (issue 8): a vectorized GLAD and a
handful of Dawid-Skene variants chosen a priori, on the five ``crowd_*`` sets, gold used only
to score. One setting per variant for all five sets, never tuned per set.

Variants (fixed before the run; rationale in benchmarks/results/notes.md):

- ``DawidSkene``: truelabel's default (MAP, smoothing 0.01), the reference.
- ``GLAD``: Whitehill et al. 2009, P(right) = sigmoid(alpha_j * beta_i), errors uniform;
  priors alpha ~ N(1, 1), log beta ~ N(0, 1) (crowd-kit's); EM whose M-step is L-BFGS on all
  alphas and log-betas at once, gradients by bincount over the answers (no loop over items).
- ``VB-DS flat`` / ``VB-DS diag``: Bayesian Dawid-Skene by variational Bayes (Liu, Peng and
  Ihler 2012; the E-step uses E[log theta] = digamma(N + a) - digamma(row sum) of the
  Dirichlet posterior instead of the MAP point): prior a = 1 everywhere, or 2 on the diagonal.
- ``Community DS``: Venanzi et al. 2014 style: 3 communities of annotators (hard membership by
  multinomial likelihood, re-assigned every M-step), each annotator's confusion matrix a MAP
  estimate with a Dirichlet prior of 4 pseudo-answers per row centred on its community's
  pooled matrix.
- ``DS/MACE by held-out LL``: fit DS and MACE on 80% of the answers (seeded), score the
  held-out 20% by log sum_k P(item = k | kept answers) theta_j[k, label]; the model with the
  higher held-out log-likelihood is fitted on all answers (no gold involved).
- ``DS+MACE blend by held-out LL``: the posteriors of both fits on all answers, mixed with
  the weight (grid of 0.05) whose mixture best predicts those held-out answers.
- ``GLAD floored``: GLAD with abilities >= 0 and a uniform class prior (one-coin's guard).

    PYTHONPATH=src .venv/bin/python benchmarks/proto_consensus_variants.py

Writes benchmarks/results/consensus_variants.json.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, expit, log_expit, logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, default_datasets_dir

from truelabel.aggregate import MACE, Annotations, DawidSkene
from truelabel.aggregate._dawid_skene import initial_posteriors
from truelabel.aggregate._em import MStep, run_em

DATASETS = ["crowd_duck", "crowd_product", "crowd_relevance", "crowd_rte", "crowd_wsd"]
#: crowd-kit's best method per set, from benchmarks/results/crowd.json (same data, same run rules)
CROWDKIT_BEST = {
    "crowd_duck": 0.8889,
    "crowd_product": 0.9397,
    "crowd_relevance": 0.6173,
    "crowd_rte": 0.9275,
    "crowd_wsd": 0.9944,
}


def load(name: str) -> tuple[Annotations, pd.Series]:
    folder = default_datasets_dir() / name
    ann = pd.read_csv(folder / "annotations.csv")
    truth = pd.read_csv(folder / "truth.csv").set_index("item")["label"]
    df = ann.rename(columns={"item": "item_id", "worker": "annotator_id"})
    return Annotations(df, duplicates="all"), truth


def score(table: Annotations, post: np.ndarray, truth: pd.Series) -> float:
    pred = pd.Series(np.asarray(table.classes)[post.argmax(axis=1)], index=table.items)
    common = truth.index.intersection(pred.index)
    return float((pred.loc[common].to_numpy() == truth.loc[common].to_numpy()).mean())


def _em(table: Annotations, m_step) -> np.ndarray:
    rng = np.random.default_rng(0)
    res = run_em(table.counts, n_annotators=table.n_annotators, n_classes=table.n_classes,
                 m_step=m_step, inits=initial_posteriors(table, 1, rng), tol=1e-5,
                 max_iter=100, warn=False)  # fmt: skip
    return res.posteriors


def _log_prior(totals: np.ndarray) -> np.ndarray:
    return np.log((totals + 1.0) / (totals.sum() + len(totals)))


# -- VB Dawid-Skene ---------------------------------------------------------------------------
def vb_ds(diag: float):
    def m_step(N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        k = N.shape[1]
        a = np.ones((k, k)) + (diag - 1.0) * np.eye(k)
        post = N + a
        elog = digamma(post) - digamma(post.sum(axis=2, keepdims=True))
        lp = digamma(totals + 1.0) - digamma(totals.sum() + k)
        return MStep(elog, lp, 0.0)

    return m_step


# -- community Dawid-Skene --------------------------------------------------------------------
def community_ds(n_comm: int = 3, strength: float = 4.0, smoothing: float = 0.01):
    def m_step(N: np.ndarray, totals: np.ndarray, prev: MStep | None) -> MStep:
        j, k, _ = N.shape
        n = N.sum(axis=(1, 2))
        acc = np.einsum("jkk->j", N) / np.maximum(n, 1e-12)
        if prev is None or prev.extra is None:  # start: accuracy terciles
            member = np.minimum((np.argsort(np.argsort(acc)) * n_comm) // j, n_comm - 1)
        else:
            member = prev.extra["member"]
        for _ in range(5):  # hard EM on the memberships (a loop over communities)
            pooled = np.stack([N[member == c].sum(axis=0) for c in range(n_comm)]) + 1.0 / k
            comm = pooled / pooled.sum(axis=2, keepdims=True)  # (C, K, K)
            ll = np.einsum("jkl,ckl->jc", N, np.log(comm))
            new = ll.argmax(axis=1)
            if np.array_equal(new, member):
                break
            member = new
        cells = N + strength * comm[member] + smoothing / k
        conf = cells / cells.sum(axis=2, keepdims=True)
        return MStep(np.log(conf), _log_prior(totals), 0.0, {"member": member})

    return m_step


# -- GLAD -------------------------------------------------------------------------------------
def glad(
    table: Annotations, max_iter: int = 50, tol: float = 1e-5, floored: bool = False
) -> np.ndarray:
    """``floored``: ability >= 0 and a uniform class prior, the guard that stops one-coin
    Dawid-Skene's collapse onto one class (GLAD is one-coin with item difficulty)."""
    i, j, lab = table.item_codes, table.annotator_codes, table.label_codes
    ni, nj, k = table.n_items, table.n_annotators, table.n_classes
    post = initial_posteriors(table, 1, np.random.default_rng(0))[0]
    alpha, logb = np.ones(nj), np.zeros(ni)
    prev = -np.inf
    for _ in range(max_iter):
        w = post[i, lab]  # P(answer is right)
        log_prior = np.full(k, -np.log(k)) if floored else _log_prior(post.sum(axis=0))

        def negq(x: np.ndarray, w: np.ndarray = w) -> tuple[float, np.ndarray]:
            a, lb = x[:nj], x[nj:]
            beta = np.exp(lb)
            z = a[j] * beta[i]
            q = w * log_expit(z) + (1 - w) * log_expit(-z)
            g = w - expit(z)  # dQ/dz
            ga = np.bincount(j, weights=g * beta[i], minlength=nj) - (a - 1.0)
            gb = np.bincount(i, weights=g * a[j] * beta[i], minlength=ni) - lb
            val = q.sum() - 0.5 * ((a - 1.0) ** 2).sum() - 0.5 * (lb**2).sum()
            return -val, -np.concatenate([ga, gb])

        bounds = [(0.0, None)] * nj + [(None, None)] * ni if floored else None
        opt = minimize(negq, np.concatenate([alpha, logb]), jac=True, method="L-BFGS-B",
                       bounds=bounds, options={"maxiter": 25})  # fmt: skip
        alpha, logb = opt.x[:nj], opt.x[nj:]
        z = alpha[j] * np.exp(logb)[i]
        right, wrong = log_expit(z), log_expit(-z) - np.log(k - 1)
        score_ = np.tile(np.bincount(i, weights=wrong, minlength=ni)[:, None], (1, k))
        np.add.at(score_, (i, lab), right - wrong)
        score_ += log_prior
        norm = logsumexp(score_, axis=1, keepdims=True)
        post = np.exp(score_ - norm)
        obj = float(norm.sum()) - opt.fun
        if abs(obj - prev) < tol * len(i):
            break
        prev = obj
    return post


# -- DS / MACE chosen by held-out likelihood --------------------------------------------------
def heldout_choice(table: Annotations, df: pd.DataFrame, frac: float = 0.2) -> tuple[str, dict]:
    rng = np.random.default_rng(0)
    hold = rng.random(len(df)) < frac
    train = Annotations(df[~hold], duplicates="all", classes=list(table.classes))
    test = df[hold]
    ii = train.items.get_indexer(test["item_id"])
    jj = train.annotators.get_indexer(test["annotator_id"])
    ll = pd.Index(train.classes).get_indexer(test["label"])
    ok = (ii >= 0) & (jj >= 0)
    lls, preds = {}, {}
    for name, est in (("DawidSkene", DawidSkene()), ("MACE", MACE())):
        est.fit(train)
        post = est.probas_.to_numpy()
        theta = est.confusions_  # (J, K, K)
        p = (post[ii[ok]] * theta[jj[ok], :, ll[ok]]).sum(axis=1)
        preds[name] = np.maximum(p, 1e-300)
        lls[name] = float(np.log(preds[name]).mean())
    # the blend: the mixture weight of DS that best predicts the held-out answers
    grid = np.linspace(0.0, 1.0, 21)
    mix = [np.log(w * preds["DawidSkene"] + (1 - w) * preds["MACE"]).mean() for w in grid]
    lls["blend_weight_ds"] = float(grid[int(np.argmax(mix))])
    return max(("DawidSkene", "MACE"), key=lls.get), lls


def main() -> None:
    rows: dict[str, dict[str, float]] = {}
    extra: dict[str, dict] = {}
    for name in DATASETS:
        table, truth = load(name)
        df = pd.read_csv(default_datasets_dir() / name / "annotations.csv").rename(
            columns={"item": "item_id", "worker": "annotator_id"}
        )
        r: dict[str, float] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            r["DawidSkene"] = score(table, DawidSkene().fit(table).probas_.to_numpy(), truth)
            r["MACE"] = score(table, MACE().fit(table).probas_.to_numpy(), truth)
            t1 = time.perf_counter()
            r["GLAD"] = score(table, glad(table), truth)
            r["GLAD floored"] = score(table, glad(table, floored=True), truth)
            extra.setdefault("glad_time_s", {})[name] = time.perf_counter() - t1
            extra.setdefault("ds_mace_time_s", {})[name] = t1 - t0
            r["VB-DS flat"] = score(table, _em(table, vb_ds(1.0)), truth)
            r["VB-DS diag"] = score(table, _em(table, vb_ds(2.0)), truth)
            r["Community DS"] = score(table, _em(table, community_ds()), truth)
            chosen, lls = heldout_choice(table, df)
            r["DS/MACE by held-out LL"] = r[chosen]
            w = lls["blend_weight_ds"]
            blend = w * DawidSkene().fit(table).probas_.to_numpy()
            blend += (1 - w) * MACE().fit(table).probas_.to_numpy()
            r["DS+MACE blend by held-out LL"] = score(table, blend, truth)
            extra.setdefault("heldout", {})[name] = {"chosen": chosen, "loglik": lls}
        rows[name] = r
        print(name, {k: round(v, 4) for k, v in r.items()}, flush=True)
    methods = list(next(iter(rows.values())))
    means = {m: float(np.mean([rows[d][m] for d in DATASETS])) for m in methods}
    best = float(np.mean([CROWDKIT_BEST[d] for d in DATASETS]))
    out = {
        "accuracy": rows,
        "mean": means,
        "crowdkit_best_mean": best,
        "points_vs_crowdkit_best": {m: 100 * (v - best) for m, v in means.items()},
        **extra,
    }
    for m in methods:
        print(f"{m:24s} mean {means[m]:.4f}  {100 * (means[m] - best):+.2f} points")
    (RESULTS / "consensus_variants.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
