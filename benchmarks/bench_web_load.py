"""Load test of the review app: R concurrent reviewers for S seconds, on SQLite and (when
``TRUELABEL_TEST_POSTGRES_URL`` is set; its schema is emptied) PostgreSQL.

The server is ``truelabel serve --team --workers W`` in a child process (uvicorn) on a free
loopback port, over a project of N items with one open review task each and one account per
reviewer. Each reviewer is a thread with its own HTTP connection that logs in, then loops:
``GET /api/tasks/next?limit=B`` (claims the reviewer's batch; B = ``--batch``, default 1 as
the review page asks), pick one of them at random, wait the think time (``--think-ms``: the
reviewer reads the item; default 0 = a tight loop), ``POST /api/decisions`` (accept); the
round trip timed is the two requests, the think time left out. Answers are counted:
``acknowledged`` (200 with a decision id), ``conflict`` (422: another reviewer decided or
holds that task, nothing written), anything else is an error. Then the database is read back:
``lost`` = acknowledged ids missing from it, ``unacknowledged`` = decisions in it nobody was
told about, ``duplicated`` = tasks with more than one decision. The client threads share the
machine (and the GIL) with nothing else in this process; the server runs in its own.

    PYTHONPATH=src python benchmarks/bench_web_load.py --reviewers 20 --seconds 120 \\
        --workers 1 --out benchmarks/results/web_load.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(folder: Path, n_items: int, url: str | None) -> None:
    import truelabel.store as ts
    from truelabel.review import AuditIssueSource, ReviewQueue

    rng = np.random.default_rng(0)
    classes = np.array(["a", "b", "c"])
    data = folder.parent / "items.csv"
    labels = classes[rng.integers(0, 3, n_items)]
    pd.DataFrame({"text": [f"item {i}" for i in range(n_items)], "label": labels}).to_csv(
        data, index=False
    )
    ts.init_project(folder, data=data, label_col="label", text_col="text", database_url=url)
    with ts.opened(folder, database_url=url) as handle:
        with handle.store.read() as s:
            ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        issues = pd.DataFrame(
            {
                "is_label_issue": np.ones(n_items, bool),
                "label_score": rng.random(n_items),
                "given_label": labels,
                "suggested_label": classes[(np.searchsorted(classes, labels) + 1) % 3],
            }
        )
        queue = ReviewQueue([AuditIssueSource(issues, item_ids=ids)]).build()
        with handle.store.write() as s:
            ts.add_review_tasks(s, project_id=handle.project_id, queue=queue)


PASSWORD = "load-test-password"


def add_reviewers(folder: Path, url: str | None, n: int) -> None:
    import truelabel.store as ts
    from truelabel.web import hash_password

    digest = hash_password(PASSWORD)  # one hash for every account: argon2 is slow on purpose
    with ts.opened(folder, database_url=url) as handle, handle.store.write() as s:
        for k in range(n):
            ts.add_user(s, username=f"reviewer{k}", password_hash=digest, role="reviewer")


def log_in(base: str, k: int) -> Any:
    """An HTTP client logged in as ``reviewer{k}`` (before the clock starts: argon2 is slow)."""
    import httpx

    client = httpx.Client(base_url=base, timeout=30)
    anon = client.get("/api/csrf").json()["csrf_token"]
    login = {"username": f"reviewer{k}", "password": PASSWORD}
    r = client.post("/api/login", json=login, headers={"X-CSRF-Token": anon})
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return client


def reviewer(client: Any, deadline: float, seed: int, out: dict, args: Any) -> None:
    """Loop: next task(s) -> [read the item: think time] -> decide. The timed round trip is
    the two requests' latencies, the think time left out."""
    rng = random.Random(seed)
    think = args.think_ms / 1000
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            tasks = client.get("/api/tasks/next", params={"limit": args.batch}).json()
            t1 = time.perf_counter()
            if not tasks:
                break
            task = rng.choice(tasks)
            if think > 0:  # uniform in [think / 2, 3 think / 2]: reviewers read at their pace
                time.sleep(think * (0.5 + rng.random()))
            t2 = time.perf_counter()
            r = client.post("/api/decisions", json={"task_id": task["task_id"], "action": "accept"})
            out["latency"].append((t1 - t0) + (time.perf_counter() - t2))
            if r.status_code == 200:
                out["ack"].append(r.json()["id"])
            elif r.status_code == 422 and ("is done" in r.text or "claimed by" in r.text):
                out["conflict"] += 1
            else:
                out["errors"].append(f"{r.status_code} {r.text[:200]}")
    finally:
        client.close()


