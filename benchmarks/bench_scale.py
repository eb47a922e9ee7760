"""Local scaling curve: the audit and Dawid-Skene at 1e4 .. 1e6 (1e7) items, out of core.

Inputs are generated chunk by chunk on disk (``--dir``, default /tmp/truelabel_scale):
``pred_probs.npy`` (N x K float32), ``features.npy`` (N x D float32), ``labels.npy`` and an
annotation table ``answers.parquet`` (3 answers per item from 8 annotators of 70-90%
accuracy, one row group per 2**18 answers). Each step then runs in a fresh Python process
on the local backend, reading the ``.npy`` files memory-mapped and the Parquet file in record
batches:

- audit: ``Audit({"label", "outlier", "near_duplicate"}).run(labels="...npy", pred_probs="...npy",
  features="...npy")``
- dawid_skene: ``DawidSkene().fit(Annotations.from_parquet("answers.parquet"))``

Each step also writes its output to Parquet chunk-wise, inside the measured time and peak
(the audit: ``AuditResult.to_parquet``; Dawid-Skene: the consensus label and posteriors per
item, ``Aggregator.to_parquet``, or on a version without it ``write_frame_parquet`` of the
posteriors and labels), then removes the file.

Per step: wall time (and the writing's share), the process's peak RSS (VmHWM; includes the
pages of the memory-mapped inputs it touched and of file-backed outputs and spill files, which
the kernel can write back and drop), the peak of its anonymous memory (RssAnon sampled every
10 ms: what the process itself allocated), the RSS after imports, the output's size and how
much of it is anonymous memory (its buffers located in ``/proc/self/maps``; the rest lives in
spill files). The audit's output is its issue table and the neighbours of its flagged rows
(``AuditResult.neighbors``: their row numbers and first five neighbours), recorded apart as
``neighbors_mb``.

Inputs of a size are generated once into ``--dir``; a later run with the same K and D reuses
them.

Usage: python benchmarks/bench_scale.py [--sizes 1e4,1e5,1e6] [--K 20] [--D 64]
                                       [--json benchmarks/results/scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

_BLOCK = 1 << 18


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def generate(n: int, k: int, d: int, folder: Path, seed: int = 0) -> bool:
    """The inputs of size ``n``, written block by block (memory O(block)); False when the
    folder already holds them (same n, K, D and seed)."""
    from numpy.lib.format import open_memmap

    from truelabel.data import ParquetChunkWriter

    stamp = folder / "inputs.json"
    want = {"n": n, "K": k, "D": d, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return False
    stamp.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mu = (rng.standard_normal((k, d)) * (5.2 / np.sqrt(2 * d))).astype(np.float32)
    P = open_memmap(folder / "pred_probs.npy", mode="w+", dtype=np.float32, shape=(n, k))
    X = open_memmap(folder / "features.npy", mode="w+", dtype=np.float32, shape=(n, d))
    Y = open_memmap(folder / "labels.npy", mode="w+", dtype=np.int64, shape=(n,))
    acc = np.linspace(0.7, 0.9, 8)
    with ParquetChunkWriter(folder / "answers.parquet") as answers:
        for start in range(0, n, _BLOCK):
            stop = min(start + _BLOCK, n)
            m = stop - start
            truth = rng.integers(0, k, m)
            x = rng.standard_normal((m, d), dtype=np.float32) + mu[truth]
            logits = x @ mu.T - 0.5 * np.sum(mu * mu, axis=1)[None, :]
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            flip = rng.random(m) < 0.1
            X[start:stop], P[start:stop] = x, p
            Y[start:stop] = np.where(flip, (truth + rng.integers(1, k, m)) % k, truth)
            who = rng.integers(0, 8, (m, 3))
            who[:, 1] = (who[:, 0] + 1 + rng.integers(0, 3, m)) % 8
            who[:, 2] = (who[:, 1] + 1 + rng.integers(0, 3, m)) % 8
            right = rng.random((m, 3)) < acc[who]
            said = np.where(
                right, truth[:, None], (truth[:, None] + rng.integers(1, k, (m, 3))) % k
            )
            answers.write(
                {
                    "item_id": np.repeat(np.arange(start, stop), 3),
                    "annotator_id": who.ravel().astype(np.int32),
                    "label": said.ravel().astype(np.int32),
                }
            )
    for arr in (P, X, Y):
        arr.flush()
    stamp.write_text(json.dumps(want))
    return True


def _file_ranges() -> tuple[list[int], list[int]]:
    """Start and end addresses of this process's file-backed mappings (sorted)."""
    starts, ends = [], []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[4] != "0":  # an inode: a file (also an unlinked one)
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                starts.append(lo)
                ends.append(hi)
    order = np.argsort(starts)
    return [starts[i] for i in order], [ends[i] for i in order]


