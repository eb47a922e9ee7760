"""End to end in a real browser: Debian's chromium driven by Playwright against uvicorn on a
free loopback port. Review items with the keyboard, undo one, then read the database and
the export. Saves the review page as docs/review.png when TRUELABEL_SCREENSHOT is set."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

import truelabel.store as ts

from .conftest import XSS, build_project

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

REQUIRED = os.environ.get("TRUELABEL_REQUIRE_BROWSER") == "1"  # set by .ci/run: CI never skips


def _absent(reason: str) -> None:
    if REQUIRED:
        raise RuntimeError(f"TRUELABEL_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason, allow_module_level=True)


if not Path(CHROMIUM).exists():
    _absent(f"no browser at {CHROMIUM}: apt-get install chromium (.ci/run does)")
try:
    import uvicorn
    from playwright import sync_api
except ImportError as err:
    _absent(f"{err.name} is not installed: pip install -e '.[dev,web]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path, db_url):
    from truelabel.web import Settings, create_app

    folder = build_project(tmp_path / "proj", db_url)
    port = _free_port()
    app = create_app(Settings(project=folder, port=port, database_url=db_url))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", folder, db_url
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            tab = context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda err: errors.append(str(err)))
            tab.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))
            yield tab
            assert errors == [], errors  # no script error, and no alert() ever ran
        finally:
            browser.close()


def _wait_status(page, text):
    page.wait_for_function(
        "t => document.getElementById('status').textContent.includes(t)", arg=text, timeout=10_000
    )


def test_review_with_the_keyboard_then_undo(server, page):
    base, folder, url = server
    page.goto(f"{base}/review")
    page.wait_for_selector("body[data-ready='1']")
    assert page.text_content("#external-id") == "i2"
    assert page.text_content("#suggested-label") == "spam"
    assert page.locator("#top-classes li").count() == 3
    if os.environ.get("TRUELABEL_SCREENSHOT"):
        page.screenshot(path=os.environ["TRUELABEL_SCREENSHOT"], full_page=True)

    page.keyboard.press("a")  # i2: accept the suggestion (ham -> spam)
    _wait_status(page, "accept: spam")
    assert page.text_content("#external-id") == "i5"
    page.keyboard.press("s")  # i5: skip
    _wait_status(page, "skipped")
    assert page.text_content("#external-id") == "i9"
    # the item whose text and suggestion are script tags is shown as text, never run
    assert page.text_content("#content") == f"{XSS} hello"
    assert page.text_content("#suggested-label") == XSS
    page.keyboard.press("3")  # i9: the third class, spam
    _wait_status(page, "relabel: spam")
    page.keyboard.press("u")  # undo the relabel of i9
    _wait_status(page, "undone decision")
    assert page.text_content("#external-id") == "i9"  # its task is open again
    page.keyboard.press("k")  # i9: keep the given label
    _wait_status(page, "keep: ham")
    page.wait_for_selector("#empty:not([hidden])")  # i5 was skipped in this sitting

    with ts.opened(folder, database_url=url) as handle:
        with handle.store.read() as s:
            rows = [
                (d.item_id, d.old_label, d.new_label, d.reason, d.undoes_id is not None)
                for i in ts.item_ids_by_position(s, project_id=handle.project_id)
                for d in ts.decision_history(s, item_id=int(i))
            ]
            counts = ts.queue_counts(s, project_id=handle.project_id)
        frame = ts.export_frame(handle).set_index("id")
    assert [r[1:] for r in rows] == [
        ("ham", "spam", "accept", False),
        ("ham", "spam", "relabel", False),
        ("spam", "ham", "undo of decision 2", True),
        ("ham", "ham", "keep", False),
    ]
    assert counts == {"open": 1, "done": 2, "superseded": 0}
    assert (frame.loc["i2", "label"], frame.loc["i2", "label_source"]) == ("spam", "reviewed")
    assert (frame.loc["i9", "label"], frame.loc["i9", "label_source"]) == ("ham", "reviewed")
    assert frame.loc["i5", "label_source"] == "original"

    # the export downloaded through the page's origin says the same
    csv = page.request.get(f"{base}/api/export?format=csv").text()
    assert "i2,message number 2,spam,reviewed" in csv


def test_dashboard_and_search_pages(server, page):
    base, _, _ = server
    page.goto(f"{base}/")
    assert page.text_content("#n-items") == "12"
    assert page.text_content("#n-open") == "3"
    page.goto(f"{base}/search?q=script")
    assert page.locator("table.items tbody tr").count() == 1
    assert XSS in page.text_content("table.items tbody")
