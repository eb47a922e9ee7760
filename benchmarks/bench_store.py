"""Import 1M items and 200k issues into the project store: time and peak memory.

Every phase runs in its own child process (peak RSS = that process's ``ru_maxrss``), on
SQLite (a file in a temp folder, WAL) and, when ``TRUELABEL_TEST_POSTGRES_URL`` is set, on
PostgreSQL (the schema is emptied first; use a throwaway database):

* ``items``: one transaction adding the project, N items (text ~40 chars + blake2b hash) and
  N original labels, as ``truelabel init`` does after reading the file;
* ``issues``: M issues of one audit run (``add_issues``);
* ``queue``: the review queue of those M issues (``ReviewQueue`` over an
  ``AuditIssueSource``) stored as M review tasks;
* ``export``: ``truelabel export`` of all N items to CSV (current label + provenance,
  streamed from the database in chunks of 50k items).

The reference in the same run is the database driver's own floor: the same item and label
rows inserted by the bare driver (``sqlite3`` / ``psycopg`` ``executemany`` of tuples, one
transaction, same schema), so the ratio is what the store adds on top of the driver. The
"baseline" memory is the child's RSS once the input columns exist (before any database
work); "added" is peak minus baseline.

    PYTHONPATH=src python benchmarks/bench_store.py --items 1000000 --issues 200000 \
        --out benchmarks/results/store.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_ENV = "TRUELABEL_TEST_POSTGRES_URL"
CLASSES = [f"class_{k:02d}" for k in range(20)]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _baseline_mb() -> float:
    """Current RSS, after resetting the peak (Linux: ``clear_refs`` 5 resets VmHWM), so the
    final peak covers the database work only, not building the input columns."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux: the peak then includes building the inputs
        pass
    return _status_mb("VmRSS")


def _rss_mb() -> float:
    """Peak RSS (VmHWM) since the last reset."""
    return _status_mb("VmHWM")


def _columns(n: int):
    import numpy as np

    rng = np.random.default_rng(0)
    ids = [f"item-{i:07d}" for i in range(n)]
    words = np.array("alpha beta gamma delta epsilon zeta eta theta iota kappa".split())
    picks = rng.integers(0, words.size, size=(n, 5))
    texts = [" ".join(row) for row in words[picks].tolist()]
    labels = np.array(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), n)]
    return ids, texts, labels


