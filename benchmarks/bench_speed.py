"""Speed and peak memory: truelabel vs cleanlab on the same synthetic pred_probs.

Single-label op "single" (timed as one unit, median of --reps calls in one process), the
same computation in both tools (cleanlab's defaults):
    find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate")
    + get_label_quality_scores(labels, pred_probs, method="self_confidence")
Op "default": each tool's own defaults, called one after another as users do (truelabel:
noise_aware filter and score; cleanlab: prune_by_noise_rate and self_confidence).
Synthetic data as in ../shared/anchors/bench_cleanlab_speed.py: uniform true labels, 10%
uniform flips, pred_probs = softmax(randn + margin * onehot(true)), float32, seed 0; model
"anchor" uses the anchor's margin (3.5 at K > 10), "confident" margin 4 and "diffuse" margin 1
(issue 6, observation 8).
Multi-label op: truelabel.find_multilabel_issues vs
cleanlab.multilabel_classification.filter.find_label_issues, N=1e5, K=20, labels as lists,
1% per-class flips, sigmoid pred_probs (the anchor's generator).

Every (tool, N, K, op) runs in a fresh subprocess that generates its own data, so peak RSS
(ru_maxrss) is per configuration; "peak - after data" = peak RSS minus RSS right after the data
was built. cleanlab runs with its default n_jobs (forked workers): their ru_maxrss is reported
as "children". The flagged masks are saved and compared between the tools.

Usage: python benchmarks/bench_speed.py [--quick] [--reps 3] [--out results/speed.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    WORK,
    current_rss_mb,
    fmt_ratio,
    loadavg,
    machine,
    md_table,
    own_cpu_s,
    peak_rss_mb,
    system_busy_cpu_s,
    versions,
    wait_for_idle,
    write_json,
)

TOOLS = ("truelabel", "cleanlab")


#: model -> true-class logit margin (None: the anchor's default, 2.5 for K <= 10 else 3.5)
MODELS = {"anchor": None, "confident": 4.0, "diffuse": 1.0}


def make_data(
    N: int,
    K: int,
    seed: int = 0,
    dtype: str = "float32",
    noise: float = 0.1,
    margin: float | None = None,
):
    """Copied from ../shared/anchors/bench_cleanlab_speed.py (``margin`` added)."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, K, size=N)
    flip = rng.random(N) < noise
    off = rng.integers(1, K, size=N)
    labels = np.where(flip, (y_true + off) % K, y_true)
    if margin is None:
        margin = 2.5 if K <= 10 else 3.5
    logits = rng.standard_normal((N, K), dtype=np.float32)
    logits[np.arange(N), y_true] += margin
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    pred_probs = logits.astype(dtype, copy=False)
    return labels, pred_probs, y_true, flip


def make_multilabel_data(N: int, K: int, seed: int = 0, noise: float = 0.01):
    """Copied from ../shared/anchors/bench_cleanlab_speed.py."""
    rng = np.random.default_rng(seed)
    truth = rng.random((N, K)) < (2.0 / K)
    truth[np.arange(N), rng.integers(0, K, size=N)] = True
    flips = rng.random((N, K)) < noise
    given = truth ^ flips
    logits = rng.standard_normal((N, K)).astype(np.float32) + np.where(truth, 2.0, -2.0)
    pred_probs = 1.0 / (1.0 + np.exp(-logits))
    labels = [list(np.flatnonzero(r)) for r in given]
    return labels, pred_probs.astype(np.float32), flips.any(axis=1)


