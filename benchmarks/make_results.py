"""Render benchmarks/RESULTS.md from benchmarks/results/{quality,speed,audit,conformal}.json and the
sections other benchmarks render themselves (results/<topic>.md).

Usage: python benchmarks/make_results.py [--results DIR] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, RESULTS, md_table

SHOW_VERSIONS = ("python", "numpy", "scipy", "scikit-learn", "pandas", "cleanlab", "truelabel")
SHOW_VERSIONS += ("faiss-cpu", "datasets", "psutil")


def _load(d: Path, name: str) -> dict | None:
    p = d / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _machine(res: dict) -> list[str]:
    first = next(r for r in res.values() if r)
    m, v = first["machine"], first["versions"]
    out = [
        f"- nproc: {m['nproc']} ({m.get('processor') or 'unknown CPU'}), "
        f"{m.get('mem_gib')} GiB RAM, no GPU; {m['platform']}",
        "- load average when each script started: "
        + ", ".join(f"{k} {r['machine'].get('loadavg')}" for k, r in res.items() if r),
        "",
        md_table(["package", "version"], [[k, v.get(k) or "–"] for k in SHOW_VERSIONS]),
    ]
    return out


def _detail_quality(q: dict) -> str:
    """All methods, mean over seeds, per synthetic setting."""
    rows = []
    for ds, settings in q["results"]["synthetic"].items():
        for setting, s in settings.items():
            for name, m in s["mean"].items():
                if name.startswith("_"):
                    continue
                rows.append([
                    ds, setting, name,
                    *(f"{m[k]:.3f}" if m.get(k) is not None else "–"
                      for k in ("P", "R", "F1", "AUPRC")),
                ])  # fmt: skip
    return md_table(["dataset", "setting", "method", "P", "R", "F1", "AUPRC"], rows)


def _regime_section(q: dict) -> list[str]:
    """The default score per noise regime against cleanlab's default (bench_quality (c))."""
    if not q.get("regime_md"):
        return []
    return [
        "### Default score by noise regime",
        "",
        "AUPRC of `get_label_quality_scores()` (truelabel default) and of cleanlab's default",
        "(`get_label_quality_scores`, self_confidence), mean over seeds; difference = truelabel -",
        "cleanlab, in parentheses the worst seed (target >= -0.01). *before* = the default score",
        "before the regime rule (noise_aware with the fixed-smoothing matrix), same run. D spread",
        "/ D rates = chi-square dispersions of the confident counts around uniform noise (1 = as",
        "by chance): of each true class's errors over the other labels, and of the per-class",
        "noise rates. The score shrinks each part of the noise matrix towards uniform noise by",
        "max(0, 1 - 1/D): self-confidence's order when both D <= 1. F1 of the default filters",
        "(`find_label_issues()`) for reference.",
        "",
        q["regime_md"],
        "",
    ]


def _detail_real(q: dict) -> str:
    rows = []
    for ds, r in q["results"]["real"].items():
        for name, m in r.items():
            if not isinstance(m, dict):
                continue
            rows.append([
                ds, name,
                *(f"{m[k]:.3f}" if k in m else "–"
                  for k in ("recall@1%", "recall@2%", "recall@5%", "AUPRC")),
                f"{m['n_flagged']} / {m['n_tp']}" if "n_flagged" in m else "–",
            ])  # fmt: skip
    header = ["dataset", "method", "recall@1%", "recall@2%", "recall@5%", "AUPRC"]
    return md_table([*header, "# flagged / # confirmed"], rows)


