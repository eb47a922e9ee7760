"""In a real browser (Debian chromium + Playwright): an item's review page with its context
(why it was flagged in words, nearest neighbours, near-duplicates) reached as from the audit
report, a neighbour's link, a decision by keyboard there; the dashboard charts and the
annotator page render under the app's CSP without a script or CSP error. Saves the item's
review page as TRUELABEL_SCREENSHOT when set (docs/review.png)."""

from __future__ import annotations

import os

import truelabel.store as ts

from .conftest import XSS
from .test_browser import _wait_status, page, server  # noqa: F401  (fixtures)
from .test_context import _add_context


def _console_errors(tab):
    errors: list[str] = []

    def seen(message):
        where = (message.location or {}).get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):  # none is served
            errors.append(f"{message.text} ({where})")

    tab.on("console", seen)
    return errors


def test_item_page_context_and_keyboard(server, page):  # noqa: F811
    base, folder, url = server
    ids = _add_context((folder, url))
    errors = _console_errors(page)
    page.goto(f"{base}/items/{int(ids[2])}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.text_content("#external-id") == "i2"
    words = page.locator("#explanation li").all_text_contents()
    assert words == [
        "The model is 70% sure this is 'spam'; it gives the label 'ham' 25%.",
        "4 of its 5 nearest neighbours are labeled 'spam'.",
        "It is a near-duplicate of 1 other item; 1 of them is labeled differently ('spam').",
    ]
    assert page.locator("#neighbors li a").all_text_contents() == ["i3", "i5", "i1", "i0", "i10"]
    assert page.locator("#duplicates li a").all_text_contents() == ["i5"]
    if os.environ.get("TRUELABEL_SCREENSHOT"):
        page.screenshot(path=os.environ["TRUELABEL_SCREENSHOT"], full_page=True)
    page.keyboard.press("a")  # decide this item; the page goes on with the queue
    _wait_status(page, "accept: spam")
    assert page.text_content("#external-id") == "i5"
    # row 9 shows the script-tag label of its neighbours as text
    page.goto(f"{base}/items/{int(ids[9])}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#neighbors li .label").first.text_content() == XSS
    page.click("#neighbors li a >> nth=0")  # to the neighbour's own page
    page.wait_for_selector("body[data-ready='1']")
    assert page.url.endswith(f"/items/{int(ids[6])}")
    assert page.text_content("#external-id") == "i6"
    assert page.text_content("#task-state") == "no review task"
    with ts.opened(folder, database_url=url) as handle, handle.store.read() as s:
        (decision,) = ts.decision_history(s, item_id=int(ids[2]))
    assert (decision.reason, decision.new_label) == ("accept", "spam")
    assert errors == [], errors


def test_dashboard_charts_and_annotators_render(server, page):  # noqa: F811
    base, folder, url = server
    errors = _console_errors(page)
    with ts.opened(folder, database_url=url) as handle, handle.store.write() as s:
        ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        ts.record_decision(s, item_id=int(ids[2]), reviewer=XSS, new_label="spam", reason="accept")
    page.goto(f"{base}/")
    assert page.locator("#progress-chart svg rect").count() == 1
    assert page.locator("#rates-chart svg rect").count() == 3
    page.goto(f"{base}/annotators")
    assert page.locator("table.annotators tbody tr td a").first.text_content() == XSS
    page.click("table.annotators tbody tr td a >> nth=0")
    assert page.text_content("#reviewer") == XSS
    assert page.text_content("#n-decisions") == "1"
    assert errors == [], errors
