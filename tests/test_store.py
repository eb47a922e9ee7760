"""The store on real SQLite and real PostgreSQL: migrations, derived labels, append-only
history, batched imports, concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")

import truelabel.store as ts  # noqa: E402
from truelabel.exceptions import ValidationError  # noqa: E402

PG_ENV = "TRUELABEL_TEST_POSTGRES_URL"


def fresh_postgres(url: str) -> None:
    """Empty the test database (the CI's throwaway server; never a real one)."""
    engine = sa.create_engine(ts.StoreSettings(url=url).url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} (.ci/run starts a server and sets it)")
    fresh_postgres(url)
    return url


@pytest.fixture
def store(db_url):
    s = ts.Store(ts.StoreSettings(url=db_url))
    yield s
    s.close()


def _project(store, classes=("a", "b", "c"), n=4):
    with store.write() as session:
        p = ts.create_project(
            session, name="p", content_kind="text", settings={"classes": list(classes)}
        )
        ids = ts.import_items(
            session,
            project_id=p.id,
            external_ids=[f"i{k}" for k in range(n)],
            contents=[f"text {k}" for k in range(n)],
            content_hashes=[ts._projects.text_hash(f"text {k}") for k in range(n)],
        )
    return p.id, ids


# -- schema --------------------------------------------------------------------------------
def test_migrations_and_models_agree(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), ts.Base.metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert diff == []
    assert version == "0004"
    # opening again applies nothing and keeps the data
    _project(store)
    again = ts.Store(store.settings)
    with again.read() as session:
        assert ts.get_project(session, name="p").content_kind == "text"
    again.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    store = ts.Store(ts.StoreSettings.sqlite_file(tmp_path))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    with pytest.raises(sa.exc.IntegrityError), store.write() as session:
        session.execute(sa.insert(ts.Item).values(project_id=999, position=0, external_id="x"))
    store.close()
    assert (tmp_path / "truelabel.db").is_file()


def test_import_truelabel_does_not_import_sqlalchemy():
    code = "import sys, truelabel; print('sqlalchemy' in sys.modules, 'alembic' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.split() == ["False", "False"]


# -- settings ------------------------------------------------------------------------------
def test_settings_validate_the_url_once(tmp_path, monkeypatch):
    with pytest.raises(ValidationError, match=r"database_url: database 'mysql' is not supported"):
        ts.StoreSettings(url="mysql://u:p@h/db")
    with pytest.raises(ValidationError, match=r"database_url: 'not a url' is not a database URL"):
        ts.StoreSettings(url="not a url")
    with pytest.raises(ValidationError, match=r"busy_timeout_ms: got -1"):
        ts.StoreSettings(url="sqlite://", busy_timeout_ms=-1)
    assert ts.StoreSettings(url="postgresql://u:p@h/db").url == "postgresql+psycopg://u:p@h/db"
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    assert ts.StoreSettings.resolve(tmp_path).url == f"sqlite:///{tmp_path / 'truelabel.db'}"
    monkeypatch.setenv(ts.DATABASE_ENV, "postgresql+psycopg://e:p@h/env")
    assert ts.StoreSettings.resolve(tmp_path).url == "postgresql+psycopg://e:p@h/env"
    assert ts.StoreSettings.resolve(tmp_path, url="sqlite://").url == "sqlite://"
    monkeypatch.delenv(ts.DATABASE_ENV)
    with pytest.raises(ValidationError, match="no database given"):
        ts.StoreSettings.resolve(None)


# -- imports -------------------------------------------------------------------------------
def test_import_items_returns_ids_in_input_order_for_any_chunk_size(store):
    with store.write() as session:
        p = ts.create_project(session, name="p", content_kind="none")
        first = ts.import_items(
            session, project_id=p.id, external_ids=["z", "a", "m"], chunk_rows=2
        )
        more = ts.import_items(session, project_id=p.id, external_ids=["q", "b"], chunk_rows=1)
    with store.read() as session:
        rows = session.execute(
            sa.select(ts.Item.id, ts.Item.external_id, ts.Item.position).order_by(ts.Item.id)
        ).all()
    by_id = {r.id: (r.external_id, r.position) for r in rows}
    assert [by_id[i] for i in first] == [("z", 0), ("a", 1), ("m", 2)]
    assert [by_id[i] for i in more] == [("q", 3), ("b", 4)]


def test_duplicate_ids_are_refused_before_anything_is_written(store):
    with store.write() as session:
        p = ts.create_project(session, name="p", content_kind="none")
        with pytest.raises(ValidationError, match=r"id_col: item ids repeat \(e.g. \['a'\]\)"):
            ts.import_items(session, project_id=p.id, external_ids=["a", "b", "a"])
        assert session.scalar(sa.select(sa.func.count()).select_from(ts.Item)) == 0


def test_a_project_name_is_used_once(store):
    _project(store)
    with pytest.raises(ValidationError, match="a project named 'p' already exists"):
        with store.write() as session:
            ts.create_project(session, name="p", content_kind="text")
    with pytest.raises(ValidationError, match=r"no project named 'q'.*pick one of: p"):
        with store.read() as session:
            ts.get_project(session, name="q")


def test_annotations_skip_missing_labels(store):
    pid, ids = _project(store)
    with store.write() as session:
        src = ts.get_label_source(session, project_id=pid, kind="original", name="label")
        n = ts.add_annotations(
            session, source_id=src.id, item_ids=ids, labels=["a", None, "", float("nan")]
        )
        same = ts.get_label_source(session, project_id=pid, kind="original", name="label")
    assert n == 1 and same.id == src.id
    with pytest.raises(ValidationError, match="kind: got 'robot'"):
        with store.write() as session:
            ts.get_label_source(session, project_id=pid, kind="robot", name="x")


# -- the derived current label ---------------------------------------------------------------
def _history(store):
    """Hand-worked 4-item history (classes a, b, c):

    item 0: original a, consensus b, accepted auto-label c, then decisions b (r1), a (r2)
            -> a, reviewed by r2; r1's old label was c (the auto-label), r2's was b
    item 1: original a, consensus b, accepted auto-label c, a later *unaccepted* model
            label a -> c, auto-labeled by model m
    item 2: original a, consensus b then consensus c, a decision b that is undone
            -> c, consensus (the later consensus)
    item 3: original b, annotator c, rule c -> b, original (annotators and rules never
            set the current label)
    """
    pid, ids = _project(store)
    with store.write() as session:
        orig = ts.get_label_source(session, project_id=pid, kind="original", name="label").id
        cons = ts.get_label_source(session, project_id=pid, kind="consensus", name="ds").id
        model = ts.get_label_source(session, project_id=pid, kind="model", name="m").id
        ann = ts.get_label_source(session, project_id=pid, kind="annotator", name="bob").id
        rule = ts.get_label_source(session, project_id=pid, kind="rule", name="kw").id
        ts.add_annotations(session, source_id=orig, item_ids=ids, labels=["a", "a", "a", "b"])
        ts.add_annotations(session, source_id=cons, item_ids=ids[:3], labels=["b", "b", "b"])
        ts.add_annotations(
            session, source_id=model, item_ids=ids[:2], labels=["c", "c"], accepted=[True, True]
        )
        ts.add_annotations(
            session, source_id=model, item_ids=ids[1:2], labels=["a"], accepted=[False]
        )
        ts.add_annotations(session, source_id=cons, item_ids=ids[2:3], labels=["c"])
        ts.add_annotations(session, source_id=ann, item_ids=ids[3:], labels=["c"])
        ts.add_annotations(session, source_id=rule, item_ids=ids[3:], labels=["c"])
    with store.write() as session:
        d1 = ts.record_decision(session, item_id=int(ids[0]), reviewer="r1", new_label="b")
    with store.write() as session:
        d2 = ts.record_decision(
            session,
            item_id=int(ids[0]),
            reviewer="r2",
            new_label="a",
            reason="typo",
            seconds_spent=4.5,
        )
        d3 = ts.record_decision(session, item_id=int(ids[2]), reviewer="r1", new_label="b")
    with store.write() as session:
        d4 = ts.undo_decision(session, decision_id=d3.id, reviewer="r1")
    return pid, ids, (d1, d2, d3, d4)


def test_current_label_precedence_on_a_hand_worked_history(store):
    pid, ids, (d1, d2, d3, d4) = _history(store)
    with store.read() as session:
        frame = ts.current_labels(session, project_id=pid)
    assert frame["item_id"].tolist() == ids.tolist()
    assert frame["label"].tolist() == ["a", "c", "c", "b"]
    assert frame["label_source"].tolist() == ["reviewed", "auto-labeled", "consensus", "original"]
    assert frame["labeled_by"].tolist() == ["r2", "m", "ds", "label"]
    assert frame["original_label"].tolist() == ["a", "a", "a", "b"]
    assert frame["reviewed_label"].tolist() == ["a", None, None, None]
    assert frame["autolabel_label"].tolist() == ["c", "c", None, None]
    assert frame["consensus_label"].tolist() == ["b", "b", "c", None]
    assert frame["reviewed_at"][0] == frame["labeled_at"][0]
    assert frame["reviewed_at"][0].endswith("+00:00")
    assert (d1.old_label, d1.new_label, d2.old_label, d2.new_label) == ("c", "b", "b", "a")
    assert (d3.old_label, d4.old_label, d4.new_label, d4.undoes_id) == ("c", "b", "c", d3.id)
    with store.read() as session:
        two = ts.current_labels(session, project_id=pid, item_ids=[int(ids[3]), int(ids[1])])
    assert two["label"].tolist() == ["c", "b"]


def test_two_decisions_on_one_item_are_both_kept(store):
    pid, ids, (d1, d2, _, _) = _history(store)
    with store.read() as session:
        history = ts.decision_history(session, item_id=int(ids[0]))
    assert [(d.reviewer, d.old_label, d.new_label) for d in history] == [
        ("r1", "c", "b"),
        ("r2", "b", "a"),
    ]
    assert (history[1].reason, history[1].seconds_spent) == ("typo", 4.5)


@pytest.mark.parametrize("table", ["decisions", "annotations"])
def test_history_cannot_be_updated_or_deleted(store, table):
    _history(store)
    model = {"decisions": ts.Decision, "annotations": ts.Annotation}[table]
    column = getattr(model, {"decisions": "new_label", "annotations": "label"}[table])
    for stmt in (sa.update(model).values({column: "c"}), sa.delete(model)):
        with pytest.raises(sa.exc.DBAPIError, match=f"{table} are append-only"):
            with store.write() as session:
                session.execute(stmt)
    with pytest.raises(sa.exc.DBAPIError, match=f"{table} are append-only"):
        with store.write() as session:
            row = session.scalars(sa.select(model).limit(1)).one()
            setattr(row, column.key, "c")
    with store.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(model)) > 0
    # the store's API offers no way either
    assert not [n for n in ts.__all__ if n.startswith(("update_", "delete_", "remove_"))]