def _fresh(url: str) -> None:
    import sqlalchemy as sa

    import truelabel.store as ts

    if ts.StoreSettings(url=url).dialect == "postgresql":
        engine = sa.create_engine(ts.StoreSettings(url=url).url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()


def phase_items(url: str, n: int) -> dict:
    import truelabel.store as ts
    from truelabel.store._projects import text_hash

    ids, texts, labels = _columns(n)
    hashes = [text_hash(t) for t in texts]
    base = _baseline_mb()
    _fresh(url)
    store = ts.Store(ts.StoreSettings(url=url))
    t0 = time.perf_counter()
    with store.write() as session:
        p = ts.create_project(
            session, name="bench", content_kind="text", settings={"classes": CLASSES}
        )
        item_ids = ts.import_items(
            session, project_id=p.id, external_ids=ids, contents=texts, content_hashes=hashes
        )
        src = ts.get_label_source(session, project_id=p.id, kind="original", name="label")
        ts.add_annotations(session, source_id=src.id, item_ids=item_ids, labels=labels)
    seconds = time.perf_counter() - t0
    store.close()
    return {"seconds": seconds, "baseline_mb": base, "peak_mb": _rss_mb()}


def phase_raw(url: str, n: int) -> dict:
    """The driver's floor: the same rows as tuples, executemany, one transaction."""
    import truelabel.store as ts
    from truelabel.store._models import utcnow
    from truelabel.store._projects import text_hash

    ids, texts, labels = _columns(n)
    hashes = [text_hash(t) for t in texts]
    base = _baseline_mb()
    _fresh(url)
    settings = ts.StoreSettings(url=url)
    ts.Store(settings).close()  # schema only
    now = utcnow()
    if settings.dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(settings.url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        mark, cursor = "?", conn.cursor()
    else:
        import psycopg

        conn = psycopg.connect(settings.url.replace("postgresql+psycopg", "postgresql"))
        mark, cursor = "%s", conn.cursor()
    t0 = time.perf_counter()
    cursor.execute(
        f"INSERT INTO projects (name, content_kind, settings, created_at) VALUES ({mark}, {mark}, {mark}, {mark})",
        ("raw", "text", "{}", now),
    )
    cursor.execute("SELECT id FROM projects WHERE name = 'raw'")
    pid = cursor.fetchone()[0]
    cursor.execute(
        f"INSERT INTO label_sources (project_id, kind, name) VALUES ({mark}, 'original', 'label')",
        (pid,),
    )
    cursor.execute("SELECT id FROM label_sources WHERE project_id = " + str(pid))
    sid = cursor.fetchone()[0]
    step = 20_000
    for start in range(0, n, step):
        rows = [(pid, i, ids[i], texts[i], hashes[i]) for i in range(start, min(n, start + step))]
        cursor.executemany(
            f"INSERT INTO items (project_id, position, external_id, content, content_hash) VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            rows,
        )
    cursor.execute(f"SELECT id FROM items WHERE project_id = {pid} ORDER BY position")
    item_ids = [r[0] for r in cursor.fetchall()]
    for start in range(0, n, step):
        rows = [(item_ids[i], sid, labels[i], now) for i in range(start, min(n, start + step))]
        cursor.executemany(
            f"INSERT INTO annotations (item_id, source_id, label, created_at) VALUES ({mark}, {mark}, {mark}, {mark})",
            rows,
        )
    conn.commit()
    seconds = time.perf_counter() - t0
    conn.close()
    return {"seconds": seconds, "baseline_mb": base, "peak_mb": _rss_mb()}


def _issues_frame(n: int, m: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    flagged = np.zeros(n, dtype=bool)
    flagged[rng.choice(n, size=m, replace=False)] = True
    score = np.where(flagged, rng.uniform(0, 0.2, n), rng.uniform(0.2, 1, n))
    suggested = np.array(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), n)]
    given = np.array(CLASSES, dtype=object)[rng.integers(0, len(CLASSES), n)]
    return pd.DataFrame(
        {
            "is_label_issue": flagged,
            "label_score": score,
            "given_label": given,
            "suggested_label": suggested,
        }
    )


def phase_issues(url: str, n: int, m: int) -> dict:
    import numpy as np

    import truelabel.store as ts

    issues = _issues_frame(n, m)
    store = ts.Store(ts.StoreSettings(url=url))
    with store.read() as session:
        p = ts.get_project(session, name="bench")
        item_ids = ts.item_ids_by_position(session, project_id=p.id)
    flagged = issues["is_label_issue"].to_numpy()
    base = _baseline_mb()
    t0 = time.perf_counter()
    with store.write() as session:
        run = ts.start_run(session, project_id=p.id, kind="audit")
        ts.add_issues(
            session,
            run_id=run.id,
            item_ids=item_ids[flagged],
            issue_type="label",
            scores=issues["label_score"].to_numpy()[flagged],
            suggested_labels=issues["suggested_label"].to_numpy(object)[flagged],
        )
        ts.finish_run(session, run_id=run.id)
    seconds = time.perf_counter() - t0
    store.close()
    return {
        "seconds": seconds,
        "baseline_mb": base,
        "peak_mb": _rss_mb(),
        "rows": int(np.sum(flagged)),
    }


def phase_queue(url: str, n: int, m: int) -> dict:
    import truelabel.store as ts
    from truelabel.review import AuditIssueSource, ReviewQueue

    issues = _issues_frame(n, m)
    store = ts.Store(ts.StoreSettings(url=url))
    with store.read() as session:
        p = ts.get_project(session, name="bench")
        item_ids = ts.item_ids_by_position(session, project_id=p.id)
    base = _baseline_mb()
    t0 = time.perf_counter()
    queue = ReviewQueue([AuditIssueSource(issues, item_ids=item_ids)]).build()
    t_build = time.perf_counter() - t0
    with store.write() as session:
        ts.add_review_tasks(session, project_id=p.id, queue=queue)
    seconds = time.perf_counter() - t0
    store.close()
    return {
        "seconds": seconds,
        "build_seconds": t_build,
        "baseline_mb": base,
        "peak_mb": _rss_mb(),
        "rows": len(queue),
    }


def phase_export(url: str, n: int, m: int) -> dict:
    """``truelabel export PROJECT --format csv``: streamed in chunks of 50k items."""
    import truelabel.store as ts

    store = ts.Store(ts.StoreSettings(url=url))
    with store.read() as session:
        p = ts.get_project(session, name="bench")
        handle = ts.OpenProject(
            path=Path("."),
            store=store,
            project_id=p.id,
            name=p.name,
            content_kind=p.content_kind,
            settings=dict(p.settings),
        )
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_mb()
        t0 = time.perf_counter()
        out = ts.export_project(handle, out=Path(tmp) / "export.csv", format="csv")
        seconds = time.perf_counter() - t0
        size = out.stat().st_size
        with open(out, "rb") as fh:
            rows = sum(1 for _ in fh) - 1
    store.close()
    assert rows == n, rows
    return {
        "seconds": seconds,
        "baseline_mb": base,
        "peak_mb": _rss_mb(),
        "rows": rows,
        "bytes": size,
    }


PHASES = {
    "items": phase_items,
    "raw": phase_raw,
    "issues": phase_issues,
    "queue": phase_queue,
    "export": phase_export,
}


def _child(phase: str, url: str, n: int, m: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            phase,
            "--url",
            url,
            "--items",
            str(n),
            "--issues",
            str(m),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(results: dict) -> str:
    """The markdown table of a results file."""
    lines = [
        f"# Store import: {results['items']:,} items, {results['issues']:,} issues",
        "",
        "`PYTHONPATH=src python benchmarks/bench_store.py --items "
        f"{results['items']} --issues {results['issues']} --out benchmarks/results/store.json` "
        f"({results['cpus']} cores shared with other jobs: times are noisy; the driver floor "
        "is measured in the same run). Memory: peak RSS of the phase's process above its RSS "
        "once the input columns exist.",
        "",
        "| database | phase | rows | seconds | rows/s | peak RSS added (MB) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    names = {
        "raw": "driver floor: items + labels, bare executemany",
        "items": "items + original labels (init)",
        "issues": "issues of one run",
        "queue": "review queue built + stored",
        "export": "export to CSV (streamed)",
    }
    for backend, row in results["backends"].items():
        for phase in ("raw", "items", "issues", "queue", "export"):
            r = row[phase]
            n = r.get("rows", 2 * results["items"] if phase in ("raw", "items") else 0)
            lines.append(
                f"| {backend} | {names[phase]} | {n:,} | {r['seconds']:.1f} | "
                f"{n / r['seconds']:,.0f} | {r['peak_mb'] - r['baseline_mb']:.0f} |"
            )
        lines.append(
            f"| {backend} | items: store time / driver floor | | {row['items_vs_raw']:.2f}x | | |"
        )
    if "note" in results:
        lines += ["", f"Note: {results['note']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--issues", type=int, default=200_000)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child")
    ap.add_argument("--url")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--render", type=Path, help="write the markdown table of this results file")
    args = ap.parse_args()
    if args.render:
        results = json.loads(args.render.read_text())
        args.render.with_suffix(".md").write_text(render(results))
        return
    if args.child:
        fn = PHASES[args.child]
        res = (
            fn(args.url, args.items)
            if args.child in ("items", "raw")
            else fn(args.url, args.items, args.issues)
        )
        print(json.dumps(res))
        return
    results = {"items": args.items, "issues": args.issues, "cpus": os.cpu_count(), "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        urls = {
            "sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "sqlite_raw": f"sqlite:///{Path(tmp) / 'raw.db'}",
        }
        if os.environ.get(PG_ENV) and not args.no_postgres:
            urls["postgresql"] = os.environ[PG_ENV]
        for backend in [b for b in ("sqlite", "postgresql") if b in urls]:
            url = urls[backend]
            raw_url = urls["sqlite_raw"] if backend == "sqlite" else url
            row = {"raw": _child("raw", raw_url, args.items, args.issues)}
            for phase in ("items", "issues", "queue", "export"):
                row[phase] = _child(phase, url, args.items, args.issues)
                print(backend, phase, row[phase], file=sys.stderr, flush=True)
            row["items_vs_raw"] = row["items"]["seconds"] / row["raw"]["seconds"]
            results["backends"][backend] = row
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        args.out.with_suffix(".md").write_text(render(results))


if __name__ == "__main__":
    main()
