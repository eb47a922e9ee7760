"""Peak anonymous memory (RssAnon) of an audit (label + outlier + near-duplicate) and of its
``write_audit``, above the RssAnon once the inputs exist: for comparing two checkouts in the
same load (run it with ``PYTHONPATH=<checkout>/src``, alternating the checkouts).

    PYTHONPATH=src python benchmarks/outputs_anon.py --n 1000000 [--json out.json]

Inputs are drawn from a seeded generator (10 classes, 16 dimensions, 10% wrong labels); the
results are written to a private temporary folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time

import numpy as np
from _common import anon_mb


class Peak:
    """The highest RssAnon read every 5 ms inside the block."""

    def __init__(self) -> None:
        self.mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.mb = max(self.mb, anon_mb())
            time.sleep(0.005)

    def __enter__(self) -> Peak:
        self.mb = anon_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, anon_mb())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    import truelabel
    from truelabel import Audit
    from truelabel._spill import release_free_memory
    from truelabel.pipeline import write_audit

    rng = np.random.default_rng(0)
    n, k, d = args.n, 10, 16
    y = rng.integers(0, k, size=n)
    p = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    p[np.arange(n), y] += 1.0
    p /= p.sum(axis=1, keepdims=True)
    y = np.where(rng.random(n) < 0.1, (y + 1) % k, y)
    x = (rng.normal(size=(n, d)) + y[:, None]).astype(np.float32)
    release_free_memory()
    base = anon_mb()
    with Peak() as run:
        res = Audit({"label": {}, "outlier": {}, "near_duplicate": {}}).run(
            labels=y, pred_probs=p, features=x
        )
    release_free_memory()
    held = anon_mb()
    out = tempfile.mkdtemp(prefix="outputs-anon-")
    try:
        with Peak() as write:
            write_audit(res, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    row = {
        "truelabel": truelabel.__file__,
        "n": n,
        "audit_peak_mb": round(run.mb - base, 1),
        "held_after_audit_mb": round(held - base, 1),
        "write_peak_mb": round(write.mb - held, 1),
    }
    print(json.dumps(row))
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
