"""Model-assisted consensus: truelabel ModelAssistedConsensus vs cleanlab's CROWDLAB (2.9.0),
plain Dawid-Skene and majority vote, side by side in one run, the same pred_probs for both.

1. Synthetic crowds with features (sklearn ``make_classification``): 1-3 labels per item from
   annotators of known accuracy (errors uniform over the other classes); pred_probs are
   out-of-fold (5 folds) from a logistic regression trained on the majority vote. Several
   seeds. Measured: consensus accuracy against the true class, and the Spearman correlation
   of each method's annotator quality with the annotators' true accuracies.
2. crowd_rte (../shared/datasets): items are "text [SEP] hypothesis", embedded with
   truelabel's OnnxTextEncoder (all-MiniLM-L6-v2 int8); annotators are subsampled to 1-3
   answers per item (seeded); pred_probs out-of-fold from a logistic regression on the
   embeddings trained on the subsampled majority vote. Accuracy against the gold labels;
   annotator quality rank correlation against each worker's accuracy on the full gold set.

Gold is never shown to any method (only used to score).

    PYTHONPATH=src benchmarks/.venv-peers/bin/python benchmarks/bench_crowdlab.py

Writes benchmarks/results/crowdlab.json and crowdlab.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WORK, machine, md_table, versions, write_json

PACKAGES = ["numpy", "scipy", "scikit-learn", "pandas", "cleanlab", "truelabel"]
METHODS = [
    "MajorityVote",
    "DawidSkene",
    "OneCoinDawidSkene",
    "CROWDLAB",
    "ModelAssistedConsensus",
    "ModelAssisted(DawidSkene)",
]


def simulate(seed: int, n_items: int, n_annot: int, k: int) -> tuple:
    from sklearn.datasets import make_classification

    rng = np.random.default_rng(seed)
    x, y = make_classification(
        n_samples=n_items,
        n_features=20,
        n_informative=8,
        n_classes=k,
        n_clusters_per_class=1,
        class_sep=1.0,
        random_state=seed,
    )
    acc = rng.uniform(0.35, 0.9, n_annot)
    n_lab = rng.integers(1, 4, n_items)
    item = np.repeat(np.arange(n_items), n_lab)
    # distinct annotators per item: the first n_lab of a random permutation
    perm = np.argsort(rng.random((n_items, n_annot)), axis=1)
    annot = np.concatenate([perm[i, : n_lab[i]] for i in range(n_items)])
    right = rng.random(len(item)) < acc[annot]
    wrong = (y[item] + rng.integers(1, k, len(item))) % k
    label = np.where(right, y[item], wrong)
    df = pd.DataFrame({"item_id": item, "annotator_id": annot, "label": label})
    return df, x, y, pd.Series(acc, index=np.arange(n_annot))


def majority(df: pd.DataFrame, k: int, n_items: int, seed: int) -> np.ndarray:
    votes = np.zeros((n_items, k))
    np.add.at(votes, (df["item_id"].to_numpy(), df["label"].to_numpy()), 1)
    noise = np.random.default_rng(seed).random(votes.shape) * 1e-3
    return np.argmax(votes + noise, axis=1)


def oof_pred_probs(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    clf = LogisticRegression(max_iter=2000, C=1.0)
    return cross_val_predict(clf, x, y, cv=5, method="predict_proba")


def run_methods(df: pd.DataFrame, pred_probs: np.ndarray, k: int, seed: int) -> dict:
    """Consensus labels (array over items 0..n-1) and annotator quality (Series) per method."""
    from cleanlab.multiannotator import get_label_quality_multiannotator

    import truelabel
    from truelabel.aggregate import DawidSkene, ModelAssistedConsensus, OneCoinDawidSkene

    n = pred_probs.shape[0]
    out: dict = {}
    t = time.perf_counter()
    mv = majority(df, k, n, seed)
    agree = (df["label"].to_numpy() == mv[df["item_id"].to_numpy()]).astype(float)
    out["MajorityVote"] = (
        mv,
        pd.Series(agree).groupby(df["annotator_id"].to_numpy()).mean(),
        time.perf_counter() - t,
    )
    ann = truelabel.aggregate.Annotations(df, classes=list(range(k)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        ds = DawidSkene().fit(ann)
        out["DawidSkene"] = (ds.labels_.to_numpy(), ds.skills_, time.perf_counter() - t)
        t = time.perf_counter()
        oc = OneCoinDawidSkene().fit(ann)
        out["OneCoinDawidSkene"] = (oc.labels_.to_numpy(), oc.skills_, time.perf_counter() - t)
        t = time.perf_counter()
        wide = df.pivot(index="item_id", columns="annotator_id", values="label")
        res = get_label_quality_multiannotator(wide, pred_probs, verbose=False)
        out["CROWDLAB"] = (
            res["label_quality"]["consensus_label"].to_numpy(),
            res["annotator_stats"]["annotator_quality"],
            time.perf_counter() - t,
        )
        t = time.perf_counter()
        mac = ModelAssistedConsensus().fit(ann, pred_probs=pred_probs)
        out["ModelAssistedConsensus"] = (
            mac.labels_.to_numpy(),
            mac.skills_,
            time.perf_counter() - t,
            mac.model_weight_,
            mac.model_accuracy_,
        )
        t = time.perf_counter()
        mds = ModelAssistedConsensus(DawidSkene()).fit(ann, pred_probs=pred_probs)
        out["ModelAssisted(DawidSkene)"] = (
            mds.labels_.to_numpy(),
            mds.skills_,
            time.perf_counter() - t,
            mds.model_weight_,
            mds.model_accuracy_,
        )
    return out


def score(out: dict, truth: np.ndarray, true_acc: pd.Series, df: pd.DataFrame) -> dict:
    single = np.bincount(df["item_id"].to_numpy(), minlength=len(truth)) == 1
    rows = {}
    for name, (labels, quality, secs, *extra) in out.items():
        q = quality.reindex(true_acc.index)
        ok = q.notna().to_numpy()
        rho = spearmanr(q.to_numpy()[ok], true_acc.to_numpy()[ok]).statistic
        rows[name] = {
            "accuracy": float(np.mean(labels == truth)),
            "accuracy_1_answer": float(np.mean(labels[single] == truth[single])),
            "spearman": float(rho),
            "seconds": secs,
        }
        if extra:
            rows[name]["model_weight"], rows[name]["model_accuracy"] = extra
    return rows


def synthetic(seeds: list[int], n_items: int, n_annot: int, k: int) -> list[dict]:
    runs = []
    for seed in seeds:
        df, x, y, acc = simulate(seed, n_items, n_annot, k)
        mv = majority(df, k, n_items, seed)
        pp = oof_pred_probs(x, mv, seed)
        rows = score(run_methods(df, pp, k, seed), y, acc, df)
        rows["model_alone"] = {"accuracy": float(np.mean(pp.argmax(1) == y))}
        print(
            seed,
            {m: round(r["accuracy"], 4) for m, r in rows.items()},
            {m: round(r.get("spearman", np.nan), 3) for m, r in rows.items()},
            file=sys.stderr,
        )
        runs.append({"seed": seed, **rows})
    return runs


def rte(datasets: Path, seeds: list[int], cache: Path) -> list[dict]:
    base = datasets / "crowd_rte"
    full = pd.read_csv(base / "annotations.csv")
    items = pd.read_csv(base / "items.csv").sort_values("item").reset_index(drop=True)
    truth = pd.read_csv(base / "truth.csv").set_index("item")["label"]
    if cache.exists():
        emb = np.load(cache)
    else:
        from truelabel.encode import OnnxTextEncoder

        texts = (items["text"] + " [SEP] " + items["hypothesis"]).tolist()
        emb = OnnxTextEncoder().encode(texts).astype(np.float64)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, emb)
    codes = {it: i for i, it in enumerate(items["item"])}
    y = truth.reindex(items["item"]).to_numpy()
    full = full.assign(item_id=full["item"].map(codes), label=full["label"])
    full = full.drop_duplicates(["item_id", "worker"])
    wacc = full["label"].to_numpy() == y[full["item_id"].to_numpy()]
    true_acc = pd.Series(wacc).groupby(full["worker"].to_numpy()).mean()
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        shuffled = full.sample(frac=1.0, random_state=seed)
        rank = shuffled.groupby("item_id").cumcount().to_numpy()
        keep_n = rng.integers(1, 4, len(items))
        sub = shuffled[rank < keep_n[shuffled["item_id"].to_numpy()]]
        df = pd.DataFrame(
            {
                "item_id": sub["item_id"].to_numpy(),
                "annotator_id": sub["worker"].to_numpy(),
                "label": sub["label"].to_numpy(),
            }
        )
        mv = majority(df, 2, len(items), seed)
        pp = oof_pred_probs(emb, mv, seed)
        seen = true_acc.loc[sorted(df["annotator_id"].unique())]
        rows = score(run_methods(df, pp, 2, seed), y, seen, df)
        rows["model_alone"] = {"accuracy": float(np.mean(pp.argmax(1) == y))}
        print(
            "rte",
            seed,
            {m: round(r["accuracy"], 4) for m, r in rows.items()},
            {m: round(r.get("spearman", np.nan), 3) for m, r in rows.items()},
            file=sys.stderr,
        )
        runs.append({"seed": seed, "n_answers": len(df), **rows})
    return runs


def summarize(runs: list[dict]) -> dict:
    out = {}
    for m in [*METHODS, "model_alone"]:
        acc = [r[m]["accuracy"] for r in runs]
        rho = [r[m]["spearman"] for r in runs if "spearman" in r[m]]
        secs = [r[m]["seconds"] for r in runs if "seconds" in r[m]]
        one = [r[m]["accuracy_1_answer"] for r in runs if "accuracy_1_answer" in r[m]]
        out[m] = {
            "accuracy": float(np.mean(acc)),
            "spearman": float(np.mean(rho)) if rho else None,
            "seconds": float(np.median(secs)) if secs else None,
            "accuracy_1_answer": float(np.mean(one)) if one else None,
        }
    return out


def verdict(runs: list[dict]) -> str:
    """ModelAssistedConsensus against CROWDLAB: mean differences and seeds won."""
    ours, peer = "ModelAssistedConsensus", "CROWDLAB"
    parts = []
    for key, name, digits in (("accuracy", "accuracy", 4), ("spearman", "Spearman", 3)):
        d = [r[ours][key] - r[peer][key] for r in runs]
        won = sum(x > 0 for x in d)
        tied = sum(x == 0 for x in d)
        parts.append(
            f"{name} {np.mean(d):+.{digits}f} on average, higher on {won} of {len(d)} seeds"
            + (f" ({tied} tied)" if tied else "")
        )
    t = [r[peer]["seconds"] / r[ours]["seconds"] for r in runs]
    return (
        f"ModelAssistedConsensus vs CROWDLAB: {'; '.join(parts)}; fit time ratio "
        f"CROWDLAB / ours {np.median(t):.1f}x (median)."
    )


def render(res: dict) -> str:
    lines = [
        "# Model-assisted consensus: truelabel vs cleanlab CROWDLAB",
        "",
        f"Command: `{res['command']}`; versions {res['versions']}.",
        "",
    ]
    for part, title in (("synthetic", "Synthetic crowds"), ("rte", "crowd_rte, 1-3 answers/item")):
        if part not in res:
            continue
        s = summarize(res[part])
        lines += [
            f"## {title} ({res[part + '_setup']})",
            "",
            "Mean over seeds " + ", ".join(str(r["seed"]) for r in res[part]) + ".",
            "",
        ]
        rows = [
            [
                m,
                f"{s[m]['accuracy']:.4f}",
                "" if s[m]["accuracy_1_answer"] is None else f"{s[m]['accuracy_1_answer']:.4f}",
                "" if s[m]["spearman"] is None else f"{s[m]['spearman']:.3f}",
                "" if s[m]["seconds"] is None else f"{s[m]['seconds']:.3f}",
            ]
            for m in [*METHODS, "model_alone"]
        ]
        lines += [
            md_table(
                [
                    "method",
                    "consensus accuracy",
                    "on 1-answer items",
                    "Spearman(quality, true acc)",
                    "fit s (median)",
                ],
                rows,
            ),
            "",
            verdict(res[part]),
            "",
        ]
        per = [
            [
                r["seed"],
                *(f"{r[m]['accuracy']:.4f} / {r[m]['spearman']:.3f}" for m in METHODS),
                f"{r['ModelAssistedConsensus']['model_weight']:.2f}",
            ]
            for r in res[part]
        ]
        lines += [
            "Per seed (accuracy / Spearman):",
            "",
            md_table(["seed", *METHODS, "model weight"], per),
            "",
        ]
    lines += [
        "Notes. Same pred_probs for CROWDLAB and ModelAssistedConsensus (out-of-fold, 5-fold "
        "logistic regression trained on the majority vote of the crowd as given to the methods); "
        "gold is only used to score. Annotator quality: CROWDLAB's `annotator_quality`, our "
        "`skills_`, majority vote's agreement rate. ModelAssistedConsensus runs on its default "
        "base, one-coin Dawid-Skene; the synthetic annotators err uniformly over the other "
        "classes, which is the one-coin model, so the synthetic rows favour that base: the "
        "`ModelAssisted(DawidSkene)` row is the same method on a full confusion matrix per "
        "annotator. On crowd_rte the MiniLM classifier of 'text [SEP] hypothesis' is at chance "
        "(model_alone; RTE needs inference that a mean-pooled sentence embedding does not "
        "carry), so its weight is 0 and the difference from CROWDLAB there comes from the "
        "annotator model (one-coin vs CROWDLAB's agreement weights), not from the classifier.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets-dir", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--no-rte", action="store_true")
    ap.add_argument("--out", default="crowdlab")
    a = ap.parse_args()
    res: dict = {
        "command": "PYTHONPATH=src benchmarks/.venv-peers/bin/python "
        "benchmarks/bench_crowdlab.py " + " ".join(sys.argv[1:]),
        "versions": versions(PACKAGES),
        "machine": machine(),
    }
    res["synthetic_setup"] = (
        f"{a.items} items, {a.annotators} annotators with accuracy "
        f"U(0.35, 0.9), {a.classes} classes, 1-3 answers per item"
    )
    res["synthetic"] = synthetic(a.seeds, a.items, a.annotators, a.classes)
    if not a.no_rte:
        res["rte_setup"] = (
            "800 items, 164 workers subsampled to 1-3 answers per item; "
            "MiniLM embeddings of text [SEP] hypothesis"
        )
        res["rte"] = rte(a.datasets_dir, a.seeds, WORK / "rte_minilm.npy")
    write_json(RESULTS / f"{a.out}.json", res)
    (RESULTS / f"{a.out}.md").write_text(render(res))
    print(render(res))


if __name__ == "__main__":
    main()