def _buffers(values: Any) -> list[tuple[int, int]]:
    """(address, size) of the memory behind a column, an index or an array."""
    import pandas as pd

    if isinstance(values, pd.RangeIndex):
        # before `.array`: a RangeIndex's `.array` materialises its n int64 values and caches
        # them on the index (8 bytes per item held as long as the output, the benchmark's own)
        return []
    arr = values.array if isinstance(values, pd.Series | pd.Index) else values
    pa_array = getattr(arr, "_pa_array", None)
    if pa_array is not None:
        return [
            (buf.address, buf.size)
            for chunk in pa_array.chunks
            for buf in chunk.buffers()
            if buf is not None
        ]
    if isinstance(arr, pd.Categorical):
        return _buffers(arr.codes) + _buffers(arr.categories)
    a = np.asarray(arr)
    if a.dtype == object:  # the pointers; the objects themselves are in the heap too
        return [(a.__array_interface__["data"][0], a.nbytes)]
    return [(a.__array_interface__["data"][0], a.nbytes)]


def anon_mb_of(frame: Any, *arrays: np.ndarray) -> float:
    """MiB of ``frame`` (a DataFrame or Series, with its index) and of ``arrays`` in anonymous
    memory: their buffers not inside a file-backed mapping."""
    import bisect

    import pandas as pd

    starts, ends = _file_ranges()
    parts = [frame.index] + (
        [frame.iloc[:, i] for i in range(frame.shape[1])]
        if isinstance(frame, pd.DataFrame)
        else [frame]
    )
    parts += list(arrays)
    seen: dict[int, int] = {}
    for part in parts:
        for addr, size in _buffers(part):
            seen[addr] = max(seen.get(addr, 0), size)
    anon = 0
    for addr, size in seen.items():
        i = bisect.bisect_right(starts, addr) - 1
        if not (i >= 0 and addr + size <= ends[i]):
            anon += size
    return anon / 2**20


class _AnonPeak:
    """The highest RssAnon seen, sampled every 10 ms on a thread."""

    def __init__(self) -> None:
        self.peak = _status_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _status_mb("RssAnon"))

    def __enter__(self) -> _AnonPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mb("RssAnon"))


def import_step_modules() -> None:
    """The imports a step needs, made before its measurement starts (its base reading)."""
    import pandas  # noqa: F401

    import truelabel.aggregate  # noqa: F401
    from truelabel import Audit  # noqa: F401


def run_step(step: str, folder: Path, written: Path) -> dict[str, Any]:
    """One step's measured work, as the benchmark times it: the library calls, the output's
    inspection (its size, the part of it in anonymous memory, the counts) and its Parquet
    writing to ``written``. The child process and ``anon_peak_stacks.py`` both run exactly
    this. Returns the output figures, the RssAnon just before writing and the writing's
    seconds."""
    import pandas as pd

    from truelabel import Audit
    from truelabel.aggregate import Annotations, DawidSkene

    if step == "audit":
        issues = {"label": {}, "outlier": {}, "near_duplicate": {}}
        res = Audit(issues, random_state=0).run(
            labels=str(folder / "labels.npy"),
            pred_probs=str(folder / "pred_probs.npy"),
            features=str(folder / "features.npy"),
        )
        # the output: the issue table and the flagged rows' neighbours (AuditResult.neighbors)
        near = list((res.neighbors or {}).values())
        neighbors_mb = sum(a.nbytes for a in near) / 2**20
        out_mb = float(res.issues.memory_usage(deep=True).sum()) / 2**20 + neighbors_mb
        out_anon = anon_mb_of(res.issues, *near)
        flagged = {c: int(res.issues[c].sum()) for c in res.issues.columns if c.startswith("is_")}
        anon_fit = _status_mb("RssAnon")
        t1 = time.perf_counter()
        res.to_parquet(written)
    elif step == "dawid_skene":
        ann = Annotations.from_parquet(folder / "answers.parquet")
        model = DawidSkene().fit(ann)
        probas = model.probas_
        out_mb = float(probas.memory_usage(deep=True).sum()) / 2**20
        out_anon = anon_mb_of(probas)
        truth_free = pd.Series(model.labels_).value_counts().size
        flagged = {"n_answers": int(ann.n_labels), "classes_in_consensus": int(truth_free)}
        neighbors_mb = 0.0
        anon_fit = _status_mb("RssAnon")
        t1 = time.perf_counter()
        if hasattr(model, "to_parquet"):
            model.to_parquet(written)
        else:  # a version without it: its chunk-wise frame writer
            from truelabel.data import write_frame_parquet

            frame = pd.concat([model.labels_, probas.rename(columns=lambda c: f"p_{c}")], axis=1)
            write_frame_parquet(written, frame)
    else:
        raise ValueError(f"step must be 'audit' or 'dawid_skene', got {step!r}")
    return {
        "output_mb": out_mb,
        "output_anon_mb": out_anon,
        "neighbors_mb": neighbors_mb,
        "anon_before_write_mb": anon_fit,
        "write_s": time.perf_counter() - t1,
        "counts": flagged,
    }


