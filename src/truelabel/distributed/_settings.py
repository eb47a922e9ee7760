"""How truelabel starts or joins Ray: the environment and ``ray.init`` keywords, without Ray.

Kept apart from :mod:`._ray` so the safe defaults are plain data, checked without starting
(or even installing) Ray.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import ValidationError

__all__ = ["LOCAL_ENV", "RaySettings", "check_address", "ray_settings"]

#: the environment a local cluster starts with (``setdefault``: a value the user set wins).
#: Usage statistics off; ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray take 127.0.0.1 as
#: the node address, so its listeners bind loopback only; token authentication on, with the
#: token in the cluster's temp folder instead of ``~/.ray/auth_token``.
LOCAL_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",
}

#: ``host:port`` or ``ray://host:port`` (a Ray Client server), or ``auto`` (the cluster this
#: machine belongs to, from ``RAY_ADDRESS`` or ``ray start``)
_ADDRESS = re.compile(r"^(auto|(ray://)?\[?[A-Za-z0-9_.:-]+?\]?:\d{1,5})$")


@dataclass(frozen=True)
class RaySettings:
    """What :class:`~truelabel.distributed.RayBackend` sets before ``ray.init(**init_kwargs)``.

    ``env`` is applied with ``os.environ.setdefault`` before Ray is imported (Ray reads some of
    it at import); ``temp_dir`` is created first (mode 0700) when the cluster is local, and
    ``token_file`` is written there.
    """

    init_kwargs: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    temp_dir: Path | None = None
    token_file: Path | None = None


def check_address(address: object) -> str | None:
    """``None`` (start a local cluster) or a Ray address as given; anything else refused.

    >>> check_address("auto"), check_address("10.0.0.5:6379"), check_address("ray://head:10001")
    ('auto', '10.0.0.5:6379', 'ray://head:10001')
    """
    if address is None:
        return None
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise ValidationError(
            "address",
            f"is not a Ray address: {address!r}",
            "pass 'auto' (the cluster of `ray start`), 'HOST:PORT' of the head node, "
            "'ray://HOST:10001' (Ray Client), or nothing for a local cluster on this machine",
        )
    port = int(address.strip().rsplit(":", 1)[1]) if address.strip() != "auto" else 1
    if not 0 < port < 65536:
        raise ValidationError("address", f"port out of range in {address!r}", "use 1-65535")
    return address.strip()


def ray_settings(
    address: str | None,
    *,
    num_cpus: int | None,
    temp_dir: Path | None,
    init_kwargs: dict[str, Any] | None = None,
) -> RaySettings:
    """The ``ray.init`` keywords and environment for ``address`` (``None``: a local cluster).

    A local cluster: no dashboard, node address 127.0.0.1 (every listener on loopback), its
    session files, logs, sockets and token under ``temp_dir``, usage statistics off, worker
    output not echoed to this terminal (errors still are: they come back as exceptions).
    Joining a cluster: only usage statistics off and the quiet logging; the cluster's own
    settings (its address, dashboard, temp folder, token) are its operator's.
    ``init_kwargs`` are added last and win.

    >>> s = ray_settings(None, num_cpus=2, temp_dir=Path("/tmp/tl-ray"))
    >>> s.init_kwargs["include_dashboard"], s.init_kwargs["_node_ip_address"], s.env["RAY_USAGE_STATS_ENABLED"]
    (False, '127.0.0.1', '0')
    >>> sorted(ray_settings("auto", num_cpus=None, temp_dir=None).init_kwargs)
    ['address', 'log_to_driver', 'logging_level']
    """
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if num_cpus is not None and (
        not isinstance(num_cpus, int) or isinstance(num_cpus, bool) or num_cpus < 1
    ):
        raise ValidationError("num_cpus", f"got {num_cpus!r}", "pass a positive int or None")
    if address is not None:
        if num_cpus is not None or temp_dir is not None:
            raise ValidationError(
                "num_cpus" if num_cpus is not None else "temp_dir",
                f"is for a local cluster, got it with address={address!r}",
                "set CPUs and the temp folder when starting the cluster (`ray start`), "
                "or leave address out to start a local one",
            )
        kwargs = {"address": address, **quiet, **(init_kwargs or {})}
        return RaySettings(init_kwargs=kwargs, env={"RAY_USAGE_STATS_ENABLED": "0"})
    if temp_dir is None:
        raise ValidationError("temp_dir", "is needed for a local cluster", "pass a folder")
    token = temp_dir / "auth_token"
    kwargs = {
        "include_dashboard": False,
        "_node_ip_address": "127.0.0.1",
        "_temp_dir": str(temp_dir),
        **quiet,
    }
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    kwargs.update(init_kwargs or {})
    env = {**LOCAL_ENV, "RAY_AUTH_TOKEN_PATH": str(token)}
    return RaySettings(init_kwargs=kwargs, env=env, temp_dir=temp_dir, token_file=token)
