"""Near-duplicate precision/recall and outlier AUROC of the default text audit.

Near-duplicates (TREC, Banking77 train sets): the oracle is normalised-text equality
(lowercase, punctuation and whitespace collapsed). A flagged row is correct when another
row has the same normalised text, or when a hand-checked pair of it with another member of
its set is accepted (``tests/fixtures/near_duplicate_verdicts.csv``; unreviewed rows count
as wrong). Recall is over the rows that have a normalised-text twin.

Outliers: 2% SMS messages (text_sms_spam) injected into TREC (and Banking77) with random
labels of the host set; AUROC of ``outlier_score`` (lower = more atypical) for the SMS rows,
over three injection draws, plus how many rows are flagged and how many of them are SMS.

Usage::

    PYTHONPATH=src python benchmarks/bench_text_issues.py [--datasets DIR] [--dump-pairs F]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, default_datasets_dir, machine, md_table, versions, write_json

VERDICTS = REPO / "tests" / "fixtures" / "near_duplicate_verdicts.csv"
HOSTS = {"trec": "text_trec", "banking77": "text_banking77"}


def normalize_text(t: str) -> str:
    """Lowercase, punctuation -> space, whitespace collapsed (the duplicate oracle)."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", str(t).lower())).strip()


def audit_texts(texts: list[str], labels: list[str], seed: int = 0) -> pd.DataFrame:
    """The default audit, as ``truelabel audit --text-col`` runs it."""
    from truelabel import Dataset
    from truelabel.pipeline import audit_dataset

    ds = Dataset.from_pandas(
        pd.DataFrame({"text": texts, "label": labels}), label_col="label", text_col="text"
    )
    return audit_dataset(ds, random_state=seed).issues


def audit_features_only(texts: list[str], seed: int = 0) -> pd.DataFrame:
    """The same encoder, graph and detectors without the label check (whose out-of-fold
    model does not affect near-duplicates or outliers): the injection draws use it."""
    import inspect

    from truelabel import Audit
    from truelabel.encode import TfidfEncoder

    enc = TfidfEncoder(random_state=seed).fit(texts)
    kwargs = {}
    if "raw_features" in inspect.signature(Audit.run).parameters:  # absent before the fix
        kwargs["raw_features"] = enc.transform_raw(texts)
    return (
        Audit({"near_duplicate": {}, "outlier": {}}, random_state=seed)
        .run(features=enc.encode(texts), **kwargs)
        .issues
    )


def duplicate_eval(texts: list[str], issues: pd.DataFrame, verdicts: pd.DataFrame) -> dict:
    norm = pd.Series([normalize_text(t) for t in texts])
    twin = norm.map(norm.value_counts()).to_numpy() > 1
    flagged = issues["is_near_duplicate_issue"].to_numpy()
    sets = issues["near_duplicate_set"].to_numpy()
    accepted = {
        frozenset((a, b)): v == "accept"
        for a, b, v in verdicts[["text_a", "text_b", "verdict"]].itertuples(index=False)
    }
    by_hand, unreviewed, rejected, pairs = 0, 0, 0, []
    for i in np.flatnonzero(flagged & ~twin):
        others = [j for j in np.flatnonzero(sets == sets[i]) if j != i]
        keys = [frozenset((texts[i], texts[j])) for j in others]
        known = [accepted[k] for k in keys if k in accepted]
        if any(known):
            by_hand += 1
        elif known:
            rejected += 1
        else:
            unreviewed += 1
            pairs += [(texts[i], texts[j]) for j in others]
    n_flag = int(flagged.sum())
    tp_oracle = int((flagged & twin).sum())
    return {
        "flagged": n_flag,
        "twins": int(twin.sum()),
        "flagged_twins": tp_oracle,
        "accepted_by_hand": by_hand,
        "rejected_by_hand": rejected,
        "unreviewed": unreviewed,
        "precision_oracle_only": tp_oracle / n_flag if n_flag else float("nan"),
        "precision": (tp_oracle + by_hand) / n_flag if n_flag else float("nan"),
        "recall": tp_oracle / int(twin.sum()) if twin.any() else float("nan"),
        "_unreviewed_pairs": pairs,
    }


