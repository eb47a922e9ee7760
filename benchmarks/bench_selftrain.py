"""Self-training, prior-shift correction and calibration on the shared text sets.

A stand-in base (logistic regression on frozen all-MiniLM-L6-v2 embeddings, the
``fit_embeddings`` / ``predict_proba_embeddings`` interface) is wrapped by
``SelfTrainingClassifier``; k-shot samples come from train (5 seeds), the rest of train is the
unlabeled pool, the official test split is scored. Reported per setting: accuracy, macro-F1,
worst-class accuracy, ECE (15 equal-width bins of the top probability), log loss, and the
coverage / mean set size of split-conformal LAC sets (alpha = 0.1) calibrated on half of the
test split and scored on the other half. The shifted pool keeps every item of half the
classes and a fifth of the others; its test split is shifted the same way, so prior-shift
correction can be judged on data with the pool's class mix.

Run:
    PYTHONPATH=src /work/main/.venv/bin/python benchmarks/bench_selftrain.py \
        --sets text_trec --shots 8 16 --seeds 0 1 2 3 4 --out benchmarks/results/selftrain.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from truelabel.conformal import SplitConformalClassifier, coverage, set_sizes
from truelabel.model import SelfTrainingClassifier
from truelabel.model._pseudo import temper

DATA = Path("/work/shared/datasets")
CACHE = Path("/work/wt/_cache")


class LogRegBase(BaseEstimator):
    """Stand-in text classifier: logistic regression on frozen embeddings."""

    def __init__(self, classes: Any = None, C: float = 1.0, random_state: int | None = 0) -> None:
        self.classes = classes
        self.C = C
        self.random_state = random_state

    def fit_embeddings(self, X: np.ndarray, labels: Any) -> LogRegBase:
        self.classes_ = np.asarray(list(self.classes), dtype=object)
        self.lr_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.random_state)
        self.lr_.fit(X, np.asarray(labels, dtype=str))
        self._cols = [list(self.classes_).index(c) for c in self.lr_.classes_]
        return self

    def predict_proba_embeddings(self, X: np.ndarray) -> np.ndarray:
        out = np.zeros((X.shape[0], len(self.classes_)))
        out[:, self._cols] = self.lr_.predict_proba(X)
        return out


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == y
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    gap = np.abs(
        np.bincount(b, weights=hit, minlength=bins) - np.bincount(b, weights=conf, minlength=bins)
    )
    return float(gap.sum() / n.sum())


def metrics(probs: np.ndarray, y: np.ndarray, k: int, seed: int) -> dict[str, float]:
    pred = probs.argmax(axis=1)
    hit = pred == y
    n_k = np.bincount(y, minlength=k)
    acc_k = np.bincount(y, weights=hit, minlength=k) / np.maximum(n_k, 1)
    rng = np.random.default_rng(seed)
    cal = rng.permutation(y.size) < y.size // 2
    cp = SplitConformalClassifier(method="lac", alpha=0.1).fit(probs[cal], y[cal])
    sets = cp.predict_set(probs[~cal])
    return {
        "accuracy": float(hit.mean()),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=np.arange(k))),
        "worst_class": float(acc_k[n_k > 0].min()),
        "ece": ece(probs, y),
        "log_loss": float(-np.log(np.maximum(probs[np.arange(y.size), y], 1e-12)).mean()),
        "coverage_90": float(coverage(sets, y[~cal])),
        "set_size": float(set_sizes(sets).mean()),
    }


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    classes = (DATA / name / "labels.txt").read_text().split("\n")
    classes = [c for c in classes if c]
    out = []
    for split in ("train", "test"):
        path = CACHE / f"{name}_{split}_minilm.npy"
        if not path.exists():
            path = CACHE / f"{name.removeprefix('text_')}_{split}_minilm.npy"
        x = np.load(path)
        lab = pd.read_csv(DATA / name / f"{split}.csv", keep_default_na=False)["label"].astype(str)
        y = lab.map({c: i for i, c in enumerate(classes)}).to_numpy()
        out += [x, y]
    return out[0], out[1], out[2], out[3], classes


def shift_mask(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Keep all items of half the classes and a fifth of the items of the others."""
    rare = rng.permutation(k)[: k // 2]
    keep = rng.random(y.size) < np.where(np.isin(y, rare), 0.2, 1.0)
    return keep


def run(
    name: str, shots: list[int], seeds: list[int], rounds: int, pools: tuple[bool, ...]
) -> list[dict[str, Any]]:
    xtr, ytr, xte, yte, classes = load(name)
    k = len(classes)
    names = np.asarray(classes, dtype=object)
    rows: list[dict[str, Any]] = []
    for shot in shots:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            lab = np.concatenate(
                [rng.choice(np.flatnonzero(ytr == c), shot, replace=False) for c in range(k)]
            )
            pool = np.setdiff1d(np.arange(ytr.size), lab)
            xl, yl = xtr[lab], names[ytr[lab]]
            for shifted in pools:
                smask = shift_mask(ytr[pool], k, np.random.default_rng(1000 + seed))
                pool_s = pool[smask] if shifted else pool
                tmask = (
                    np.isin(
                        np.arange(yte.size),
                        np.flatnonzero(shift_mask(yte, k, np.random.default_rng(1000 + seed))),
                    )
                    if shifted
                    else np.ones(yte.size, bool)
                )
                xt, yt = xte[tmask], yte[tmask]
                for label, rounds_ in (("base", 0), ("selftrain", rounds)):
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        st = SelfTrainingClassifier(
                            LogRegBase(classes=classes),
                            max_rounds=rounds_,
                            cache_weight=0.0 if rounds_ == 0 else "auto",
                            prior_shift=True,
                            random_state=seed,
                        ).fit_embeddings(xl, yl, xtr[pool_s], eval_set=(xt, names[yt]))
                        adjusted = st.predict_proba_embeddings(xt)
                    seconds = time.perf_counter() - t0
                    # one fit gives all three outputs: undo the prior ratio, then T
                    tempered = adjusted / st._ratio
                    tempered /= tempered.sum(axis=1, keepdims=True)
                    raw = temper(tempered, 1.0 / st.temperature_)
                    true = np.bincount(ytr[pool_s], minlength=k) / pool_s.size
                    common = {
                        "dataset": name,
                        "shots": shot,
                        "seed": seed,
                        "pool": "shifted" if shifted else "full",
                        "rounds": st.n_rounds_,
                        "stop": st.stop_reason_,
                        "temperature": st.temperature_,
                        "cache_weight": st.cache_weight_,
                        "seconds": seconds,
                        "prior_l1_error": float(np.abs(st.pool_priors_ - true).sum()),
                        "prior_l1_train": float(np.abs(st.train_priors_ - true).sum()),
                        "history": st.history_,
                    }
                    for suffix, probs in (("", raw), ("+T", tempered), ("+T+prior", adjusted)):
                        row = {**common, "method": label + suffix, **metrics(probs, yt, k, seed)}
                        rows.append(row)
                        print(
                            f"{name} {shot}-shot seed {seed} {row['pool']:7s} {row['method']:18s} "
                            f"acc {row['accuracy']:.3f} worst {row['worst_class']:.3f} "
                            f"ece {row['ece']:.3f} cov {row['coverage_90']:.3f} "
                            f"size {row['set_size']:.2f} T {st.temperature_:.2f} "
                            f"w {st.cache_weight_} r {st.n_rounds_} {st.stop_reason_} "
                            f"prior err {row['prior_l1_error']:.3f} (train {row['prior_l1_train']:.3f}) "
                            f"{seconds:.1f}s",
                            flush=True,
                        )
    return rows


def md(df: pd.DataFrame) -> str:
    """A DataFrame as a markdown table (no tabulate dependency)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def render(paths: list[str]) -> str:
    """Markdown tables: means over seeds (+- sd of accuracy), per-round and per-class gains."""
    rows = [r for p in paths for r in json.loads(Path(p).read_text())]
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "history"} for r in rows])
    keys = ["dataset", "shots", "pool", "method"]
    cols = ["accuracy", "macro_f1", "worst_class", "ece", "log_loss", "coverage_90", "set_size"]
    g = df.groupby(keys, sort=False)
    out = g[cols].mean().round(3)
    out["acc_sd"] = g["accuracy"].std().round(3)
    out["seeds"] = g.size()
    out["T"] = g["temperature"].mean().round(2)
    out["rounds"] = g["rounds"].mean().round(1)
    out["prior_err"] = g["prior_l1_error"].mean().round(3)
    out["train_prior_err"] = g["prior_l1_train"].mean().round(3)
    out["seconds"] = g["seconds"].mean().round(1)
    lines = ["## Self-training, calibration and prior shift (means over seeds)", ""]
    lines.append(md(out.reset_index()))
    lines += ["", "## Test accuracy per round (self-training runs, mean over seeds)", ""]
    hist = []
    for r in rows:
        if r["method"] != "selftrain":
            continue
        for h in r["history"]:
            hist.append(
                {
                    **{k: r[k] for k in keys[:3]},
                    "round": h["round"],
                    "accuracy": h["accuracy"],
                    "base_only": h["base"]["accuracy"],
                    "cache_weight": h["cache_weight"],
                    "n_pseudo": h["n_pseudo"],
                    "kept": h["round"] == r["rounds"],
                }
            )
    if hist:
        h = pd.DataFrame(hist).groupby([*keys[:3], "round"], sort=True)
        t = h[["accuracy", "base_only", "cache_weight", "n_pseudo", "kept"]].mean().round(3)
        t["runs"] = h.size()
        lines.append(md(t.reset_index()))
    lines += ["", "## Test accuracy per class: round 0, round 1 and the kept round (full pool)", ""]
    pc = []
    for r in rows:
        if r["method"] != "selftrain" or r["pool"] != "full":
            continue
        by_round = {h["round"]: h["per_class"] for h in r["history"]}
        for c in by_round[0]:
            pc.append(
                {
                    "dataset": r["dataset"],
                    "shots": r["shots"],
                    "class": c,
                    "round_0": by_round[0][c],
                    "round_1": by_round.get(1, by_round[0])[c],
                    "kept": by_round[r["rounds"]][c],
                }
            )
    if pc:
        t = pd.DataFrame(pc).groupby(["dataset", "shots", "class"], sort=False).mean().round(3)
        t["gain_round_1"] = (t["round_1"] - t["round_0"]).round(3)
        t = t.reset_index()
        # banking77 has 77 classes: show its five worst and five best round-1 gains only
        parts = []
        for _, d in t.groupby(["dataset", "shots"], sort=False):
            if len(d) > 10:
                d = pd.concat([d.nsmallest(5, "gain_round_1"), d.nlargest(5, "gain_round_1")])
            parts.append(d)
        lines.append(md(pd.concat(parts)))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", nargs="+", default=["text_trec", "text_sms_spam", "text_banking77"])
    ap.add_argument("--shots", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pools", nargs="+", default=["full", "shifted"])
    ap.add_argument("--out", default="benchmarks/results/selftrain.json")
    ap.add_argument("--render", nargs="+", help="render these result files to markdown")
    a = ap.parse_args()
    if a.render:
        Path(a.out).write_text(render(a.render))
        return
    rows = [
        r
        for s in a.sets
        for r in run(s, a.shots, a.seeds, a.rounds, tuple(p == "shifted" for p in a.pools))
    ]
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