def worker(a) -> dict:
    if a.tool == "truelabel":
        import truelabel

        def find(labels, p):
            if a.op == "default":
                return truelabel.find_label_issues(labels, p)  # noise_aware
            return truelabel.find_label_issues(labels, p, filter_by="prune_by_noise_rate")

        def scores(labels, p):
            if a.op == "default":
                return truelabel.get_label_quality_scores(labels, p)  # noise_aware
            return truelabel.get_label_quality_scores(labels, p, method="self_confidence")

        def ml_find(labels, p):
            return truelabel.find_multilabel_issues(labels, p)
    else:
        import cleanlab.filter
        import cleanlab.rank
        from cleanlab.multilabel_classification.filter import find_label_issues as ml_find

        def find(labels, p):
            return cleanlab.filter.find_label_issues(labels, p, filter_by="prune_by_noise_rate")

        def scores(labels, p):
            return cleanlab.rank.get_label_quality_scores(labels, p)

    rss_import = current_rss_mb()
    if a.op == "multilabel":
        labels, P, is_err = make_multilabel_data(a.N, a.K, seed=0)
    else:
        labels, P, _, is_err = make_data(a.N, a.K, seed=0, margin=MODELS[a.model])
    rss_data = current_rss_mb()
    times, t_find, t_score = [], [], []
    b0, c0, la0 = system_busy_cpu_s(), own_cpu_s(), loadavg()
    mask = None
    for _ in range(a.reps):
        mask = None
        t0 = time.perf_counter()
        if a.op == "multilabel":
            mask = np.asarray(ml_find(labels, P), bool)
            t1 = t2 = time.perf_counter()
        else:
            mask = np.asarray(find(labels, P), bool)
            t1 = time.perf_counter()
            sc = scores(labels, P)
            t2 = time.perf_counter()
            del sc
        times.append(t2 - t0)
        t_find.append(t1 - t0)
        t_score.append(t2 - t1)
    cpu = own_cpu_s() - c0
    assert mask is not None
    Path(a.mask_file).parent.mkdir(parents=True, exist_ok=True)
    np.save(a.mask_file, mask)
    tp = int(np.sum(mask & is_err))
    peak = peak_rss_mb()
    return {
        "tool": a.tool,
        "N": a.N,
        "K": a.K,
        "op": a.op,
        "model": a.model,
        "times_s": times,
        "median_s": statistics.median(times),
        "median_find_s": statistics.median(t_find),
        "median_scores_s": statistics.median(t_score),
        "cpu_s": cpu,
        "other_cpu_s": system_busy_cpu_s() - b0 - cpu,
        "loadavg_before": la0,
        "rss_after_import_mb": rss_import,
        "rss_after_data_mb": rss_data,
        "peak_rss_mb": peak,
        "peak_rss_children_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
        "peak_minus_data_mb": peak - rss_data,
        "input_mb": P.nbytes / 2**20,
        "n_flagged": int(mask.sum()),
        "n_true_errors": int(is_err.sum()),
        "precision_vs_injected": tp / max(int(mask.sum()), 1),
        "recall_vs_injected": tp / max(int(is_err.sum()), 1),
    }


def run_config(
    tool: str, N: int, K: int, op: str, model: str, reps: int, timeout: int, wait: float
) -> dict:
    mask_file = WORK / "speed_masks" / f"{tool}_{op}_{model}_{N}_{K}.npy"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--tool", tool]
    cmd += ["--N", str(N), "--K", str(K), "--op", op, "--model", model, "--reps", str(reps)]
    cmd += ["--mask-file", str(mask_file)]
    idle = wait_for_idle(max_wait_s=wait) if wait > 0 else None
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "N": N, "K": K, "op": op, "error": f"timeout > {timeout}s"}
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-1:] or [f"rc={p.returncode}"]
        return {"tool": tool, "N": N, "K": K, "op": op, "error": tail[0]}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["subprocess_wall_s"] = time.perf_counter() - t0
    r["mask_file"] = str(mask_file)
    r["idle_wait"] = idle
    return r


def agreement(r_tl: dict, r_cl: dict) -> dict | None:
    if "mask_file" not in r_tl or "mask_file" not in r_cl:
        return None
    a, b = np.load(r_tl["mask_file"]), np.load(r_cl["mask_file"])
    both = int(np.sum(a & b))
    union = int(np.sum(a | b))
    return {
        "truelabel_flagged": int(a.sum()),
        "cleanlab_flagged": int(b.sum()),
        "both": both,
        "only_truelabel": int(np.sum(a & ~b)),
        "only_cleanlab": int(np.sum(b & ~a)),
        "jaccard": both / union if union else 1.0,
    }


def _label(n: int) -> str:
    e = int(np.log10(n))
    return f"1e{e}" if 10**e == n else str(n)


