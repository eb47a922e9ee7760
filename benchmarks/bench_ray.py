"""Ray vs local on the same machine, and a simulated 2-node Ray cluster (loopback only).

Run it only inside a loopback-only network namespace (it refuses otherwise: Ray probes
cloud-metadata addresses at start-up):

    tools/netns-run .venv/bin/python benchmarks/bench_ray.py --items 100000
    tools/netns-run .venv/bin/python benchmarks/bench_ray.py --items 1000000 --two-node

1. Same machine: confident learning (``find_label_issues`` + ``get_label_quality_scores``) and
   Dawid-Skene on N synthetic items, with ``LocalBackend`` (threads) and ``RayBackend`` (a local
   cluster of all cores); the Ray start-up is timed apart, the first Ray run (which also starts
   the worker processes) apart from a second one; results must be equal.
2. ``--two-node``: ``ray start --head`` and a second node (``ray start --address``) as separate
   processes on 127.0.0.1, one CPU each; the same steps through ``RayBackend(address)``, the
   chunks counted per node (each task reports its node), results equal to local.

Writes benchmarks/results/ray.json and ray.md (``--out``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from truelabel.backend import Chunk, LocalBackend, share

HERE = Path(__file__).resolve().parent


def isolated() -> str | None:
    """None when this process sees only loopback, else what it sees."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    names = sorted(line.split(":", 1)[0].strip() for line in lines)
    return None if names == ["lo"] else f"interfaces {names}"


def _tagged(fn: Callable[[Chunk, Any], Any], chunk: Chunk, shared: Any) -> tuple[str, Any]:
    """Run ``fn`` on a task and say which Ray node ran it."""
    import ray

    return ray.get_runtime_context().get_node_id(), fn(chunk, shared)


