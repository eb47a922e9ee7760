"""Scratch arrays for intermediates that grow with the number of items.

A heavy pass whose intermediate must exist whole (the kNN graph, the inverted file's
projection, the neighbour label distribution) asks :func:`scratch` for it instead of
``np.empty``. Below the spill threshold (default :data:`DEFAULT_SPILL_BYTES`, 32 MiB) that is
an ordinary array; above it, a memory map of a file in a private temp folder, so the array
lives in the page cache (file-backed pages the kernel writes back and drops under pressure)
and not in the process's anonymous memory: what a pass holds in anonymous memory stays
bounded by its chunks and its outputs, whatever the number of items.

The file never has a name (Linux: ``O_TMPFILE`` in ``$TMPDIR``; elsewhere a
``tempfile.TemporaryFile``, unlinked at once): nobody else can open it, and it disappears with
the last reference to the array, also when the process is killed. Only when a Ray cluster this
process started on this machine reads it (``truelabel.distributed``) does :func:`spill_file`
give it a name in :func:`spill_folder` (``truelabel-spill-*`` under ``$TMPDIR``, mode 0700), so
the workers map the same pages instead of receiving a copy; the name goes when the array is
freed, and the folder when the process exits (normally or through Ctrl-C; a process killed
outright leaves the folder, as Ray leaves its session folder). Scratch files that are named
from the start (the copy of a Parquet input) live in that folder too.
Values are the same in either case: only where the bytes live changes.

The threshold is read from ``TRUELABEL_SPILL_BYTES`` (bytes; ``0`` spills every array) when
set, else from :func:`spill_at` (a context manager, for tests and callers that know better).

Examples
--------
>>> import numpy as np
>>> from truelabel._spill import scratch, spill_at
>>> with spill_at(0):
...     a = scratch((3, 2), np.float32)
>>> a[:] = 1.5
>>> is_spilled(a), a.sum().item()
(True, 9.0)
>>> is_spilled(scratch((3, 2), np.float32))
False
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import mmap
import os
import shutil
import sys
import tempfile
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .exceptions import ValidationError

__all__ = [
    "DEFAULT_SPILL_BYTES",
    "SPILL_ENV",
    "bucket_positions",
    "is_spilled",
    "release_free_memory",
    "scratch",
    "spill_at",
    "spill_bytes",
    "spill_file",
    "spill_folder",
    "spills",
]

#: arrays of at least this many bytes are memory-mapped files (32 MiB: a 32k-row chunk of
#: 256 float32 columns)
DEFAULT_SPILL_BYTES = 32 << 20
#: environment variable overriding the threshold (bytes)
SPILL_ENV = "TRUELABEL_SPILL_BYTES"

_LOCK = threading.Lock()
_THRESHOLD = [DEFAULT_SPILL_BYTES]
_DIR: list[str] = []  # this process's spill folder, if made
_DIR_PID: list[int] = []  # the process that made it (a forked child makes its own)


def spill_bytes() -> int:
    """The spill threshold in bytes: ``$TRUELABEL_SPILL_BYTES`` if set, else the current
    :func:`spill_at` value (default :data:`DEFAULT_SPILL_BYTES`)."""
    env = os.environ.get(SPILL_ENV)
    if env is None or env == "":
        return _THRESHOLD[0]
    try:
        value = int(env)
    except ValueError:
        value = -1
    if value < 0:
        raise ValidationError(
            SPILL_ENV, f"must be a number of bytes >= 0, got {env!r}", "e.g. 33554432, or unset it"
        )
    return value


def spills(nbytes: int) -> bool:
    """Whether :func:`scratch` puts an array of ``nbytes`` bytes in a spill file."""
    return nbytes != 0 and nbytes >= spill_bytes()


@contextmanager
def spill_at(nbytes: int) -> Iterator[None]:
    """Spill arrays of at least ``nbytes`` bytes inside the block (0: every array; a huge
    number: none). ``$TRUELABEL_SPILL_BYTES``, when set, still wins."""
    if not isinstance(nbytes, int | np.integer) or isinstance(nbytes, bool) or nbytes < 0:
        raise ValidationError("nbytes", f"got {nbytes!r}", "pass a number of bytes >= 0")
    with _LOCK:
        before = _THRESHOLD[0]
        _THRESHOLD[0] = int(nbytes)
    try:
        yield
    finally:
        with _LOCK:
            _THRESHOLD[0] = before


def spill_folder() -> str:
    """The process's private spill folder (made on first use, mode 0700, removed at exit)."""
    with _LOCK:
        if _DIR and _DIR_PID == [os.getpid()] and os.path.isdir(_DIR[0]):
            return _DIR[0]
        path = tempfile.mkdtemp(prefix="truelabel-spill-")  # mode 0700
        if not _DIR_PID:
            atexit.register(_remove_folder)
        _DIR[:], _DIR_PID[:] = [path], [os.getpid()]
        return path


