"""``RayBackend``: the chunk map of :mod:`truelabel.backend` as Ray tasks (the only Ray import).

Ray is imported when a ``RayBackend`` first needs it (``map``, ``n_workers``, ``share``), never
by ``import truelabel``.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..backend import Chunk, resolve_shared
from ..exceptions import MissingDependencyError, ValidationError
from ._settings import RaySettings, check_address, ray_settings
from ._ship import by_path

__all__ = ["RayBackend", "Shared", "ray_backend"]

S = TypeVar("S")
R = TypeVar("R")

_LOCK = threading.Lock()
_BACKENDS: dict[str | None, RayBackend] = {}


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise MissingDependencyError("ray", "distributed", "the Ray backend") from err
    return ray


class Shared:
    """``shared`` stored once in Ray's object store (:meth:`RayBackend.share`); it holds the
    original too, so a file the workers map by path (a spilled array's name) lives as long."""

    def __init__(self, ref: Any, keep: Any = None) -> None:
        self.ref = ref
        self.keep = keep

    def __repr__(self) -> str:
        return f"Shared({self.ref!r})"


def _run_chunk(fn: Callable[[Chunk, Any], Any], chunk: Chunk, rest: Any, *held: Any) -> Any:
    """The task: ``fn(chunk, shared)`` on a worker. ``rest`` is ``shared`` (or, when parts of a
    tuple were stored apart, the tuple with ``None`` at their places, ``held`` = the places,
    then their values: Ray resolves top-level object references to the values)."""
    if held:
        n = len(held) // 2
        parts = list(rest)
        for pos, value in zip(held[:n], held[n:], strict=True):
            parts[pos] = value
        rest = tuple(parts)
    shared = resolve_shared(rest)
    try:
        return fn(chunk, shared)
    except ValueError as err:
        if "read-only" in str(err):
            name = getattr(fn, "__qualname__", repr(fn))
            raise ValidationError(
                "fn",
                f"{name} wrote into its shared inputs ({err}); on Ray each task reads a "
                "read-only copy of them, so the write would be lost",
                "return the chunk's block from the per-chunk function and let the caller "
                "write the blocks into its output",
            ) from err
        raise


class RayBackend:
    """Run chunks as Ray tasks: on a local cluster started here, or on an existing one.

    Parameters
    ----------
    address : str or None, default None
        ``None`` starts a local cluster on this machine with safe defaults (see
        :func:`~truelabel.distributed._settings.ray_settings` and ``docs/distributed.md``:
        loopback only, no dashboard, no usage statistics, files in a temp folder).
        ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:10001"`` join an existing cluster.
        If Ray is already initialised in this process it is used as it is.
    num_cpus : int or None, default None
        CPUs of the local cluster (None: all). Only without ``address``.
    temp_dir : path or None, default None
        The local cluster's session folder (None: a new ``truelabel-ray-*`` folder in the
        system temp folder, removed by :meth:`close`). Keep it short: Ray puts Unix sockets
        in it (about 100 characters at most in all).
    init_kwargs : dict or None
        More ``ray.init`` keywords (e.g. ``object_store_memory``); they win over the above.

    Notes
    -----
    ``map`` stores ``shared`` in the object store once per call (:meth:`share` once for many
    calls), sends one task per chunk with at most ``2 * n_workers`` in flight, and yields
    results in chunk order. An exception in a task is raised here as the original exception;
    ``KeyboardInterrupt`` (or leaving the loop early) cancels the pending tasks. Tasks get a
    read-only copy of ``shared``: a per-chunk function returns its block, it never writes into
    ``shared``. A read-only memory-mapped file in ``shared`` (an ``.npy`` input) travels as
    its path and is mapped again on the worker (:mod:`._ship`): each task reads only the pages
    of its own rows, the object store never holds it. Warnings raised inside tasks stay on the workers. Ray starts on first use
    (about 5 s and a few hundred MB for a local cluster).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        temp_dir: str | os.PathLike[str] | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = check_address(address)
        if init_kwargs is not None and not isinstance(init_kwargs, dict):
            raise ValidationError("init_kwargs", f"got {init_kwargs!r}", "pass a dict or None")
        self.num_cpus = num_cpus
        self.temp_dir = None if temp_dir is None else Path(temp_dir)
        self.init_kwargs = dict(init_kwargs or {})
        # checked now, so a bad combination fails before any work
        ray_settings(
            self.address,
            num_cpus=num_cpus,
            temp_dir=self.temp_dir if self.address is not None else Path("."),
            init_kwargs=self.init_kwargs,
        )
        self._ray: Any = None
        self._remote: Any = None
        self._started = False
        self._made_dir: Path | None = None
        self._env_set: list[str] = []

    def __repr__(self) -> str:
        return f"RayBackend(address={self.address!r}, num_cpus={self.num_cpus!r})"

    # -- start / stop ---------------------------------------------------------------------
    def settings(self) -> RaySettings:
        """The ``ray.init`` keywords and environment this backend uses (a local cluster's temp
        folder is chosen here; nothing is created)."""
        temp = self.temp_dir
        if self.address is None and temp is None:
            temp = Path(tempfile.gettempdir()) / f"truelabel-ray-{secrets.token_hex(4)}"
        return ray_settings(
            self.address, num_cpus=self.num_cpus, temp_dir=temp, init_kwargs=self.init_kwargs
        )

    def _ensure(self) -> Any:
        if self._ray is not None:
            return self._ray
        with _LOCK:
            if self._ray is not None:
                return self._ray
            ray = sys.modules.get("ray")
            if ray is None or not ray.is_initialized():  # else: use the running Ray as it is
                settings = self.settings()
                self._apply_env(settings)  # before the import: Ray reads some of it then
                ray = _import_ray()
                self._start(ray, settings)
            self._remote = ray.remote(_run_chunk)
            self._ray = ray
        return ray

    def _apply_env(self, settings: RaySettings) -> None:
        """Set what the user has not set (their own value wins; a token of theirs, given as
        ``RAY_AUTH_TOKEN``, keeps ours out); :meth:`close` removes what was set here."""
        for key, value in settings.env.items():
            theirs = key == "RAY_AUTH_TOKEN_PATH" and "RAY_AUTH_TOKEN" in os.environ
            if key not in os.environ and not theirs:
                self._env_set.append(key)
                os.environ[key] = value

    def _start(self, ray: Any, settings: RaySettings) -> None:
        if settings.temp_dir is not None:
            created = not settings.temp_dir.exists()
            settings.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if created:
                self._made_dir = settings.temp_dir
            assert settings.token_file is not None
            if not settings.token_file.exists():
                fd = os.open(settings.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
        try:
            ray.init(**settings.init_kwargs)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as err:
            self._cleanup()
            where = self.address or "a local cluster"
            raise ValidationError(
                "address",
                f"could not start or join Ray at {where}: {type(err).__name__}: {err}",
                "start the cluster first (`ray start --head`) and pass its address, "
                "or leave address out to start a local one",
            ) from err
        self._started = True
        atexit.register(self.close)

    def close(self) -> None:
        """Shut Ray down if this backend started it, remove its temp folder, restore the
        environment it set. A later ``map`` starts Ray again."""
        with _LOCK:
            if self._started and self._ray is not None:
                self._ray.shutdown()
            self._started = False
            self._ray = None
            self._remote = None
            self._cleanup()
            for name, backend in list(_BACKENDS.items()):
                if backend is self:
                    del _BACKENDS[name]

    def _cleanup(self) -> None:
        for key in self._env_set:
            os.environ.pop(key, None)
        self._env_set = []
        if self._made_dir is not None:
            shutil.rmtree(self._made_dir, ignore_errors=True)
            self._made_dir = None

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _local(self) -> bool:
        """Whether the workers run on this machine (a cluster this backend started)."""
        return self.address is None and self._started

    # -- the Backend protocol -------------------------------------------------------------
    @property
    def n_workers(self) -> int:
        """CPUs of the cluster (starts or joins it)."""
        ray = self._ensure()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def share(self, obj: S) -> S:
        """Store ``obj`` in the object store once; pass the result as ``shared`` (or one element
        of a ``shared`` tuple) to many ``map`` calls. Tasks receive ``obj`` itself."""
        if isinstance(obj, Shared):
            return obj
        ref = self._ensure().put(by_path(obj, local=self._local))
        return Shared(ref, keep=obj)  # type: ignore[return-value]

    def map(self, fn: Callable[[Chunk, S], R], chunks: Sequence[Chunk], shared: S) -> Iterator[R]:
        chunks = list(chunks)
        if not chunks:
            return
        ray = self._ensure()
        fn_ref = ray.put(fn)
        args: tuple[Any, ...]
        parts: Any = shared
        if isinstance(parts, Shared):
            args = (parts.ref,)
        elif type(parts) is tuple and any(isinstance(s, Shared) for s in parts):
            pos = [i for i, s in enumerate(parts) if isinstance(s, Shared)]
            rest = tuple(None if isinstance(s, Shared) else s for s in parts)
            args = (ray.put(by_path(rest, local=self._local)), *pos, *(parts[i].ref for i in pos))
        else:
            args = (ray.put(by_path(parts, local=self._local)),)
        window = 2 * self.n_workers
        pending: deque[Any] = deque()
        it = iter(chunks)
        try:
            for chunk in it:
                pending.append(self._remote.remote(fn_ref, chunk, *args))
                if len(pending) >= window:
                    break
            while pending:
                result = self._get(ray, pending.popleft())
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(self._remote.remote(fn_ref, nxt, *args))
                yield result
        finally:
            for ref in pending:
                ray.cancel(ref)

    @staticmethod
    def _get(ray: Any, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise


def ray_backend(address: str | None = None) -> RayBackend:
    """The process's :class:`RayBackend` for ``address`` (made on first use, then reused):
    what ``get_backend("ray", address=...)`` and ``--backend ray`` resolve to."""
    address = check_address(address)
    if importlib.util.find_spec("ray") is None:  # say it now, not at the first heavy step
        raise MissingDependencyError("ray", "distributed", "the Ray backend")
    with _LOCK:
        backend = _BACKENDS.get(address)
        if backend is None:
            backend = _BACKENDS[address] = RayBackend(address)
    return backend