def render(pairs: list[dict]) -> str:
    header = ["N", "K", "op", "model", "truelabel s", "cleanlab s", "speed-up"]
    header += ["truelabel peak MB", "cleanlab peak MB (children)", "peak ratio"]
    header += ["truelabel peak − data MB", "cleanlab peak − data MB", "extra-mem ratio"]
    header += ["flagged tl / cl / both", "P / R tl", "P / R cl", "other CPU s tl / cl"]
    rows = []
    for pr in pairs:
        tl, cl = pr["truelabel"], pr["cleanlab"]
        if "error" in tl or "error" in cl:
            rows.append([_label(pr["N"]), pr["K"], pr["op"], pr.get("model", "anchor"),
                         tl.get("error", ""), cl.get("error", "")]
                        + ["–"] * 11)  # fmt: skip
            continue
        ag = pr["agreement"] or {}
        rows.append([
            _label(pr["N"]), pr["K"], pr["op"], pr.get("model", "anchor"),
            f"{tl['median_s']:.3f}", f"{cl['median_s']:.3f}",
            f"**{fmt_ratio(cl['median_s'] / tl['median_s'])}**",
            f"{tl['peak_rss_mb']:.0f}",
            f"{cl['peak_rss_mb']:.0f} ({cl['peak_rss_children_mb']:.0f})",
            f"**{fmt_ratio(cl['peak_rss_mb'] / tl['peak_rss_mb'])}**",
            f"{tl['peak_minus_data_mb']:.0f}", f"{cl['peak_minus_data_mb']:.0f}",
            fmt_ratio(cl["peak_minus_data_mb"] / max(tl["peak_minus_data_mb"], 1.0)),
            f"{ag.get('truelabel_flagged')} / {ag.get('cleanlab_flagged')} / {ag.get('both')}",
            f"{tl['precision_vs_injected']:.3f} / {tl['recall_vs_injected']:.3f}",
            f"{cl['precision_vs_injected']:.3f} / {cl['recall_vs_injected']:.3f}",
            f"{tl['other_cpu_s']:.1f} / {cl['other_cpu_s']:.1f}",
        ])  # fmt: skip
    return md_table(header, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=1e5 only, 1 rep")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--max-wait-idle", type=float, default=60.0,
                    help="wait up to this many s for an idle machine before each run (0: no)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", choices=TOOLS)
    ap.add_argument("--N", type=int)
    ap.add_argument("--K", type=int)
    ap.add_argument("--op", default="single")
    ap.add_argument("--model", default="anchor", choices=sorted(MODELS))
    ap.add_argument("--only", help="comma-separated N/K/op/model configs to run, e.g. "
                    "1000000/100/default/confident")  # fmt: skip
    ap.add_argument("--mask-file")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return

    t_start = time.perf_counter()
    if a.quick:
        configs = [(100_000, 10, "single", "anchor"), (20_000, 20, "multilabel", "anchor")]
        reps = 1
    else:
        configs = [(100_000, 10, "single", "anchor"), (1_000_000, 10, "single", "anchor")]
        for model in ("confident", "diffuse"):  # issue 6, observation 8
            configs += [(1_000_000, 100, "default", model), (1_000_000, 100, "single", model)]
        configs += [(100_000, 20, "multilabel", "anchor")]
        reps = a.reps
    if a.only:
        configs = [c for c in configs if f"{c[0]}/{c[1]}/{c[2]}/{c[3]}" in a.only.split(",")]
    pairs = []
    for N, K, op, model in configs:
        pr: dict = {"N": N, "K": K, "op": op, "model": model}
        for tool in TOOLS:
            wait = 0 if a.quick else a.max_wait_idle
            r = run_config(tool, N, K, op, model, reps, a.timeout, wait)
            pr[tool] = r
            show = {k: v for k, v in r.items() if k not in ("times_s", "mask_file")}
            print(json.dumps(show), file=sys.stderr, flush=True)
        pr["agreement"] = agreement(pr["truelabel"], pr["cleanlab"])
        print(f"agreement N={N} K={K} {op} {model}: {pr['agreement']}", file=sys.stderr, flush=True)
        pairs.append(pr)
    table = render(pairs)
    print(table)
    cmd = "python benchmarks/bench_speed.py " + " ".join(sys.argv[1:])
    write_json(
        a.out,
        {
            "command": cmd.strip(),
            "versions": versions(),
            "machine": machine(),
            "reps": reps,
            "wall_s": time.perf_counter() - t_start,
            "pairs": pairs,
            "table_md": table,
        },
    )


if __name__ == "__main__":
    main()
