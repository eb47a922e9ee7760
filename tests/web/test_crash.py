"""Crash test: the server is killed (SIGKILL) in the middle of a batch accept; after a restart
the database is consistent and every acknowledged decision is there."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ._crash import decision_counts, start_server

httpx = pytest.importorskip("httpx")

N = 10_000  # items, one open task each: the bulk batch holds the write lock for ~0.1-2 s


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


def test_kill_during_batch_accept_keeps_the_database_consistent(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    from bench_web_load import build

    folder = tmp_path / "proj"
    build(folder, N, None)
    proc, base, token = start_server(folder)
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
    n_decisions, done, decided_tasks, ids = decision_counts(folder)
    # the batch was one transaction: none of it is there; the acknowledged decisions are
    assert n_decisions == 5 and set(acked) == ids
    assert done == decided_tasks == 5
    proc, base, token = start_server(folder)  # restart: the app serves the same state
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
    assert decision_counts(folder)[:3] == (N, N, N)
