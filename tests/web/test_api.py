"""The review API against a real project database: summary, queue, decisions, undo,
history, batch accept, search and export, each checked value by value."""

from __future__ import annotations

import io

import pandas as pd
import pytest

import truelabel.store as ts
from truelabel.web._deps import solo_name

from .conftest import CLASSES, FLAGGED, XSS, _pred_probs


def _next(client, **params):
    response = client.get("/api/tasks/next", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_project_summary_counts_and_class_rates(client):
    body = client.get("/api/project").json()
    assert body["n_items"] == 12
    assert body["queue"] == {"open": 3, "done": 0, "superseded": 0}
    assert body["classes"] == CLASSES
    assert body["decisions"] == 0
    # given labels: ham 6 (2 and 9 flagged), spam 4 (5 flagged), xss 2
    rates = {r["label"]: (r["items"], r["flagged"]) for r in body["class_rates"]}
    assert rates == {"ham": (6, 2), "spam": (4, 1), XSS: (2, 0)}
    ham = next(r for r in body["class_rates"] if r["label"] == "ham")
    assert ham["rate"] == pytest.approx(2 / 6)


def test_next_tasks_order_words_and_top_classes(client):
    tasks = _next(client, limit=10)
    # priority = 1 - score: row 2 (0.10), row 5 (0.20), row 9 (0.30)
    assert [t["external_id"] for t in tasks] == ["i2", "i5", "i9"]
    assert [t["priority"] for t in tasks] == pytest.approx([0.9, 0.8, 0.7])
    first = tasks[0]
    assert (first["given_label"], first["suggested_label"]) == ("ham", "spam")
    assert first["content"] == "message number 2"
    assert first["top_classes"] == [
        {"label": "spam", "probability": 0.7},
        {"label": "ham", "probability": 0.25},
        {"label": XSS, "probability": 0.05},
    ]
    assert first["reasons"] == [
        "the given label looks wrong: given 'ham', the model suggests 'spam' (score 0.100)"
    ]
    probs = _pred_probs()[9]
    assert tasks[2]["top_classes"][0] == {"label": XSS, "probability": round(probs.max(), 4)}
    assert [t["external_id"] for t in _next(client, limit=2, exclude=tasks[0]["task_id"])] == [
        "i5",
        "i9",
    ]


def _labels_now(project):
    folder, url = project
    with ts.opened(folder, database_url=url) as handle:
        frame = ts.export_frame(handle)
    return frame.set_index("id")


def test_decisions_accept_keep_relabel_skip(client, project):
    t2, t5, t9 = _next(client, limit=3)
    ok = client.post(
        "/api/decisions", json={"task_id": t2["task_id"], "action": "accept", "seconds_spent": 2.5}
    )
    assert ok.status_code == 200, ok.text
    d = ok.json()
    assert (d["old_label"], d["new_label"], d["reason"]) == ("ham", "spam", "accept")
    assert d["reviewer"] == solo_name() and d["seconds_spent"] == 2.5
    skip = client.post("/api/decisions", json={"task_id": t5["task_id"], "action": "skip"})
    assert skip.status_code == 200 and skip.json() is None
    keep = client.post("/api/decisions", json={"task_id": t5["task_id"], "action": "keep"}).json()
    assert (keep["old_label"], keep["new_label"]) == ("spam", "spam")
    relabel = client.post(
        "/api/decisions", json={"task_id": t9["task_id"], "action": "relabel", "label": "spam"}
    ).json()
    assert (relabel["old_label"], relabel["new_label"]) == ("ham", "spam")
    frame = _labels_now(project)
    assert frame.loc["i2", "label"] == "spam" and frame.loc["i2", "label_source"] == "reviewed"
    assert frame.loc["i5", "label"] == "spam" and frame.loc["i5", "reviewed_by"] == solo_name()
    assert frame.loc["i9", "label"] == "spam"
    assert frame.loc["i0", "label_source"] == "original"
    assert client.get("/api/project").json()["queue"]["open"] == 0
    # a decided task is closed; a label outside the classes is refused
    again = client.post("/api/decisions", json={"task_id": t2["task_id"], "action": "keep"})
    assert again.status_code == 422 and "is done" in again.json()["detail"]


def test_decision_refusals(client):
    t2 = _next(client, limit=1)[0]
    bad = client.post(
        "/api/decisions", json={"task_id": t2["task_id"], "action": "relabel", "label": "eggs"}
    )
    assert bad.status_code == 422 and "'eggs' is not a class" in bad.json()["detail"]
    assert client.post("/api/decisions", json={"task_id": 999, "action": "keep"}).status_code == 422
    wrong = client.post("/api/decisions", json={"task_id": t2["task_id"], "action": "delete"})
    assert wrong.status_code == 422
    negative = client.post(
        "/api/decisions", json={"task_id": t2["task_id"], "action": "keep", "seconds_spent": -1}
    )
    assert negative.status_code == 422
    assert client.get("/api/project").json()["decisions"] == 0


def test_undo_and_history(client, project):
    t2 = _next(client, limit=1)[0]
    d = client.post("/api/decisions", json={"task_id": t2["task_id"], "action": "accept"}).json()
    undo = client.post("/api/decisions/undo", json={"decision_id": d["id"]})
    assert undo.status_code == 200, undo.text
    assert undo.json()["undoes_id"] == d["id"]
    assert (undo.json()["old_label"], undo.json()["new_label"]) == ("spam", "ham")
    assert _labels_now(project).loc["i2", "label_source"] == "original"
    assert _next(client, limit=1)[0]["task_id"] == t2["task_id"]  # open again, first again
    history = client.get(f"/api/items/{t2['item_id']}/history").json()
    assert [(h["id"], h["undoes_id"]) for h in history] == [
        (d["id"], None),
        (undo.json()["id"], d["id"]),
    ]
    twice = client.post("/api/decisions/undo", json={"decision_id": d["id"]})
    assert twice.status_code == 422 and "already undone" in twice.json()["detail"]
    assert client.post("/api/decisions/undo", json={"decision_id": 12345}).status_code == 404
    assert client.get("/api/items/99999/history").status_code == 404


def test_batch_accept_filters_and_is_one_transaction(client, project, monkeypatch):
    only_ham = client.post("/api/tasks/batch-accept", json={"suggested_label": "ham"}).json()
    assert only_ham["accepted"] == 1
    frame = _labels_now(project)
    assert frame.loc["i5", "label"] == "ham" and frame.loc["i2", "label"] == "ham"
    # a failure after the bulk insert (before the commit) rolls the whole batch back
    import truelabel.store as store_mod

    real = store_mod.record_decisions
    calls = []

    def flaky(session, **kwargs):
        calls.append(real(session, **kwargs))
        raise RuntimeError("crash in the middle of a batch")

    monkeypatch.setattr(store_mod, "record_decisions", flaky)
    with pytest.raises(RuntimeError, match="middle of a batch"):
        client.post("/api/tasks/batch-accept", json={})
    assert len(calls[0]) == 2  # two decisions were inserted, then rolled back
    monkeypatch.setattr(store_mod, "record_decisions", real)
    assert client.get("/api/project").json()["decisions"] == 1
    none = client.post("/api/tasks/batch-accept", json={"issue_text": "unusual"}).json()
    assert none == {"accepted": 0, "decision_ids": []}
    low = client.post("/api/tasks/batch-accept", json={"min_priority": 0.95}).json()
    assert low["accepted"] == 0
    rest = client.post("/api/tasks/batch-accept", json={"issue_text": "looks wrong"}).json()
    assert rest["accepted"] == 2
    frame = _labels_now(project)
    assert (frame.loc["i2", "label"], frame.loc["i9", "label"]) == ("spam", XSS)


def test_search_text_id_and_label(client):
    hits = client.get("/api/items", params={"q": "NUMBER 1"}).json()
    assert [h["external_id"] for h in hits] == ["i1", "i10", "i11"]
    assert client.get("/api/items", params={"q": "%"}).json()[0]["external_id"] == "i4"
    assert [h["external_id"] for h in client.get("/api/items", params={"q": "_"}).json()] == ["i4"]
    spam = client.get("/api/items", params={"label": "spam"}).json()
    assert [h["external_id"] for h in spam] == ["i1", "i3", "i5", "i10"]
    xss = client.get("/api/items", params={"q": "script"}).json()
    assert [(h["external_id"], h["content"]) for h in xss] == [("i9", f"{XSS} hello")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_download_matches_store_export(client, project, fmt):
    t2 = _next(client, limit=1)[0]
    client.post("/api/decisions", json={"task_id": t2["task_id"], "action": "accept"})
    response = client.get("/api/export", params={"format": fmt})
    assert response.status_code == 200
    if fmt == "csv":
        got = pd.read_csv(io.StringIO(response.text), dtype=str, keep_default_na=False)
    else:
        got = pd.read_json(io.StringIO(response.text), lines=True, dtype=str)
    want = _labels_now(project).reset_index()
    assert got["id"].tolist() == want["id"].tolist()
    assert got["label"].tolist() == want["label"].tolist()
    assert got.loc[2, "reviewed_by"] == solo_name()
    assert sum(1 for k, v in FLAGGED.items() if got.loc[k, "label"] == v[1]) == 1


def test_openapi_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/project",
        "/api/tasks/next",
        "/api/decisions",
        "/api/decisions/undo",
        "/api/items",
        "/api/tasks/batch-accept",
        "/api/export",
    ):
        assert path in paths


def test_a_task_claimed_by_another_reviewer_is_not_served_decided_or_batch_accepted(
    client, project
):
    folder, url = project
    with ts.opened(folder, database_url=url) as handle, handle.store.write() as session:
        held = ts.next_tasks(session, project_id=handle.project_id, limit=1, reviewer="zoe")[0]
    served = [t["task_id"] for t in client.get("/api/tasks/next", params={"limit": 5}).json()]
    assert held.id not in served and len(served) == 2
    refused = client.post("/api/decisions", json={"task_id": held.id, "action": "accept"})
    assert refused.status_code == 422 and f"task {held.id} is claimed by zoe" in refused.text
    batch = client.post("/api/tasks/batch-accept", json={}).json()
    assert batch["accepted"] == 2  # zoe's task is left to her
    assert client.get("/api/project").json()["queue"]["open"] == 1
    # a skip gives the task back at once
    with ts.opened(folder, database_url=url) as handle, handle.store.write() as session:
        ts.undo_decision(session, decision_id=batch["decision_ids"][0], reviewer="r")
    mine = client.get("/api/tasks/next", params={"limit": 1}).json()[0]["task_id"]
    assert client.post("/api/decisions", json={"task_id": mine, "action": "skip"}).json() is None
    with ts.opened(folder, database_url=url) as handle, handle.store.read() as session:
        assert session.get(ts.ReviewTask, mine).claimed_by is None
