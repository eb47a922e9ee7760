"""Crash test on PostgreSQL: the server is killed (SIGKILL) in the middle of a batch accept,
while its transaction has inserted part of the batch and waits on a row lock the test holds
(so the kill lands mid-transaction whatever the machine's speed, no sleep involved); after a
restart the database is consistent and every acknowledged decision is there."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import truelabel.store as ts

from ._crash import decision_counts, start_server

httpx = pytest.importorskip("httpx")
PG_ENV = "TRUELABEL_TEST_POSTGRES_URL"
N = 3_000  # tasks; the batch accept inserts them in statements of ~1000 rows


@pytest.fixture
def pg_url(monkeypatch):
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} (.ci/run starts a server and sets it)")
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    engine = create_engine(ts.StoreSettings(url=url).url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


def _wait_for(conn, sql, what, timeout=60.0):
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        found = conn.execute(text(sql)).scalar()
        conn.rollback()  # pg_stat_activity is a snapshot per transaction: take a new one
        if found:
            return
        time.sleep(0.05)
    seen = conn.execute(
        text("SELECT state, wait_event_type, left(query, 80) FROM pg_stat_activity")
    ).all()
    pytest.fail(f"timed out waiting for {what}: {seen}")


_OTHERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"
)


def test_kill_mid_batch_accept_on_postgresql(tmp_path, pg_url, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    from bench_web_load import build

    folder = tmp_path / "proj"
    build(folder, N, pg_url)
    proc, base, token = start_server(folder, pg_url)
    engine = create_engine(ts.StoreSettings(url=pg_url).url)
    acked, answer = [], []
    try:
        with httpx.Client(base_url=base, headers={"X-CSRF-Token": token}) as client:
            for task in client.get("/api/tasks/next", params={"limit": 5}).json():
                r = client.post(
                    "/api/decisions", json={"task_id": task["task_id"], "action": "keep"}
                )
                assert r.status_code == 200
                acked.append(r.json()["id"])
            blocker = engine.connect()
            # the item of the open task halfway down the batch's order: its decision's
            # foreign-key check waits on our row lock, after the first half was inserted
            middle = blocker.execute(
                text(
                    "SELECT item_id FROM review_tasks WHERE status = 'open' "
                    "ORDER BY priority DESC, id OFFSET :k LIMIT 1"
                ),
                {"k": (N - 5) // 2},
            ).scalar_one()
            blocker.execute(text("SELECT id FROM items WHERE id = :i FOR UPDATE"), {"i": middle})

            def batch():
                try:
                    answer.append(client.post("/api/tasks/batch-accept", json={}, timeout=300))
                except httpx.TransportError as err:
                    answer.append(err)

            worker = threading.Thread(target=batch)
            worker.start()
            with engine.connect() as watch:
                _wait_for(
                    watch,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO decisions%'",
                    "the batch's insert to wait on the lock",
                )
            proc.send_signal(signal.SIGKILL)  # mid-transaction, half the batch inserted
            proc.wait(timeout=30)
            worker.join(timeout=60)
            blocker.rollback()  # the orphaned backend goes on, finds its client gone, aborts
            blocker.close()
            with engine.connect() as watch:
                _wait_for(
                    watch, f"SELECT ({_OTHERS}) = 0", "the killed server's transaction to end"
                )
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
    assert isinstance(answer[0], httpx.TransportError), "the batch was not interrupted"
    n_decisions, done, decided_tasks, ids = decision_counts(folder, pg_url)
    # the batch was one transaction: none of it is there; the acknowledged decisions are
    assert n_decisions == 5 and set(acked) == ids
    assert done == decided_tasks == 5
    proc, base, token = start_server(folder, pg_url)  # restart: the app serves the same state
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
    assert decision_counts(folder, pg_url)[:3] == (N, N, N)
