"""Dashboard charts: decisions per hour / day / week (empty buckets kept, undos left out)
and the issue rate per class as inline SVG bars, hand-checked; labels escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import insert

import truelabel.store as ts
from truelabel.web._charts import bar_chart_svg, progress_buckets

from .conftest import XSS

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _times(*stamps):
    return pd.Series(pd.to_datetime(list(stamps), utc=True))


def test_progress_buckets_hand_worked():
    unit, starts, counts = progress_buckets(
        _times("2026-01-01 10:05", "2026-01-01 10:50", "2026-01-01 13:00")
    )
    assert unit == "hour" and counts == [2, 0, 0, 1]
    assert starts[0] == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    assert starts[-1] == pd.Timestamp("2026-01-01 13:00", tz="UTC")
    # 48 hours is still hours; a little more is days
    assert progress_buckets(_times("2026-01-01 00:00", "2026-01-03 00:00"))[0] == "hour"
    unit, starts, counts = progress_buckets(
        _times("2026-01-01 10:05", "2026-01-03 00:01", "2026-01-04 23:59", "2026-01-04 01:00")
    )
    assert unit == "day" and counts == [1, 0, 1, 2]
    # weeks start on Monday (2025-12-29 and 2026-01-05 are Mondays)
    unit, starts, counts = progress_buckets(_times("2026-01-01", "2026-01-04", "2026-06-01"))
    assert unit == "week" and starts[0] == pd.Timestamp("2025-12-29", tz="UTC")
    assert starts[1] == pd.Timestamp("2026-01-05", tz="UTC") and counts[0] == 2
    assert sum(counts) == 3 and len(counts) == 23  # 2025-12-29 .. 2026-06-01 (a Monday)
    assert progress_buckets(_times()) == ("day", [], [])


def test_bar_chart_heights_and_escaping():
    svg = str(bar_chart_svg(["a", XSS, "c"], [1.0, 4.0, 2.0], title=f"t {XSS}"))
    assert XSS not in svg and svg.count(ESCAPED) == 2  # title, bar tip
    assert ">&lt;script&gt;alert(1…</text>" in svg  # the axis label, cut to 16 characters
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 3
    assert heights[1] == pytest.approx(158.0)  # the plot height (200 - 34 - 8)
    assert heights[0] == pytest.approx(158.0 / 4) and heights[2] == pytest.approx(158.0 / 2)
    assert "<script" not in svg and "style=" not in svg  # the page's CSP allows neither
    fixed = str(bar_chart_svg(["a"], [0.25], title="r", max_value=0.5))
    assert float(re.findall(r'<rect [^>]*height="([0-9.]+)"', fixed)[0]) == pytest.approx(79.0)


def _decide_at(folder, url, stamps):
    with ts.opened(folder, database_url=url) as handle, handle.store.write() as s:
        ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        rows = []
        for k, stamp in enumerate(stamps):
            rows.append(
                {
                    "id": k + 1,
                    "project_id": handle.project_id,
                    "item_id": int(ids[k]),
                    "reviewer": "ann",
                    "created_at": stamp,
                    "new_label": "ham",
                    "undoes_id": None,
                }
            )
        s.execute(insert(ts.Decision), rows)
        undo = {**rows[0], "id": len(rows) + 1, "undoes_id": 1, "created_at": stamps[-1]}
        s.execute(insert(ts.Decision), [undo])


def test_dashboard_and_progress_api(client, project):
    folder, url = project
    html = client.get("/").text
    assert "No decisions yet." in html and "rates-chart" in html
    assert client.get("/api/project/progress").json() == {"unit": "day", "buckets": []}
    stamps = [datetime(2026, 1, 1, h, m, tzinfo=UTC) for h, m in ((10, 5), (10, 50), (13, 0))]
    _decide_at(folder, url, stamps)
    body = client.get("/api/project/progress").json()
    assert body["unit"] == "hour"
    assert [b["decisions"] for b in body["buckets"]] == [2, 0, 0, 1]  # the undo left out
    assert pd.Timestamp(body["buckets"][0]["start"]) == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    html = client.get("/").text
    progress = html.split('id="progress-chart"')[1].split("</figure>")[0]
    tips = re.findall(r"<rect [^>]*><title>([^<]*)</title>", progress)
    assert tips == ["01-01 10:00: 2", "01-01 11:00: 0", "01-01 12:00: 0", "01-01 13:00: 1"]
    rates = html.split('id="rates-chart"')[1].split("</figure>")[0]
    tips = re.findall(r"<rect [^>]*><title>([^<]*)</title>", rates)
    # the class order of the project; flagged of given (conftest: ham 2 of 6, spam 1 of 4)
    assert tips == [f"{ESCAPED}: 0 of 2 (0.0%)", "ham: 2 of 6 (33.3%)", "spam: 1 of 4 (25.0%)"]
    assert XSS not in html
