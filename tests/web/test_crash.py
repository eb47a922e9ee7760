"""Crash test: the server is killed (SIGKILL) in the middle of a batch accept; after a restart
the database is consistent and every acknowledged decision is there."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

import truelabel.store as ts

httpx = pytest.importorskip("httpx")

N = 10_000  # items, one open task each: the bulk batch holds the write lock for ~0.1-2 s
_SERVE = "import sys; from truelabel.cli import main; sys.argv[0] = 'truelabel'; main()"


def _start(folder):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", str(folder), "--port", str(port)],
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


def _wait_for_write_lock(folder, deadline_s=60.0):
    """Return once another connection holds the project database's write lock (the batch
    accept's transaction runs under BEGIN IMMEDIATE, and it is the only writer by then): a
    ``BEGIN IMMEDIATE`` probe with no busy timeout fails exactly while it is held. The kill
    then lands inside the transaction however fast or slow the machine is."""
    probe = sqlite3.connect(folder / "truelabel.db", timeout=0, isolation_level=None)
    try:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # "database is locked": the batch is writing
                return
            probe.execute("ROLLBACK")
            time.sleep(0.001)
        pytest.fail("the batch accept never took the write lock")
    finally:
        probe.close()


def _counts(folder):
    with ts.opened(folder) as handle, handle.store.read() as s:
        n_decisions = s.scalar(select(func.count()).select_from(ts.Decision))
        done = s.scalar(select(func.count()).where(ts.ReviewTask.status == "done"))
        decided_tasks = s.scalar(select(func.count(func.distinct(ts.Decision.task_id))))
        ids = set(s.scalars(select(ts.Decision.id)))
    return n_decisions, done, decided_tasks, ids


def test_kill_during_batch_accept_keeps_the_database_consistent(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    from bench_web_load import build

    folder = tmp_path / "proj"
    build(folder, N, None)
    proc, base, token = _start(folder)
    acked = []
    try:
        with httpx.Client(base_url=base, headers={"X-CSRF-Token": token}) as client:
            for task in client.get("/api/tasks/next", params={"limit": 5}).json():
                r = client.post(
                    "/api/decisions", json={"task_id": task["task_id"], "action": "keep"}
                )
                assert r.status_code == 200
                acked.append(r.json()["id"])
            answer: list[object] = []

            def batch():
                try:
                    answer.append(client.post("/api/tasks/batch-accept", json={}, timeout=120))
                except httpx.TransportError as err:
                    answer.append(err)

            worker = threading.Thread(target=batch)
            worker.start()
            _wait_for_write_lock(folder)  # the batch's transaction is under way
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            worker.join(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert isinstance(answer[0], httpx.TransportError), "the batch finished before the kill"
    n_decisions, done, decided_tasks, ids = _counts(folder)
    # the batch was one transaction: none of it is there; the acknowledged decisions are
    assert n_decisions == 5 and set(acked) == ids
    assert done == decided_tasks == 5
    proc, base, token = _start(folder)  # restart: the app serves the same state
    try:
        summary = httpx.get(f"{base}/api/project").json()
        assert summary["decisions"] == 5 and summary["queue"]["open"] == N - 5
        r = httpx.post(
            f"{base}/api/tasks/batch-accept", json={}, headers={"X-CSRF-Token": token}, timeout=300
        )
        assert r.status_code == 200 and r.json()["accepted"] == N - 5
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert _counts(folder)[:3] == (N, N, N)