def test_undo_rules(store):
    pid, ids, (d1, d2, d3, d4) = _history(store)
    with pytest.raises(ValidationError, match=f"decision {d3.id} was already undone"):
        with store.write() as session:
            ts.undo_decision(session, decision_id=d3.id, reviewer="x")
    with pytest.raises(ValidationError, match=f"decision {d4.id} is an undo"):
        with store.write() as session:
            ts.undo_decision(session, decision_id=d4.id, reviewer="x")
    with store.write() as session:
        ts.undo_decision(session, decision_id=d2.id, reviewer="r2")
    with store.read() as session:
        frame = ts.current_labels(session, project_id=pid)
    assert (frame["label"][0], frame["labeled_by"][0]) == ("b", "r1")  # back to r1's decision


def test_decisions_are_checked(store):
    pid, ids = _project(store)
    cases = [
        (dict(new_label="zebra"), r"new_label: 'zebra' is not a class of this project"),
        (dict(new_label="a", reviewer=" "), r"reviewer: got ' '"),
        (dict(new_label="a", seconds_spent=-1.0), r"seconds_spent: got -1.0"),
        (dict(new_label="a", item_id=10**6), r"item_id: no item 1000000"),
    ]
    for kwargs, message in cases:
        args = {"item_id": int(ids[0]), "reviewer": "r", **kwargs}
        with pytest.raises(ValidationError, match=message), store.write() as session:
            ts.record_decision(session, **args)


