"""Full audit time and memory: truelabel.Audit vs cleanlab.Datalab on the same synthetic data.

Data (../shared/anchors/bench_datalab.py's make_data, seed 0): K=20 Gaussian clusters in D=384
dimensions (float32), 10% uniform label flips, pred_probs = the generative model's exact
posterior (float32, no training step).

    truelabel: Audit().run(labels=labels, pred_probs=P, features=X)          # default issue types
    cleanlab:  Datalab(data={"label": labels}, label_name="label").find_issues(features=X,
                                                                               pred_probs=P)
Each run is a fresh subprocess (data generated inside it, in place by chunks); wall time of
the audit call, peak RSS (ru_maxrss of the process, and of its children; and, on Linux, the
peak during the audit call alone: VmHWM reset after the data was built), label-issue
precision / recall vs the injected flips. Then truelabel alone at --scale-Ns to show how
time and memory grow with N.

Usage: python benchmarks/bench_audit.py [--quick] [--N 100000] [--scale-Ns 20000,100000,1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
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


def make_data(N: int, K: int, D: int, noise: float, seed: int = 0, sep: float = 5.2):
    """Copied from ../shared/anchors/bench_datalab.py (sep = class-mean distance / noise std)."""
    rng = np.random.default_rng(seed)
    s = sep / np.sqrt(2 * D)
    mu = (rng.standard_normal((K, D)) * s).astype(np.float32)
    y_true = rng.integers(0, K, size=N)
    X = rng.standard_normal((N, D), dtype=np.float32)
    for start in range(0, N, 65536):  # in place by chunks (the same values, no N x D temporary)
        X[start : start + 65536] += mu[y_true[start : start + 65536]]
    flip = rng.random(N) < noise
    labels = np.where(flip, (y_true + rng.integers(1, K, size=N)) % K, y_true)
    logits = X @ mu.T - 0.5 * np.sum(mu * mu, axis=1)[None, :]
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return X, labels, logits.astype(np.float32, copy=False), y_true, flip


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux); True if done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _vm_hwm_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _prf(mask: np.ndarray, truth: np.ndarray) -> dict:
    tp = int(np.sum(mask & truth))
    return {
        "n_flagged": int(mask.sum()),
        "precision_vs_injected": tp / max(int(mask.sum()), 1),
        "recall_vs_injected": tp / max(int(truth.sum()), 1),
    }


def worker(a) -> dict:
    if a.tool == "truelabel":
        import truelabel
    else:
        import cleanlab
        from cleanlab import Datalab
    rss_import = current_rss_mb()
    t0 = time.perf_counter()
    X, labels, P, y_true, flip = make_data(a.N, a.K, a.D, a.noise)
    data_s = time.perf_counter() - t0
    rss_data = current_rss_mb()
    audit_hwm_reset = _reset_peak_rss()
    b0, c0, la0 = system_busy_cpu_s(), own_cpu_s(), loadavg()
    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        if a.tool == "truelabel":
            res = truelabel.Audit().run(labels=labels, pred_probs=P, features=X)
            issues = res.issues
        else:
            lab = Datalab(data={"label": labels}, label_name="label")
            lab.find_issues(features=X, pred_probs=P)
            issues = lab.get_issues()
    wall = time.perf_counter() - t0
    cpu = own_cpu_s() - c0
    types = sorted(c[3:-6] for c in issues.columns if c.startswith("is_") and c.endswith("_issue"))
    out = {
        "tool": a.tool,
        "version": truelabel.__version__ if a.tool == "truelabel" else cleanlab.__version__,
        "N": a.N,
        "K": a.K,
        "D": a.D,
        "noise": a.noise,
        "data_s": data_s,
        "audit_s": wall,
        "audit_cpu_s": cpu,
        "other_cpu_s": system_busy_cpu_s() - b0 - cpu,
        "loadavg_before": la0,
        "rss_after_import_mb": rss_import,
        "rss_after_data_mb": rss_data,
        "peak_rss_mb": peak_rss_mb(),
        # peak RSS during the audit call alone (VmHWM reset after the data was built)
        "peak_rss_audit_mb": _vm_hwm_mb() if audit_hwm_reset else None,
        "peak_rss_children_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
        "features_mb": X.nbytes / 2**20,
        "issue_types": types,
        "issue_counts": {t: int(issues[f"is_{t}_issue"].sum()) for t in types},
        "n_flipped": int(flip.sum()),
        "log_tail": [ln for ln in log.getvalue().splitlines() if ln.strip()][-8:],
    }
    if "is_label_issue" in issues:
        out["label"] = _prf(issues["is_label_issue"].to_numpy(bool), flip)
    if a.tool == "truelabel":
        out["info"] = {k: {kk: str(vv) for kk, vv in v.items()} for k, v in res.info.items()}
    return out


def run(tool: str, N: int, a) -> dict:
    cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", "--tool", tool]
    cmd += ["--N", str(N), "--K", str(a.K), "--D", str(a.D), "--noise", str(a.noise)]
    wait = 0 if a.quick else a.max_wait_idle
    idle = wait_for_idle(max_wait_s=wait) if wait > 0 else None
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        r = {"tool": tool, "N": N, "error": f"timeout > {a.timeout}s"}
    else:
        if p.returncode != 0:
            tail = p.stderr.strip().splitlines()[-1:] or [f"rc={p.returncode}"]
            r = {"tool": tool, "N": N, "error": tail[0]}
        else:
            r = json.loads(p.stdout.strip().splitlines()[-1])
    r["subprocess_wall_s"] = time.perf_counter() - t0
    r["idle_wait"] = idle
    show = {k: v for k, v in r.items() if k not in ("log_tail", "info")}
    print(json.dumps(show), file=sys.stderr, flush=True)
    return r


def render(head: dict, scale: list[dict]) -> tuple[str, str]:
    tl, cl = head["truelabel"], head["cleanlab"]
    header = ["N", "metric", "truelabel Audit", "cleanlab Datalab", "ratio (cleanlab / truelabel)"]
    rows = []
    n = f"{head['N']:,}"
    if "error" in tl or "error" in cl:
        rows.append([n, "error", tl.get("error", ""), cl.get("error", ""), "–"])
    else:
        rows.append([n, "audit wall s", f"{tl['audit_s']:.1f}", f"{cl['audit_s']:.1f}",
                     f"**{fmt_ratio(cl['audit_s'] / tl['audit_s'])}** faster"])  # fmt: skip
        rows.append([n, "peak RSS MB (children)",
                     f"{tl['peak_rss_mb']:.0f} ({tl['peak_rss_children_mb']:.0f})",
                     f"{cl['peak_rss_mb']:.0f} ({cl['peak_rss_children_mb']:.0f})",
                     f"**{fmt_ratio(cl['peak_rss_mb'] / tl['peak_rss_mb'])}**"])  # fmt: skip
        rows.append([n, "peak − after-data MB",
                     f"{tl['peak_rss_mb'] - tl['rss_after_data_mb']:.0f}",
                     f"{cl['peak_rss_mb'] - cl['rss_after_data_mb']:.0f}",
                     fmt_ratio((cl["peak_rss_mb"] - cl["rss_after_data_mb"])
                               / max(tl["peak_rss_mb"] - tl["rss_after_data_mb"], 1.0))])  # fmt: skip
        for key, name in (("precision_vs_injected", "label P"), ("recall_vs_injected", "label R")):
            x, y = tl["label"][key], cl["label"][key]
            rows.append([n, f"{name} vs injected flips", f"{x:.3f}", f"{y:.3f}",
                         fmt_ratio(x / y) + " (tl / cl)"])  # fmt: skip
        rows.append([n, "# label issues flagged", tl["label"]["n_flagged"],
                     cl["label"]["n_flagged"], "–"])  # fmt: skip
        rows.append([n, "CPU s used by other processes meanwhile", f"{tl['other_cpu_s']:.0f}",
                     f"{cl['other_cpu_s']:.0f}", "–"])  # fmt: skip
        rows.append([n, "issue types", ", ".join(tl["issue_types"]),
                     ", ".join(cl["issue_types"]), "–"])  # fmt: skip
    t1 = md_table(header, rows)
    header2 = ["N", "audit wall s", "wall ratio to previous N", "audit CPU s",
               "CPU ratio to previous N", "µs / item",
               "peak RSS during audit MB", "features MB", "peak / features",
               "audit peak − RSS before audit MB", "label P / R"]  # fmt: skip
    header2 += ["other processes' CPU s meanwhile"]
    rows2 = []
    prev = None
    for r in scale:
        if "error" in r:
            rows2.append([f"{r['N']:,}", r["error"]] + ["–"] * 10)
            continue
        peak = r.get("peak_rss_audit_mb") or r["peak_rss_mb"]
        step = cpu_step = "–"
        if prev is not None:
            step = f"{r['audit_s'] / prev['audit_s']:.1f}x for {r['N'] / prev['N']:.0f}x items"
            cpu_step = f"{r['audit_cpu_s'] / prev['audit_cpu_s']:.1f}x"
        prev = r
        rows2.append([f"{r['N']:,}", f"{r['audit_s']:.1f}", step, f"{r['audit_cpu_s']:.1f}",
                      cpu_step,
                      f"{1e6 * r['audit_s'] / r['N']:.0f}",
                      f"{peak:.0f}", f"{r['features_mb']:.0f}", f"{peak / r['features_mb']:.2f}",
                      f"{peak - r['rss_after_data_mb']:.0f}",
                      f"{r['label']['precision_vs_injected']:.3f} / "
                      f"{r['label']['recall_vs_injected']:.3f}", f"{r['other_cpu_s']:.0f}"])  # fmt: skip
    return t1, md_table(header2, rows2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=5000 head-to-head, scale 5k,20k")
    ap.add_argument("--N", type=int, default=100_000, help="head-to-head size")
    ap.add_argument("--scale-Ns", default="20000,100000,1000000")
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--D", type=int, default=384)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--max-wait-idle", type=float, default=120.0,
                    help="wait up to this many s for an idle machine before each run (0: no)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=RESULTS / "audit.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool", choices=("truelabel", "cleanlab"))
    ap.add_argument(
        "--reuse-cleanlab",
        type=Path,
        help="take the Datalab run from this earlier audit.json instead of re-running it",
    )
    ap.add_argument("--render-only", action="store_true", help="re-render tables of --out")
    a = ap.parse_args()
    if a.render_only:
        d = json.loads(a.out.read_text())
        d["table_md"], d["scaling_md"] = render(d["head_to_head"], d["scaling"])
        print(d["table_md"], d["scaling_md"], sep="\n\n")
        write_json(a.out, d)
        return
    if a.worker:
        print(json.dumps(worker(a), default=str))
        return

    t_start = time.perf_counter()
    N = 5000 if a.quick else a.N
    scale_ns = [5000, 20000] if a.quick else [int(float(x)) for x in a.scale_Ns.split(",")]
    if a.reuse_cleanlab:
        old = json.loads(a.reuse_cleanlab.read_text())["head_to_head"]
        assert old["N"] == N, f"{a.reuse_cleanlab} has N={old['N']}"
        cl = dict(old["cleanlab"], reused_from=str(a.reuse_cleanlab))
        head = {"N": N, "truelabel": run("truelabel", N, a), "cleanlab": cl}
    else:
        head = {"N": N, "truelabel": run("truelabel", N, a), "cleanlab": run("cleanlab", N, a)}
    scale = []
    for n in scale_ns:
        # reuse the head-to-head truelabel run when the size matches
        scale.append(head["truelabel"] if n == N else run("truelabel", n, a))
    t1, t2 = render(head, scale)
    print(t1)
    print()
    print(t2)
    cmd = "python benchmarks/bench_audit.py " + " ".join(sys.argv[1:])
    write_json(
        a.out,
        {
            "command": cmd.strip(),
            "versions": versions(),
            "machine": machine(),
            "wall_s": time.perf_counter() - t_start,
            "head_to_head": head,
            "scaling": scale,
            "table_md": t1,
            "scaling_md": t2,
        },
    )


if __name__ == "__main__":
    main()