def run(backend: str, url: str | None, args: argparse.Namespace) -> dict:
    import httpx

    import truelabel.store as ts

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "proj"
        build(folder, args.items, url)
        add_reviewers(folder, url, args.reviewers)
        port = _free_port()
        code = "import sys; from truelabel.cli import main; sys.argv[0] = 'truelabel'; main()"
        cmd = [sys.executable, "-c", code, "serve", str(folder), "--port", str(port), "--team"]
        cmd += ["--workers", str(args.workers)]
        if url:
            cmd += ["--database-url", url]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(f"{base}/api/csrf").raise_for_status()
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("server did not start")
            outs = [
                {"latency": [], "ack": [], "conflict": 0, "errors": []}
                for _ in range(args.reviewers)
            ]
            clients = [log_in(base, k) for k in range(args.reviewers)]
            deadline = time.perf_counter() + args.seconds
            threads = [
                threading.Thread(target=reviewer, args=(clients[k], deadline, k, outs[k], args))
                for k in range(args.reviewers)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
        with ts.opened(folder, database_url=url) as handle, handle.store.read() as s:
            from sqlalchemy import select

            rows = s.execute(
                select(ts.Decision.id, ts.Decision.task_id).where(
                    ts.Decision.project_id == handle.project_id
                )
            ).all()
    ack = [i for o in outs for i in o["ack"]]
    latency = np.array([x for o in outs for x in o["latency"]]) * 1000
    db_ids = {r[0] for r in rows}
    per_task = Counter(r[1] for r in rows)
    return {
        "backend": backend,
        "reviewers": args.reviewers,
        "workers": args.workers,
        "batch": args.batch,
        "think_ms": args.think_ms,
        "seconds": round(elapsed, 1),
        "items": args.items,
        "acknowledged": len(ack),
        "acknowledged_distinct": len(set(ack)),
        "in_database": len(rows),
        "lost": len(set(ack) - db_ids),
        "unacknowledged": len(db_ids - set(ack)),
        "duplicated_tasks": sum(1 for n in per_task.values() if n > 1),
        "conflicts": sum(o["conflict"] for o in outs),
        "errors": sum(len(o["errors"]) for o in outs),
        "error_examples": [e for o in outs for e in o["errors"]][:3],
        "round_trips_per_s": round(len(latency) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latency, 50)), 1),
        "p95_ms": round(float(np.percentile(latency, 95)), 1),
        "p99_ms": round(float(np.percentile(latency, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--batch", type=int, default=1, help="tasks per next-task call (the review page asks 1)"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        help="mean time a reviewer reads an item before deciding (uniform in [t/2, 3t/2]); "
        "0 = a tight loop",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--append", action="store_true", help="add to the results in --out")
    args = parser.parse_args()
    results = [run("sqlite", None, args)]
    print(json.dumps(results[-1]), flush=True)
    pg = os.environ.get("TRUELABEL_TEST_POSTGRES_URL")
    if pg:
        import sqlalchemy as sa

        import truelabel.store as ts

        engine = sa.create_engine(ts.StoreSettings(url=pg).url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
        results.append(run("postgresql", pg, args))
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        command = " ".join(["python", *sys.argv])
        for r in results:
            r["command"] = command
        runs = []
        if args.append and args.out.is_file():
            runs = json.loads(args.out.read_text()).get("results", [])
        payload = {"cpus": os.cpu_count(), "results": [*runs, *results]}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