class NodeCounting:
    """A backend that runs every chunk through ``inner`` and counts the chunks per node."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.per_node: Counter[str] = Counter()

    @property
    def n_workers(self) -> int:
        return int(self.inner.n_workers)

    def share(self, obj: Any) -> Any:
        return share(self.inner, obj)

    def map(self, fn: Any, chunks: Any, shared: Any) -> Iterator[Any]:
        for node, result in self.inner.map(functools.partial(_tagged, fn), chunks, shared):
            self.per_node[node] += 1
            yield result


def make_data(n: int, k: int = 10, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    labels = truth.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = rng.integers(0, k, int(flip.sum()))
    z = rng.normal(size=(n, k)).astype(np.float32)
    z[np.arange(n), truth] += 3.0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n_ann = max(n // 100, 10)  # a crowd on the first min(n, 200k) items, 3 answers each
    m = min(n, 200_000)
    items = np.repeat(np.arange(m), 3)
    ann = rng.integers(0, n_ann, items.size)
    right = rng.random(items.size) < 0.75
    ans = np.where(right, truth[items], rng.integers(0, k, items.size))
    crowd = pd.DataFrame({"item_id": items, "annotator_id": ann, "label": ans})
    crowd = crowd.drop_duplicates(["item_id", "annotator_id"])
    return {"labels": labels, "pred_probs": p, "crowd": crowd}


def steps(data: dict[str, Any], backend: Any, chunk_size: int) -> dict[str, Any]:
    """Run the measured steps; returns their outputs and seconds."""
    from truelabel.aggregate import DawidSkene
    from truelabel.detect import _confident_learning, find_label_issues, get_label_quality_scores

    out: dict[str, Any] = {}
    _confident_learning._CACHE.clear()  # each run computes its own statistics
    t0 = time.perf_counter()
    out["issues"] = find_label_issues(
        data["labels"], data["pred_probs"], backend=backend, chunk_size=chunk_size
    )
    out["scores"] = get_label_quality_scores(
        data["labels"], data["pred_probs"], backend=backend, chunk_size=chunk_size
    )
    out["confident_learning_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = DawidSkene(backend=backend, chunk_size=chunk_size).fit(data["crowd"])
    out["probas"] = ds.probas_.to_numpy()
    out["dawid_skene_s"] = time.perf_counter() - t0
    return out


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        np.array_equal(a["issues"], b["issues"])
        and np.allclose(a["scores"], b["scores"], rtol=1e-9, atol=1e-12)
        and np.allclose(a["probas"], b["probas"], rtol=1e-9, atol=1e-12)
    )


def same_machine(data: dict[str, Any], chunk_size: int) -> dict[str, Any]:
    from truelabel.distributed import RayBackend

    local = steps(data, LocalBackend(), chunk_size)
    t0 = time.perf_counter()
    ray_be = RayBackend()
    cpus = ray_be.n_workers  # starts the cluster
    startup = time.perf_counter() - t0
    try:
        cold = steps(data, ray_be, chunk_size)  # the first tasks also start the workers
        on_ray = steps(data, ray_be, chunk_size)
    finally:
        ray_be.close()
    row: dict[str, Any] = {"ray_cpus": cpus, "ray_startup_s": round(startup, 2)}
    for step in ("confident_learning_s", "dawid_skene_s"):
        row[f"local_{step}"] = round(local[step], 3)
        row[f"ray_first_{step}"] = round(cold[step], 3)
        row[f"ray_{step}"] = round(on_ray[step], 3)
        row[f"ray_over_local_{step[:-2]}"] = round(on_ray[step] / local[step], 2)
    row["equal"] = same(local, on_ray) and same(local, cold)
    return row


def two_node(data: dict[str, Any], chunk_size: int) -> dict[str, Any]:
    from truelabel.distributed import RayBackend

    ray_cli = str(Path(sys.executable).with_name("ray"))
    temp = Path(tempfile.mkdtemp(prefix="tl-2node-"))
    # a second node may join only with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1; every node still
    # listens on 127.0.0.1 (--node-ip-address), inside the private namespace
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    env["RAY_AUTH_MODE"] = "disabled"
    port = 6391
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    head = [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false"]
    worker = [ray_cli, "start", f"--address=127.0.0.1:{port}"]
    t0 = time.perf_counter()
    try:
        for cmd in ([*head, *common, f"--temp-dir={temp}"], [*worker, *common]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        startup = time.perf_counter() - t0
        os.environ.update({k: env[k] for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED")})
        be = RayBackend(f"127.0.0.1:{port}")
        cpus = be.n_workers  # joins the cluster
        import ray

        nodes = ray.nodes()
        counting = NodeCounting(be)
        on_two = steps(data, counting, chunk_size)
        be.close()
        ray.shutdown()
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
    local = steps(data, LocalBackend(), chunk_size)
    return {
        "nodes_alive": sum(1 for n in nodes if n.get("Alive")),
        "cluster_cpus": cpus,
        "cluster_startup_s": round(startup, 2),
        "chunks_per_node": sorted(counting.per_node.values()),
        "confident_learning_s": round(on_two["confident_learning_s"], 3),
        "dawid_skene_s": round(on_two["dawid_skene_s"], 3),
        "equal_to_local": same(local, on_two),
    }


def render(rows: list[dict[str, Any]], command: str) -> str:
    lines = ["# Ray backend vs local (same machine) and a simulated 2-node cluster", ""]
    lines += [f"Command: `{command}` (inside `tools/netns-run`, loopback only)", ""]
    for row in rows:
        lines.append(f"## {row['part']}, {row['items']:,} items, chunks of {row['chunk_size']:,}")
        lines.append("")
        lines.append("| measure | value |")
        lines.append("|---|---|")
        for key, value in row.items():
            if key not in ("part", "items", "chunk_size"):
                lines.append(f"| {key} | {value} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--chunk-size", type=int, default=1 << 15)
    ap.add_argument("--two-node", action="store_true", help="also the simulated 2-node cluster")
    ap.add_argument("--two-node-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "ray.json")
    args = ap.parse_args()
    problem = isolated()
    if problem is not None:
        sys.exit(f"refusing to start Ray outside a loopback-only namespace ({problem}); "
                 "run: tools/netns-run python benchmarks/bench_ray.py ...")  # fmt: skip
    data = make_data(args.items)
    if args.two_node_only:
        print(json.dumps(two_node(data, args.chunk_size)))
        return
    base = {"items": args.items, "chunk_size": args.chunk_size}
    rows = [{"part": "same machine", **base, **same_machine(data, args.chunk_size)}]
    print(rows[-1], flush=True)
    if args.two_node:
        # in a fresh process: Ray keeps its authentication mode per process, and the local
        # cluster above ran with a token of its own
        cmd = [sys.executable, __file__, "--items", str(args.items)]
        cmd += ["--chunk-size", str(args.chunk_size), "--two-node-only"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"the 2-node part failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"part": "2 nodes (1 CPU each)", **base, **row})
        print(rows[-1], flush=True)
    command = "python benchmarks/bench_ray.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(render(rows, command) + "\n")


if __name__ == "__main__":
    main()
