"""A real local Ray cluster, started once per session, only inside a loopback-only namespace.

Ray probes cloud-metadata addresses at start-up even with usage statistics off, so these tests
never start Ray where it could reach beyond loopback: ``ray_backend`` first checks that this
process sees no network interface but ``lo`` (``tools/netns-run`` makes such a namespace;
``make test`` runs this folder through it) and otherwise skips, saying how to run them.
``.ci/run`` sets ``TRUELABEL_REQUIRE_RAY=1``, which turns every such skip into a failure.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRED = os.environ.get("TRUELABEL_REQUIRE_RAY") == "1"  # set by .ci/run: CI never skips
HOW = "run them with: tools/netns-run .venv/bin/python -m pytest -q tests/distributed (make test does)"

#: seconds the session's Ray cluster took to start (read by the timing test / the report)
STARTUP: dict[str, float] = {}


def interfaces() -> list[str]:
    """Network interfaces of this process's namespace (``/proc/net/dev`` is per namespace,
    unlike ``/sys/class/net`` without a fresh sysfs mount)."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":", 1)[0].strip() for line in lines)


def isolation_problem() -> str | None:
    """None when nothing but loopback is reachable from here, else what is wrong."""
    try:
        names = interfaces()
    except OSError as err:
        return f"cannot read /proc/net/dev ({err})"
    if names != ["lo"]:
        return f"network interfaces {names} are visible, not only 'lo'"
    # only now (no route can leave) try the metadata address Ray probes: it must fail at once
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        code = sock.connect_ex(("169.254.169.254", 80))
    finally:
        sock.close()
    if code != errno.ENETUNREACH:
        return f"a connect to 169.254.169.254:80 gave {errno.errorcode.get(code, code)}"
    return None


def absent(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"TRUELABEL_REQUIRE_RAY=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ray_backend() -> Iterator[object]:
    """A :class:`RayBackend` on a local cluster of 2 CPUs (no dashboard), one per session."""
    if importlib.util.find_spec("ray") is None:
        absent("ray is not installed: pip install 'truelabel[distributed]'")
    problem = isolation_problem()
    if problem is not None:
        absent(f"the Ray tests run only in a loopback-only network namespace ({problem}); {HOW}")
    from truelabel.distributed import RayBackend

    backend = RayBackend(num_cpus=2, init_kwargs={"object_store_memory": 200 * 2**20})
    t0 = time.perf_counter()
    assert backend.n_workers == 2  # starts the cluster
    STARTUP["seconds"] = time.perf_counter() - t0
    yield backend
    backend.close()