# -- review tasks --------------------------------------------------------------------------
def test_tasks_open_close_reopen_and_supersede(store):
    import pandas as pd

    pid, ids = _project(store)
    queue = pd.DataFrame(
        {
            "item_id": ids[[2, 0, 1]],
            "priority": [0.9, 0.5, 0.5],
            "reasons": [[{"source": "s", "reason": "r"}]] * 3,
            "suggested_label": ["a", None, "b"],
        }
    )
    with store.write() as session:
        assert ts.add_review_tasks(session, project_id=pid, queue=queue) == 3
    with store.read() as session:
        tasks = ts.next_tasks(session, project_id=pid, limit=10)
    assert [t.item_id for t in tasks] == [ids[2], ids[0], ids[1]]  # priority, then task id
    assert tasks[0].reasons == [{"source": "s", "reason": "r"}]
    with store.write() as session:
        d = ts.record_decision(
            session, item_id=int(ids[2]), reviewer="r", new_label="a", task_id=tasks[0].id
        )
    with store.read() as session:
        assert ts.queue_counts(session, project_id=pid) == {"open": 2, "done": 1, "superseded": 0}
    with store.write() as session:
        ts.undo_decision(session, decision_id=d.id, reviewer="r")
    with store.read() as session:
        assert ts.queue_counts(session, project_id=pid)["open"] == 3
    with store.write() as session:
        ts.add_review_tasks(session, project_id=pid, queue=queue.iloc[:1])
    with store.read() as session:
        assert ts.queue_counts(session, project_id=pid) == {"open": 3, "done": 0, "superseded": 1}
    with pytest.raises(ValidationError, match="limit: got 0"), store.read() as session:
        ts.next_tasks(session, project_id=pid, limit=0)


