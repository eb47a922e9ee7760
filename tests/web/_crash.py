"""What both crash tests share: a real ``truelabel serve`` child process to kill, and the
database counts read back after it died."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

import truelabel.store as ts

httpx = pytest.importorskip("httpx")

_SERVE = "import sys; from truelabel.cli import main; sys.argv[0] = 'truelabel'; main()"


def start_server(folder, database_url=None):
    """``truelabel serve FOLDER`` on a free loopback port: ``(process, base URL, CSRF token)``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", str(folder), "--port", str(port)]
    if database_url is not None:
        args += ["--database-url", database_url]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            return proc, base, httpx.get(f"{base}/api/session").json()["csrf_token"]
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the server did not start")


def decision_counts(folder, database_url=None):
    """(decisions, done tasks, tasks with a decision, decision ids) in the project's database."""
    with ts.opened(folder, database_url=database_url) as handle, handle.store.read() as s:
        n_decisions = s.scalar(select(func.count()).select_from(ts.Decision))
        done = s.scalar(select(func.count()).where(ts.ReviewTask.status == "done"))
        decided_tasks = s.scalar(select(func.count(func.distinct(ts.Decision.task_id))))
        ids = set(s.scalars(select(ts.Decision.id)))
    return n_decisions, done, decided_tasks, ids