def child(step: str, folder: Path) -> dict[str, Any]:
    """One step in this (fresh) process; prints its figures as JSON."""
    import_step_modules()
    base_rss, base_anon = _status_mb("VmRSS"), _status_mb("RssAnon")
    written = folder / f"out_{step}.parquet"
    with _AnonPeak() as anon:
        t0 = time.perf_counter()
        out = run_step(step, folder, written)
        wall = time.perf_counter() - t0
    written.unlink()
    return {
        "step": step,
        "wall_s": round(wall, 2),
        "write_s": round(out["write_s"], 2),
        "peak_rss_mb": round(_status_mb("VmHWM"), 1),
        "peak_anon_mb": round(anon.peak, 1),
        "rss_after_imports_mb": round(base_rss, 1),
        "anon_after_imports_mb": round(base_anon, 1),
        "output_mb": round(out["output_mb"], 1),
        "output_anon_mb": round(out["output_anon_mb"], 1),
        "neighbors_mb": round(out["neighbors_mb"], 1),
        "anon_before_write_mb": round(out["anon_before_write_mb"], 1),
        "counts": out["counts"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--K", type=int, default=20)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--dir", default="/tmp/truelabel_scale")
    ap.add_argument("--steps", default="audit,dawid_skene")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of --json at other sizes (a run per size, one table)",
    )
    ap.add_argument(
        "--before",
        default=None,
        help="a scale.json of an earlier version: its peaks are shown beside these",
    )
    ap.add_argument("--before-title", default=None, help="the heading of the --before table")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.dir))))
        return
    rows = []
    for size in [int(float(s)) for s in args.sizes.split(",")]:
        folder = Path(args.dir) / f"n{size}"
        t0 = time.perf_counter()
        made = generate(size, args.K, args.D, folder)
        gen_s = time.perf_counter() - t0 if made else None
        disk = {
            p.name: round(p.stat().st_size / 2**20, 1)
            for p in sorted(folder.iterdir())
            if p.suffix in (".npy", ".parquet") and not p.name.startswith("out_")
        }
        for step in args.steps.split(","):
            cmd = [sys.executable, __file__, "--child", step, "--dir", str(folder)]
            env = dict(os.environ)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            row = {"N": size, **json.loads(out.stdout.strip().splitlines()[-1])}
            row["inputs_mb_on_disk"] = disk
            row["generate_s"] = None if gen_s is None else round(gen_s, 1)
            rows.append(row)
            print(
                f"N={size:>9,} {step:<12} {row['wall_s']:>8.1f} s  peak RSS "
                f"{row['peak_rss_mb']:>7.0f} MB  peak anon {row['peak_anon_mb']:>7.0f} MB  "
                f"output {row['output_mb']:>6.1f} MB ({row['output_anon_mb']:.1f} anon), "
                f"writing {row['write_s']:.1f} s",
                flush=True,
            )
    command = "PYTHONPATH=src python benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
    result = {
        "command": command,
        "K": args.K,
        "D": args.D,
        "cpus": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }
    old: dict[str, Any] | None = None
    if args.json and args.merge and Path(args.json).is_file():
        old = json.loads(Path(args.json).read_text())
        ran = {(r["N"], r["step"]) for r in rows}
        kept = [r for r in old["rows"] if (r["N"], r["step"]) not in ran]
        result["rows"] = sorted(kept + rows, key=lambda r: (r["N"], r["step"]))
        if args.before and not kept:  # a new version measured at every size: its own command
            result["command"] = command
        else:
            result["command"] = f"{old['command']} ; then {command} (rows merged)"
        result["load_average_at_end"] = old["load_average_at_end"]
        result["baselines"] = _baselines(old)
    if args.before:
        before = json.loads(Path(args.before).read_text())
        title = args.before_title or "before / after"
        add_baseline(
            result, {"title": title, "command": before["command"], "rows": before["rows"]}, old
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        Path(args.json).with_suffix(".md").write_text(render(result))


def add_baseline(result: dict[str, Any], base: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Make ``base`` (title, command, rows of an earlier version) the newest comparison of
    ``result``. The comparisons already there get ``old``'s rows as their "after" (the code
    now replaced) unless they have one; one with ``base``'s title is the same comparison run
    again, so it is replaced, not listed twice."""
    kept = []
    for earlier in result.get("baselines", []):
        if earlier["title"] == base["title"]:
            continue
        if old is not None and "after_rows" not in earlier:
            earlier["after_rows"] = old["rows"]
            earlier["after_command"] = old["command"]
        kept.append(earlier)
    result["baselines"] = [base, *kept]


def _baselines(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The earlier versions a result is compared with, newest first, each title once (the
    newest of a comparison listed twice; an old file's single ``before`` was the spill
    files' baseline)."""
    if "baselines" in result:
        seen: set[str] = set()
        out = []
        for base in result["baselines"]:
            if base["title"] not in seen:
                seen.add(base["title"])
                out.append(base)
        return out
    if "before" in result:
        return [{"title": "before / after spilling the intermediates", **result["before"]}]
    return []


def _anon_output(r: dict[str, Any]) -> float:
    """The part of a row's output in anonymous memory (rows measured before the outputs were
    spill files did not record it: all of it was)."""
    return float(r.get("output_anon_mb", r["output_mb"]))


def _opt(r: dict[str, Any], key: str, fmt: str) -> str:
    return "-" if r.get(key) is None else format(r[key], fmt)


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Local scaling curve (out of core)",
        "",
        f"K={result['K']} classes, D={result['D']} dims, {result['cpus']} cores shared with other "
        f"jobs (load average at the end {result['load_average_at_end'][0]:.1f}); local backend "
        "on every core; each step in a fresh process; inputs memory-mapped `.npy` / Parquet.",
        "",
        f"Command: `{result['command']}`",
        "",
        *([result["notes"], ""] if result.get("notes") else []),
        "| N | step | wall s | s per 1e6 items | writing s | peak RSS MB | peak anon MB "
        "| after imports MB | output MB | of it anon MB | inputs on disk MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        per = r["wall_s"] / r["N"] * 1e6
        if r["step"] == "audit":
            disk = sum(v for k, v in r["inputs_mb_on_disk"].items() if k.endswith(".npy"))
        else:
            disk = r["inputs_mb_on_disk"].get("answers.parquet", 0.0)
        lines.append(
            f"| {r['N']:,} | {r['step']} | {r['wall_s']:.1f} | {per:.1f} "
            f"| {_opt(r, 'write_s', '.1f')} | {r['peak_rss_mb']:.0f} "
            f"| {r['peak_anon_mb']:.0f} | {r['anon_after_imports_mb']:.0f} | {r['output_mb']:.1f} "
            f"| {_opt(r, 'output_anon_mb', '.1f')} | {disk:.0f} |"
        )
    lines += [
        "",
        "Peak RSS counts the pages of the memory-mapped inputs the process touched, of the "
        "spill files of its intermediates and of its outputs (file-backed: the kernel writes "
        "them back and drops them under pressure); peak anon is the memory the process "
        "allocated itself. Writing s: the Parquet output written chunk-wise (inside wall s "
        "and the peaks; '-': a row measured before the steps wrote their output). Output MB: "
        "the result (the audit's issue table and, in rows that record neighbors_mb, the "
        "flagged rows' neighbours it returns beside it; Dawid-Skene's probas_ with its index), "
        "of which "
        "'of it anon' is in anonymous memory; the rest lives in spill files.",
        "",
    ]
    for base in _baselines(result):
        old = {(r["N"], r["step"]): r for r in base["rows"]}
        after = base.get("after_rows", result["rows"])
        lines += [
            f"## Peak anonymous memory {base['title']}",
            "",
            f"Before: `{base['command']}`.",
            *([f"After: `{base['after_command']}`."] if base.get("after_command") else []),
            "",
            "Growth = (rise of the peak - rise of the output held in anonymous memory) / added "
            "items, from the previous size: the bytes per item the step holds beyond its "
            "output (the fixed costs, imports and thread heaps, cancel out).",
            "",
            "| N | step | peak anon MB before | after | output MB | of it anon before / after "
            "| growth before, B/item | growth after, B/item |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        prev: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for r in after:
            b = old.get((r["N"], r["step"]))
            if b is None:
                continue
            growth = ["", ""]
            if r["step"] in prev:
                pb, pr = prev[r["step"]]
                dn = (r["N"] - pr["N"]) / 2**20
                for i, (now, was) in enumerate(((b, pb), (r, pr))):
                    rise = now["peak_anon_mb"] - was["peak_anon_mb"]
                    grew = rise - (_anon_output(now) - _anon_output(was))
                    growth[i] = f"{grew / dn:.0f}"
            prev[r["step"]] = (b, r)
            lines.append(
                f"| {r['N']:,} | {r['step']} | {b['peak_anon_mb']:.0f} | {r['peak_anon_mb']:.0f} "
                f"| {r['output_mb']:.1f} | {_anon_output(b):.1f} / {_anon_output(r):.1f} "
                f"| {growth[0]} | {growth[1]} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
