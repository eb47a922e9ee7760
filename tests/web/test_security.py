"""Security of the review app: unsafe settings refused, everything escaped, files only from
inside the data root, body limits, CSRF on every state change, logins, roles, cookies."""

from __future__ import annotations

import os

import pytest
from fastapi.routing import APIRoute

import truelabel.store as ts
from truelabel.exceptions import ValidationError
from truelabel.web import Settings, hash_password, verify_password

from .conftest import XSS, build_project, make_client

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PASSWORD = "correct horse battery"


@pytest.fixture
def solo(tmp_path):
    folder = build_project(tmp_path / "proj")
    with make_client(folder) as c:
        c.headers["X-CSRF-Token"] = c.get("/api/session").json()["csrf_token"]
        yield c, folder


def _add_user(folder, name, role):
    with ts.opened(folder) as handle, handle.store.write() as s:
        ts.add_user(s, username=name, password_hash=hash_password(PASSWORD), role=role)


@pytest.fixture
def team(tmp_path):
    folder = build_project(tmp_path / "team" / "proj")
    _add_user(folder, "alice", "admin")
    _add_user(folder, "bob", "reviewer")
    with make_client(folder, team=True) as c:
        yield c, folder


def _login(client, name):
    token = client.get("/api/csrf").json()["csrf_token"]
    response = client.post(
        "/api/login", json={"username": name, "password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.org", "::"])
def test_solo_mode_refuses_hosts_other_machines_reach(tmp_path, host):
    with pytest.raises(ValidationError, match=r"--host: .*solo mode has no login.*--team"):
        Settings(project=tmp_path, host=host)
    assert Settings(project=tmp_path, host=host, team=True).cookie_secure


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_are_fine_without_cookies_marked_secure(tmp_path, host):
    assert not Settings(project=tmp_path, host=host).cookie_secure


def test_other_unsafe_settings_refused(tmp_path):
    with pytest.raises(ValidationError, match="keep Secure cookies on"):
        Settings(project=tmp_path, host="0.0.0.0", team=True, secure_cookies=False)
    with pytest.raises(ValidationError, match="--port"):
        Settings(project=tmp_path, port=0)
    with pytest.raises(ValidationError, match="max_body_bytes"):
        Settings(project=tmp_path, max_body_bytes=0)


# -- escaping ------------------------------------------------------------------------------


def test_script_tags_in_labels_and_texts_are_escaped_on_every_page(solo):
    client, _ = solo
    # put the XSS item first in the queue, so /review renders it
    tasks = client.get("/api/tasks/next", params={"limit": 3}).json()
    for t in tasks[:2]:
        assert (
            client.post(
                "/api/decisions", json={"task_id": t["task_id"], "action": "keep"}
            ).status_code
            == 200
        )
    pages = ["/", "/review", "/search", "/search?q=script", f"/search?q={XSS}", "/login"]
    for page in pages:
        html = client.get(page).text
        assert XSS not in html, page
        if page != "/login":
            assert ESCAPED in html, page
    review = client.get("/review").text
    assert f"{ESCAPED} hello" in review  # the text, and the label as given/suggested/class
    assert review.count(ESCAPED) >= 4
    # JSON stays JSON: the raw string comes back intact in a JSON body
    task = client.get("/api/tasks/next").json()[0]
    assert task["content"] == f"{XSS} hello" and task["suggested_label"] == XSS
    assert client.get("/api/tasks/next").headers["content-type"] == "application/json"
    assert "script-src 'self'" in client.get("/review").headers["content-security-policy"]


# -- files ---------------------------------------------------------------------------------


def test_files_only_from_inside_the_data_root(solo, tmp_path):
    client, folder = solo
    root = folder.parent / "proj-data"
    (root / "img").mkdir()
    (root / "img" / "a.png").write_bytes(b"\x89PNG inside")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the data root")
    os.symlink(secret, root / "img" / "link.png")
    os.symlink(tmp_path, root / "up")
    assert client.get("/media/img/a.png").content == b"\x89PNG inside"
    assert client.get("/media/items.csv").status_code == 200
    for bad in [
        "/media/../secret.txt",
        "/media/%2e%2e/secret.txt",
        "/media/img/..%2f..%2fsecret.txt",
        "/media/img/%2e%2e/%2e%2e/secret.txt",
        f"/media/{secret}",
        f"/media//{secret}",
        "/media/%2F" + str(secret).lstrip("/").replace("/", "%2F"),
        "/media/img/link.png",
        "/media/up/secret.txt",
        "/media/img",
        "/media/nothing.png",
        "/media/img/a.png%00.txt",
    ]:
        response = client.get(bad)
        assert response.status_code in (403, 404), bad
        assert b"outside the data root" not in response.content, bad


# -- body size, host header ----------------------------------------------------------------


