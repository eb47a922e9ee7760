"""``load_encoder(spec)``: the text encoder named by a path (``--encoder PATH``) or the default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..exceptions import ValidationError
from ._torch import ST_MARKERS, is_sentence_transformers_folder

__all__ = ["load_encoder"]

_FIX = (
    "pass a folder with model.onnx (or onnx/model.onnx) and tokenizer.json (an ONNX "
    "export, run without torch), a sentence-transformers folder with modules.json "
    "(needs pip install 'truelabel[torch]'), or nothing for the bundled all-MiniLM-L6-v2"
)


def _listing(folder: Path, limit: int = 8) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "it is empty"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return "found " + ", ".join(names[:limit]) + more


def load_encoder(spec: Any = None, **options: Any) -> Any:
    """The text encoder for ``spec``.

    Parameters
    ----------
    spec : None, path or Encoder
        None: the bundled :class:`OnnxTextEncoder` (all-MiniLM-L6-v2 int8; the ``text``
        extra). A folder with ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``,
        or a ``.onnx`` file with ``tokenizer.json`` beside it: :class:`OnnxTextEncoder`
        (preferred when a folder holds both kinds: no torch needed). A
        sentence-transformers folder (``modules.json`` or
        ``config_sentence_transformers.json``, no ONNX):
        :class:`SentenceTransformerEncoder` (the ``torch`` extra). An object with an
        ``encode`` method is returned unchanged.
    **options
        Passed to the encoder's constructor (``max_length``, ``batch_size``, ``threads``).

    Returns
    -------
    Encoder

    Raises
    ------
    ValidationError
        The path does not exist or is neither kind of model folder (the message lists
        what the folder holds).

    Examples
    --------
    >>> load_encoder("no/such/folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    truelabel.exceptions.ValidationError: encoder: 'no/such/folder' does not exist; pass a folder ...
    """
    try:
        return _load(spec, options)
    except ValidationError as exc:
        if exc.argument != "model":
            raise
        # the constructors call it `model`; the user passed it as `encoder` (--encoder)
        raise ValidationError("encoder", exc.problem, exc.fix) from exc


def _load(spec: Any, options: dict[str, Any]) -> Any:
    from ._onnx import OnnxTextEncoder

    if spec is None:
        return OnnxTextEncoder(**options)
    if callable(getattr(spec, "encode", None)) and not isinstance(spec, str | os.PathLike):
        return spec
    if not isinstance(spec, str | os.PathLike):
        raise ValidationError("encoder", f"got {type(spec).__name__}", _FIX)
    path = Path(spec)
    if not path.exists():
        raise ValidationError("encoder", f"{str(spec)!r} does not exist", _FIX)
    if path.is_file():
        if path.suffix == ".onnx":
            if not (path.parent / "tokenizer.json").is_file():
                raise ValidationError(
                    "encoder",
                    f"no tokenizer.json beside {str(path)!r}",
                    "put the model's tokenizer.json in the same folder",
                )
            return OnnxTextEncoder(path, **options)
        raise ValidationError("encoder", f"{str(path)!r} is a file, not a model folder", _FIX)
    onnx = next(
        (p for p in (path / "model.onnx", path / "onnx" / "model.onnx") if p.is_file()), None
    )
    has_tokenizer = (path / "tokenizer.json").is_file()
    if onnx is not None and has_tokenizer:
        return OnnxTextEncoder(path, **options)
    if is_sentence_transformers_folder(path):
        from ._torch import SentenceTransformerEncoder

        return SentenceTransformerEncoder(path, **options)
    if onnx is not None:
        raise ValidationError(
            "encoder",
            f"{str(path)!r} has {onnx.relative_to(path)} but no tokenizer.json",
            "copy the model's tokenizer.json (from the model it was exported from) into it",
        )
    raise ValidationError(
        "encoder",
        f"{str(path)!r} holds neither an ONNX model with tokenizer.json nor a "
        f"sentence-transformers model ({' / '.join(ST_MARKERS)}): {_listing(path)}",
        _FIX,
    )
