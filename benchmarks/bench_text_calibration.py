"""Are the text classifiers' probabilities good enough for conformal sets and certification?

Issue 7 asks that every ``predict_proba`` of the text classifiers (zero-shot, few-shot,
self-training) work unchanged under ``SplitConformalClassifier`` and ``CertifiedAutoLabeler``,
shown on the shared text sets. For each dataset (official test split, in full) and method:

Methods: zeroshot (no fit), zeroshot+pool (``fit`` on the unlabeled train split: class
vectors and prior adapted without labels), fewshot (k shots), fewshot+st (self-training on
the rest of train, unlabeled).

- accuracy, ECE (15 equal-width bins of the top probability), log loss, and a reliability
  table (10 bins: items, mean confidence, accuracy) pooled over seeds;
- split conformal (LAC, alpha 0.1 and 0.05): calibrated on a random half of the test split,
  scored on the other half, ``--splits`` random halves per seed: mean coverage (target: at
  least 1 - alpha on average) and mean set size;
- certified auto-labeling (``CertifiedAutoLabeler``, max_error 0.05 and 0.02, delta 0.05,
  guarantee "rate" (the default: the error *rate* of the accepted population) and "pool"
  (the realised error among the accepted items of the pool decided)): fitted on one half,
  deciding the other: share accepted, realised error among the accepted, and the share of
  splits whose realised error exceeds max_error (violations). "pool" certifies exactly that
  event (at most delta of them); under "rate" the realised error of a finite pool scatters
  around a rate that is within max_error, so a few more are expected.

The few-shot rows use the k-shot sample of bench_fewshot.py (the anchor's sampler, same
seeds); class descriptions where the dataset has them. Texts are encoded once through a
``CachedEncoder`` in benchmarks/_work/cache (the few-shot first-token view is computed live).

Run (the [text] extra installed):
    PYTHONPATH=src .venv/bin/python benchmarks/bench_text_calibration.py \
        --datasets text_trec text_sms_spam text_banking77 --k 8 --seeds 0 1 2 \
        --out benchmarks/results/text_calibration.json
    .venv/bin/python benchmarks/bench_text_calibration.py --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WORK, default_datasets_dir, loadavg, md_table, write_json
from bench_fewshot import class_spec, kshot_indices, load_dataset

METHODS = ["zeroshot", "zeroshot+pool", "fewshot", "fewshot+st"]
ALPHAS = (0.1, 0.05)
CERTIFY = ((0.05, "rate"), (0.05, "pool"), (0.02, "rate"), (0.02, "pool"))
N_BINS_ECE, N_BINS_REL = 15, 10


def ece(probs: np.ndarray, y: np.ndarray, bins: int = N_BINS_ECE) -> float:
    """Expected calibration error of the top probability, equal-width bins."""
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == y
    b = np.minimum((conf * bins).astype(int), bins - 1)
    gap = np.abs(
        np.bincount(b, weights=hit, minlength=bins) - np.bincount(b, weights=conf, minlength=bins)
    )
    return float(gap.sum() / y.size)


def reliability(probs: np.ndarray, y: np.ndarray, bins: int = N_BINS_REL) -> list[dict]:
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == y
    b = np.minimum((conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    sc = np.bincount(b, weights=conf, minlength=bins)
    sh = np.bincount(b, weights=hit, minlength=bins)
    return [
        {
            "bin": f"{i / bins:.1f}-{(i + 1) / bins:.1f}",
            "n": int(n[i]),
            "confidence": float(sc[i] / n[i]) if n[i] else None,
            "accuracy": float(sh[i] / n[i]) if n[i] else None,
        }
        for i in range(bins)
    ]


def split_checks(probs: np.ndarray, y: np.ndarray, splits: int, seed: int) -> dict[str, Any]:
    """Conformal coverage / set size and certified auto-labeling over random halves."""
    from truelabel import CertifiedAutoLabeler
    from truelabel.conformal import SplitConformalClassifier, coverage, set_sizes

    rng = np.random.default_rng(10_000 + seed)
    out: dict[str, list[float]] = {}
    for _ in range(splits):
        cal = rng.permutation(y.size) < y.size // 2
        for alpha in ALPHAS:
            cp = SplitConformalClassifier(method="lac", alpha=alpha).fit(probs[cal], y[cal])
            sets = cp.predict_set(probs[~cal])
            out.setdefault(f"coverage_{alpha}", []).append(float(coverage(sets, y[~cal])))
            out.setdefault(f"set_size_{alpha}", []).append(float(set_sizes(sets).mean()))
        wrong = probs[~cal].argmax(axis=1) != y[~cal]
        for eps, guarantee in CERTIFY:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                auto = CertifiedAutoLabeler(max_error=eps, delta=0.05, guarantee=guarantee)
                res = auto.fit(probs[cal], y[cal]).decide(probs[~cal])
            acc = res.decisions["accepted"].to_numpy(bool)
            err = float(wrong[acc].mean()) if acc.any() else 0.0
            tag = f"{eps}_{guarantee}"
            out.setdefault(f"accepted_{tag}", []).append(float(acc.mean()))
            out.setdefault(f"error_{tag}", []).append(err)
            out.setdefault(f"violation_{tag}", []).append(float(err > eps))
    return {k: float(np.mean(v)) for k, v in out.items()}


def make_model(method: str, classes: Any, enc: Any, seed: int) -> Any:
    from truelabel import FewShotClassifier, SelfTrainingClassifier, ZeroShotClassifier

    if method.startswith("zeroshot"):
        return ZeroShotClassifier(classes=classes, encoder=enc)
    base = FewShotClassifier(classes=classes, encoder=enc, random_state=seed)
    if method == "fewshot+st":
        return SelfTrainingClassifier(base=base, encoder=enc, random_state=seed)
    return base


def run_dataset(folder: Path, a: argparse.Namespace, enc: Any) -> list[dict]:
    data = load_dataset(folder, test_cap=0)
    labels = data["labels"]
    spec = class_spec(folder, labels)
    classes = spec["descriptions"] or spec["names"]
    names = np.asarray(labels, dtype=object)
    x_tr, y_tr = data["x_train"], data["y_train"]
    x_te, y_te = data["x_test"], data["y_test"]
    enc.encode(x_te)  # fill the cache once (timed runs are not the point here)
    rows = []
    for method in a.methods:
        seeds = [0] if method.startswith("zeroshot") else a.seeds
        probs_all, y_all = [], []
        for seed in seeds:
            t0 = time.perf_counter()
            model = make_model(method, classes, enc, seed)
            if method == "zeroshot":
                probs = model.predict_proba(x_te)
            elif method == "zeroshot+pool":  # adapted to the unlabeled train split, no labels
                pool = x_tr[: a.pool_cap] if a.pool_cap else x_tr
                probs = model.fit(pool).predict_proba(x_te)
            else:
                shot = kshot_indices(y_tr, len(labels), a.k, seed)
                texts = [x_tr[i] for i in shot]
                if method == "fewshot+st":
                    rest = np.setdiff1d(np.arange(len(x_tr)), shot)
                    rest = rest[: a.pool_cap] if a.pool_cap else rest
                    model.fit(texts, names[y_tr[shot]], [x_tr[i] for i in rest])
                else:
                    model.fit(texts, names[y_tr[shot]])
                probs = model.predict_proba(x_te)
            probs = np.asarray(probs, dtype=np.float64)
            row = {
                "dataset": folder.name,
                "method": method,
                "k": 0 if method.startswith("zeroshot") else a.k,
                "seed": seed,
                "n_test": int(y_te.size),
                "accuracy": float((probs.argmax(axis=1) == y_te).mean()),
                "ece": ece(probs, y_te),
                "log_loss": float(
                    -np.log(np.maximum(probs[np.arange(y_te.size), y_te], 1e-12)).mean()
                ),
                "seconds": time.perf_counter() - t0,
                **split_checks(probs, y_te, a.splits, seed),
            }
            print(json.dumps({k: v for k, v in row.items() if k != "reliability"}), flush=True)
            rows.append(row)
            probs_all.append(probs)
            y_all.append(y_te)
        rel = reliability(np.vstack(probs_all), np.concatenate(y_all))
        rows.append({"dataset": folder.name, "method": method, "reliability": rel})
    return rows


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


def render(res: dict) -> str:
    runs = [r for r in res["rows"] if "reliability" not in r]
    rels = [r for r in res["rows"] if "reliability" in r]
    lines = [
        "# Text classifiers: calibration, conformal coverage and certification on their outputs",
        "",
        f"`{res['command']}` ({res['started']}; load average at start {res['loadavg']}).",
        "",
        "Official test split in full; the few-shot sample per seed as bench_fewshot.py (class "
        "descriptions where the dataset has them). Conformal and certification: "
        f"{res['splits']} random halves per seed (fit on one half, judged on the other), means "
        "over halves and seeds. ECE: 15 equal-width bins of the top probability. Violations: "
        "share of halves whose realised error among the accepted exceeds max_error "
        "(`CertifiedAutoLabeler`, delta 0.05; `pool` certifies that event at most delta of "
        "the time, `rate` the error rate of the accepted population, around which a finite "
        "pool's realised error scatters).",
        "",
    ]
    head = ["dataset", "method", "k", "seeds", "accuracy", "ECE", "log loss"]
    head += [f"coverage a={a}" for a in ALPHAS] + [f"set size a={a}" for a in ALPHAS]
    head += [f"accepted / error / violations @{e} {g}" for e, g in CERTIFY]
    body = []
    keys = sorted(
        {(r["dataset"], r["method"]) for r in runs}, key=lambda t: (t[0], METHODS.index(t[1]))
    )
    for ds, m in keys:
        rs = [r for r in runs if r["dataset"] == ds and r["method"] == m]
        row = [ds.removeprefix("text_"), m, str(rs[0]["k"]), ",".join(str(r["seed"]) for r in rs)]
        row += [
            f"{_mean(rs, 'accuracy'):.3f}",
            f"{_mean(rs, 'ece'):.3f}",
            f"{_mean(rs, 'log_loss'):.3f}",
        ]
        row += [f"{_mean(rs, f'coverage_{a}'):.3f}" for a in ALPHAS]
        row += [f"{_mean(rs, f'set_size_{a}'):.2f}" for a in ALPHAS]
        row += [
            f"{_mean(rs, f'accepted_{e}_{g}'):.3f} / {_mean(rs, f'error_{e}_{g}'):.3f} / "
            f"{_mean(rs, f'violation_{e}_{g}'):.3f}"
            for e, g in CERTIFY
        ]
        body.append(row)
    lines += [md_table(head, body), "", "## Reliability (pooled over seeds)", ""]
    for r in rels:
        lines.append(
            f"**{r['dataset'].removeprefix('text_')}, {r['method']}**: "
            + "; ".join(
                f"{b['bin']}: {b['n']} items, conf {b['confidence']:.2f} acc {b['accuracy']:.2f}"
                for b in r["reliability"]
                if b["n"]
            )
        )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--datasets", nargs="+", default=["text_trec", "text_sms_spam", "text_banking77"]
    )
    p.add_argument("--datasets-dir", type=Path, default=None)
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--splits", type=int, default=50)
    p.add_argument("--pool-cap", type=int, default=0, help="cap the self-training pool (0 = all)")
    p.add_argument("--out", type=Path, default=RESULTS / "text_calibration.json")
    p.add_argument("--render-only", action="store_true")
    a = p.parse_args()
    md = a.out.with_suffix(".md")
    if a.render_only:
        md.write_text(render(json.loads(a.out.read_text())) + "\n")
        return
    os.environ.setdefault("TRUELABEL_CACHE_DIR", str(WORK / "cache"))
    from truelabel.encode import CachedEncoder, OnnxTextEncoder

    enc = CachedEncoder(OnnxTextEncoder())
    ddir = a.datasets_dir or default_datasets_dir()
    res = {
        "command": "python benchmarks/bench_text_calibration.py " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg": loadavg(),
        "splits": a.splits,
        "rows": [],
    }
    for name in a.datasets:
        res["rows"] += run_dataset(ddir / name, a, enc)
        write_json(a.out, res)
    md.write_text(render(res) + "\n")
    print(md.read_text())


if __name__ == "__main__":
    main()