# -- runs ----------------------------------------------------------------------------------
def test_audit_issues_become_issues_and_scores(store):
    import pandas as pd

    pid, ids = _project(store)
    issues = pd.DataFrame(
        {
            "is_label_issue": [True, False, True, False],
            "label_score": [0.1, 0.8, 0.05, 0.9],
            "is_outlier_issue": [False, False, False, True],
            "outlier_score": [0.5, 0.6, 0.7, 0.01],
            "given_label": ["a", "b", "c", "a"],
            "suggested_label": ["b", "b", "a", "a"],
        }
    )
    with store.write() as session:
        run = ts.start_run(session, project_id=pid, kind="audit", settings={"seed": 0})
        counts = ts.store_audit_issues(session, run_id=run.id, item_ids=ids, issues=issues)
        ts.finish_run(session, run_id=run.id, summary={"n": 4})
    assert counts == {"label": 2, "outlier": 1}
    with store.read() as session:
        got = ts.run_issues(session, run_id=run.id)
        n_scores = session.scalar(sa.select(sa.func.count()).select_from(ts.Score))
        stored = session.get(ts.Run, run.id)
    assert got.values.tolist() == [
        [ids[3], "outlier", 0.01, None],
        [ids[2], "label", 0.05, "a"],
        [ids[0], "label", 0.1, "b"],
    ]
    assert n_scores == 8
    assert (stored.status, stored.summary, stored.settings) == ("finished", {"n": 4}, {"seed": 0})
    assert stored.versions["truelabel"] and stored.finished_at is not None
    with pytest.raises(ValidationError, match="kind: got 'train'"), store.write() as session:
        ts.start_run(session, project_id=pid, kind="train")


