"""``truelabel audit PROJECT`` links each item of the report's table to its review page in
the app (``--review-url``, default the ``serve`` default), and the link opens that item."""

from __future__ import annotations

import re

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


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    rng = np.random.default_rng(0)
    classes = sorted(WORDS)
    rows = []
    for i in range(90):
        c = classes[i % 3]
        rows.append(
            {"key": f"k{i:03d}", "body": " ".join(rng.choice(WORDS[c].split(), 6)), "topic": c}
        )
    df = pd.DataFrame(rows)
    for i in (5, 17, 40):
        df.loc[i, "topic"] = classes[(classes.index(df.loc[i, "topic"]) + 1) % 3]
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    folder = tmp_path / "proj"
    args = ["init", str(folder), "--data", str(data), "--label-col", "topic"]
    res = runner.invoke(app, [*args, "--text-col", "body", "--id-col", "key"])
    assert res.exit_code == 0, res.output
    return folder


def _links(report):
    html = report.read_text()
    table = html.split('id="worst-items"')[1]
    cells = re.findall(r"<tr[^>]*><td>(.*?)</td>", table)
    return [re.fullmatch(r'<a href="([^"]+)">([^<]+)</a>', c).groups() for c in cells]


def _ids(folder):
    with ts.opened(folder) as handle, handle.store.read() as s:
        return dict(s.execute(sa.select(ts.Item.external_id, ts.Item.id)).all())


def test_report_links_every_listed_item_to_its_review_page(project):
    res = runner.invoke(app, ["audit", str(project), "--encoder", "tfidf", "--quiet"])
    assert res.exit_code == 0, res.output
    links = _links(project / "runs" / "1" / "report.html")
    ids = _ids(project)
    assert len(links) == 90  # every row of the table, flagged or not
    for url, external in links:
        assert url == f"http://127.0.0.1:8000/items/{ids[external]}"
    # a second run with another address (trailing slash dropped)
    res = runner.invoke(
        app,
        [
            "audit",
            str(project),
            "--encoder",
            "tfidf",
            "--quiet",
            "--review-url",
            "https://r.example:9443/team/",
        ],
    )
    assert res.exit_code == 0, res.output
    for url, external in _links(project / "runs" / "2" / "report.html"):
        assert url == f"https://r.example:9443/team/items/{ids[external]}"


def test_a_report_link_opens_that_item_in_the_app(project):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from truelabel.web import Settings, create_app

    assert (
        runner.invoke(app, ["audit", str(project), "--encoder", "tfidf", "--quiet"]).exit_code == 0
    )
    url, external = _links(project / "runs" / "1" / "report.html")[0]
    with TestClient(create_app(Settings(project=project)), base_url="http://127.0.0.1") as client:
        path = url.removeprefix("http://127.0.0.1:8000")
        page = client.get(path)
        assert page.status_code == 200
        assert f'<span id="external-id">{external}</span>' in page.text
        item = client.get("/api" + path).json()
        assert item["external_id"] == external and item["task_status"] == "open"
        assert item["explanation"]  # a real audit's words: the model and the neighbours
        assert len(item["neighbors"]) == 5


@pytest.mark.parametrize(
    "bad",
    ["javascript:alert(1)", "ftp://h/x", "http://", "http://h/?q=1", "http://u:p@h", 'http://h/"x'],
)
def test_bad_review_urls_are_refused(project, bad):
    res = runner.invoke(
        app, ["audit", str(project), "--encoder", "tfidf", "--quiet", "--review-url", bad]
    )
    assert res.exit_code == 2 and "--review-url" in res.output, res.output
    assert not (project / "runs").exists()  # refused before any run is recorded
    with pytest.raises(ValidationError, match=r"review_url: got .*truelabel serve listens on"):
        ts.check_review_url(bad)


def test_review_url_needs_a_project(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"t": ["a b", "c d"] * 10, "y": ["x", "z"] * 10}).to_csv(data, index=False)
    res = runner.invoke(
        app,
        [
            "audit",
            str(data),
            "--label-col",
            "y",
            "--out",
            str(tmp_path / "o"),
            "--review-url",
            "http://h",
        ],
    )
    assert res.exit_code == 2 and "--review-url" in res.output and "project folder" in res.output
