"""``--backend``, ``--address``, ``--chunk-size``: where the heavy steps of a command run."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..exceptions import ValidationError

BACKENDS = ("local", "ray")

BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="where the heavy steps run: local (threads) or ray "
        "(pip install 'truelabel[distributed]'; the same results)",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="with --backend ray: the cluster ('auto', HOST:PORT, ray://HOST:10001); "
        "default: a local one on this machine (loopback only)",
    ),
]
ChunkSizeOption = Annotated[
    int | None,
    typer.Option("--chunk-size", help="rows per chunk of the heavy steps (the same results)"),
]


def resolve_backend(backend: str, address: str | None, chunk_size: int | None) -> dict[str, Any]:
    """``{"backend": ..., "chunk_size": ...}`` for the library calls; errors name the flag.

    >>> resolve_backend("local", None, 4096)
    {'backend': LocalBackend(n_jobs=None), 'chunk_size': 4096}
    """
    from ..backend import get_backend

    if backend not in BACKENDS:
        raise ValidationError("--backend", f"got {backend!r}", "pass local or ray")
    if address is not None and backend != "ray":
        raise ValidationError("--address", "is for --backend ray", "add --backend ray")
    if chunk_size is not None and chunk_size < 1:
        raise ValidationError(
            "--chunk-size", f"got {chunk_size}", "pass a positive number of rows, e.g. 32768"
        )
    if backend == "ray":
        try:
            be = get_backend("ray", address=address)
        except ValidationError as err:
            raise ValidationError("--address", err.problem, err.fix) from err
    else:
        be = get_backend("local")
    return {"backend": be, "chunk_size": chunk_size}


def backend_setting(backend: str, address: str | None, chunk_size: int | None) -> str:
    """The settings line of a report: ``local``, ``ray (auto), chunks of 4096 rows``."""
    text = backend if backend != "ray" else f"ray ({address or 'local cluster'})"
    return text if chunk_size is None else f"{text}, chunks of {chunk_size} rows"
