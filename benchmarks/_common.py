"""Helpers shared by the benchmark scripts (adapted from ../shared/anchors/common.py).

Imported by the scripts in this folder as ``_common`` (they put their own folder on sys.path
when run as ``python benchmarks/bench_*.py``); nothing here imports truelabel or cleanlab.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
WORK = HERE / "_work"

PACKAGES = ["numpy", "scipy", "scikit-learn", "pandas", "cleanlab", "truelabel", "faiss-cpu"]
PACKAGES += ["psutil", "datasets"]


def default_datasets_dir() -> Path:
    return Path(os.environ.get("TRUELABEL_DATASETS", REPO.parent / "shared" / "datasets"))


def versions(packages: list[str] | None = None) -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES if packages is None else packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def machine() -> dict:
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "processor": cpu,
        "mem_gib": mem_gib,
        "loadavg": loadavg(),
    }


def loadavg() -> list[float] | None:
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """ru_maxrss in MB (Linux reports KiB)."""
    return resource.getrusage(who).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def system_busy_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return float("nan")
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, default=float)
    print(f"wrote {path}", file=sys.stderr)


def fmt_ratio(x: float | None) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.2f}x" if x < 100 else f"{x:.0f}x"


def md_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def wait_for_idle(max_busy_frac: float = 0.25, window_s: float = 3.0, max_wait_s: float = 120.0,
                  quiet_s: float = 6.0) -> dict:  # fmt: skip
    """Wait (at most max_wait_s) until the machine's CPUs are < max_busy_frac busy for quiet_s.

    Adapted from ../shared/anchors/common.py. Returns the seconds waited and the last busy share,
    recorded with each timed run so contention can be judged afterwards.
    """
    import time

    ncpu = os.cpu_count() or 1
    t_start = time.perf_counter()
    quiet_since = None
    frac = float("nan")
    while True:
        b0, t0 = system_busy_cpu_s(), time.perf_counter()
        time.sleep(window_s)
        frac = (system_busy_cpu_s() - b0) / ((time.perf_counter() - t0) * ncpu)
        now = time.perf_counter()
        quiet_since = (quiet_since or t0) if frac < max_busy_frac else None
        if (quiet_since is not None and now - quiet_since >= quiet_s) or now - t_start > max_wait_s:
            return {"waited_s": round(now - t_start, 1), "busy_frac": round(frac, 3)}


def anon_mb() -> float:
    """This process's anonymous resident memory (``RssAnon`` of /proc/self/status), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")