def _remove_folder() -> None:
    """At exit: remove this process's folder (never one a forked parent still uses)."""
    with _LOCK:
        if _DIR_PID == [os.getpid()]:
            for path in _DIR:
                shutil.rmtree(path, ignore_errors=True)


def scratch(shape: int | tuple[int, ...], dtype: Any, *, fill: Any = None) -> np.ndarray:
    """An uninitialised array (or filled with ``fill``): in memory below the spill threshold,
    else backed by an unlinked file in ``$TMPDIR`` (zero-filled on creation).

    The result is a plain ``ndarray`` view either way (it keeps the mapping alive); pickling
    it copies its values.
    """
    dims = (int(shape),) if isinstance(shape, int | np.integer) else tuple(int(s) for s in shape)
    dt = np.dtype(dtype)
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    if not spills(nbytes):
        return np.empty(dims, dtype=dt) if fill is None else np.full(dims, fill, dtype=dt)
    # unlinked at once (Linux: O_TMPFILE, never named): nothing is left behind, even when the
    # process is killed; only named scratch files (a Parquet input's copy) use spill_folder()
    fd = _unnamed_fd()
    if fd is not None:  # kept open: spill_file() can give it a name for a local Ray cluster
        try:
            os.ftruncate(fd, nbytes)
            buf = mmap.mmap(fd, nbytes)
        except BaseException:
            os.close(fd)
            raise
        record = _SpillFile(fd, np.frombuffer(buf, np.uint8).ctypes.data)
        with _LOCK:
            _FILES[buf] = record
        weakref.finalize(buf, _forget, fd, record.names, os.getpid())
    else:
        with tempfile.TemporaryFile(prefix="truelabel-", suffix=".spill") as f:
            f.truncate(nbytes)
            buf = mmap.mmap(f.fileno(), nbytes)  # the mapping outlives the unlinked file
    out = np.frombuffer(buf, dtype=dt).reshape(dims)
    if fill is not None and fill != 0:
        out[...] = fill
    return out