# -- concurrency ---------------------------------------------------------------------------
def test_two_concurrent_writers_lose_no_decision(db_url):
    """Two writers (own engines, own connections) decide on the same items at once."""
    setup = ts.Store(ts.StoreSettings(url=db_url))
    pid, ids = _project(setup, n=20)
    setup.close()
    per_writer = 60
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(name: str) -> None:
        store = ts.Store(ts.StoreSettings(url=db_url), upgrade=False)
        try:
            barrier.wait()
            for k in range(per_writer):
                with store.write() as session:
                    ts.record_decision(
                        session,
                        item_id=int(ids[k % ids.size]),
                        reviewer=name,
                        new_label="abc"[k % 3],
                        reason=f"{name}-{k}",
                    )
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = ts.Store(ts.StoreSettings(url=db_url), upgrade=False)
    with check.read() as session:
        reasons = session.scalars(sa.select(ts.Decision.reason)).all()
    check.close()
    expected = {f"{w}-{k}" for w in ("w1", "w2") for k in range(per_writer)}
    assert sorted(reasons) == sorted(expected)  # none lost, none duplicated


def test_sqlite_writers_in_two_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    setup = ts.Store(ts.StoreSettings(url=url))
    pid, ids = _project(setup, n=5)
    setup.close()
    script = (
        "import sys, truelabel.store as ts\n"
        "s = ts.Store(ts.StoreSettings(url=sys.argv[1]), upgrade=False)\n"
        "for k in range(40):\n"
        "    with s.write() as session:\n"
        "        ts.record_decision(session, item_id=int(sys.argv[3]) + k % 5, reviewer=sys.argv[2],"
        " new_label='a', reason=f'{sys.argv[2]}-{k}')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url, name, str(ids[0])], env=env)
        for name in ("p1", "p2")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    check = ts.Store(ts.StoreSettings(url=url), upgrade=False)
    with check.read() as session:
        reasons = sorted(session.scalars(sa.select(ts.Decision.reason)).all())
    check.close()
    assert reasons == sorted(f"{p}-{k}" for p in ("p1", "p2") for k in range(40))
    assert np.unique(reasons).size == 80


# -- task claims ---------------------------------------------------------------------------
def _queue(store, pid, ids, priorities):
    import pandas as pd

    queue = pd.DataFrame(
        {
            "item_id": ids,
            "priority": priorities,
            "reasons": [[{"source": "s", "reason": "r"}]] * len(ids),
            "suggested_label": ["b"] * len(ids),
        }
    )
    with store.write() as session:
        ts.add_review_tasks(session, project_id=pid, queue=queue)


def test_two_reviewers_asking_at_once_get_disjoint_batches(db_url):
    setup = ts.Store(ts.StoreSettings(url=db_url))
    pid, ids = _project(setup, n=12)
    _queue(setup, pid, ids, np.linspace(1, 0, 12))
    setup.close()
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def ask(name: str) -> None:
        store = ts.Store(ts.StoreSettings(url=db_url), upgrade=False)
        try:
            barrier.wait()
            with store.write() as session:
                got[name] = [
                    t.id for t in ts.next_tasks(session, project_id=pid, limit=5, reviewer=name)
                ]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            store.close()

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("r1", "r2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(got["r1"]) == len(got["r2"]) == 5
    assert set(got["r1"]).isdisjoint(got["r2"])
    check = ts.Store(ts.StoreSettings(url=db_url), upgrade=False)
    with check.read() as session:
        rows = session.execute(
            sa.select(ts.ReviewTask.id, ts.ReviewTask.claimed_by).order_by(ts.ReviewTask.id)
        ).all()
    check.close()
    # the ten highest-priority tasks are claimed, each by the reviewer it was given to
    holders = {i: who for i, who in rows}
    assert sorted(got["r1"] + got["r2"]) == [i for i, _ in rows[:10]]
    assert all(holders[i] == name for name in got for i in got[name])
    assert [who for _, who in rows[10:]] == [None, None]


def test_claims_keep_expire_and_guard_decisions(store):
    from datetime import timedelta

    pid, ids = _project(store, n=6)
    _queue(store, pid, ids, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    with store.write() as session:
        t = ts.next_tasks(session, project_id=pid, limit=2, reviewer="ann", lease_seconds=60)
        ann = [x.id for x in t]
    with store.write() as session:  # bob gets the next two, not ann's
        bob = [x.id for x in ts.next_tasks(session, project_id=pid, limit=2, reviewer="bob")]
    _queue(store, pid, ids[5:6], [0.95])  # a new task above everything
    with store.write() as session:
        newest = session.scalar(sa.select(sa.func.max(ts.ReviewTask.id)))
        # asking again: ann's held tasks come first (even below the new one), and stay hers
        again = [x.id for x in ts.next_tasks(session, project_id=pid, limit=3, reviewer="ann")]
    assert bob == [ann[1] + 1, ann[1] + 2]
    assert again == [*ann, newest]
    with store.write() as session:  # a smaller batch: the best held task; the rest given back
        one = ts.next_tasks(session, project_id=pid, limit=1, reviewer="ann")
    assert [x.id for x in one] == [newest]
    with store.read() as session:
        assert session.get(ts.ReviewTask, ann[0]).claimed_by is None
        assert session.get(ts.ReviewTask, ann[1]).claimed_by is None
        held = session.get(ts.ReviewTask, newest)
    # the rule: another reviewer's live claim refuses a decision; own or expired ones pass
    with pytest.raises(ValidationError, match=f"task {newest} is claimed by ann until"):
        ts.check_claim(held, "bob")
    ts.check_claim(held, "ann")
    expires = held.claim_expires_at
    ts.check_claim(held, "bob", now=ts._models.utcnow() + timedelta(seconds=3600))
    # the look without a reviewer sees every open task, claimed or not
    with store.read() as session:
        assert len(ts.next_tasks(session, project_id=pid, limit=10)) == 6
    # an expired claim is handed out again: carl, one hour later, gets ann's task first
    later = ts._models.utcnow() + timedelta(seconds=3600)
    with store.write() as session:
        carl = ts._claims.claim_tasks(session, project_id=pid, reviewer="carl", limit=3, now=later)
    assert [x.id for x in carl] == [newest, ann[0], ann[1]]  # ann's claim expired
    assert expires is not None
    with pytest.raises(ValidationError, match="lease_seconds: got 0"), store.write() as session:
        ts.next_tasks(session, project_id=pid, reviewer="x", lease_seconds=0)
    with pytest.raises(ValidationError, match="reviewer: got ' '"), store.write() as session:
        ts.next_tasks(session, project_id=pid, reviewer=" ")


def test_bulk_decisions_equal_single_decisions(db_url, tmp_path):
    """record_decisions writes the rows N record_decision calls write (an item twice too)."""
    items = [1, 3, 1, 0]  # positions; item 1 is decided twice
    labels = ["b", "c", "a", "a"]
    rows = []
    for bulk in (False, True):
        if db_url.startswith("postgresql"):
            fresh_postgres(db_url)
        url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{tmp_path / f'{bulk}.db'}"
        store = ts.Store(ts.StoreSettings(url=url))
        pid, ids = _project(store, n=4)
        with store.write() as session:  # item 3 already reviewed once: its old label is 'b'
            ts.record_decision(session, item_id=int(ids[3]), reviewer="x", new_label="b")
        _queue(store, pid, ids, [0.5] * 4)
        with store.write() as session:
            tasks = {t.item_id: t.id for t in ts.next_tasks(session, project_id=pid, limit=9)}
        args = dict(reviewer="r", reason="batch accept")
        with store.write() as session:
            if bulk:
                ts.record_decisions(
                    session,
                    item_ids=[int(ids[i]) for i in items],
                    new_labels=labels,
                    task_ids=[tasks[ids[i]] for i in items],
                    seconds_spent=[1.0, None, 2.0, 0.0],
                    **args,
                )
            else:
                for i, lab, s in zip(items, labels, [1.0, None, 2.0, 0.0], strict=True):
                    ts.record_decision(
                        session,
                        item_id=int(ids[i]),
                        new_label=lab,
                        task_id=tasks[ids[i]],
                        seconds_spent=s,
                        **args,
                    )
        with store.read() as session:
            cols = [
                ts.Decision.item_id,
                ts.Decision.task_id,
                ts.Decision.reviewer,
                ts.Decision.old_label,
                ts.Decision.new_label,
                ts.Decision.reason,
                ts.Decision.seconds_spent,
                ts.Decision.undoes_id,
            ]
            rows.append(session.execute(sa.select(*cols).order_by(ts.Decision.id)).all())
            counts = ts.queue_counts(session, project_id=pid)
            labels_now = ts.current_labels(session, project_id=pid)["label"].tolist()
        store.close()
        assert counts == {"open": 1, "done": 3, "superseded": 0}
        assert labels_now[:2] == ["a", "a"] and labels_now[3] == "c"
    assert rows[0] == rows[1]
    # old labels chain: item 1 'b' (original) -> 'b' -> 'a'; item 3 reviewed 'b' -> 'c'
    assert [(r.old_label, r.new_label) for r in rows[1][1:]] == [
        (rows[1][1].old_label, "b"),
        ("b", "c"),
        ("b", "a"),
        (rows[1][4].old_label, "a"),
    ]
    assert rows[1][3].old_label == "b" and rows[1][2].old_label == "b"


def test_bulk_decisions_are_checked(store):
    pid, ids = _project(store)
    cases = [
        (dict(item_ids=[ids[0], 10**6], new_labels=["a", "a"]), "item_id: no item 1000000"),
        (dict(item_ids=[ids[0]], new_labels=["zz"]), "new_label: 'zz' is not a class"),
        (dict(item_ids=[ids[0]], new_labels=["a", "b"]), "new_labels: 2 labels for 1 items"),
        (dict(item_ids=[ids[0]], new_labels=["a"], seconds_spent=[-1.0]), "seconds_spent: got"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValidationError, match=match), store.write() as session:
            ts.record_decisions(session, reviewer="r", **kwargs)
    with pytest.raises(ValidationError, match="reviewer: got ''"), store.write() as session:
        ts.record_decisions(session, reviewer="", item_ids=[ids[0]], new_labels=["a"])
    with store.write() as session:
        assert ts.record_decisions(session, reviewer="r", item_ids=[], new_labels=[]) == []
    with store.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ts.Decision)) == 0


def test_sqlite_writes_are_fsynced_unless_asked_not_to(tmp_path):
    store = ts.Store(ts.StoreSettings(url=f"sqlite:///{tmp_path / 's.db'}"))
    sync = "PRAGMA synchronous"
    with store.write(durable=False) as session:  # claims: NORMAL (1), no fsync in WAL mode
        assert session.connection().exec_driver_sql(sync).scalar() == 1
    with store.write() as session:  # decisions: FULL (2)
        assert session.connection().exec_driver_sql(sync).scalar() == 2
    store.close()


def test_a_nested_sqlite_write_fails_after_the_busy_timeout_instead_of_hanging(tmp_path):
    store = ts.Store(ts.StoreSettings(url=f"sqlite:///{tmp_path / 's.db'}", busy_timeout_ms=50))
    with store.write(), pytest.raises(TimeoutError, match="no write lock after 50 ms"):
        with store.write():
            pass  # pragma: no cover - never entered
    with store.write() as session:  # the lock was given back
        assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
    store.close()
