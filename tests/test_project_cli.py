"""The project workflow from the command line: init -> audit PROJECT -> review -> export,
on SQLite and PostgreSQL; refusals and a failed import that leaves nothing behind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")

import truelabel.store as ts  # noqa: E402
from truelabel.cli import app  # noqa: E402
from truelabel.exceptions import ValidationError  # noqa: E402

runner = CliRunner()

WORDS = {
    "sport": "match goal team score league coach player season win stadium",
    "food": "pasta sauce bake recipe oven garlic flavor salad dinner spice",
    "tech": "laptop software chip code server update battery screen app cloud",
}


def _db_args(url):
    return [] if url is None else ["--database-url", url]


@pytest.fixture
def text_csv(tmp_path):
    rng = np.random.default_rng(0)
    classes = sorted(WORDS)
    rows = []
    for i in range(120):
        c = classes[i % 3]
        words = rng.choice(WORDS[c].split(), size=6)
        rows.append({"key": f"k{i:03d}", "body": " ".join(words), "topic": c})
    df = pd.DataFrame(rows)
    flipped = [5, 17, 40, 77]
    for i in flipped:
        df.loc[i, "topic"] = classes[(classes.index(df.loc[i, "topic"]) + 1) % 3]
    df.loc[3, "topic"] = None  # unlabelled
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path, df, flipped


def _init(project, path, url, *extra):
    args = ["init", str(project), "--data", str(path), "--label-col", "topic"]
    return runner.invoke(
        app, [*args, "--text-col", "body", "--id-col", "key", *extra, *_db_args(url)]
    )


def test_init_audit_review_export(text_csv, tmp_path, db_url):
    path, df, flipped = text_csv
    project = tmp_path / "proj"
    res = _init(project, path, db_url)
    assert res.exit_code == 0, res.output
    assert (
        "created project proj" in res.output and "120 items, 119 labelled, 3 classes" in res.output
    )
    meta = json.loads((project / "project.json").read_text())
    assert meta["name"] == "proj" and meta["database"] == ("sqlite" if db_url is None else "url")
    assert (project / "truelabel.db").exists() == (db_url is None)

    res = runner.invoke(
        app, ["audit", str(project), "--encoder", "tfidf", "--quiet", *_db_args(db_url)]
    )
    assert res.exit_code == 0, res.output
    run_dir = project / "runs" / "1"
    written = pd.read_csv(run_dir / "issues.csv")
    assert (run_dir / "report.html").is_file()
    with ts.opened(project, database_url=db_url) as handle, handle.store.read() as session:
        run = session.get(ts.Run, 1)
        stored = ts.run_issues(session, run_id=1)
        counts = ts.queue_counts(session, project_id=handle.project_id)
        items = dict(session.execute(sa.select(ts.Item.id, ts.Item.external_id)).all())
        tasks = ts.next_tasks(session, project_id=handle.project_id, limit=1000)
    assert run.status == "finished" and run.kind == "audit"
    flagged_label = set(written.loc[written["is_label_issue"], "row"].map(lambda r: f"k{r:03d}"))
    stored_label = {items[i] for i in stored.loc[stored.issue_type == "label", "item_id"]}
    assert stored_label == flagged_label
    assert len(flagged_label & {f"k{i:03d}" for i in flipped}) >= 3  # the audit finds them
    flagged_any = {f"k{r:03d}" for r in written.loc[written.filter(like="is_").any(axis=1), "row"]}
    assert counts["open"] == len(flagged_any) == len({t.item_id for t in tasks})
    assert run.summary["review_tasks"] == counts["open"]
    assert f"{counts['open']} items waiting for review" in res.output

    # a reviewer fixes the first flipped item; export shows it with provenance
    target = next(t for t in tasks if items[t.item_id] == "k005")
    with ts.opened(project, database_url=db_url) as handle, handle.store.write() as session:
        ts.record_decision(
            session, item_id=target.item_id, reviewer="ann", new_label="food", task_id=target.id
        )
    out = tmp_path / "export.csv"
    res = runner.invoke(app, ["export", str(project), "--out", str(out), *_db_args(db_url)])
    assert res.exit_code == 0, res.output
    exported = pd.read_csv(out, keep_default_na=False)
    assert len(exported) == 120 and exported["id"].tolist() == df["key"].tolist()
    row = exported.set_index("id").loc["k005"]
    assert (row.label, row.label_source, row.labeled_by, row.original_label) == (
        "food",
        "reviewed",
        "ann",
        df.loc[5, "topic"],
    )
    assert exported.set_index("id").loc["k003", "label_source"] == ""
    assert (exported["label_source"] == "original").sum() == 118
    with ts.opened(project, database_url=db_url) as handle, handle.store.read() as session:
        assert ts.queue_counts(session, project_id=handle.project_id)["done"] == 1

    # a second audit runs on the current labels (the reviewed one included)
    res = runner.invoke(
        app, ["audit", str(project), "--encoder", "tfidf", "--quiet", *_db_args(db_url)]
    )
    assert res.exit_code == 0, res.output
    second = pd.read_csv(project / "runs" / "2" / "issues.csv")
    assert second.set_index("row").loc[5, "given_label"] == "food"


def _tiny_project(tmp_path):
    """3 items: a reviewed, an auto-labeled and a consensus one, all exact."""
    data = tmp_path / "tiny.csv"
    pd.DataFrame(
        {"id": ["x", "y", "z"], "text": ["t1", "t2", "t3"], "label": ["a", "b", "a"]}
    ).to_csv(data, index=False)
    project = tmp_path / "tiny"
    info = ts.init_project(project, data=data, label_col="label", text_col="text", id_col="id")
    assert info == {"name": "tiny", "n_items": 3, "n_labeled": 3, "classes": ["a", "b"]}
    with ts.opened(project) as handle, handle.store.write() as session:
        ids = ts.item_ids_by_position(session, project_id=handle.project_id)
        model = ts.get_label_source(
            session, project_id=handle.project_id, kind="model", name="fewshot"
        )
        cons = ts.get_label_source(
            session, project_id=handle.project_id, kind="consensus", name="ds"
        )
        ts.add_annotations(
            session, source_id=model.id, item_ids=ids[1:], labels=["a", "b"], accepted=[True, False]
        )
        ts.add_annotations(session, source_id=cons.id, item_ids=ids[2:], labels=["b"])
        ts.record_decision(session, item_id=int(ids[0]), reviewer="ann", new_label="b", reason="r")
    return project


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_rows_are_exact(tmp_path, fmt, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    project = _tiny_project(tmp_path)
    out = tmp_path / f"out.{fmt}"
    res = runner.invoke(app, ["export", str(project), "--format", fmt, "--out", str(out)])
    assert res.exit_code == 0, res.output
    frame = {
        "csv": lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""]),
        "parquet": pd.read_parquet,
        "jsonl": lambda p: pd.read_json(p, lines=True),
    }[fmt](out)
    got = frame.astype(object).where(frame.notna(), None)
    cols = [
        "id",
        "text",
        "label",
        "label_source",
        "labeled_by",
        "original_label",
        "reviewed_label",
        "reviewed_by",
        "autolabel_label",
        "autolabel_model",
        "consensus_label",
        "consensus_by",
    ]
    assert got[cols].values.tolist() == [
        ["x", "t1", "b", "reviewed", "ann", "a", "b", "ann", None, None, None, None],
        ["y", "t2", "a", "auto-labeled", "fewshot", "b", None, None, "a", "fewshot", None, None],
        ["z", "t3", "b", "consensus", "ds", "a", None, None, None, None, "b", "ds"],
    ]
    stamps = got[["labeled_at", "reviewed_at", "autolabel_at", "consensus_at"]].values.tolist()
    assert (
        stamps[0][0] == stamps[0][1]
        and stamps[1][0] == stamps[1][2]
        and stamps[2][0] == stamps[2][3]
    )
    assert all(str(s).endswith("+00:00") for s in (stamps[0][0], stamps[1][0], stamps[2][0]))
    assert "reviewed" in res.output and "auto-labeled" in res.output
    # streamed one item at a time: the same file
    one = tmp_path / f"one.{fmt}"
    with ts.opened(project) as handle:
        ts.export_project(handle, out=one, format=fmt, chunk_rows=1)
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(one), pd.read_parquet(out))
    else:
        assert one.read_text() == out.read_text()


def test_export_refusals(tmp_path, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    project = _tiny_project(tmp_path)
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["export", str(project), "--format", "xlsx", "--out", str(out)])
    assert (
        res.exit_code == 2
        and "error: --format: got 'xlsx'; pass one of csv, parquet, jsonl" in res.output
    )
    out.write_text("keep me")
    res = runner.invoke(app, ["export", str(project), "--out", str(out)])
    assert res.exit_code == 2 and "already exists; pass another path or --overwrite" in res.output
    assert out.read_text() == "keep me"
    res = runner.invoke(app, ["export", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and "is not a truelabel project (no project.json)" in res.output


def test_init_refuses_an_existing_project_and_bad_columns(text_csv, tmp_path, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    path, _, _ = text_csv
    project = tmp_path / "proj"
    assert _init(project, path, None).exit_code == 0
    before = (project / "truelabel.db").stat().st_size
    res = _init(project, path, None)
    assert res.exit_code == 2
    assert (
        f"error: PROJECT: '{project}' already holds a truelabel project; pick a new folder"
        in res.output
    )
    assert (project / "truelabel.db").stat().st_size == before
    res = runner.invoke(
        app, ["init", str(tmp_path / "p2"), "--data", str(path), "--label-col", "topik"]
    )
    assert (
        res.exit_code == 2
        and "error: --label-col: no column named 'topik'; did you mean 'topic'?" in res.output
    )
    assert not (tmp_path / "p2").exists()
    res = runner.invoke(
        app,
        [
            "init",
            str(tmp_path / "p3"),
            "--data",
            str(path),
            "--label-col",
            "topic",
            "--text-col",
            "body",
            "--image-col",
            "body",
        ],
    )
    assert (
        res.exit_code == 2
        and "error: --image-col: given with --text-col 'body'; pass one of the two" in res.output
    )
    res = runner.invoke(
        app,
        [
            "init",
            str(tmp_path / "p4"),
            "--data",
            str(path),
            "--label-col",
            "topic",
            "--image-col",
            "body",
        ],
    )
    assert res.exit_code == 2 and "error: --image-col: row 0: image" in res.output
    assert not (tmp_path / "p4").exists()


def test_a_failed_import_leaves_no_half_project(text_csv, tmp_path, db_url, monkeypatch):
    path, _, _ = text_csv
    import truelabel.store._projects as projects

    real = projects.insert_columns
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # items are in; the annotations fail
            raise OSError("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(projects, "insert_columns", failing)
    for project, existed in ((tmp_path / "new", False), (tmp_path / "old", True)):
        calls["n"] = 0
        if existed:
            project.mkdir()
            (project / "notes.txt").write_text("mine")
        with pytest.raises(OSError, match="disk full"):
            ts.init_project(
                project, data=path, label_col="topic", text_col="body", database_url=db_url
            )
        assert calls["n"] == 2
        if existed:
            assert sorted(p.name for p in project.iterdir()) == ["notes.txt"]
        else:
            assert not project.exists()
    if db_url is not None:
        engine = sa.create_engine(ts.StoreSettings(url=db_url).url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM projects").scalar() == 0
            assert conn.exec_driver_sql("SELECT count(*) FROM items").scalar() == 0
        engine.dispose()
    monkeypatch.setattr(projects, "insert_columns", real)
    info = ts.init_project(
        tmp_path / "old", data=path, label_col="topic", text_col="body", database_url=db_url
    )
    assert info["n_items"] == 120


def test_audit_keeps_the_file_form_and_refuses_mixed_options(text_csv, tmp_path, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    path, _, _ = text_csv
    res = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert (
        f"error: --label-col: missing (DATA '{path}' is a file, not a project folder); pass --label-col COL and --out DIR"
        in res.output
    )
    project = tmp_path / "proj"
    assert _init(project, path, None).exit_code == 0
    res = runner.invoke(app, ["audit", str(project), "--label-col", "topic"])
    assert res.exit_code == 2
    assert f"error: --label-col: given with the project folder '{project}'" in res.output


def test_a_name_is_unique_per_database(text_csv, tmp_path, db_url):
    path, _, _ = text_csv
    if db_url is None:  # SQLite: one database per folder, so the same name is fine
        assert _init(tmp_path / "a" / "proj", path, None).exit_code == 0
        assert _init(tmp_path / "b" / "proj", path, None).exit_code == 0
        return
    assert _init(tmp_path / "a" / "proj", path, db_url).exit_code == 0
    res = _init(tmp_path / "b" / "proj", path, db_url)
    assert res.exit_code == 2
    assert "error: --name: a project named 'proj' already exists in this database" in res.output
    assert not (tmp_path / "b" / "proj").exists()
    res = _init(tmp_path / "b" / "proj", path, db_url, "--name", "proj-b")
    assert res.exit_code == 0, res.output
    with ts.opened(tmp_path / "b" / "proj", database_url=db_url) as handle:
        assert handle.name == "proj-b"


def test_a_url_project_needs_its_url(tmp_path, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    project = tmp_path / "p"
    project.mkdir()
    (project / "project.json").write_text(json.dumps({"format": 1, "name": "p", "database": "url"}))
    with pytest.raises(
        ValidationError,
        match=r"keeps its data in a database given by URL, and none is set; set TRUELABEL_DATABASE_URL=",
    ):
        ts.open_project(project)
    (project / "project.json").write_text("{")
    with pytest.raises(ValidationError, match="is damaged"):
        ts.open_project(project)