def _targets(res: dict) -> list[str]:
    """One line per target of the benchmark brief: met / missed and by how much."""
    out = []

    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    q = res.get("quality")
    if q:
        for r in q["rows"]:
            if not r.get("average"):
                continue
            for key, who in (("ratio", "truelabel default (pred_probs only)"),
                             ("ratio_best", "truelabel best method"),
                             ("ratio_audit", "truelabel Audit+kNN (rows with features)")):  # fmt: skip
                x = r.get(key)
                if x is None:
                    continue
                goal = 1.0 if r["dataset"] != "all" else 1.0 + 1e-9
                rel = ">=" if r["dataset"] != "all" else ">"
                out.append(
                    f"- quality, {r['dataset']}, {who}: mean ratio to cleanlab's best "
                    f"{x:.3f} (target {rel} 1): {mark(x >= goal)}"
                )
        reg = q.get("regime_rows")
        if reg:
            worst = min(reg, key=lambda r: r["worst_diff"])
            out.append(
                f"- quality, default score vs cleanlab's default, every regime row and seed: worst "
                f"AUPRC difference {worst['worst_diff']:+.3f} ({worst['dataset']}, "
                f"{worst['setting']}; target >= -0.01): {mark(worst['worst_diff'] >= -0.01)}"
            )
    s = res.get("speed")
    if s:
        for pr in s["pairs"]:
            if (pr["N"], pr["K"]) != (1_000_000, 100) or pr["op"] not in ("single", "default"):
                continue
            tl, cl = pr["truelabel"], pr["cleanlab"]
            if "error" in tl or "error" in cl:
                out.append("- speed N=1e6, K=100: error")
                continue
            sp = cl["median_s"] / tl["median_s"]
            mem = cl["peak_rss_mb"] / tl["peak_rss_mb"]
            op = f"{pr['op']}, {pr.get('model', 'anchor')} model"
            goal, mem_goal = (5, 2) if pr["op"] == "default" else (3, 1)
            out.append(
                f"- speed N=1e6, K=100 ({op}): {sp:.2f}x faster (target >= {goal}x): "
                f"{mark(sp >= goal)}"
            )
            out.append(
                f"- peak memory N=1e6, K=100 ({op}): truelabel {tl['peak_rss_mb']:.0f} MB vs cleanlab "
                f"{cl['peak_rss_mb']:.0f} MB (target: cleanlab / truelabel >= {mem_goal}): "
                f"{mark(mem >= mem_goal)}"
            )
    cf = res.get("conformal")
    if cf:
        for ds, d in cf["conformal"].items():
            ts = d.get("targets", [])
            miss = [t for t in ts if not t["pass"]]
            detail = "; ".join(
                f"{t['target']} at alpha {t['alpha']} missed by {t['miss_by']:.4f}" for t in miss
            )
            out.append(
                f"- conformal, {ds}: {len(ts) - len(miss)} of {len(ts)} checks "
                f"(coverage window, set size <= MAPIE): {mark(not miss)}"
                + (f" ({detail})" if miss else "")
            )
        for ds, d in cf["autolabel"].items():
            for eps, r in d["results"].items():
                v = r["truelabel"]
                gap = r.get("coverage_vs_reference_points", {}).get("truelabel")
                viol = v.get("p_violation", v["p_exceed"])
                line = (
                    f"- certified auto-labeling, {ds}, max_error {eps}: violation "
                    f"{viol:.1%} of {d['n_splits']} splits (target <= 5%): {mark(viol <= 0.05)}; "
                    f"coverage {v['coverage_mean']:.3f}"
                )
                if gap is not None:
                    line += f", vs plain LTT {gap:+.1f} pts (target >= 0): {mark(gap >= -1e-9)}"
                out.append(line)
    tx = res.get("text_issues")
    if tx:
        # targets on the spaces truelabel uses: "emb+tfidf" (the default with [text]:
        # near-duplicates on raw TF-IDF rows, kNN/outliers on embeddings) and "tfidf" (the
        # fallback); "emb" alone is a measured alternative, not used, so it has no target
        used = {"emb+tfidf": "default, sentence encoder", "tfidf": "TF-IDF fallback"}
        for r in tx["near_duplicates"]:
            if r.get("space", "tfidf") not in used:
                continue
            out.append(
                f"- near-duplicates, {r['dataset']} ({used[r.get('space', 'tfidf')]}): precision "
                f"{r['precision']:.3f} against normalised-text twins + hand-checked pairs "
                f"({r['flagged']} rows flagged, {r['unreviewed']} unreviewed; target >= 0.9): "
                f"{mark(r['precision'] >= 0.9)}; recall vs twins {r['recall']:.3f}"
            )
        by_ds: dict[str, list[float]] = {}
        for r in tx["outliers"]:
            if r.get("space", "tfidf") not in used:
                continue
            by_ds.setdefault(f"{r['dataset']} ({used[r.get('space', 'tfidf')]})", []).append(
                r["auroc"]
            )
        for ds, aucs in by_ds.items():
            out.append(
                f"- outliers, 2% {ds} injection: AUROC min {min(aucs):.3f} over {len(aucs)} "
                f"draws (target >= 0.9): {mark(min(aucs) >= 0.9)}"
            )
    fs = res.get("fewshot")
    if fs:
        # computed by bench_fewshot.targets() from the raw rows when the JSON was written
        verdict = {True: "met", False: "**missed**", None: "not measured"}
        out += [f"- few-shot, {t['line']}: {verdict[t['met']]}" for t in fs.get("targets", [])]
    ac = res.get("active")
    if ac:
        # computed by bench_active.targets() from the raw curves when the JSON was written
        out += [f"- active learning, {t['line']}: {t['verdict']}" for t in ac["targets"]]
    au = res.get("audit")
    if au:
        tl, cl = au["head_to_head"]["truelabel"], au["head_to_head"]["cleanlab"]
        if "error" not in tl and "error" not in cl:
            sp = cl["audit_s"] / tl["audit_s"]
            out.append(
                f"- audit N={au['head_to_head']['N']:,}: {sp:.1f}x faster than Datalab "
                f"(target >= 10x): {mark(sp >= 10)}; peak RSS {tl['peak_rss_mb']:.0f} vs "
                f"{cl['peak_rss_mb']:.0f} MB (target: no more): "
                f"{mark(tl['peak_rss_mb'] <= cl['peak_rss_mb'])}"
            )
        runs = {r["N"]: r for r in au.get("scaling", []) if "error" not in r}
        small, big = runs.get(100_000), runs.get(1_000_000)
        if small and big:
            cpu = big["audit_cpu_s"] / small["audit_cpu_s"]
            wall = big["audit_s"] / small["audit_s"]
            out.append(
                f"- audit 1M vs 100k items: {cpu:.1f}x the CPU time, {wall:.1f}x the wall time "
                f"(target <= 12x): {mark(cpu <= 12)}"
            )
        if big:
            peak = big.get("peak_rss_audit_mb") or big["peak_rss_mb"]
            ratio = peak / big["features_mb"]
            out.append(
                f"- audit 1M items: peak RSS {peak:.0f} MB = {ratio:.2f}x the "
                f"{big['features_mb']:.0f} MB feature array (target <= 1.5x): {mark(ratio <= 1.5)}"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--command", default="make bench   # = bash benchmarks/run.sh")
    a = ap.parse_args()
    names = ("quality", "speed", "audit", "conformal", "text_issues", "fewshot", "active")
    res = {k: _load(a.results, k) for k in names}
    if not any(res.values()):
        sys.exit(f"no results in {a.results}")
    L = [
        "# Benchmarks: truelabel vs cleanlab",
        "",
        "Rendered by `benchmarks/make_results.py` from `benchmarks/results/*.json`. Produced by:",
        "",
        "```",
        a.command,
        "```",
        "",
        "(each script's own command line is listed in its section). truelabel and cleanlab run in",
        "the same venv (`benchmarks/.venv-peers`, made by `benchmarks/setup.sh`) on the same inputs.",
        "",
        "**Timing noise**: a 2-vCPU shared virtual machine; other work ran on it at the same time",
        "(load averages below), and repeated runs of the same step vary by up to ~±25%. Compare",
        "ratios, not absolute seconds.",
        "",
        "## Targets",
        "",
        *_targets(res),
        "",
        "## Machine and versions",
        "",
        *_machine(res),
        "",
    ]
    q = res["quality"]
    if q:
        L += [
            "## 1. Label-error detection quality",
            "",
            f"`{q['command']}` — seeds {q['seeds']}, settings {q['settings']}, "
            f"{q['wall_s'] / 60:.1f} min.",
            "",
            "- **truelabel default** = pred_probs only, default arguments: `find_label_issues()`",
            "  mask + `get_label_quality_scores()` ranking (both `noise_aware`; the score's noise",
            "  matrix shrunk towards uniform noise by the regime rule, see below).",
            "- **truelabel best** = the best of truelabel's filters / scores per row, chosen after",
            "  the fact exactly like cleanlab best (truelabel implements all of cleanlab's methods,",
            "  plus `noise_aware`).",
            "- **truelabel Audit+kNN** = `Audit(issue_types={'label': {}}).run(labels, pred_probs,",
            "  features)` with default settings: pred_probs blended with the kNN neighbour label",
            "  distribution (only where features exist: not for the labelerrors_* sets).",
            "- **cleanlab default** = `find_label_issues()` (prune_by_noise_rate) for F1 rows,",
            "  `get_label_quality_scores()` (self_confidence) for AUPRC / recall rows.",
            "- **cleanlab best** = the best of cleanlab's filter_by in (prune_by_noise_rate,",
            "  prune_by_class, both, confident_learning, predicted_neq_given) by F1 for the P/R/F1",
            "  rows (P and R are that method's), and the best of its score methods (self_confidence,",
            "  normalized_margin, confidence_weighted_entropy) for AUPRC and each recall@k row,",
            "  chosen after the fact per row — an oracle choice that favours cleanlab.",
            "- labelerrors_*: positives = human-confirmed errors; every other item is unverified",
            "  (not known-clean), so mask F1 and precision are lower bounds. recall@k = share of",
            "  the confirmed errors among the k lowest scores, k = 1/2/5% of N.",
            "- synthetic: `truelabel.datasets.make_noisy_labels` flips; digits pred_probs =",
            "  `truelabel.out_of_fold_pred_probs(pixels)`; banking77 pred_probs = 5-fold OOF",
            "  LogisticRegression(C=10) on sparse TF-IDF, kNN features = `TfidfEncoder().encode`.",
            "  Means over seeds. Ratio = truelabel / cleanlab best (> 1: truelabel better).",
            "",
            q["table_md"],
            "",
            *_regime_section(q),
            "### All methods (synthetic, mean over seeds)",
            "",
            _detail_quality(q),
            "",
            "### All methods (real label errors)",
            "",
            _detail_real(q),
            "",
        ]
    s = res["speed"]
    if s:
        L += [
            "## 2. Speed and peak memory (synthetic pred_probs, float32)",
            "",
            f"`{s['command']}` — median of {s['reps']} calls, each tool × size in a fresh process.",
            "",
            "single = `find_label_issues(filter_by='prune_by_noise_rate')` +",
            "`get_label_quality_scores()` (self_confidence) timed together; default = each",
            "tool's defaults called one after another (truelabel: noise_aware filter and score);",
            "model: true-class logit margin 4 (confident) or 1 (diffuse); multilabel =",
            "`truelabel.find_multilabel_issues` vs",
            "`cleanlab.multilabel_classification.filter.find_label_issues` (labels as lists).",
            "Data as in `shared/anchors/bench_cleanlab_speed.py`. Peak = `ru_maxrss` of the",
            "process (import + data + op); cleanlab's forked workers' `ru_maxrss` in parentheses",
            "(forked, so mostly pages shared with the parent). 'peak − data' = peak minus RSS",
            "after the data was built (the op's own extra memory). Speed-up and ratios =",
            "cleanlab / truelabel (> 1: truelabel faster / smaller). P / R vs the injected flips.",
            "",
            s["table_md"],
            "",
        ]
    au = res["audit"]
    if au:
        L += [
            "## 3. Full audit: truelabel `Audit().run` vs cleanlab `Datalab.find_issues`",
            "",
            f"`{au['command']}` — fresh process per run.",
            "",
            "Data from `shared/anchors/bench_datalab.py`'s make_data: K=20 Gaussian clusters,",
            "D=384 float32 features, 10% uniform flips, pred_probs = the generator's exact",
            "posterior. Both with their default issue types (Datalab also runs null,",
            "class_imbalance and non_iid checks, which truelabel does not have).",
            "",
            au["table_md"],
            "",
            *(
                [
                    "The Datalab figures come from an earlier run of the same script "
                    f"(`{au['head_to_head']['cleanlab']['reused_from']}`, same data and cleanlab "
                    "version; `--reuse-cleanlab` avoids repeating its ~4.5 minutes when only "
                    "truelabel changed).",
                    "",
                ]
                if au["head_to_head"]["cleanlab"].get("reused_from")
                else []
            ),
            "truelabel alone, growing N:",
            "",
            au["scaling_md"],
            "",
        ]
    cf = res["conformal"]
    if cf and "table_md" in cf:
        L += [
            "## 4. Conformal prediction sets and certified auto-labeling (vs MAPIE 1.6, crepes 0.9)",
            "",
            "`benchmarks/.venv-peers/bin/python benchmarks/bench_conformal.py` — "
            f"{cf['total_s'] / 60:.0f} min. Base models: StandardScaler + LogisticRegression on",
            "digits; LogisticRegression(C=10) on all-MiniLM-L6-v2 int8 ONNX embeddings for",
            "banking77 (`benchmarks/_embed.py`). 60/20/20 train/cal/test splits; every method",
            "uses the same fitted model per split. Certified auto-labeling (also on every shared",
            "label-error set): the non-train 40% (the whole set for labelerrors_*) is halved into",
            "calibration and test pool per split; every method, including the plain Learn-then-Test",
            "reference, sees the same halves; delta = 0.05.",
            "",
            cf["table_md"],
            "",
        ]
    # sections rendered by their own benchmark scripts (title line demoted to a section)
    topics = ["text_issues", "mutation", "encode", "fewshot", "text_calibration"]
    topics += ["crowd", "crowdlab", "weak", "store", "web_load"]
    topics += ["active", "active_seeds", "encoder_profile", "scale", "ray", "ray_ship", "llm"]
    for number, topic in enumerate(topics, start=5):
        frag = a.results / f"{topic}.md"
        if frag.exists():
            text = frag.read_text().strip().splitlines()
            title = text[0].lstrip("# ").strip() if text and text[0].startswith("#") else topic
            body = text[1:] if text and text[0].startswith("#") else text
            body = [("#" + ln) if ln.startswith("## ") else ln for ln in body]
            L += [f"## {number}. {title}", "", *body, ""]
    notes = a.results / "notes.md"
    if notes.exists():
        L += ["## Notes", "", notes.read_text().strip(), ""]
    a.out.write_text("\n".join(L))
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
