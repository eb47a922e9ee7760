"""Approximate kNN graph quality and cost: recall@k of method="ivf" and "hnsw" vs the exact graph.

Data:
  * synthetic: bench_audit.make_data (K=20 Gaussian clusters in 384 dimensions, seed 0) at each
    --syn-Ns size. Within a cluster neighbours are nearly equidistant (noise in 384 dimensions),
    so the exact neighbours are hard to find from any 64-dimensional projection.
  * banking77: MiniLM (int8 ONNX) embeddings of text_banking77/train.csv (10,003 texts, cached
    .npy or benchmarks/_embed.py), and the same tiled 10x (copy 0 as is, 9 jittered copies with
    Gaussian noise of per-dimension sd = median nearest-neighbour distance / sqrt(2 * 384),
    re-normalised; rows shuffled, seed 0): 100k items of a real embedding distribution.
Reference: the exact 10 nearest neighbours (float64 distances, ties by index) of --queries
sampled rows (seed 1), computed for those rows only. For each method: recall@10 on those rows,
wall and CPU seconds of build_knn_graph (default backend), and, on the synthetic data, the
class purity of the neighbours (share of neighbours in the row's generating cluster).

Usage: python benchmarks/bench_knn.py [--syn-Ns 100000,300000] [--queries 2000] [--out ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, default_datasets_dir, loadavg, machine, md_table, versions, write_json
from bench_audit import make_data


def exact_reference(X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact k nearest neighbours (self excluded) of ``rows``: GEMM shortlist of k + 16,
    re-ranked by float64 distance, ties by index."""
    sq = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    out = np.empty((rows.size, k), dtype=np.int64)
    for a in range(0, rows.size, 256):
        r = rows[a : a + 256]
        d = sq[None, :] - 2.0 * (X[r] @ X.T)
        d[np.arange(r.size), r] = np.inf
        short = np.argpartition(d, k + 16, axis=1)[:, : k + 16]
        diff = X[short].astype(np.float64) - X[r][:, None, :]
        e = np.einsum("ijk,ijk->ij", diff, diff)
        e[short == r[:, None]] = np.inf
        o = np.lexsort((short, e), axis=1)[:, :k]
        out[a : a + 256] = np.take_along_axis(short, o, axis=1)
    return out


def banking(datasets: Path, cache: Path | None) -> np.ndarray:
    if cache is not None and cache.exists():
        return np.load(cache).astype(np.float32)
    from _embed import embed_csv

    return embed_csv(datasets / "text_banking77" / "train.csv").astype(np.float32)


def tiled(B: np.ndarray, copies: int = 10, seed: int = 0) -> np.ndarray:
    sq = np.einsum("ij,ij->i", B, B)
    d = sq[:, None] + sq[None, :] - 2.0 * (B @ B.T)
    np.fill_diagonal(d, np.inf)
    sigma = float(np.median(np.sqrt(np.maximum(d.min(axis=1), 0.0)))) / np.sqrt(2 * B.shape[1])
    rng = np.random.default_rng(seed)
    parts = [B] + [
        B + sigma * rng.standard_normal(B.shape).astype(np.float32) for _ in range(copies - 1)
    ]
    T = np.vstack(parts)
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    return T[rng.permutation(T.shape[0])].astype(np.float32)


def measure(name: str, X: np.ndarray, a, y: np.ndarray | None = None) -> dict:
    from truelabel import build_knn_graph

    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(X.shape[0], min(a.queries, X.shape[0]), replace=False))
    t0 = time.perf_counter()
    ref = exact_reference(X, rows, a.k)
    out = {"data": name, "N": int(X.shape[0]), "queries": int(rows.size), "k": a.k}
    out["exact_reference_s"] = time.perf_counter() - t0
    if y is not None:
        out["exact_purity"] = float(np.mean(y[ref] == y[rows, None]))
    for method in a.methods.split(","):
        la, w0, c0 = loadavg(), time.perf_counter(), time.process_time()
        g = build_knn_graph(X, n_neighbors=a.k, method=method)
        res = {
            "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0,
            "loadavg_before": la,
            "recall_at_k": float(
                np.mean([len(set(r) & set(h)) / a.k for r, h in zip(ref, g.indices[rows])])
            ),
            "mean_kth_distance_ratio_to_exact": float(
                np.mean(g.distances[rows, -1])
                / np.mean(np.linalg.norm(X[ref[:, -1]] - X[rows], axis=1))
            ),
        }
        if y is not None:
            res["purity"] = float(np.mean(y[g.indices[rows]] == y[rows, None]))
        out[method] = res
        print(name, method, {kk: round(v, 4) for kk, v in res.items() if kk != "loadavg_before"})
    return out


def render(runs: list[dict], methods: list[str]) -> str:
    rows = []
    for r in runs:
        for m in methods:
            res = r[m]
            rows.append(
                [
                    r["data"],
                    f"{r['N']:,}",
                    m,
                    f"{res['recall_at_k']:.3f}",
                    f"{res['cpu_s']:.1f}",
                    f"{res['wall_s']:.1f}",
                    f"{res['mean_kth_distance_ratio_to_exact']:.3f}",
                    f"{res['purity']:.3f}" if "purity" in res else "–",
                ]
            )
    header = ["data", "N", "method", f"recall@{runs[0]['k']}", "CPU s", "wall s"]
    return md_table([*header, "k-th distance / exact", "class purity"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--syn-Ns", default="100000,300000")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--methods", default="ivf,hnsw")
    ap.add_argument("--datasets", type=Path, default=default_datasets_dir())
    ap.add_argument(
        "--banking-npy", type=Path, default=Path("/work/wt/_cache/banking77_train_minilm.npy")
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "knn.json")
    a = ap.parse_args()
    t0 = time.perf_counter()
    runs = []
    B = banking(a.datasets, a.banking_npy)
    runs.append(measure("banking77 MiniLM", B, a))
    runs.append(measure("banking77 MiniLM tiled 10x", tiled(B), a))
    for n in [int(s) for s in a.syn_Ns.split(",") if s]:
        X, _, _, y, _ = make_data(n, 20, 384, 0.1)
        runs.append(measure("synthetic 20 clusters", X, a, y))
        del X
    methods = a.methods.split(",")
    md = render(runs, methods)
    command = "python benchmarks/bench_knn.py " + " ".join(sys.argv[1:])
    out = {"command": command.strip(), "versions": versions(), "machine": machine()}
    out.update({"wall_s": time.perf_counter() - t0, "runs": runs, "table_md": md})
    write_json(a.out, out)
    a.out.with_suffix(".md").write_text(
        f"# Approximate kNN graph: recall vs the exact graph\n\n`{out['command']}`\n\n{md}\n",
        encoding="utf-8",
    )
    print(md)


if __name__ == "__main__":
    main()