def inject(host: pd.DataFrame, sms: pd.DataFrame, seed: int, share: float = 0.02):
    n_in = round(share * len(host) / (1 - share))
    rng = np.random.default_rng(seed)
    pick = sms["text"].iloc[rng.choice(len(sms), n_in, replace=False)].tolist()
    labels = rng.choice(host["label"].unique(), n_in).tolist()
    texts = host["text"].tolist() + pick
    is_out = np.r_[np.zeros(len(host), dtype=bool), np.ones(n_in, dtype=bool)]
    return texts, host["label"].tolist() + labels, is_out


def outlier_eval(issues: pd.DataFrame, is_out: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score

    flagged = issues["is_outlier_issue"].to_numpy()
    return {
        "auroc": float(roc_auc_score(is_out, -issues["outlier_score"].to_numpy())),
        "n_injected": int(is_out.sum()),
        "flagged": int(flagged.sum()),
        "flagged_injected": int((flagged & is_out).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=Path, default=default_datasets_dir())
    ap.add_argument("--seeds", type=int, default=3, help="injection draws")
    ap.add_argument("--dump-pairs", type=Path, help="write unreviewed flagged pairs (CSV)")
    ap.add_argument("--out", type=Path, default=RESULTS / "text_issues.json")
    ap.add_argument(
        "--before", type=Path, help="JSON of an earlier run (e.g. main) to show alongside"
    )
    args = ap.parse_args()
    verdicts = (
        pd.read_csv(VERDICTS)
        if VERDICTS.exists()
        else pd.DataFrame(columns=["dataset", "text_a", "text_b", "verdict"])
    )
    sms = pd.read_csv(args.datasets / "text_sms_spam" / "train.csv")
    dup_rows, out_rows, dump = [], [], []
    for name, folder in HOSTS.items():
        host = pd.read_csv(args.datasets / folder / "train.csv")
        t0 = time.perf_counter()
        issues = audit_texts(host["text"].tolist(), host["label"].tolist())
        res = duplicate_eval(host["text"].tolist(), issues, verdicts[verdicts.dataset == name])
        dump += [(name, a, b) for a, b in res.pop("_unreviewed_pairs")]
        dup_rows.append(
            {
                "dataset": name,
                "n_items": len(host),
                **res,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(dup_rows[-1], flush=True)
        for seed in range(args.seeds):
            texts, _, is_out = inject(host, sms, seed)
            out_rows.append(
                {
                    "dataset": f"sms->{name}",
                    "seed": seed,
                    **outlier_eval(audit_features_only(texts), is_out),
                }
            )
            print(out_rows[-1], flush=True)
    if args.dump_pairs:
        pd.DataFrame(dump, columns=["dataset", "text_a", "text_b"]).to_csv(
            args.dump_pairs, index=False
        )
    result = {
        "near_duplicates": dup_rows,
        "outliers": out_rows,
        "versions": versions(),
        "machine": machine(),
        "command": " ".join(sys.argv),
    }
    write_json(args.out, result)
    md = render(result)
    if args.before:
        md += (
            "\n## Before ("
            + args.before.name
            + ")\n\n"
            + render(json.loads(args.before.read_text()))
        )
    args.out.with_suffix(".md").write_text(md)


def render(res: dict) -> str:
    dup = md_table(
        [
            "dataset",
            "items",
            "flagged rows",
            "normalised twins",
            "precision (oracle + hand)",
            "precision (oracle only)",
            "recall vs oracle",
            "unreviewed",
        ],
        [
            [
                r["dataset"],
                r["n_items"],
                r["flagged"],
                r["twins"],
                f"{r['precision']:.3f}",
                f"{r['precision_oracle_only']:.3f}",
                f"{r['recall']:.3f}",
                r["unreviewed"],
            ]
            for r in res["near_duplicates"]
        ],
    )
    out = md_table(
        ["injection", "seed", "injected", "outlier AUROC", "flagged", "flagged injected"],
        [
            [
                r["dataset"],
                r["seed"],
                r["n_injected"],
                f"{r['auroc']:.3f}",
                r["flagged"],
                r["flagged_injected"],
            ]
            for r in res["outliers"]
        ],
    )
    return (
        "# Text issues: near-duplicates and outliers (default text audit)\n\n"
        "Near-duplicates on the train sets; oracle = normalised-text equality, plus the "
        "hand-checked pairs in `tests/fixtures/near_duplicate_verdicts.csv`; flagged rows not "
        "covered by either (`unreviewed`) count as wrong, so with unreviewed rows the "
        "precision is a lower bound.\n\n"
        f"{dup}\n\nOutliers: 2% SMS messages injected (AUROC of `outlier_score`).\n\n{out}\n"
    )


if __name__ == "__main__":
    main()
