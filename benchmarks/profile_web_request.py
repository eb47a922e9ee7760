"""Where the time of one review round trip goes, in process (no HTTP, no concurrency): the
``GET /api/tasks/next`` path (claim, task views, response validation + JSON) and the
``POST /api/decisions`` path (write transaction, decide, commit), with the SQL statements
each runs, for ``limit`` = 20 (the load script's old batch) and 1 (what the review page asks).
Also the whole HTTP round trip through uvicorn with one client (the service time a queue of
concurrent reviewers waits behind).

    PYTHONPATH=src python benchmarks/profile_web_request.py --items 20000 --rounds 300 \\
        --out benchmarks/results/web_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
from bench_web_load import build


class Statements:
    """Counts the SQL statements an engine runs (``executemany`` = 1)."""

    def __init__(self, engine: Any) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.n += 1


def _ms(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1000
    return {
        "mean_ms": round(float(a.mean()), 2),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
    }


def in_process(folder: Path, limit: int, rounds: int) -> dict[str, Any]:
    from pydantic import TypeAdapter

    import truelabel.store as ts
    from truelabel.web import Settings, create_app
    from truelabel.web._schemas import DecisionPublic, TaskPublic
    from truelabel.web._service import decide, task_views

    app = create_app(Settings(project=folder))
    ctx = app.state.ctx
    counter = Statements(ctx.store.engine)
    tasks_json = TypeAdapter(list[TaskPublic])
    decision_json = TypeAdapter(DecisionPublic)
    phases: dict[str, list[float]] = {
        k: [] for k in ("claim", "views", "serialise", "next_total", "decide", "decide_total")
    }
    statements = {"next": [], "decide": []}
    reviewer = f"profiler{limit}"
    for _ in range(rounds):
        n0 = counter.n
        t0 = time.perf_counter()
        with ctx.store.write(durable=False) as session:
            batch = ts.next_tasks(
                session, project_id=ctx.project_id, limit=limit, reviewer=reviewer
            )
            t1 = time.perf_counter()
            views = task_views(session, ctx, batch)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        tasks_json.dump_json(tasks_json.validate_python(views))
        t4 = time.perf_counter()
        statements["next"].append(counter.n - n0)
        phases["claim"].append(t1 - t0)
        phases["views"].append(t2 - t1)
        phases["serialise"].append(t4 - t3)
        phases["next_total"].append(t4 - t0)
        n0 = counter.n
        t5 = time.perf_counter()
        with ctx.store.write() as session:
            made = decide(
                session, ctx, task_id=views[0]["task_id"], action="accept", reviewer=reviewer
            )
            t6 = time.perf_counter()
            out = decision_json.validate_python(made)
        decision_json.dump_json(out)
        t7 = time.perf_counter()
        statements["decide"].append(counter.n - n0)
        phases["decide"].append(t6 - t5)
        phases["decide_total"].append(t7 - t5)  # with the commit (fsync) and JSON
    ctx.store.close()
    return {
        "limit": limit,
        "rounds": rounds,
        **{k: _ms(v) for k, v in phases.items()},
        "statements_next": int(np.median(statements["next"])),
        "statements_decide": int(np.median(statements["decide"])),
    }


def over_http(folder: Path, limit: int, rounds: int) -> dict[str, Any]:
    """One client, sequential round trips through ``truelabel serve`` (solo mode)."""
    import socket
    import subprocess

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import sys; from truelabel.cli import main; sys.argv[0] = 'truelabel'; main()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                token = httpx.get(f"{base}/api/session").json()["csrf_token"]
                break
            except httpx.TransportError:
                time.sleep(0.1)
        nexts, decides, totals = [], [], []
        with httpx.Client(base_url=base, headers={"X-CSRF-Token": token}) as client:
            for _ in range(rounds):
                t0 = time.perf_counter()
                task = client.get("/api/tasks/next", params={"limit": limit}).json()[0]
                t1 = time.perf_counter()
                r = client.post(
                    "/api/decisions", json={"task_id": task["task_id"], "action": "accept"}
                )
                t2 = time.perf_counter()
                assert r.status_code == 200, r.text
                nexts.append(t1 - t0)
                decides.append(t2 - t1)
                totals.append(t2 - t0)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "limit": limit,
        "rounds": rounds,
        "next": _ms(nexts),
        "decide": _ms(decides),
        "round_trip": _ms(totals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"in_process": [], "http_one_client": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "proj"
        build(folder, args.items, None)
        for limit in (20, 1):
            results["in_process"].append(in_process(folder, limit, args.rounds))
            print(json.dumps(results["in_process"][-1]), flush=True)
        for limit in (20, 1):
            results["http_one_client"].append(over_http(folder, limit, args.rounds))
            print(json.dumps(results["http_one_client"][-1]), flush=True)
    if args.out:
        payload = {"command": " ".join(["python", *sys.argv]), "cpus": os.cpu_count(), **results}
        args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
