"""Where the full audit's memory peaks: RSS sampled every few ms, tagged by stage.

Builds bench_audit.py's synthetic data (same generator and seed), then runs
``truelabel.Audit().run(labels=..., pred_probs=..., features=...)`` with a thread polling
``/proc/self/statm`` every ``--interval-ms`` while the main thread tags the stage it is in
(the audit's inner functions are wrapped for the run; nothing else changes). Prints, per
stage, the highest RSS seen and its height above the RSS right before the audit, and the
peak over the features array; ``--json`` also writes them.

Usage: python benchmarks/audit_memory_stages.py [--N 1000000] [--interval-ms 3] [--json F]
"""

from __future__ import annotations

import argparse
import ast
import bisect
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20

# the poller runs in its own process (no GIL shared with the audit's threads): it reads the
# audit process's statm every interval until its stdin closes, then prints (time, MB) pairs
_POLLER = """
import os, sys, threading, time
pid, dt = int(sys.argv[1]), float(sys.argv[2])
page = os.sysconf("SC_PAGE_SIZE") / 2**20
out, done = [], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
with open(f"/proc/{pid}/statm") as f:
    while not done.is_set():
        f.seek(0)
        out.append((time.monotonic(), int(f.read().split()[1]) * page))
        time.sleep(dt)
print(repr(out))
"""


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_MB


class Sampler:
    """RSS polled by a child process; stages tagged here by time; the maximum per stage.

    A stage entered several times is reported once per entry (``name #2``, ...)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.stage = "start"
        self.marks: list[tuple[float, str]] = []
        self._seen: dict[str, int] = {}
        self._proc: subprocess.Popen[str] | None = None

    def set(self, stage: str) -> str:
        prev = self.stage
        n = self._seen.get(stage, 0) + 1
        self._seen[stage] = n
        self.stage = stage
        self.marks.append((time.monotonic(), stage if n == 1 else f"{stage} #{n}"))
        return prev

    def __enter__(self) -> Sampler:
        cmd = [sys.executable, "-c", _POLLER, str(os.getpid()), str(self.interval_s)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        out, _ = self._proc.communicate("")
        samples: list[tuple[float, float]] = ast.literal_eval(out)
        self.samples = samples
        self.peaks: dict[str, float] = {}
        self.order = [s for _, s in self.marks]
        times = [t for t, _ in self.marks]
        for t, rss in samples:
            i = bisect.bisect_right(times, t) - 1
            if i < 0:
                continue
            s = self.order[i]
            self.peaks[s] = max(self.peaks.get(s, 0.0), rss)
        self.order = [s for s in self.order if s in self.peaks]


def _wrap(sampler: Sampler, module: Any, name: str, stage: str, after: str | None = None) -> None:
    """Tag calls of ``module.name`` as ``stage``; on return tag ``after`` (default: the
    caller's stage, marked "(cont.)")."""
    fn = getattr(module, name)

    @functools.wraps(fn)
    def tagged(*args: Any, **kwargs: Any) -> Any:
        prev = sampler.set(stage)
        try:
            return fn(*args, **kwargs)
        finally:
            if after is not None:
                sampler.set(after)
            else:
                sampler.set(prev.split(" (cont.)")[0] + " (cont.)")

    setattr(module, name, tagged)


def _instrument(sampler: Sampler) -> None:
    from truelabel.detect import (
        _audit,
        _base,
        _duplicates,
        _ivf,
        _knn,
        _label_detector,
        _outliers,
    )

    # the kNN graph: PCA sample, cells, search (names as looked up by _knn.build_knn_graph)
    _wrap(sampler, _knn, "fit_pca", "knn: pca")
    _wrap(sampler, _ivf, "build_cells", "knn: build cells")
    _wrap(sampler, _knn, "release_free_memory", "knn: trim", after="knn: search")
    _wrap(sampler, _base, "build_knn_graph", "knn graph")
    # the label detector's steps (names as looked up by _label_detector)
    for name, stage in (
        ("knn_pred_probs", "label: knn_pred_probs"),
        ("blend_pred_probs", "label: blend"),
        ("_compute_stats", "label: confident stats"),
        ("_compute_issue_mask", "label: filter"),
        ("_compute_scores", "label: scores"),
        ("_estimate_from_stats", "label: estimate + frame"),
    ):
        _wrap(sampler, _label_detector, name, stage)
    for cls, stage in (
        (_label_detector.LabelDetector, "label detector"),
        (_duplicates.NearDuplicateDetector, "near_duplicate detector"),
        (_outliers.OutlierDetector, "outlier detector"),
    ):
        _wrap(sampler, cls, "detect", stage)
    _wrap(sampler, _audit, "_summarize", "summary")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--N", type=int, default=1_000_000)
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--D", type=int, default=384)
    ap.add_argument("--interval-ms", type=float, default=3.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--trace", type=Path, help="also write every (s, MB, stage) sample here")
    a = ap.parse_args()
    from bench_audit import _reset_peak_rss, _vm_hwm_mb, make_data

    import truelabel

    X, labels, P, _, _ = make_data(a.N, a.K, a.D, 0.1)
    features_mb = X.nbytes / 2**20
    before = _rss_mb()
    _reset_peak_rss()
    sampler = Sampler(a.interval_ms / 1000)
    _instrument(sampler)
    t0 = time.perf_counter()
    with sampler:
        sampler.set("audit")
        res = truelabel.Audit().run(labels=labels, pred_probs=P, features=X)
        sampler.set("after audit")
    wall = time.perf_counter() - t0
    hwm = _vm_hwm_mb()
    print(f"N={a.N}  features {features_mb:.0f} MB  RSS before audit {before:.0f} MB")
    print(f"{'stage':32s} {'peak MB':>9s} {'+ over before':>14s}")
    for s in sampler.order:
        print(f"{s:32s} {sampler.peaks[s]:9.0f} {sampler.peaks[s] - before:+14.0f}")
    print(f"VmHWM during the audit {hwm:.0f} MB = {hwm / features_mb:.3f}x features; {wall:.1f} s")
    counts = {c: int(res.issues[c].sum()) for c in res.issues if c.startswith("is_")}
    print("flagged:", counts)
    if a.trace:
        times = [t for t, _ in sampler.marks]
        names = [s for _, s in sampler.marks]
        t_first = times[0]
        rows = []
        for t, rss in sampler.samples:
            i = bisect.bisect_right(times, t) - 1
            if i >= 0:
                rows.append(f"{t - t_first:.3f}\t{rss:.0f}\t{names[i]}")
        a.trace.write_text("\n".join(rows) + "\n")
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "N": a.N,
                    "features_mb": features_mb,
                    "rss_before_audit_mb": before,
                    "vm_hwm_audit_mb": hwm,
                    "peak_over_features": hwm / features_mb if hwm else None,
                    "stage_peaks_mb": {s: sampler.peaks[s] for s in sampler.order},
                    "flagged": counts,
                    "wall_s": wall,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
