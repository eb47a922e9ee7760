"""The review page's context: each flagged item's nearest neighbours and near-duplicate set
kept by the audit and stored with its run, and why it was flagged in words; the item page
and its API; on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import truelabel.store as ts
from truelabel import Audit
from truelabel.review import explain_item

from .conftest import XSS, _labels, _pred_probs

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# hand-made context of the flagged rows 2, 5, 9 (positions): neighbours, nearest first
NEIGHBOURS = {2: [3, 5, 1, 0, 10], 5: [4, 9, 2, 8, 7], 9: [6, 7, 2, 11, 8]}
DUP_SET = {2: 7, 5: 7, 9: -1}  # rows 2 and 5 are near-duplicates; 9 is in no set


# -- the words ---------------------------------------------------------------------------------


def test_explain_item_sentences_hand_worked():
    probs = {"ham": 0.25, "spam": 0.70, "x": 0.05}
    assert explain_item(
        label="ham",
        probabilities=probs,
        neighbor_labels=["spam", "spam", "spam", "ham", "spam"],
        duplicate_labels=["spam", "ham", "spam"],
    ) == [
        "The model is 70% sure this is 'spam'; it gives the label 'ham' 25%.",
        "4 of its 5 nearest neighbours are labeled 'spam'.",
        "It is a near-duplicate of 3 other items; 2 of them are labeled differently ('spam').",
    ]
    # the model agrees; neighbours agree; unlabelled neighbours still count in the total
    assert explain_item(
        label="spam",
        probabilities={"ham": 0.004, "spam": 0.996},
        neighbor_labels=["spam", None, "ham"],
        duplicate_labels=["spam"],
    ) == [
        "The model agrees with the label 'spam' (over 99% sure).",
        "1 of its 3 nearest neighbours share its label 'spam'.",
        "It is a near-duplicate of 1 other item, all labeled the same.",
    ]
    # a tie between neighbour labels goes to the nearer neighbour's label; no label yet
    assert explain_item(label=None, neighbor_labels=["b", "a", "a", "b"]) == [
        "2 of its 4 nearest neighbours are labeled 'b'."
    ]
    assert explain_item(label=None, probabilities={"a": 0.5, "b": 0.5}) == [
        "The model is 50% sure this is 'a'; it has no label yet."
    ]
    assert explain_item(label="a", probabilities={"a": 0.001, "b": 0.999})[0] == (
        "The model is over 99% sure this is 'b'; it gives the label 'a' under 1%."
    )
    assert explain_item(label="a", neighbor_labels=[None, None], duplicate_labels=["b"]) == [
        "It is a near-duplicate of 1 other item; 1 of them is labeled differently ('b')."
    ]
    assert explain_item(label="a") == []


# -- the audit keeps the flagged items' neighbours -----------------------------------------------


def test_audit_keeps_the_flagged_items_nearest_neighbours():
    rng = np.random.default_rng(3)
    n = 60
    features = rng.normal(size=(n, 4))
    labels = rng.integers(0, 3, size=n)
    probs = rng.dirichlet(np.ones(3), size=n)
    probs[np.arange(n), labels] += 2.0  # the model mostly agrees ...
    probs /= probs.sum(axis=1, keepdims=True)
    labels[:6] = (labels[:6] + 1) % 3  # ... except on six flipped labels
    result = Audit(n_neighbors=8).run(labels=labels, pred_probs=probs, features=features)
    flags = result.issues.filter(like="is_").to_numpy(bool).any(axis=1)
    assert flags.any() and not flags.all()
    kept = result.neighbors
    assert kept is not None
    np.testing.assert_array_equal(kept["rows"], np.flatnonzero(flags))
    # brute force: Euclidean distance, self excluded, nearest first
    dist = ((features[:, None, :] - features[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    naive = np.argsort(dist, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(kept["indices"], naive[kept["rows"]])
    # without features no graph is built, and none is kept
    assert Audit().run(labels=labels, pred_probs=probs).neighbors is None


@pytest.mark.filterwarnings("ignore::truelabel.exceptions.TruelabelWarning")  # 12 items
def test_audit_project_stores_each_flagged_items_context(tmp_path, db_url):
    from .conftest import build_project

    folder = build_project(tmp_path / "proj", db_url)
    rng = np.random.default_rng(1)
    features = rng.normal(size=(12, 3))
    features[7] = features[3] + 1e-4  # a near-duplicate pair
    with ts.opened(folder, database_url=db_url) as handle:
        with handle.store.read() as s:
            ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        run_id, result, _ = ts.audit_project(
            handle, features=features, pred_probs=_pred_probs(), n_neighbors=5
        )
        with handle.store.read() as s:
            stored = ts.item_context(s, run_id=run_id, item_ids=[int(i) for i in ids])
    rows = result.neighbors["rows"]
    assert sorted(stored) == sorted(int(ids[r]) for r in rows)
    for r, nb in zip(rows, result.neighbors["indices"], strict=True):
        assert stored[int(ids[r])]["neighbors"] == [int(ids[j]) for j in nb]
    sets = result.issues["near_duplicate_set"].to_numpy()
    assert sets[3] >= 0 and sets[3] == sets[7]
    assert stored[int(ids[3])]["duplicates"] == [int(ids[7])]
    assert stored[int(ids[7])]["duplicates"] == [int(ids[3])]


# -- the page and the API ----------------------------------------------------------------------


def _add_context(project):
    folder, url = project
    with ts.opened(folder, database_url=url) as handle:
        with handle.store.read() as s:
            ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        rows = sorted(NEIGHBOURS)
        with handle.store.write() as s:
            ts.add_neighbors(
                s,
                run_id=1,
                item_ids=ids[rows],
                neighbor_ids=ids[np.array([NEIGHBOURS[r] for r in rows])],
                duplicate_sets=np.array([DUP_SET[r] for r in rows]),
            )
    return ids


def test_tasks_carry_neighbours_duplicates_and_words(client, project):
    ids = _add_context(project)
    labels = _labels()
    tasks = {t["external_id"]: t for t in client.get("/api/tasks/next").json()}
    first = tasks["i2"]
    assert [n["item_id"] for n in first["neighbors"]] == [int(ids[j]) for j in NEIGHBOURS[2]]
    assert [n["external_id"] for n in first["neighbors"]] == ["i3", "i5", "i1", "i0", "i10"]
    assert [n["label"] for n in first["neighbors"]] == [labels[j] for j in NEIGHBOURS[2]]
    assert first["neighbors"][0]["content"] == "message number 3"
    assert [d["external_id"] for d in first["duplicates"]] == ["i5"]
    assert first["explanation"] == [
        "The model is 70% sure this is 'spam'; it gives the label 'ham' 25%.",
        "4 of its 5 nearest neighbours are labeled 'spam'.",
        "It is a near-duplicate of 1 other item; 1 of them is labeled differently ('spam').",
    ]
    assert tasks["i9"]["duplicates"] == []
    # row 9: neighbours 6, 7 labeled XSS, then 2, 11, 8 ham: 3 of 5 share its own label
    assert tasks["i9"]["explanation"][1] == "3 of its 5 nearest neighbours share its label 'ham'."
    # a decision changes a neighbour's current label: the words follow the current labels
    t5 = tasks["i5"]
    assert (
        client.post(
            "/api/decisions", json={"task_id": t5["task_id"], "action": "relabel", "label": "ham"}
        ).status_code
        == 200
    )
    again = client.get(f"/api/items/{int(ids[2])}").json()
    assert (
        again["explanation"][2] == "It is a near-duplicate of 1 other item, all labeled the same."
    )
    assert [n["label"] for n in again["neighbors"]][1] == "ham"
    # the item's own current label counts, not the given one
    relabel = {"task_id": first["task_id"], "action": "relabel", "label": "spam"}
    assert client.post("/api/decisions", json=relabel).status_code == 200
    now = client.get(f"/api/items/{int(ids[2])}").json()
    assert (now["given_label"], now["current_label"]) == ("ham", "spam")
    assert now["explanation"][0] == "The model agrees with the label 'spam' (70% sure)."


def test_item_api_and_page(client, project):
    ids = _add_context(project)
    item = client.get(f"/api/items/{int(ids[5])}").json()
    assert (item["external_id"], item["task_status"], item["given_label"]) == ("i5", "open", "spam")
    assert item["suggested_label"] == "ham" and item["task_id"] is not None
    # an item never flagged: no task, no context, still viewable
    plain = client.get(f"/api/items/{int(ids[0])}").json()
    assert plain["task_id"] is None and plain["task_status"] is None
    assert plain["neighbors"] == [] and plain["reasons"] == []
    assert plain["explanation"][0].startswith("The model")  # pred_probs cover every item
    assert client.get("/api/items/999999").status_code == 404
    assert client.get("/items/999999").status_code == 404
    # the page renders the item, its words and links to its neighbours
    html = client.get(f"/items/{int(ids[2])}").text
    assert f'data-item-id="{int(ids[2])}"' in html
    assert "4 of its 5 nearest neighbours are labeled &#39;spam&#39;." in html
    assert f'<a href="/items/{int(ids[3])}">i3</a>' in html
    # decided: the item's task is done, the page says so
    task = item["task_id"]
    assert (
        client.post("/api/decisions", json={"task_id": task, "action": "accept"}).status_code == 200
    )
    assert client.get(f"/api/items/{int(ids[5])}").json()["task_status"] == "done"
    assert "task done" in client.get(f"/items/{int(ids[5])}").text


def test_context_escapes_script_tags(client, project):
    ids = _add_context(project)
    # row 9 (text "<script>... hello") is a neighbour of row 5; rows 6, 7 (label XSS) of row 9
    for row in (5, 9):
        html = client.get(f"/items/{int(ids[row])}").text
        assert XSS not in html
    assert f"{ESCAPED} hello" in client.get(f"/items/{int(ids[5])}").text
    html9 = client.get(f"/items/{int(ids[9])}").text
    assert html9.count(ESCAPED) >= 3  # neighbour labels, suggested label, explanation
    body = client.get(f"/api/items/{int(ids[9])}").json()
    assert body["neighbors"][0]["label"] == XSS  # JSON keeps the raw string


def test_the_hand_made_oracle_labels():
    # the neighbour rows the conftest labels give: guard the hand-made oracle itself
    labels = pd.Series(_labels())
    assert labels[NEIGHBOURS[2]].tolist().count("spam") == 4
