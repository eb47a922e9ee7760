"""Image encoder through open_clip, for a CLIP checkpoint the user already has on disk.

No weights ship with truelabel and nothing is downloaded: ``checkpoint`` is a local file
(``.safetensors``, ``.bin``, ``.pt``/``.pth``) for one of open_clip's built-in architectures,
or a folder in open_clip's own format (``open_clip_config.json`` + weights), as a Hub
repository looks once copied to disk. open_clip and torch are imported only when an encoder
is built (``pip install 'truelabel[image]'``).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import progress
from ..exceptions import MissingDependencyError, ValidationError
from ._torchvision import ensure_torchvision

__all__ = ["OpenClipImageEncoder"]

#: weight files open_clip can load from a folder (its own ``_find_checkpoint_in_dir`` order)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth")
_CONFIG_FILE = "open_clip_config.json"
_PURPOSE = "OpenClipImageEncoder"


def _import_open_clip() -> tuple[Any, Any]:
    """Import open_clip and torch, or say which package of the ``image`` extra is missing
    (torchvision beside a torch its compiled ops do not fit: see :mod:`._torchvision`)."""
    try:
        import torch
    except ImportError as e:
        raise MissingDependencyError("torch", "image", _PURPOSE) from e
    try:
        ensure_torchvision(torch)
        import open_clip
    except ImportError as e:
        package = "open-clip-torch" if e.name in (None, "open_clip") else e.name
        raise MissingDependencyError(package, "image", _PURPOSE) from e
    return open_clip, torch


def _sha256(paths: Sequence[Path]) -> str:
    """SHA-256 over the files' names and bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@contextmanager
