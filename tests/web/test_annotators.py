"""The annotator view (page and API) on a hand-worked decision log: counts, action shares,
median time, agreement with the other reviewers and with the consensus, recent decisions;
reviewers see only themselves in team mode; names are escaped."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import truelabel.store as ts
from truelabel.review import reviewer_stats
from truelabel.web import hash_password

from .conftest import XSS, build_project, make_client

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PASSWORD = "correct horse battery"


def _log(folder, url=None, *, third=XSS):
    """ann, bo and a third reviewer (named ``third``) decide items 2, 5, 9 (positions)."""
    with ts.opened(folder, database_url=url) as handle:
        pid = handle.project_id
        with handle.store.read() as s:
            ids = ts.item_ids_by_position(s, project_id=pid)
        p2, p5, p9 = (int(ids[k]) for k in (2, 5, 9))
        with handle.store.write() as s:

            def d(item, who, label, reason, sec):
                return ts.record_decision(
                    s, item_id=item, reviewer=who, new_label=label, reason=reason, seconds_spent=sec
                ).id

            d(p2, "ann", "spam", "accept", 2.0)
            d(p2, "bo", "ham", "relabel", 4.0)
            kept = d(p5, "ann", "spam", "keep", 6.0)
            ts.undo_decision(s, decision_id=kept, reviewer="ann")
            d(p5, "ann", "ham", "relabel", 10.0)
            d(p5, third, "ham", "relabel", 1.0)
            d(p9, "bo", "spam", "relabel", None)
            d(p9, "ann", XSS, "batch accept", None)
            src = ts.get_label_source(s, project_id=pid, kind="consensus", name="ds")
            ts.add_annotations(s, source_id=src.id, item_ids=[p2, p9], labels=["ham", "spam"])
            ts.add_annotations(s, source_id=src.id, item_ids=[p2], labels=["spam"])  # latest
    return ids


# by hand (latest live label per item: ann p2 spam, p5 ham, p9 XSS; bo p2 ham, p9 spam;
# third p5 ham; consensus p2 spam (the later annotation), p9 spam)
EXPECTED = {
    "ann": dict(decisions=3, undone=1, undos=1, accepted=2 / 3, kept=0.0, changed=1 / 3,
                median_seconds=6.0, shared_items=3, agreement_with_others=1 / 3,
                consensus_items=2, agreement_with_consensus=0.5),
    "bo": dict(decisions=2, undone=0, undos=0, accepted=0.0, kept=0.0, changed=1.0,
               median_seconds=4.0, shared_items=2, agreement_with_others=0.0,
               consensus_items=2, agreement_with_consensus=0.5),
    XSS: dict(decisions=1, undone=0, undos=0, accepted=0.0, kept=0.0, changed=1.0,
              median_seconds=1.0, shared_items=1, agreement_with_others=1.0,
              consensus_items=0, agreement_with_consensus=None),
}  # fmt: skip


def _check(rows):
    got = {r["reviewer"]: r for r in rows}
    assert sorted(got) == sorted(EXPECTED)
    for name, want in EXPECTED.items():
        for key, value in want.items():
            if value is None:
                assert got[name][key] is None, (name, key)
            else:
                assert got[name][key] == pytest.approx(value), (name, key)


def test_annotator_api_hand_worked(project):
    folder, url = project
    _log(folder, url)
    with make_client(folder, url) as client:
        _check(client.get("/api/annotators").json())
        detail = client.get("/api/annotators/ann").json()
        assert detail["stats"]["decisions"] == 3
        recent = detail["recent"]
        assert [r["reason"] for r in recent] == [
            "batch accept",
            "relabel",
            f"undo of decision {recent[2]['undoes_id']}",
            "keep",
            "accept",
        ]
        assert [r["external_id"] for r in recent] == ["i9", "i5", "i5", "i5", "i2"]
        assert client.get("/api/annotators/nobody").status_code == 404


def test_reviewer_stats_naive_loop_agrees():
    # a random log; agreement recomputed by a plain loop over items and reviewer pairs
    rng = np.random.default_rng(5)
    n = 300
    log = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "item_id": rng.integers(0, 40, n),
            "reviewer": rng.choice(["a", "b", "c", "d"], n),
            "new_label": rng.choice(["x", "y", "z"], n),
            "reason": rng.choice(["accept", "keep", "relabel", "batch accept"], n),
            "seconds_spent": np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 9),
            "undoes_id": None,
        }
    )
    undo = rng.choice(np.arange(1, n + 1), 20, replace=False)
    undos = pd.DataFrame(
        {"id": np.arange(n + 1, n + 21), "item_id": log.set_index("id").loc[undo, "item_id"].values,
         "reviewer": "a", "new_label": None, "reason": "undo", "seconds_spent": np.nan,
         "undoes_id": undo}
    )  # fmt: skip
    full = pd.concat([log, undos], ignore_index=True)
    consensus = pd.Series(rng.choice(["x", "y", "z"], 30), index=np.arange(30))
    got = reviewer_stats(full, consensus).set_index("reviewer")
    live = log[~log["id"].isin(undo)]
    latest = {}
    for row in live.sort_values("id").itertuples():
        latest[(row.item_id, row.reviewer)] = row.new_label
    for r in "abcd":
        mine = live[live["reviewer"] == r]
        assert got.loc[r, "decisions"] == len(mine)
        assert got.loc[r, "undone"] == int(log[log["id"].isin(undo)]["reviewer"].eq(r).sum())
        assert got.loc[r, "accepted"] == pytest.approx(
            mine["reason"].isin(["accept", "batch accept"]).mean()
        )
        med = mine["seconds_spent"].dropna().median()
        assert got.loc[r, "median_seconds"] == pytest.approx(med)
        pairs = agree = shared = n_cons = ok = 0
        for (item, who), lab in latest.items():
            if who != r:
                continue
            others = [v for (i, w), v in latest.items() if i == item and w != r]
            pairs += len(others)
            agree += sum(v == lab for v in others)
            shared += bool(others)
            if item in consensus.index:
                n_cons += 1
                ok += consensus[item] == lab
        assert got.loc[r, "shared_items"] == shared
        assert got.loc[r, "agreement_with_others"] == pytest.approx(agree / pairs)
        assert got.loc[r, "consensus_items"] == n_cons
        assert got.loc[r, "agreement_with_consensus"] == pytest.approx(ok / n_cons)
    assert got.loc["a", "undos"] == 20


def test_annotator_pages_escape_names_and_labels(tmp_path):
    folder = build_project(tmp_path / "proj")
    _log(folder)
    with make_client(folder) as client:
        html = client.get("/annotators").text
        assert XSS not in html and ESCAPED in html
        assert 'href="/annotators/%3Cscript%3Ealert%281%29%3C/script%3E"' in html
        page = client.get("/annotators/%3Cscript%3Ealert%281%29%3C/script%3E")
        assert page.status_code == 200 and XSS not in page.text and ESCAPED in page.text
        ann = client.get("/annotators/ann").text
        assert XSS not in ann and ESCAPED in ann  # the batch-accepted label
        assert "67%" in ann and "6.0 s" in ann  # accepted 2 of 3, median time


def test_team_reviewers_see_only_themselves(tmp_path):
    folder = build_project(tmp_path / "proj")
    _log(folder, third="cy")
    with ts.opened(folder) as handle, handle.store.write() as s:
        ts.add_user(s, username="ann", password_hash=hash_password(PASSWORD), role="reviewer")
        ts.add_user(s, username="boss", password_hash=hash_password(PASSWORD), role="admin")
    with make_client(folder, team=True) as client:
        assert client.get("/api/annotators").status_code == 401
        assert client.get("/api/annotators/ann").status_code == 401
        first = client.get("/annotators", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith("/login")
        assert client.get("/annotators/ann", follow_redirects=False).status_code == 303
        token = client.get("/api/csrf").json()["csrf_token"]
        client.post("/api/login", json={"username": "ann", "password": PASSWORD},
                    headers={"X-CSRF-Token": token})  # fmt: skip
        assert [r["reviewer"] for r in client.get("/api/annotators").json()] == ["ann"]
        assert client.get("/api/annotators/ann").status_code == 200
        assert client.get("/api/annotators/bo").status_code == 403
        assert client.get("/annotators/bo").status_code == 403
        html = client.get("/annotators").text
        assert 'href="/annotators/ann"' in html and "/annotators/bo" not in html
        client.cookies.clear()
        token = client.get("/api/csrf").json()["csrf_token"]
        client.post("/api/login", json={"username": "boss", "password": PASSWORD},
                    headers={"X-CSRF-Token": token})  # fmt: skip
        names = [r["reviewer"] for r in client.get("/api/annotators").json()]
        assert names == ["ann", "bo", "cy"]
        assert math.isclose(client.get("/api/annotators/bo").json()["stats"]["changed"], 1.0)
