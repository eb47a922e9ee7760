"""Spilled intermediates to Ray workers by path vs by value: the audit on a local cluster.

Run it only inside a loopback-only network namespace (it refuses otherwise):

    tools/netns-run env PYTHONPATH=src .venv/bin/python benchmarks/bench_ray_ship.py --items 1000000

The audit (label + outlier + near-duplicate; ``.npy`` inputs, so only the intermediates
differ) runs on ``LocalBackend`` and then twice on a local ``RayBackend``, after a small
warm-up audit that starts the worker processes:

- by value: spill files as before this change (``_ship.spill_file`` switched off, so a
  spilled kNN graph or neighbour label distribution is pickled into the object store);
- by path: a spilled array's file is named in the private spill folder and the workers map it.

Per Ray run: the bytes handed to ``ray.put`` (pickled with protocol 5, counted with the
out-of-band buffers, which is what the object store receives), the number of puts and the
wall time; results must equal the local run's. Writes benchmarks/results/ray_ship.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_ray import isolated  # noqa: E402
from bench_scale import generate  # noqa: E402


class PutCounter:
    """Wraps ``ray.put``: counts the calls and the bytes each value serialises to."""

    def __init__(self, ray: Any) -> None:
        self.ray, self.put = ray, ray.put
        self.calls = 0
        self.bytes = 0
        self.largest = 0
        ray.put = self

    def __call__(self, value: Any, **kwargs: Any) -> Any:
        from ray import cloudpickle

        sizes: list[int] = []
        blob = cloudpickle.dumps(
            value, protocol=5, buffer_callback=lambda b: sizes.append(b.raw().nbytes)
        )
        n = len(blob) + sum(sizes)
        self.calls += 1
        self.bytes += n
        self.largest = max(self.largest, n)
        return self.put(value, **kwargs)

    def reset(self) -> None:
        self.calls = self.bytes = self.largest = 0


class MapTimer:
    """Wraps a backend's ``map``: seconds from the call to the last result, per function."""

    def __init__(self, backend: Any) -> None:
        self.backend, self.map = backend, backend.map
        self.seconds: dict[str, float] = {}
        backend.map = self

    def __call__(self, fn: Any, chunks: Any, shared: Any) -> Any:
        name = getattr(fn, "__name__", str(fn))
        t0 = time.perf_counter()
        try:
            yield from self.map(fn, chunks, shared)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def audit(folder: Path, backend: Any, chunk_size: int | None) -> tuple[Any, float]:
    from truelabel import Audit
    from truelabel.detect import _confident_learning

    _confident_learning._CACHE.clear()  # each run computes its own statistics
    labels = np.asarray(np.load(folder / "labels.npy", mmap_mode="r"))
    issues: dict[str, dict[str, Any]] = {"label": {}, "outlier": {}, "near_duplicate": {}}
    t0 = time.perf_counter()
    res = Audit(issues, random_state=0, backend=backend, chunk_size=chunk_size).run(
        labels=labels,
        pred_probs=str(folder / "pred_probs.npy"),
        features=str(folder / "features.npy"),
    )
    return res.issues.copy(), time.perf_counter() - t0


def equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns):
        return False
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--modes", default="by value,by path", help="comma-separated, in order")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/truelabel_ray_ship"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ray_ship.json")
    ap.add_argument("--note", default="", help="a sentence for the markdown (load, caveats)")
    args = ap.parse_args()
    problem = isolated()
    if problem is not None:
        sys.exit(f"refusing to start Ray outside a loopback-only namespace ({problem}); "
                 "run: tools/netns-run python benchmarks/bench_ray_ship.py ...")  # fmt: skip
    import truelabel.distributed._ship as ship
    from truelabel._spill import spill_folder
    from truelabel.backend import LocalBackend
    from truelabel.distributed import RayBackend

    folder = args.dir / f"n{args.items}"
    if not (folder / "labels.npy").is_file():
        generate(args.items, args.K, args.D, folder)
    small = args.dir / "n10000"
    if not (small / "labels.npy").is_file():
        generate(10_000, args.K, args.D, small)
    local, local_s = audit(folder, LocalBackend(), args.chunk_size)
    print(f"local: {local_s:.1f} s", flush=True)
    be = RayBackend()
    t0 = time.perf_counter()
    cpus = be.n_workers
    startup = time.perf_counter() - t0
    import ray

    counter = PutCounter(ray)
    rows: list[dict[str, Any]] = []
    hook = ship.spill_file
    try:
        audit(small, be, args.chunk_size)  # starts the worker processes
        timer = MapTimer(be)
        for mode in args.modes.split(","):
            timer.seconds.clear()
            ship.spill_file = hook if mode == "by path" else (lambda arr: None)  # type: ignore[assignment]
            counter.reset()
            res, seconds = audit(folder, be, args.chunk_size)
            left = sorted(os.listdir(spill_folder()))
            rows.append(
                {
                    "mode": mode,
                    "ray_wall_s": round(seconds, 1),
                    "local_wall_s": round(local_s, 1),
                    "ray_over_local": round(seconds / local_s, 2),
                    "puts": counter.calls,
                    "put_mb": round(counter.bytes / 2**20, 1),
                    "largest_put_mb": round(counter.largest / 2**20, 1),
                    "spill_files_left_after_run": len(left),
                    "equal_to_local": equal(local, res),
                    "map_s": {k: round(v, 1) for k, v in sorted(timer.seconds.items())},
                }
            )
            print(rows[-1], flush=True)
            del res
    finally:
        ship.spill_file = hook
        be.close()
    command = "python benchmarks/bench_ray_ship.py " + " ".join(sys.argv[1:])
    result = {
        "command": command,
        "items": args.items,
        "K": args.K,
        "D": args.D,
        "ray_cpus": cpus,
        "ray_startup_s": round(startup, 1),
        "rows": rows,
        "note": args.note,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(result) + "\n")


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Spilled intermediates to Ray workers: by value vs by path (audit, local cluster)",
        "",
        f"Command: `{result['command']}` (inside `tools/netns-run`, loopback only). "
        f"{result['items']:,} items, K={result['K']}, D={result['D']}, `.npy` inputs "
        f"(by path in both rows), a local Ray cluster of {result['ray_cpus']} CPUs; "
        "one run each on a shared 2-core machine (times are noisy, put bytes are not).",
        "",
        "| mode | put MB | puts | largest put MB | Ray s | local s | Ray / local | equal |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['mode']} | {r['put_mb']} | {r['puts']} | {r['largest_put_mb']} | "
            f"{r['ray_wall_s']} | {r['local_wall_s']} | {r['ray_over_local']} | "
            f"{r['equal_to_local']} |"
        )
    lines += ["", "Per-map seconds of each run are in the JSON (`map_s`)."]
    if result.get("note"):
        lines += ["", result["note"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
