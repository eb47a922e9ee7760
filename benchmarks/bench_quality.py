"""Label-error detection quality: truelabel vs cleanlab, same pred_probs, one process.

(a) Real label errors (``labelerrors_mnist``, ``labelerrors_20news``: the source's pred_probs,
    human-confirmed errors in label_error_indices.npy; every other item is *unverified*, so
    "precision" below is a lower bound). Per method: recall of confirmed errors among the
    k lowest scores for k = 1%, 2%, 5% of N, AUPRC (average precision of -score, confirmed
    errors positive, all N items), and for masks # flagged / # confirmed among flagged.
(b) Synthetic noise (uniform, class_conditional, pairwise; rates 0.1 and 0.3; --seeds seeds) on
    sklearn ``load_digits`` (pixels; pred_probs = truelabel.out_of_fold_pred_probs) and
    ``text_banking77`` train.csv (pred_probs = 5-fold OOF LogisticRegression(C=10) on sparse
    TF-IDF, cached in benchmarks/_work/; kNN features = TfidfEncoder().encode(texts)).
    Precision / recall / F1 of the mask vs the injected flips, AUPRC of -score.

Methods: every cleanlab filter_by in FILTERS and score method in SCORES; truelabel's default
(find_label_issues() + get_label_quality_scores(), both "noise_aware", pred_probs only), every
truelabel filter and score ("truelabel best", chosen like cleanlab best), and the Audit label
check with features (pred_probs blended with the kNN neighbour label distribution).
"cleanlab best" is chosen per row *after the fact* (the best filter_by by F1, the best score
method by AUPRC / recall@k, averaged over seeds), which favours cleanlab.

(c) The regime table: per dataset and noise setting, AUPRC of truelabel's default score vs
cleanlab's default (get_label_quality_scores, self_confidence), the mean and the worst per-seed
difference, the score before the regime rule (noise_aware with the fixed-smoothing matrix,
"before") and the two dispersions that set the rule (lam = max(0, 1 - 1/D) for the spread of
each class's errors over the other labels, and for the per-class noise rates); also F1 of
both default filters. Target: worst difference >= -0.01 on every row.

Usage: python benchmarks/bench_quality.py [--seeds 3] [--quick] [--skip-audit] [--datasets-dir DIR]
       [--out F]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    WORK,
    default_datasets_dir,
    fmt_ratio,
    machine,
    md_table,
    versions,
    write_json,
)

FILTERS = (
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "predicted_neq_given",
)
# cleanlab also has these two count-based filters; shown in the detail table only ("extra"),
# not used for "cleanlab best" (the brief compares against the five above).
EXTRA_FILTERS = ("low_self_confidence", "low_normalized_margin")
SCORES = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
TL_FILTERS = ("noise_aware", *FILTERS, *EXTRA_FILTERS)
TL_SCORES = ("noise_aware", *SCORES)
TOPK = (0.01, 0.02, 0.05)
NOISE_TYPES = ("uniform", "class_conditional", "pairwise")
RATES = (0.1, 0.3)


# ---------------------------------------------------------------- metrics


def prf(mask: np.ndarray, truth: np.ndarray) -> dict:
    tp = int(np.sum(mask & truth))
    p = tp / max(int(mask.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return {"P": p, "R": r, "F1": f1, "n_flagged": int(mask.sum()), "n_tp": tp}


def auprc(truth: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(truth, -score))


def recall_at(truth: np.ndarray, score: np.ndarray, frac: float) -> float:
    k = max(1, round(frac * truth.shape[0]))
    top = np.argsort(score, kind="stable")[:k]
    return float(truth[top].sum() / max(int(truth.sum()), 1))


def score_metrics(truth: np.ndarray, score: np.ndarray) -> dict:
    out = {"AUPRC": auprc(truth, score)}
    for f in TOPK:
        out[f"recall@{f:.0%}"] = recall_at(truth, score, f)
    return out


# ---------------------------------------------------------------- methods


def before_and_regime(labels, pred_probs) -> tuple[np.ndarray, float, float]:
    """The default score before the regime rule (fixed-smoothing noise matrix) and the two
    dispersions that set the rule (of the errors' spread over labels, of per-class rates)."""
    from truelabel.detect._confident_learning import _compute_stats, _smoothed_noise_matrix
    from truelabel.detect._rank import _noise_aware, _rate_dispersion, _structure_dispersion

    st = _compute_stats(labels, pred_probs)
    before = _noise_aware(labels, pred_probs, _smoothed_noise_matrix(st))
    cj = st.confident_joint
    return before, _structure_dispersion(cj), _rate_dispersion(cj)


def run_methods(labels, pred_probs, truth, features=None, seed=0) -> dict:
    """{method: metrics}; masks give P/R/F1, scores AUPRC + recall@k."""
    import cleanlab.filter
    import cleanlab.rank

    import truelabel

    out: dict[str, dict] = {}
    for f in FILTERS:
        t0 = time.perf_counter()
        m = cleanlab.filter.find_label_issues(labels, pred_probs, filter_by=f)
        out[f"cleanlab:filter={f}"] = prf(np.asarray(m, bool), truth)
        out[f"cleanlab:filter={f}"]["s"] = time.perf_counter() - t0
    for f in EXTRA_FILTERS:
        m = cleanlab.filter.find_label_issues(labels, pred_probs, filter_by=f)
        out[f"cleanlab:extra_filter={f}"] = prf(np.asarray(m, bool), truth)
    for s in SCORES:
        sc = cleanlab.rank.get_label_quality_scores(labels, pred_probs, method=s)
        out[f"cleanlab:score={s}"] = score_metrics(truth, sc)
    t0 = time.perf_counter()
    m = truelabel.find_label_issues(labels, pred_probs)  # default: noise_aware
    sc = truelabel.get_label_quality_scores(labels, pred_probs)  # default: noise_aware
    out["truelabel:default"] = {
        **prf(m, truth),
        **score_metrics(truth, sc),
        "s": time.perf_counter() - t0,
    }
    for f in TL_FILTERS:
        m = truelabel.find_label_issues(labels, pred_probs, filter_by=f)
        out[f"truelabel:filter={f}"] = prf(m, truth)
    for s in TL_SCORES:
        sc = truelabel.get_label_quality_scores(labels, pred_probs, method=s)
        out[f"truelabel:score={s}"] = score_metrics(truth, sc)
    before, d_off, d_rate = before_and_regime(labels, pred_probs)
    out["truelabel:before"] = {**score_metrics(truth, before), "D": d_off, "D_rate": d_rate}
    if features is not None:
        t0 = time.perf_counter()
        res = truelabel.Audit(issue_types={"label": {}}, random_state=seed).run(
            labels=labels, pred_probs=pred_probs, features=features
        )
        m = res.issues["is_label_issue"].to_numpy()
        sc = res.issues["label_score"].to_numpy()
        out["truelabel:audit_knn"] = {
            **prf(m, truth),
            **score_metrics(truth, sc),
            "s": time.perf_counter() - t0,
            "knn_weight_of_pred_probs": res.info.get("label", {}).get(
                "knn_blend_weight_of_pred_probs"
            ),
        }
    return out


def mean_methods(per_seed: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for name in per_seed[0]:
        keys = per_seed[0][name].keys()
        out[name] = {}
        for k in keys:
            vals = [r[name][k] for r in per_seed if r[name].get(k) is not None]
            out[name][k] = float(np.mean(vals)) if vals else None
            if k in ("F1", "AUPRC") and len(vals) > 1:
                out[name][k + "_sd"] = float(np.std(vals))
    return out


# ---------------------------------------------------------------- data


def real_dataset(d: Path) -> dict:
    P = np.load(d / "pred_probs.npy")
    y = np.load(d / "labels.npy").astype(np.int64)
    err = np.load(d / "label_error_indices.npy")
    truth = np.zeros(y.shape[0], bool)
    truth[err] = True
    res = run_methods(y, P, truth)
    return {"N": int(y.shape[0]), "K": int(P.shape[1]), "n_confirmed": int(truth.sum()), **res}


def load_digits_data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)

    def oof(noisy, seed):
        from truelabel import out_of_fold_pred_probs

        return out_of_fold_pred_probs(X, noisy, random_state=seed)[0]

    return y.astype(np.int64), oof, X


def load_banking77(datasets_dir: Path):
    import pandas as pd

    from truelabel.encode import TfidfEncoder

    d = datasets_dir / "text_banking77"
    df = pd.read_csv(d / "train.csv")
    classes = (d / "labels.txt").read_text().splitlines()
    code = {c: i for i, c in enumerate(classes)}
    y = df["label"].map(code).to_numpy().astype(np.int64)
    texts = df["text"].astype(str).tolist()
    sparse = TfidfEncoder().fit(texts).transform_sparse(texts)
    feats = TfidfEncoder().encode(texts)

    def oof(noisy, seed):
        from sklearn.linear_model import LogisticRegression

        from truelabel import out_of_fold_pred_probs

        est = LogisticRegression(C=10, max_iter=300)
        return out_of_fold_pred_probs(sparse, noisy, estimator=est, cv=5, random_state=seed)[0]

    return y, oof, feats


def cached_oof(name, oof, noisy, seed, key, use_cache=True):
    path = WORK / f"oof_{name}_{key}.npz"
    if use_cache and path.exists():
        z = np.load(path)
        if np.array_equal(z["noisy"], noisy):
            return z["P"], True
    P = oof(noisy, seed)
    WORK.mkdir(parents=True, exist_ok=True)
    np.savez(path, noisy=noisy, P=P)
    return P, False


def synthetic(name, y, oof, features, seeds, settings, cache, log, audit=True) -> dict:
    from truelabel.datasets import make_noisy_labels

    out = {}
    for nt, rate in settings:
        per_seed = []
        for seed in seeds:
            noisy, flipped = make_noisy_labels(y, noise_rate=rate, noise_type=nt, random_state=seed)
            t0 = time.perf_counter()
            if cache:
                P, hit = cached_oof(name, oof, noisy, seed, f"{nt}_{rate}_{seed}")
            else:
                P, hit = oof(noisy, seed), False
            oof_s = time.perf_counter() - t0
            r = run_methods(noisy, P, flipped, features=features if audit else None, seed=seed)
            r["_oof"] = {
                "s": oof_s,
                "cached": float(hit),
                "acc_vs_true": float(np.mean(P.argmax(1) == y)),
            }
            per_seed.append(r)
            log(
                f"{name} {nt} {rate} seed={seed}: oof {oof_s:.1f}s{' (cache)' if hit else ''}, "
                f"F1 tl={r['truelabel:default']['F1']:.3f} "
                f"audit={r.get('truelabel:audit_knn', {}).get('F1', float('nan')):.3f} "
                f"cl={r['cleanlab:filter=prune_by_noise_rate']['F1']:.3f}"
            )
        out[f"{nt} {rate}"] = {
            "seeds": list(seeds),
            "mean": mean_methods(per_seed),
            "per_seed": {k: [r[m][metric] for r in per_seed] for k, (m, metric) in REGIME.items()},
        }
    return out


# ---------------------------------------------------------------- table


def _best(methods: dict, prefix: str, metric: str) -> tuple[str, dict]:
    cands = {k: v for k, v in methods.items() if k.startswith(prefix)}
    name = max(cands, key=lambda k: cands[k][metric])
    return name.split("=", 1)[1], cands[name]


def _row(ds, setting, metric, methods, kind, headline, tl=None, tl_audit=None):
    """One table row: truelabel default / best / Audit vs cleanlab default / best."""
    prefix = "filter=" if kind == "mask" else "score="
    cl_default = "prune_by_noise_rate" if kind == "mask" else "self_confidence"
    cl_meth, cl = _best(methods, "cleanlab:" + prefix, metric)
    tl_meth, tlb = _best(methods, "truelabel:" + prefix, metric)
    return dict(
        dataset=ds, setting=setting, metric=metric,
        tl=tl if tl is not None else methods["truelabel:default"][metric],
        tl_best=tlb[metric], tl_best_method=tl_meth, tl_audit=tl_audit,
        cl_default=methods[f"cleanlab:{prefix}{cl_default}"][metric],
        cl=cl[metric], cl_method=cl_meth, headline=headline,
    )  # fmt: skip


def build_rows(res: dict) -> list[dict]:
    """One dict per table row (see _row)."""
    rows = []
    for ds, r in res["real"].items():
        for metric in [f"recall@{f:.0%}" for f in TOPK] + ["AUPRC"]:
            rows.append(_row(ds, "confirmed errors", metric, r, "score", True))
        # masks: F1 with confirmed errors as positives (unverified items count as negatives)
        rows.append(_row(ds, "confirmed errors", "F1", r, "mask", True))
    for ds, settings in res["synthetic"].items():
        for setting, s in settings.items():
            m = s["mean"]
            au = m.get("truelabel:audit_knn", {})
            for metric in ("P", "R", "F1"):
                rows.append(_row(ds, setting, metric, m, "mask", metric == "F1",
                                 tl_audit=au.get(metric)))  # fmt: skip
            rows.append(_row(ds, setting, "AUPRC", m, "score", True, tl_audit=au.get("AUPRC")))
    for r in rows:
        c = r["cl"]
        r["ratio"] = r["tl"] / c if c > 0 else None
        r["ratio_best"] = r["tl_best"] / c if c > 0 else None
        r["ratio_audit"] = r["tl_audit"] / c if r["tl_audit"] is not None and c > 0 else None
    # average rows over the headline metrics (F1, AUPRC, recall@k), per dataset and overall
    avg = []
    for ds in [*dict.fromkeys(r["dataset"] for r in rows), "all"]:
        sel = [r for r in rows if r["headline"] and (ds == "all" or r["dataset"] == ds)]

        def mean(key, sel=sel):
            vals = [r[key] for r in sel if r[key] is not None]
            return float(np.mean(vals)) if vals else None

        avg.append(dict(dataset=ds, setting="average", metric=f"mean of {len(sel)} headline rows",
                        tl=mean("tl"), tl_best=mean("tl_best"), tl_best_method="per row",
                        tl_audit=mean("tl_audit"), cl_default=mean("cl_default"), cl=mean("cl"),
                        cl_method="per row", ratio=mean("ratio"), ratio_best=mean("ratio_best"),
                        ratio_audit=mean("ratio_audit"), headline=False, average=True))  # fmt: skip
    return rows + avg


#: per-seed values kept for the regime table: key -> (method, metric)
REGIME = {
    "tl": ("truelabel:default", "AUPRC"),
    "cl": ("cleanlab:score=self_confidence", "AUPRC"),
    "before": ("truelabel:before", "AUPRC"),
    "D": ("truelabel:before", "D"),
    "D_rate": ("truelabel:before", "D_rate"),
    "tl_F1": ("truelabel:default", "F1"),
    "cl_F1": ("cleanlab:filter=prune_by_noise_rate", "F1"),
}


def regime_rows(res: dict) -> list[dict]:
    """Default score vs cleanlab's default per dataset and noise setting (see (c) above)."""
    rows = []
    per: list[tuple[str, str, dict]] = [
        (ds, "confirmed errors", {k: [r[m][metric]] for k, (m, metric) in REGIME.items()})
        for ds, r in res["real"].items()
    ]
    for ds, settings in res["synthetic"].items():
        per += [(ds, setting, s["per_seed"]) for setting, s in settings.items()]
    for ds, setting, v in per:
        diff = np.subtract(v["tl"], v["cl"])
        rows.append(dict(
            dataset=ds, setting=setting, n_seeds=len(diff),
            **{k: float(np.mean(v[k])) for k in REGIME},
            diff=float(diff.mean()), worst_diff=float(diff.min()),
            before_diff=float(np.mean(np.subtract(v["before"], v["cl"]))),
            before_worst_diff=float(np.subtract(v["before"], v["cl"]).min()),
        ))  # fmt: skip
    return rows


def render_regimes(rows: list[dict]) -> str:
    header = ["dataset", "noise", "seeds", "D spread", "D rates", "truelabel default AUPRC",
              "cleanlab default AUPRC", "difference (worst seed)", "before: AUPRC",
              "before: difference (worst seed)", "F1 truelabel default", "F1 cleanlab default"]  # fmt: skip
    body = [[r["dataset"], r["setting"], r["n_seeds"], f"{r['D']:.2f}", f"{r['D_rate']:.2f}", f"{r['tl']:.3f}",
             f"{r['cl']:.3f}", f"{r['diff']:+.3f} ({r['worst_diff']:+.3f})", f"{r['before']:.3f}",
             f"{r['before_diff']:+.3f} ({r['before_worst_diff']:+.3f})", f"{r['tl_F1']:.3f}",
             f"{r['cl_F1']:.3f}"] for r in rows]  # fmt: skip
    return md_table(header, body)


def render(rows: list[dict]) -> str:
    def f(x):
        return f"{x:.3f}" if isinstance(x, float) else ("–" if x is None else str(x))

    header = ["dataset", "setting", "metric", "truelabel default", "ratio",
              "truelabel best (method)", "ratio", "truelabel Audit+kNN", "ratio",
              "cleanlab default", "cleanlab best (method)"]  # fmt: skip
    body = []
    for r in rows:
        b = "**" if r.get("average") else ""
        body.append([
            f"{b}{r['dataset']}{b}", r["setting"], r["metric"], f(r["tl"]),
            f"{b}{fmt_ratio(r['ratio'])}{b}", f"{f(r['tl_best'])} ({r['tl_best_method']})",
            f"{b}{fmt_ratio(r['ratio_best'])}{b}", f(r["tl_audit"]),
            f"{b}{fmt_ratio(r['ratio_audit'])}{b}", f(r["cl_default"]),
            f"{f(r['cl'])} ({r['cl_method']})",
        ])  # fmt: skip
    return md_table(header, body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets-dir", type=Path, default=default_datasets_dir())
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 seed, uniform 0.1 only")
    ap.add_argument("--no-cache", action="store_true", help="recompute banking77 pred_probs")
    ap.add_argument("--skip-text", action="store_true", help="no banking77")
    ap.add_argument("--skip-audit", action="store_true", help="no Audit+kNN rows (faster)")
    ap.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    seeds = [0] if a.quick else list(range(a.seeds))
    settings = [("uniform", 0.1)] if a.quick else [(n, r) for n in NOISE_TYPES for r in RATES]
    res: dict = {"real": {}, "synthetic": {}}
    for name in ("labelerrors_mnist", "labelerrors_20news"):
        res["real"][name] = real_dataset(a.datasets_dir / name)
        log(f"{name} done")
    y, oof, X = load_digits_data()
    audit = not a.skip_audit
    res["synthetic"]["digits"] = synthetic("digits", y, oof, X, seeds, settings, False, log, audit)
    if not a.skip_text:
        y, oof, F = load_banking77(a.datasets_dir)
        log("banking77 encoded")
        res["synthetic"]["banking77"] = synthetic(
            "banking77", y, oof, F, seeds, settings, not a.no_cache, log, audit
        )
    rows = build_rows(res)
    table = render(rows)
    print(table)
    regimes = regime_rows(res)
    regime_md = render_regimes(regimes)
    print(regime_md)
    cmd = "python benchmarks/bench_quality.py " + " ".join(sys.argv[1:])
    write_json(
        a.out,
        {
            "command": cmd.strip(),
            "versions": versions(),
            "machine": machine(),
            "seeds": seeds,
            "settings": [f"{n} {r}" for n, r in settings],
            "wall_s": time.perf_counter() - t_start,
            "results": res,
            "rows": rows,
            "table_md": table,
            "regime_rows": regimes,
            "regime_md": regime_md,
        },
    )


if __name__ == "__main__":
    main()
