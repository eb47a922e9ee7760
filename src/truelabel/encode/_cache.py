"""An on-disk embedding cache: a second run over the same texts encodes nothing.

Vectors are keyed by the encoder's ``identity`` (what its vectors depend on: model file,
tokenizer, truncation) and a content hash of each text (blake2b-128 of its UTF-8 bytes).

Layout, one folder per encoder identity::

    <cache_dir>/<blake2b(identity)[:16]>/
        IDENTITY                 the full identity string (checked on open)
        <shard>.f32.npy          float32 (m, dim) vectors, memory-mapped on read
        <shard>.keys.npy         |S16 (m,) text hashes, one per vector row

An encoder with token states (``first_token_vectors``) gets a second folder for those, as
the identity ``<identity>|first-token``; ``encode_with_first_token`` fills both from one pass.

Shards are append-only and never rewritten. Each file is written to a temporary name and
moved into place with :func:`os.replace`; the keys file is written last and is what makes a
shard visible, so an interrupted run leaves at most an ignored temporary file or an
orphan vector file, never a half-written shard. The set of key files is the index. Shard
names are random, so two processes appending to the same folder never write the same file
(no lock is needed; if both encode the same text, both copies are identical and either
is served).
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write
from ..exceptions import DataFormatError, ValidationError
from ._base import check_text_items

__all__ = ["CachedEncoder", "default_cache_dir", "text_keys"]

#: texts encoded (and written as one shard) per block: bounds the encoder's input and
#: the vectors held before they reach the disk
BLOCK = 1 << 14
_KEY = np.dtype("S16")


def default_cache_dir() -> Path:
    """``$TRUELABEL_CACHE_DIR``, else the platform's user cache folder + ``truelabel``.

    Linux: ``$XDG_CACHE_HOME/truelabel`` (default ``~/.cache/truelabel``); macOS:
    ``~/Library/Caches/truelabel``; Windows: ``%LOCALAPPDATA%/truelabel/Cache``.
    """
    env = os.environ.get("TRUELABEL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "truelabel" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "truelabel"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else home / ".cache") / "truelabel"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """blake2b-128 of each text's UTF-8 bytes, as an ``|S16`` array of shape (n,)."""
    return np.array(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts],
        dtype=_KEY,
    )


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``path`` (.npy) through a temporary file and :func:`os.replace`."""
    with atomic_write(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


class _FirstTokenView:
    """An encoder's first-token vectors as an encoder of their own, so they get a cache
    folder of their own (the few-shot classifier's second view; see ``model/_token_view``)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.name = f"{encoder.name} (first token)"
        self.identity = f"{encoder.identity}|first-token"
        self.dim = getattr(encoder, "dim", None)
        self.batch_size: int | None = None

    def encode(self, items: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.first_token_vectors(list(items), batch_size=self.batch_size))


class CachedEncoder:
    """Wrap an encoder with an on-disk, memory-mapped embedding cache.

    Only texts not yet in the cache are encoded (each distinct text once per call, in
    blocks of ``block_size``); the rest are read back from memory-mapped shards. The
    cache is keyed by ``encoder.identity`` and each text's content hash, so changing the
    model, tokenizer or truncation starts a fresh cache.

    Parameters
    ----------
    encoder : Encoder
        Any encoder with an ``identity`` string (e.g. :class:`OnnxTextEncoder`).
    cache_dir : path or None, default None
        Root folder of the cache (None: :func:`default_cache_dir`).
    block_size : int, default 16384
        Texts encoded and written per shard; bounds memory whatever the number of texts.

    Attributes
    ----------
    stats : dict
        Counts of the last :meth:`encode` call: ``items``, ``unique``, ``hits``, ``encoded``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> class Lengths:
    ...     name, identity = "lengths", "lengths-v1"
    ...     def encode(self, items):
    ...         return np.array([[len(t), 1.0] for t in items], dtype=np.float32)
    >>> enc = CachedEncoder(Lengths(), cache_dir=tempfile.mkdtemp())
    >>> enc.encode(["ab", "abc", "ab"]).tolist()
    [[2.0, 1.0], [3.0, 1.0], [2.0, 1.0]]
    >>> enc.stats["encoded"], enc.encode(["abc"]).tolist(), enc.stats["hits"]
    (2, [[3.0, 1.0]], 1)
    """

    def __init__(
        self,
        encoder: Any,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        block_size: int = BLOCK,
    ) -> None:
        identity = getattr(encoder, "identity", None)
        if not isinstance(identity, str) or not identity:
            raise ValidationError(
                "encoder",
                f"{type(encoder).__name__} has no identity string to key the cache",
                "give it an `identity` attribute that changes whenever its vectors would "
                "(model file, tokenizer, settings), or use it without a cache",
            )
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
            raise ValidationError("block_size", f"got {block_size!r}", "pass an integer >= 1")
        self.encoder = encoder
        self.name: str = encoder.name
        self.identity: str = identity
        self.block_size = block_size
        root = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
        digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=8).hexdigest()
        self.path = root / digest
        self.stats: dict[str, int] = {"items": 0, "unique": 0, "hits": 0, "encoded": 0}
        self._shards: dict[str, np.ndarray] = {}  # shard name -> its keys (the index)
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None = None
        self._dim: int | None = getattr(encoder, "dim", None)
        self._open()

    @property
    def dim(self) -> int | None:
        """Vector width (None until known from the encoder or the cache)."""
        return self._dim

    def __getattr__(self, name: str) -> Any:
        # what the cache does not define is the wrapped encoder's, so a cached encoder
        # offers the same abilities; `first_token_vectors` (the few-shot view) is offered
        # only when the wrapped encoder has it, and then it is cached too
        if name in ("encoder", "_first_cache"):
            raise AttributeError(name)
        if name == "encode_with_first_token":
            # offered when the wrapped encoder has token states (its own one-pass method
            # is used when it has one, else its two calls)
            if not callable(getattr(self.encoder, "first_token_vectors", None)):
                raise AttributeError(name)
            return self._encode_with_first_token
        found = getattr(self.encoder, name)
        if name == "first_token_vectors" and callable(found):
            return self._first_token_vectors
        return found

    def _first_view(self, batch_size: int | None) -> CachedEncoder:
        """The cache of the first-token vectors: a folder of its own, identity
        ``<identity>|first-token`` (the layout from before the one-pass method)."""
        cache = self.__dict__.get("_first_cache")
        if cache is None:
            cache = CachedEncoder(
                _FirstTokenView(self.encoder),
                cache_dir=self.path.parent,
                block_size=self.block_size,
            )
            self.__dict__["_first_cache"] = cache
        cache.encoder.batch_size = batch_size
        return cache

    def _first_token_vectors(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> np.ndarray:
        """The wrapped encoder's ``first_token_vectors``, cached like the pooled vectors
        (under their own identity, ``<identity>|first-token``), (n, dim) float64."""
        return self._first_view(batch_size).encode(items).astype(np.float64)

    def _encode_with_first_token(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pooled (float32) and first-token (float64) vectors of ``items``, both cached.

        A distinct text missing from either cache goes through the wrapped encoder's
        ``encode_with_first_token`` (one forward pass for both views), and each view's
        cache gets the rows it lacked; everything is then read back from the caches, so
        the result is what :meth:`encode` and ``first_token_vectors`` return.
        ``stats["encoded"]`` counts the distinct texts run through the model.
        """
        texts = check_text_items(items)
        first = self._first_view(batch_size)
        keys = text_keys(texts)
        uniq, at, inverse = np.unique(keys, return_index=True, return_inverse=True)
        self._refresh()
        first._refresh()
        have_p, have_t = self._lookup(uniq)[0], first._lookup(uniq)[0]
        both = have_p & have_t
        missing = np.flatnonzero(~both)
        one_pass = getattr(self.encoder, "encode_with_first_token", None)
        for start in range(0, len(missing), self.block_size):
            block = missing[start : start + self.block_size]
            batch = [texts[i] for i in at[block]]
            if callable(one_pass):
                P, T = one_pass(batch, batch_size=batch_size)
            else:  # an encoder with the two calls only
                P = self.encoder.encode(batch)
                T = self.encoder.first_token_vectors(batch, batch_size=batch_size)
            for cache, vecs, have in ((self, P, have_p), (first, T, have_t)):
                vecs = np.ascontiguousarray(vecs, dtype=np.float32)
                if vecs.ndim != 2 or len(vecs) != len(block):
                    raise ValidationError(
                        "encoder",
                        f"{self.name} returned shape {vecs.shape} for {len(block)} texts",
                        "an encoder must return one row per text",
                    )
                lack = ~have[block]
                if lack.any():
                    cache._dim = int(vecs.shape[1]) if cache._dim is None else cache._dim
                    cache._write_shard(uniq[block][lack], vecs[lack])
        pooled = self.encode(texts)
        tokens = first.encode(texts).astype(np.float64)
        self.stats = {
            "items": len(texts),
            "unique": len(uniq),
            "hits": int(both[inverse].sum()),
            "encoded": len(missing),
        }
        return pooled, tokens

    # -- the index ------------------------------------------------------------------------
    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "IDENTITY"
        if marker.is_file():
            found = marker.read_text(encoding="utf-8")
            if found != self.identity:
                raise DataFormatError(
                    "cache_dir",
                    f"{str(self.path)!r} holds vectors of encoder {found!r}, not {self.identity!r}",
                    "delete that folder or pass another cache_dir",
                )
        else:
            with atomic_write(marker) as f:
                f.write(self.identity)

    def _corrupt(self, shard: str, problem: str) -> DataFormatError:
        return DataFormatError(
            "cache_dir",
            f"cache shard {str(self.path / shard)!r} is corrupt ({problem})",
            f"delete {str(self.path)!r} (or only that shard's .keys.npy and .f32.npy) "
            "and run again to rebuild it",
        )

    def _vectors(self, shard: str) -> np.ndarray:
        """The memory-mapped vectors of a shard (checked against its keys)."""
        try:
            vec = np.load(self.path / f"{shard}.f32.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise self._corrupt(shard, f"vectors unreadable: {exc}") from exc
        keys = self._shards[shard]
        if vec.dtype != np.float32 or vec.ndim != 2 or len(vec) != len(keys):
            raise self._corrupt(
                shard,
                f"vectors {vec.dtype} {vec.shape} for {len(keys)} keys",
            )
        if self._dim is not None and vec.shape[1] != self._dim:
            raise self._corrupt(shard, f"vectors of width {vec.shape[1]}, expected {self._dim}")
        return vec

    def _refresh(self) -> None:
        """Load the keys of shards committed since the last look (by any process)."""
        new = sorted(
            p.name[: -len(".keys.npy")]
            for p in self.path.glob("*.keys.npy")
            if p.name[: -len(".keys.npy")] not in self._shards
        )
        for shard in new:
            try:
                keys = np.load(self.path / f"{shard}.keys.npy", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise self._corrupt(shard, f"keys unreadable: {exc}") from exc
            if keys.dtype != _KEY or keys.ndim != 1:
                raise self._corrupt(shard, f"keys of dtype {keys.dtype}, shape {keys.shape}")
            self._shards[shard] = keys
            width = int(self._vectors(shard).shape[1])  # reads the header only
            self._dim = width if self._dim is None else self._dim
        if new or self._index is None:
            names = list(self._shards)
            all_keys = (
                np.concatenate([self._shards[s] for s in names]) if names else np.empty(0, _KEY)
            )
            shard_of = np.repeat(
                np.arange(len(names), dtype=np.int32), [len(self._shards[s]) for s in names]
            )
            row_of = np.concatenate(
                [np.arange(len(self._shards[s]), dtype=np.int64) for s in names]
                or [np.empty(0, np.int64)]
            )
            order = np.argsort(all_keys, kind="stable")
            self._index = (all_keys[order], shard_of[order], row_of[order], names)

    def _lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hit mask, shard number, row) of each key among the committed shards."""
        assert self._index is not None
        sorted_keys, shard_of, row_of, _ = self._index
        if len(sorted_keys) == 0:
            zeros = np.zeros(len(keys), dtype=np.int64)
            return np.zeros(len(keys), dtype=bool), zeros, zeros
        pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        return sorted_keys[pos] == keys, shard_of[pos], row_of[pos]

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        shard = uuid.uuid4().hex
        _save_atomic(self.path / f"{shard}.f32.npy", vectors)
        _save_atomic(self.path / f"{shard}.keys.npy", keys)  # last: commits the shard

    # -- encoding -------------------------------------------------------------------------
    def encode(self, items: Sequence[str]) -> np.ndarray:
        """Vectors of ``items`` (n, dim) float32: cached ones read back, the rest encoded."""
        texts = check_text_items(items)
        keys = text_keys(texts)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        self._refresh()
        hit, shard_no, row = self._lookup(uniq)
        missing = np.flatnonzero(~hit)
        self.stats = {
            "items": len(texts),
            "unique": len(uniq),
            "hits": int(hit[inverse].sum()),
            "encoded": len(missing),
        }
        out: np.ndarray | None = None
        slot = np.empty(len(uniq), dtype=np.int64)  # a unique text's row in its block
        for start in range(0, len(missing), self.block_size):
            block = missing[start : start + self.block_size]
            vecs = np.ascontiguousarray(
                self.encoder.encode([texts[i] for i in first[block]]), dtype=np.float32
            )
            if vecs.ndim != 2 or len(vecs) != len(block):
                raise ValidationError(
                    "encoder",
                    f"{self.name} returned shape {vecs.shape} for {len(block)} texts",
                    "an encoder must return one row per text",
                )
            if self._dim is None:
                self._dim = int(vecs.shape[1])
            self._write_shard(uniq[block], vecs)
            if out is None:
                out = np.empty((len(texts), self._dim), dtype=np.float32)
            in_block = np.zeros(len(uniq), dtype=bool)
            in_block[block] = True
            rows = np.flatnonzero(in_block[inverse])
            slot[block] = np.arange(len(block))
            out[rows] = vecs[slot[inverse[rows]]]
        if self._dim is None:  # no items, nothing cached, width unknown: ask the encoder
            return np.asarray(self.encoder.encode([]), dtype=np.float32)
        if out is None:
            out = np.empty((len(texts), self._dim), dtype=np.float32)
        # cached rows, shard by shard, each shard read in row order through its memmap
        rows = np.flatnonzero(hit[inverse])
        shard_of, row_of = shard_no[inverse[rows]], row[inverse[rows]]
        order = np.lexsort((row_of, shard_of))
        rows, shard_of, row_of = rows[order], shard_of[order], row_of[order]
        bounds = np.flatnonzero(np.diff(shard_of)) + 1
        names = self._index[3] if self._index is not None else []
        for grp in np.split(np.arange(len(rows)), bounds):
            if len(grp):
                out[rows[grp]] = self._vectors(names[shard_of[grp[0]]])[row_of[grp]]
        return out