def bucket_positions(
    n: int,
    bucket_of: Callable[[slice], np.ndarray],
    n_buckets: int,
    *,
    block: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``0 .. n-1`` grouped by bucket, input order within a bucket, without an n-row
    sort: a counting sort into a :func:`scratch` array (a spill file when large).

    ``bucket_of(rows)`` gives the bucket (``0 <= b < n_buckets``) of each row of a slice; it is
    called twice per block of ``block`` rows: once to count the buckets' sizes, once to
    scatter the rows into their bucket's part of the result. Returns ``(positions, starts)``:
    bucket ``b``'s rows are ``positions[starts[b]:starts[b + 1]]``, int64. The positions are
    ``np.argsort(buckets, kind="stable")``'s; besides them and ``starts`` (``n_buckets + 1``
    values) memory is O(block + n_buckets).

    Examples
    --------
    >>> b = np.array([2, 0, 2, 1, 0])
    >>> pos, starts = bucket_positions(5, lambda sl: b[sl], 3, block=2)
    >>> pos.tolist(), starts.tolist()
    ([1, 4, 3, 0, 2], [0, 2, 3, 5])
    """
    counts = np.zeros(n_buckets, dtype=np.int64)
    for start in range(0, n, block):
        counts += np.bincount(bucket_of(slice(start, min(start + block, n))), minlength=n_buckets)
    starts = np.zeros(n_buckets + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    positions = scratch(n, np.int64)
    cursor = starts[:-1].copy()  # where each bucket's next row goes
    for start in range(0, n, block):
        b = bucket_of(slice(start, min(start + block, n)))
        by = np.argsort(b, kind="stable")
        bs = b[by]
        rank = np.arange(bs.size) - np.searchsorted(bs, bs, side="left")  # within its bucket
        positions[cursor[bs] + rank] = start + by
        cursor += np.bincount(b, minlength=n_buckets)
    return positions, starts


def is_spilled(arr: np.ndarray) -> bool:
    """Whether ``arr`` (or the array it views) lives in a spill file."""
    base: Any = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``; elsewhere a no-op).

    Arrays of a few MiB made and freed on worker threads stay in glibc's per-thread heaps,
    out of reach of the next stage's allocations: at 1e6 rows the inverted file's build leaves
    about 90 MiB there, which would otherwise sit under the search's peak. Values untouched.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
    trim(0)


# -- a name for a spill file, while a local Ray cluster maps it (distributed/_ship.py) ------


class _SpillFile:
    """A spill file's open descriptor (of an ``O_TMPFILE`` file, linkable), the address its
    mapping starts at in this process, and its name once it has one."""

    def __init__(self, fd: int, address: int) -> None:
        self.fd = fd
        self.address = address
        self.names: list[str] = []


#: the spill files made by :func:`scratch` that can be given a name, by their mapping
_FILES: weakref.WeakKeyDictionary[mmap.mmap, _SpillFile] = weakref.WeakKeyDictionary()


def _unnamed_fd() -> int | None:
    """An unnamed, linkable file in ``$TMPDIR`` (``O_TMPFILE`` without ``O_EXCL``, mode
    0600), or None where there is no such thing (then :func:`scratch` uses an unlinked
    ``TemporaryFile``, which can never be named)."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(tempfile.gettempdir(), os.O_RDWR | flag | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:  # a file system without O_TMPFILE
        return None


def _forget(fd: int, names: list[str], pid: int) -> None:
    """When the mapping is freed: remove the file's name, if it got one (never from a forked
    child: the name is its parent's), and close it."""
    for name in names if os.getpid() == pid else ():
        try:
            os.unlink(name)
        except OSError:  # the spill folder already removed at exit
            pass
    os.close(fd)


def spill_file(arr: np.ndarray) -> tuple[str, int] | None:
    """``(path, offset)`` of the spill file ``arr`` views (``offset``: bytes to its first
    element), or None when ``arr`` is not in a spill file of :func:`scratch` or the file
    cannot be named.

    The hook by which ``truelabel.distributed`` sends a spilled intermediate to Ray workers
    on this machine by path: the first call gives the unnamed file a name in
    :func:`spill_folder` (``linkat`` of its descriptor: the same inode, so the workers read
    the very pages this process writes); the name is removed when the array is freed (or
    with the folder at exit). Only a process killed outright leaves it behind, in
    ``$TMPDIR/truelabel-spill-*``.
    """
    base: Any = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    if not isinstance(base, mmap.mmap):
        return None
    with _LOCK:
        record = _FILES.get(base)
    if record is None:
        return None
    offset = int(arr.ctypes.data) - record.address
    if offset < 0 or offset + arr.nbytes > len(base):
        return None
    folder = spill_folder()
    with _LOCK:
        if not record.names:
            base_name = f"truelabel-{uuid.uuid4().hex}.spill"
            try:
                # linkat(fd of /proc/self/fd/N, AT_SYMLINK_FOLLOW) (a dir fd makes Python use
                # linkat; plain link() would try to link the /proc symlink itself)
                folder_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                try:
                    os.link(f"/proc/self/fd/{record.fd}", base_name, dst_dir_fd=folder_fd)
                finally:
                    os.close(folder_fd)
            except OSError:  # no /proc, or a file that cannot be linked: by value then
                return None
            record.names.append(os.path.join(folder, base_name))
        return record.names[0], offset
