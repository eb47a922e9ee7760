"""``truelabel next PROJECT``: the active learner's suggestions reach the review queue
(merged with earlier reasons, never duplicating an item's open task), on SQLite and
PostgreSQL; and the review source that carries them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.exceptions import ValidationError
from truelabel.review import ActiveLearningSource, ReviewQueue

sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")

import truelabel.store as ts  # noqa: E402
from truelabel.cli import app  # noqa: E402

runner = CliRunner()
N_ITEMS = 60
_WORDS = ["small insect colony digs", "honey flower hive buzz", "purring whiskers pet milk"]


def _db(url):
    return [] if url is None else ["--database-url", url]


def _project(tmp_path, url, n_labeled):
    """60 items in 3 well-separated clusters (features saved beside), the first
    ``n_labeled`` labeled by cluster."""
    emb = _write_data(tmp_path, n_labeled)
    project = tmp_path / "proj"
    args = ["init", str(project), "--data", str(tmp_path / "data.csv"), "--label-col", "label"]
    res = runner.invoke(app, [*args, "--text-col", "text", "--id-col", "key", *_db(url)])
    assert res.exit_code == 0, res.output
    return project, emb


def _write_data(tmp_path, n_labeled):
    """data.csv and emb.npy of :func:`_project`; returns the path of emb.npy."""
    rng = np.random.default_rng(0)
    cluster = np.arange(N_ITEMS) % 3
    centers = np.eye(3, 8) * 5.0
    vectors = (centers[cluster] + rng.normal(0, 0.3, (N_ITEMS, 8))).astype(np.float32)
    names = np.array(["ant", "bee", "cat"])
    labels = pd.Series(names[cluster], dtype=object)
    labels[n_labeled:] = None
    data = pd.DataFrame(
        {
            "key": [f"k{i:02d}" for i in range(N_ITEMS)],
            "text": [f"{_WORDS[c]} note {i}" for i, c in enumerate(cluster)],
        }
    ).assign(label=labels)
    data.to_csv(tmp_path / "data.csv", index=False)
    np.save(tmp_path / "emb.npy", vectors)
    return tmp_path / "emb.npy"


def _open_tasks(project, url):
    with ts.opened(project, database_url=url) as handle, handle.store.read() as session:
        rows = session.execute(
            sa.select(ts.Item.external_id, ts.ReviewTask.reasons, ts.ReviewTask.suggested_label)
            .join(ts.Item, ts.Item.id == ts.ReviewTask.item_id)
            .where(ts.ReviewTask.status == "open")
        ).all()
        superseded = session.scalar(
            sa.select(sa.func.count()).where(ts.ReviewTask.status == "superseded")
        )
    return {r[0]: (r[1], r[2]) for r in rows}, superseded


def test_next_queues_the_suggestions_and_merges_earlier_reasons(tmp_path, db_url):
    project, emb = _project(tmp_path, db_url, n_labeled=9)
    base = ["next", str(project), "--features", str(emb), "--quiet", *_db(db_url)]

    res = runner.invoke(app, [*base, "--n", "5", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "dry run: nothing queued" in res.output and "9 labeled items taught" in res.output
    assert _open_tasks(project, db_url) == ({}, 0)

    # an audit task already waits on the first pick; the picks are reproducible (seed 0)
    with ts.opened(project, database_url=db_url) as handle:
        first = ts.next_items(handle, n=5, features=np.load(emb), dry_run=True)
        picked = first.suggestions["external_id"].tolist()
        # the 9 labels taught once each, in steps, so successive models give an estimate
        assert first.n_labeled == 9 and first.stop_estimate.n_answers == 9
        assert np.isfinite(first.stop_estimate.agreement)
        assert first.features_note == "precomputed vectors (8 dimensions)"
        assert len(ts.next_items(handle, n=1, features=np.load(emb), dry_run=True).suggestions) == 1
        held, held_id = picked[0], int(first.suggestions["item_id"].iloc[0])
        for reason in ("an older reason, superseded", "the given label looks wrong"):
            row = (held_id, reason, 0.7, "bee")  # the second supersedes the first
            queue = ReviewQueue([_Fixed("audit", [row])])
            with handle.store.write() as session:
                ts.add_review_tasks(session, project_id=handle.project_id, queue=queue.build())

    res = runner.invoke(app, [*base, "--n", "5"])
    assert res.exit_code == 0, res.output
    assert "5 review tasks queued" in res.output
    tasks, superseded = _open_tasks(project, db_url)
    assert sorted(tasks) == sorted(picked)  # the same picks as the dry run, each queued once
    assert superseded == 2  # the older audit task, then the open one replaced by the merge
    sources = {k: sorted(r["source"] for r in reasons) for k, (reasons, _) in tasks.items()}
    assert sources[held] == ["active", "audit"]  # the open task's reason is kept, not the older
    assert all(v == ["active"] for k, v in sources.items() if k != held)
    kept = next(r for r in tasks[held][0] if r["source"] == "audit")
    assert kept == {
        "source": "audit",
        "reason": "the given label looks wrong",
        "priority": 0.7,
        "suggested_label": "bee",
    }
    assert tasks[held][1] == "bee"  # the earlier suggestion survives the merge
    assert all(label is None for k, (_, label) in tasks.items() if k != held)  # no anchoring
    for key, (reasons, _) in tasks.items():
        active = next(r for r in reasons if r["source"] == "active")
        assert active["reason"].startswith("label this item next (not labeled yet): ")
        assert int(key[1:]) >= 9  # only unlabeled items for a "label" action


class _Fixed:
    def __init__(self, name, rows):
        self.name, self.rows = name, rows

    def candidates(self):
        return pd.DataFrame(self.rows, columns=["item_id", "reason", "priority", "suggested_label"])


def test_next_cold_start_and_refusals(tmp_path):
    project, emb = _project(tmp_path, None, n_labeled=1)  # one class known: no model yet
    res = runner.invoke(app, ["next", str(project), "--features", str(emb), "--n", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "1 labeled items taught" in res.output and "cold start" in res.output
    assert "not enough refits yet" in res.output  # no model: no estimate is made up
    tasks, _ = _open_tasks(project, None)
    assert len(tasks) == 3

    res = runner.invoke(app, ["next", str(project), "--features", str(emb), "--n", "0"])
    assert res.exit_code == 2 and "--n: got 0" in res.output
    np.save(tmp_path / "short.npy", np.zeros((5, 8), np.float32))
    res = runner.invoke(app, ["next", str(project), "--features", str(tmp_path / "short.npy")])
    assert res.exit_code == 2 and "--features" in res.output and "5" in res.output
    res = runner.invoke(app, ["next", str(project), "--features", str(emb), "--n", "61"])
    assert res.exit_code == 2 and "61" in res.output
    assert len(_open_tasks(project, None)[0]) == 3  # nothing written by a refused call

    with ts.opened(project) as handle:
        image = dataclasses.replace(handle, content_kind="image")
        with pytest.raises(ValidationError, match="features.*image items.*--features emb.npy"):
            ts.next_items(image, n=2)
        with pytest.raises(ValidationError, match="features.*5 rows.*60"):
            ts.next_items(handle, n=2, features=np.zeros((5, 8), np.float32))

        class Fake:  # any object with encode(texts): its vectors are the ones used
            identity = "fake-encoder"

            def __init__(self):
                self.seen = []

            def encode(self, texts):
                self.seen.append(list(texts))
                return np.load(emb).astype(np.float64)

        fake = Fake()
        got = ts.next_items(handle, n=3, encoder=fake, dry_run=True)
        assert got.features_note == "sentence encoder fake-encoder"
        assert fake.seen == [[f"{_WORDS[i % 3]} note {i}" for i in range(N_ITEMS)]]
        same = ts.next_items(handle, n=3, features=np.load(emb), dry_run=True)
        assert got.suggestions["item_id"].tolist() == same.suggestions["item_id"].tolist()
        for bad in (0, True, 2.0):
            with pytest.raises(ValidationError, match=f"n: got {bad!r}; pass an int >= 1"):
                ts.next_items(handle, n=bad, features=np.load(emb))


def test_next_without_features_encodes_the_texts(tmp_path):
    project, _ = _project(tmp_path, None, n_labeled=6)
    res = runner.invoke(app, ["next", str(project), "--encoder", "tfidf", "--n", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "vectors: TF-IDF/LSA vectors" in res.output


def test_tfidf_on_a_one_word_vocabulary_says_so():
    from truelabel.encode import TfidfEncoder

    texts = [f"item {i}" for i in range(30)]  # only "item" is in >= 2 texts
    with pytest.raises(ValidationError, match=r"texts.*1 word\(s\).*in at least 2 of the 30"):
        TfidfEncoder().fit(texts)


def test_active_learning_source_maps_rows_and_words():
    s = pd.DataFrame(
        {
            "item_id": [2, 0, 1],
            "action": ["label", "relabel", "label"],
            "reason": ["uncertain", "doubtful", "typical"],
            "score": [0.9, 1.4, -0.2],
        }
    )
    rows = ActiveLearningSource(s, item_ids=[10, 11, 12], weight=0.5).candidates()
    assert rows["item_id"].tolist() == [12, 10, 11]
    assert rows["priority"].tolist() == [0.45, 0.5, 0.0]  # scores clipped to [0, 1], weighted
    assert rows["reason"].tolist() == [
        "label this item next (not labeled yet): uncertain",
        "label this item again (its label is doubtful): doubtful",
        "label this item next (not labeled yet): typical",
    ]
    assert rows["suggested_label"].isna().all()
    built = ReviewQueue([ActiveLearningSource(s)]).build()
    assert built["item_id"].tolist() == [0, 2, 1] and built["sources"].tolist()[0] == ["active"]
    errors = [
        (
            {"suggestions": s.drop(columns="score")},
            "suggestions: has no column(s) ['score']; "
            "pass ActiveLearner.suggest(n): item_id, action, reason, score",
        ),
        (
            {"suggestions": s.assign(action=["label", "skip", "label"])},
            "suggestions: has action(s) ['skip']; actions are ['label', 'relabel']",
        ),
        ({"suggestions": s, "weight": 0}, "weight: got 0; pass a number in (0, 1]"),
        ({"suggestions": s, "weight": 1.5}, "weight: got 1.5; pass a number in (0, 1]"),
        (
            {"suggestions": s, "item_ids": [10, 11]},
            "suggestions: item_id 2 is outside the 2 feature rows; "
            "pass item_ids with one id per row of the learner's features",
        ),
        (
            {"suggestions": s.assign(item_id=[2, -1, 1]), "item_ids": [10, 11, 12]},
            "suggestions: item_id -1 is outside the 3 feature rows",
        ),
    ]
    for kwargs, message in errors:
        with pytest.raises(ValidationError) as err:
            ActiveLearningSource(**kwargs)
        assert str(err.value).startswith(message), str(err.value)
    assert len(ActiveLearningSource(s, weight=1).candidates()) == 3  # the bound is inclusive


def test_next_without_the_app_extra_says_which_extra(tmp_path, monkeypatch):
    import sys

    # as on a plain install: truelabel.store cannot import SQLAlchemy
    for name in [
        m for m in sys.modules if m == "truelabel.store" or m.startswith("truelabel.store.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    res = runner.invoke(app, ["next", str(tmp_path), "--n", "2"])
    assert res.exit_code == 2  # one error line, no traceback
    assert res.output.startswith("error: truelabel.store needs the optional package")
    assert "pip install 'truelabel[app]'" in res.output


def test_a_project_with_no_labels_starts_from_named_classes(tmp_path, db_url):
    """`init --classes` without `--label-col`: 0 labels, the classes in file order; `next`
    picks typical items of every cluster; a reviewer's answer becomes the item's label and
    the next `next` is taught it."""
    emb = _write_data(tmp_path, n_labeled=0)  # the label column is all empty
    fresh = tmp_path / "fresh"
    (tmp_path / "classes.txt").write_text("cat\nbee\nant\n")
    data = ["--data", str(tmp_path / "data.csv"), "--text-col", "text", "--id-col", "key"]
    classes = ["--classes", str(tmp_path / "classes.txt"), *_db(db_url)]
    res = runner.invoke(app, ["init", str(fresh), *data, *classes])
    assert res.exit_code == 0, res.output
    assert "60 items, 0 labelled, 3 classes" in res.output
    res = runner.invoke(app, ["audit", str(fresh), "--features", str(emb), *_db(db_url)])
    assert res.exit_code == 2 and "PROJECT: has no labelled item yet" in res.output, res.output
    assert "truelabel next PROJECT" in res.output
    with ts.opened(fresh, database_url=db_url) as handle:
        assert handle.settings["classes"] == ["cat", "bee", "ant"]  # file order, not sorted
        assert handle.settings["label_col"] is None
        with handle.store.read() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(ts.Annotation)) == 0
        first = ts.next_items(handle, n=6, features=np.load(emb))
    picks = first.suggestions
    assert (picks["action"] == "label").all() and first.n_labeled == 0 and first.n_tasks == 6
    assert picks["reason"].str.startswith("cold start").all()
    # typical items of every cluster (items are clustered by position mod 3)
    assert sorted(set(picks["external_id"].map(lambda k: int(k[1:]) % 3))) == [0, 1, 2]

    from fastapi.testclient import TestClient

    from truelabel.web import Settings, create_app

    web = create_app(Settings(project=fresh, database_url=db_url))
    with TestClient(web, base_url="http://127.0.0.1") as c:
        c.headers["X-CSRF-Token"] = c.get("/api/session").json()["csrf_token"]
        task = c.get("/api/tasks/next", params={"limit": 1}).json()[0]
        keep = c.post("/api/decisions", json={"task_id": task["task_id"], "action": "keep"})
        assert keep.status_code == 422 and "no label to keep" in keep.text
        ok = c.post(
            "/api/decisions",
            json={"task_id": task["task_id"], "action": "relabel", "label": "bee"},
        )
        assert ok.status_code == 200 and (ok.json()["old_label"], ok.json()["new_label"]) == (
            None,
            "bee",
        )
    with ts.opened(fresh, database_url=db_url) as handle:
        again = ts.next_items(handle, n=2, features=np.load(emb), dry_run=True)
    assert again.n_labeled == 1


def test_init_without_labels_needs_the_classes(tmp_path):
    _write_data(tmp_path, n_labeled=0)
    data = ["--data", str(tmp_path / "data.csv"), "--text-col", "text"]
    res = runner.invoke(app, ["init", str(tmp_path / "a"), *data])
    assert res.exit_code == 2 and "--label-col: not given and no classes are named" in res.output
    assert "--classes classes.txt" in res.output and not (tmp_path / "a").exists()
    # labels the data has that the named classes lack are refused, nothing written
    (tmp_path / "two.txt").write_text("ant\nbee\n")
    (tmp_path / "three.txt").write_text("cat\nbee\nant\n")
    frame = pd.read_csv(tmp_path / "data.csv").assign(label=["cat"] + [None] * (N_ITEMS - 1))
    frame.to_csv(tmp_path / "one.csv", index=False)
    one = ["--label-col", "label"]
    two = ["--classes", str(tmp_path / "two.txt")]
    three = ["--classes", str(tmp_path / "three.txt")]
    res = runner.invoke(
        app,
        ["init", str(tmp_path / "b"), "--data", str(tmp_path / "one.csv"), *one, *two],
    )
    assert res.exit_code == 2 and "'cat'" in res.output and not (tmp_path / "b").exists()
    # the labels of the data set the project's labels when classes are named too
    res = runner.invoke(
        app,
        ["init", str(tmp_path / "c"), "--data", str(tmp_path / "one.csv"), *one, *three],
    )
    assert res.exit_code == 0 and "1 labelled, 3 classes" in res.output, res.output