def _torch_threads(torch: Any, n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _positive_int(argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(argument, f"got {value!r}", "pass an int >= 1")
    return int(value)


def _as_list(argument: str, items: Any, what: str) -> list[Any]:
    from PIL import Image

    if isinstance(items, str | bytes | os.PathLike | Image.Image):
        raise ValidationError(argument, f"got a single {what}", f"pass a list of {what}s")
    try:
        return list(items)
    except TypeError:
        raise ValidationError(
            argument, f"got {type(items).__name__}", f"pass a list of {what}s"
        ) from None


def _checkpoint_files(path: Path, model_name: str | None) -> list[Path]:
    """The files that make up the checkpoint (hashed into ``identity``)."""
    if not path.exists():
        raise ValidationError(
            "checkpoint",
            f"no file or folder at {str(path)!r}",
            "pass the path of a local open_clip checkpoint; no weights ship with "
            "truelabel and none are downloaded",
        )
    if path.is_dir():
        config = path / _CONFIG_FILE
        weights = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        if not config.is_file() or not weights:
            raise ValidationError(
                "checkpoint",
                f"folder {str(path)!r} lacks {_CONFIG_FILE} or a weights file "
                f"({', '.join(_WEIGHT_SUFFIXES)})",
                "pass a weights file with model_name, or a folder in open_clip's format",
            )
        return [config, *weights]
    if model_name is None:
        raise ValidationError(
            "model_name",
            f"is needed with the weights file {str(path)!r}",
            "pass the open_clip architecture it was trained with, e.g. 'ViT-B-32'",
        )
    return [path]


def _check_model_name(open_clip: Any, model_name: str) -> str:
    known = open_clip.list_models()
    if model_name.replace("/", "-") not in known:
        close = difflib.get_close_matches(model_name, known, n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ValidationError(
            "model_name",
            f"{model_name!r} is not an open_clip architecture",
            f"{hint}open_clip.list_models() lists all {len(known)} (no 'hf-hub:' names: "
            "nothing is downloaded)",
        )
    return model_name


class OpenClipImageEncoder:
    """Image embeddings from an open_clip (CLIP) model loaded from a local checkpoint.

    Implements the :class:`~truelabel.encode.Encoder` protocol for images: ``encode`` takes
    image file paths or PIL images and returns L2-normalised float32 rows. The same
    open_clip preprocessing as at training time is applied (resize, centre crop, RGB,
    normalisation with the checkpoint's mean and std). Inference runs in batches under
    ``torch.inference_mode`` in eval mode on at most ``n_threads`` torch threads, so the
    same input gives the same vectors.

    Parameters
    ----------
    model_name : str or None
        One of ``open_clip.list_models()`` (e.g. ``"ViT-B-32"``) when ``checkpoint`` is a
        weights file; for a checkpoint folder only the name shown (default: the folder's).
    checkpoint : str or Path
        A weights file for ``model_name`` (``.safetensors``, ``.bin``, ``.pt``, ``.pth``,
        loaded with ``weights_only=True``), or a folder with ``open_clip_config.json`` and
        one weights file. Nothing is downloaded.
    batch_size : int, default 32
        Images decoded, preprocessed and encoded at a time (memory is O(batch_size)).
    device : str, default "cpu"
        A torch device, e.g. ``"cuda"`` where one is available.
    n_threads : int or None, default None
        torch threads during encoding (None: the cores this process may use); the
        previous setting is restored afterwards.

    Attributes
    ----------
    name : str
        ``"open_clip:<model name>"``.
    identity : str
        ``"open_clip:<model name>:sha256:<hex>"``, the SHA-256 of the checkpoint's files:
        an embedding cache keys on it, so other weights never reuse cached vectors.
    dim : int
        Length of the embeddings.

    Examples
    --------
    >>> enc = OpenClipImageEncoder("ViT-B-32", checkpoint="clip_vit_b32.safetensors")  # doctest: +SKIP
    >>> enc.encode(["cat.png", "dog.jpg"]).shape  # doctest: +SKIP
    (2, 512)
    >>> enc.encode_text(["a photo of a cat", "a photo of a dog"]).shape  # doctest: +SKIP
    (2, 512)
    """

    def __init__(
        self,
        model_name: str | None = None,
        *,
        checkpoint: str | os.PathLike[str],
        batch_size: int = 32,
        device: str = "cpu",
        n_threads: int | None = None,
    ) -> None:
        self.batch_size = _positive_int("batch_size", batch_size)
        self.n_threads = (
            _available_cores() if n_threads is None else _positive_int("n_threads", n_threads)
        )
        if model_name is not None and not isinstance(model_name, str):
            raise ValidationError(
                "model_name", f"got {type(model_name).__name__}", "pass a name such as 'ViT-B-32'"
            )
        if not isinstance(checkpoint, str | os.PathLike):
            raise ValidationError(
                "checkpoint", f"got {type(checkpoint).__name__}", "pass the path of a local file"
            )
        path = Path(checkpoint).expanduser().resolve()
        self.checkpoint = path
        files = _checkpoint_files(path, model_name)
        open_clip, torch = _import_open_clip()
        self._torch = torch
        self.device = self._check_device(torch, device)
        if path.is_dir():
            spec, pretrained = f"local-dir:{path}", None
        else:
            spec, pretrained = _check_model_name(open_clip, str(model_name)), str(path)
        self.model_name = model_name if model_name is not None else path.name
        self.name = f"open_clip:{self.model_name}"
        self.identity = f"{self.name}:sha256:{_sha256(files)}"
        self._spec = spec
        try:
            model, preprocess = open_clip.create_model_from_pretrained(
                spec, pretrained=pretrained, device=self.device, weights_only=True
            )
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValidationError(
                "checkpoint",
                f"open_clip could not load {str(path)!r} as {self.model_name!r}: {first}",
                "pass the model_name the checkpoint was trained with and an open_clip "
                "checkpoint (state dict or safetensors)",
            ) from e
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer: Any = None
        output_dim = getattr(model.visual, "output_dim", None)
        self.dim = (
            int(output_dim) if output_dim else int(self._encode_pixels(self._blank()).shape[1])
        )

    @staticmethod
    def _check_device(torch: Any, device: Any) -> Any:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValidationError("device", f"got {device!r} ({e})", "pass 'cpu' or 'cuda'") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValidationError(
                "device", f"got {device!r}, but torch sees no CUDA device", "pass device='cpu'"
            )
        return dev

    # -- preprocessing ---------------------------------------------------------------------
    def _check_items(self, items: Any) -> list[Any]:
        from PIL import Image

        items = _as_list("items", items, "image path or PIL image")
        for i, item in enumerate(items):
            if not isinstance(item, str | os.PathLike | Image.Image):
                raise ValidationError(
                    "items",
                    f"item {i} is {type(item).__name__}",
                    "pass image file paths (str or Path) or PIL images",
                )
        return items

    def _pixels(self, item: Any, index: int) -> Any:
        from PIL import Image

        if isinstance(item, Image.Image):
            return self._preprocess(item)
        path = os.fspath(item)
        try:
            with Image.open(path) as image:
                return self._preprocess(image)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ValidationError(
                "items",
                f"cannot read image {path!r} (item {index}): {e}",
                "pass image files that PIL can open (PNG, JPEG, ...)",
            ) from e

    def _blank(self) -> Any:
        from PIL import Image

        return self._preprocess(Image.new("RGB", (8, 8)))[None]

    def preprocess(self, items: Sequence[Any]) -> np.ndarray:
        """The model's input pixels for ``items``, shape (n_items, 3, height, width), float32.

        The exact tensors ``encode`` feeds the model (for inspection; it holds every item
        in memory, while ``encode`` streams in batches).
        """
        items = self._check_items(items)
        if not items:
            return np.empty((0, *self._blank().shape[1:]), dtype=np.float32)
        return np.stack([self._pixels(x, i).numpy() for i, x in enumerate(items)])

    # -- encoding --------------------------------------------------------------------------
    def _encode_pixels(self, batch: Any) -> np.ndarray:
        torch = self._torch
        with _torch_threads(torch, self.n_threads), torch.inference_mode():
            features = self._model.encode_image(batch.to(self.device))
            features = torch.nn.functional.normalize(features.float(), dim=-1)
        return np.asarray(features.cpu().numpy(), dtype=np.float32)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """L2-normalised embeddings of ``items``, shape (n_items, dim), float32.

        ``items`` are image file paths (str or Path) or PIL images, in any mix.
        """
        items = self._check_items(items)
        n = len(items)
        out = np.empty((n, self.dim), dtype=np.float32)
        torch = self._torch
        with progress(n, f"encoding images ({self.name})") as advance:
            for start in range(0, n, self.batch_size):
                stop = min(start + self.batch_size, n)
                batch = torch.stack([self._pixels(items[i], i) for i in range(start, stop)])
                out[start:stop] = self._encode_pixels(batch)
                advance(stop - start)
        return out

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings in the image space, shape (n_texts, dim), float32.

        For zero-shot image labels: ``texts`` are class names or prompts such as
        ``"a photo of a cat"``; cosine = dot product with ``encode``'s rows.
        """
        texts = _as_list("texts", texts, "text")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValidationError(
                    "texts", f"item {i} is {text!r}", "pass non-empty strings (class names)"
                )
        if self._tokenizer is None:
            import open_clip

            try:
                self._tokenizer = open_clip.get_tokenizer(self._spec)
            except Exception as e:
                raise ValidationError(
                    "model_name",
                    f"open_clip could not build the tokenizer of {self.model_name!r} offline ({e})",
                    "encode_text needs a model whose tokenizer ships with open_clip; "
                    "encode (images) still works",
                ) from e
        torch = self._torch
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with _torch_threads(torch, self.n_threads), torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                stop = min(start + self.batch_size, len(texts))
                tokens = self._tokenizer(texts[start:stop]).to(self.device)
                features = self._model.encode_text(tokens)
                features = torch.nn.functional.normalize(features.float(), dim=-1)
                out[start:stop] = features.cpu().numpy()
        return out

    def __repr__(self) -> str:
        return (
            f"OpenClipImageEncoder({self.model_name!r}, checkpoint={str(self.checkpoint)!r}, "
            f"batch_size={self.batch_size}, device={str(self.device)!r})"
        )
