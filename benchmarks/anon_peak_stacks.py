"""Where a scale step's anonymous memory peaks: RssAnon sampled with the stacks at each new peak.

Runs one step of ``bench_scale.py`` exactly as its child process does (its ``run_step``: the
same calls on the same inputs, generated there into ``--dir``/n<N>, the output's inspection
and its Parquet writing, the file removed after) while a thread reads ``RssAnon`` from
``/proc/self/status`` every ``--interval-ms``; whenever the reading passes the highest one
seen by more than ``--step-mb``, it records the stacks of every thread then inside truelabel
(``sys._current_frames``). Prints the recorded peaks (MB above the RssAnon after imports) with
the innermost truelabel frames of each thread, highest last; ``--json`` also writes them.

The sampler needs the GIL to read the stacks: a peak reached inside a NumPy call that holds
the GIL is recorded when the call returns (the stack then shows the line after it).

Usage: python benchmarks/anon_peak_stacks.py --dir /tmp/truelabel_scale/n1000000
                                             [--step audit|dawid_skene] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import anon_mb
from bench_scale import import_step_modules, run_step


def _frames(frame: Any, depth: int) -> list[str]:
    """The innermost ``depth`` truelabel frames of a stack, outermost first."""
    out = []
    while frame is not None:
        name = frame.f_code.co_filename
        if "truelabel" in name and "/benchmarks/" not in name:
            out.append(f"{name.split('truelabel/', 1)[-1]}:{frame.f_lineno} {frame.f_code.co_name}")
            if len(out) == depth:
                break
        frame = frame.f_back
    return out[::-1]


class PeakStacks:
    """A thread reading RssAnon every ``interval_s``: the stacks at each new peak (by at
    least ``step_mb``), and the highest reading per stage of the main thread (its innermost
    ``depth`` truelabel functions, without line numbers)."""

    def __init__(self, interval_s: float, step_mb: float, depth: int) -> None:
        self.interval_s, self.step_mb, self.depth = interval_s, step_mb, depth
        self.base = anon_mb()
        self.peak = self.base
        self.t0 = time.monotonic()
        self.records: list[dict[str, Any]] = []
        self.stages: dict[str, dict[str, Any]] = {}
        self._main = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = threading.get_ident()
        recorded = self.base
        while not self._stop.wait(self.interval_s):
            now = anon_mb()
            frames = sys._current_frames()
            main = _frames(frames.get(self._main), self.depth)
            key = " > ".join(f.split(" ", 1)[1] for f in main) or "(outside truelabel)"
            st = self.stages.setdefault(key, {"max_mb": 0.0, "first_s": 0.0, "samples": 0})
            st["samples"] += 1
            if now > st["max_mb"]:
                st["max_mb"], st["at"] = now, main
                st["first_s"] = st.get("first_s") or round(time.monotonic() - self.t0, 2)
            if now <= self.peak:
                continue
            self.peak = now
            if now < recorded + self.step_mb:
                continue
            recorded = now
            stacks = {}
            for tid, frame in frames.items():
                fr = _frames(frame, self.depth) if tid != me else []
                if fr:
                    stacks[str(tid)] = fr
            self.records.append(
                {
                    "s": round(time.monotonic() - self.t0, 3),
                    "anon_mb": round(now, 1),
                    "over_base_mb": round(now - self.base, 1),
                    "stacks": stacks,
                }
            )

    def __enter__(self) -> PeakStacks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, anon_mb())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True, help="a bench_scale.py input folder")
    ap.add_argument("--step", default="audit", choices=["audit", "dawid_skene"])
    ap.add_argument("--interval-ms", type=float, default=5.0)
    ap.add_argument("--step-mb", type=float, default=8.0)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--show", type=int, default=12, help="peaks printed (the highest ones)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import_step_modules()  # outside the measured span, as in bench_scale.py's child
    written = a.dir / f"out_{a.step}_stacks.parquet"
    with PeakStacks(a.interval_ms / 1000, a.step_mb, a.depth) as ps:
        t0 = time.perf_counter()
        out = run_step(a.step, a.dir, written)
        wall = time.perf_counter() - t0
    written.unlink()
    out_mb = out["output_mb"]
    print(
        f"{a.step} on {a.dir}: {wall:.1f} s (writing {out['write_s']:.1f}), RssAnon after "
        f"imports {ps.base:.0f} MB, peak {ps.peak:.0f} MB (+{ps.peak - ps.base:.0f}), just "
        f"before writing {out['anon_before_write_mb']:.0f} MB, output {out_mb:.1f} MB "
        f"({out['output_anon_mb']:.1f} anonymous)"
    )
    print("\nstages by their highest RssAnon (MB above after-imports; main thread's stack):")
    ranked = sorted(ps.stages.items(), key=lambda kv: -kv[1]["max_mb"])[: a.show]
    for key, st in ranked:
        print(f"{st['max_mb'] - ps.base:+7.0f}  {st['samples']:6d} samples  {key}")
    for rec in ps.records[-a.show :]:
        print(f"\n+{rec['over_base_mb']:.0f} MB at {rec['s']:.1f} s")
        for frames in rec["stacks"].values():
            print("   " + "\n    > ".join(frames))
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "step": a.step,
                    "dir": str(a.dir),
                    "wall_s": wall,
                    "anon_after_imports_mb": ps.base,
                    "peak_anon_mb": ps.peak,
                    "output_mb": out_mb,
                    "output": out,
                    "peaks": ps.records,
                    "stages": ps.stages,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