def test_request_bodies_over_the_limit_are_refused(tmp_path):
    folder = build_project(tmp_path / "proj")
    with make_client(folder, max_body_bytes=1000) as client:
        token = client.get("/api/session").json()["csrf_token"]
        big = {"task_id": 1, "action": "keep", "label": "x" * 5000}
        response = client.post("/api/decisions", json=big, headers={"X-CSRF-Token": token})
        assert response.status_code == 413

        def chunks():
            yield b'{"task_id": 1, "action": "keep", "label": "'
            for _ in range(10):
                yield b"y" * 200
            yield b'"}'

        streamed = client.post(
            "/api/decisions",
            content=chunks(),
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
        assert client.get("/api/project").json()["decisions"] == 0


def test_solo_mode_refuses_foreign_host_headers(solo):
    client, _ = solo
    assert client.get("/api/project", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/project", headers={"Host": "localhost:8000"}).status_code == 200


# -- CSRF ----------------------------------------------------------------------------------


def _state_changing_routes(app):
    """Every POST/PUT/PATCH/DELETE path, also those inside included routers."""
    from truelabel.web.routes import auth, export, items, pages, projects, tasks

    routes = list(app.routes)
    for module in (auth, export, items, pages, projects, tasks):
        routes += module.router.routes
    for route in routes:
        if isinstance(route, APIRoute) and route.methods - {"GET", "HEAD", "OPTIONS"}:
            yield route.path


@pytest.mark.parametrize("mode", ["solo", "team"])
def test_every_state_changing_request_needs_the_csrf_token(solo, team, mode):
    client, _ = solo if mode == "solo" else team
    if mode == "team":
        _login(client, "alice")
    good = client.headers.pop("X-CSRF-Token")
    paths = list(_state_changing_routes(client.app))
    assert {
        "/api/decisions",
        "/api/decisions/undo",
        "/api/tasks/batch-accept",
        "/api/users",
        "/api/login",
        "/login",
        "/logout",
    } <= set(paths)
    near = good[:-1] + ("1" if good[-1] == "0" else "0")
    for path in paths:
        for headers in ({}, {"X-CSRF-Token": "0" * 64}, {"X-CSRF-Token": near}):
            response = client.post(path, json={}, headers=headers)
            assert response.status_code == 403, (path, headers)
        form = client.post(
            path, data={"csrf_token": "nope", "username": "alice", "password": PASSWORD}
        )
        assert form.status_code == 403, path
    assert client.get("/api/project").json()["decisions"] == 0
    task = client.get("/api/tasks/next").json()[0]
    ok = client.post(
        "/api/decisions",
        json={"task_id": task["task_id"], "action": "keep"},
        headers={"X-CSRF-Token": good},
    )
    assert ok.status_code == 200


def test_csrf_token_is_bound_to_the_session(team):
    client, _ = team
    _login(client, "alice")
    alice_token = client.headers["X-CSRF-Token"]
    client.cookies.clear()
    _login(client, "bob")
    task = client.get("/api/tasks/next").json()[0]
    stolen = client.post(
        "/api/decisions",
        json={"task_id": task["task_id"], "action": "keep"},
        headers={"X-CSRF-Token": alice_token},
    )
    assert stolen.status_code == 403


# -- team mode: logins, roles, cookies -------------------------------------------------------


def test_team_mode_refuses_unauthenticated_requests(team):
    client, _ = team
    for path in [
        "/api/project",
        "/api/tasks/next",
        "/api/items",
        "/api/export",
        "/api/items/1/history",
        "/api/session",
        "/media/items.csv",
    ]:
        assert client.get(path).status_code == 401, path
    for page in ["/", "/review", "/search"]:
        response = client.get(page, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), (
            page
        )
    assert client.get("/login").status_code == 200
    token = client.get("/api/csrf").json()["csrf_token"]
    post = client.post(
        "/api/decisions", json={"task_id": 1, "action": "keep"}, headers={"X-CSRF-Token": token}
    )
    assert post.status_code == 401


def test_login_sets_a_hardened_cookie_and_wrong_passwords_fail(team):
    client, folder = team
    token = client.get("/api/csrf").json()["csrf_token"]
    for name, password in [("alice", "wrong password"), ("nobody", PASSWORD)]:
        bad = client.post(
            "/api/login",
            json={"username": name, "password": password},
            headers={"X-CSRF-Token": token},
        )
        assert bad.status_code == 401
    cookie = _login(client, "alice").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    assert client.get("/api/session").json()["user"] == "alice"
    with ts.opened(folder) as handle, handle.store.read() as s:
        stored = ts.get_user(s, username="alice").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD + "x")
    # a tampered cookie is no session
    value = client.cookies.get("truelabel_session")
    client.cookies.clear()
    user_id, rest = value.split(".", 1)
    client.cookies.set("truelabel_session", f"{int(user_id) + 1}.{rest}")
    assert client.get("/api/session").status_code == 401


def test_form_login_redirects_only_to_local_paths(team):
    client, _ = team
    token = client.get("/api/csrf").json()["csrf_token"]
    for target, want in [
        ("/review", "/review"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
    ]:
        client.cookies.clear()
        response = client.post(
            "/login",
            data={"csrf_token": token, "username": "bob", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.status_code == 303 and response.headers["location"] == want


def test_cookie_is_secure_when_not_on_loopback(tmp_path):
    folder = build_project(tmp_path / "proj")
    _add_user(folder, "alice", "admin")
    with make_client(folder, team=True, host="0.0.0.0") as client:
        client.base_url = "https://testserver"
        cookie = _login(client, "alice").headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie


def test_roles_and_decisions_record_the_logged_in_user(team, tmp_path):
    client, folder = team
    _login(client, "bob")
    task = client.get("/api/tasks/next", params={"limit": 1}).json()[0]  # bob claims one task
    decision = client.post("/api/decisions", json={"task_id": task["task_id"], "action": "accept"})
    assert decision.json()["reviewer"] == "bob"
    assert client.post("/api/tasks/batch-accept", json={}).status_code == 403
    new = {"username": "carol", "password": PASSWORD, "role": "admin"}
    assert client.post("/api/users", json=new).status_code == 403
    assert client.get("/api/users").status_code == 403
    client.cookies.clear()
    _login(client, "alice")
    assert client.post("/api/users", json=new).status_code == 201
    assert [u["username"] for u in client.get("/api/users").json()] == ["alice", "bob", "carol"]
    # alice (admin) may undo bob's decision; bob may not undo alice's
    batch = client.post("/api/tasks/batch-accept", json={}).json()
    assert batch["accepted"] == 2
    client.cookies.clear()
    _login(client, "bob")
    refused = client.post("/api/decisions/undo", json={"decision_id": batch["decision_ids"][0]})
    assert refused.status_code == 403
    own = client.post("/api/decisions/undo", json={"decision_id": decision.json()["id"]})
    assert own.status_code == 200 and own.json()["reviewer"] == "bob"
    with ts.opened(folder) as handle:
        frame = ts.export_frame(handle).set_index("id")
    assert (
        frame.loc["i5", "reviewed_by"] == "alice" and frame.loc["i2", "label_source"] == "original"
    )


def test_expired_and_foreign_sessions_are_refused(team):
    from truelabel.web._security import make_session, read_session

    client, _ = team
    _login(client, "alice")
    secret = client.app.state.ctx.secret
    live = make_session(secret, 1, hours=1)
    assert read_session(secret, live) == 1
    assert read_session(b"another server's secret", live) is None
    expired = make_session(secret, 1, hours=-0.01)
    assert read_session(secret, expired) is None
    client.cookies.clear()
    client.cookies.set("truelabel_session", expired)
    assert client.get("/api/session").status_code == 401
    client.cookies.set("truelabel_session", live)
    assert client.get("/api/session").json()["user"] == "alice"


def test_body_limit_refuses_a_declared_size_before_reading_the_body():
    import asyncio

    from truelabel.web._security import BodyLimit

    async def app(scope, receive, send):  # would read the body if ever called
        await receive()
        raise AssertionError("the app must not run")

    async def receive():
        raise AssertionError("the body must not be read")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "headers": [(b"content-length", b"1000000000")]}
    asyncio.run(BodyLimit(app, max_bytes=1000)(scope, receive, send))
    assert sent[0]["status"] == 413 and b"larger than 1000 bytes" in sent[1]["body"]


def test_image_items_are_served_from_the_data_root(tmp_path):
    import pandas as pd

    data = tmp_path / "imgs"
    (data / "pics").mkdir(parents=True)
    (data / "pics" / "a.png").write_bytes(b"image a")
    (data / "pics" / "b.png").write_bytes(b"image b")
    pd.DataFrame({"path": ["pics/a.png", "pics/b.png"], "label": ["x", "y"]}).to_csv(
        data / "items.csv", index=False
    )
    folder = tmp_path / "proj"
    ts.init_project(folder, data=data / "items.csv", label_col="label", image_col="path")
    with make_client(folder) as client:
        assert client.get("/api/items/2/image").content == b"image b"
        assert client.get("/api/items/1/image").headers["x-content-type-options"] == "nosniff"
        assert client.get("/api/items/3/image").status_code == 404
        (data / "pics" / "a.png").unlink()
        os.symlink(tmp_path / "proj" / "project.json", data / "pics" / "a.png")
        assert client.get("/api/items/1/image").status_code == 404  # now leads outside
