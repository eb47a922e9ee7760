from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from truelabel.exceptions import ValidationError
from truelabel.report import (
    _html,
    bar_chart_svg,
    heatmap_svg,
    histogram_svg,
    render_report,
    write_report,
)

EVIL = "<script>alert(1)</script>"
EVIL_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


def make_audit(
    k: int = 3, n: int = 60, *, classes: list[str] | None = None, flag_rate: float = 0.2, seed=0
) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    classes = classes or [f"class_{i}" for i in range(k)]
    k = len(classes)
    given = rng.integers(0, k, n)
    suggested = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), given)
    score = rng.random(n)
    is_issue = score < flag_rate
    issues = pd.DataFrame(
        {
            "given_label": [classes[g] for g in given],
            "suggested_label": [classes[s] for s in suggested],
            "label_score": score,
            "is_label_issue": is_issue,
            "is_outlier_issue": rng.random(n) < 0.05,
            "outlier_score": rng.random(n),
            "is_near_duplicate_issue": np.zeros(n, dtype=bool),
            "near_duplicate_score": np.ones(n),
            "near_duplicate_set": np.full(n, -1),
            "text": [f"item {i} " + "x" * (300 if i == 0 else 5) for i in range(n)],
        },
        index=pd.Index([f"id{i}" for i in range(n)], name="item_id"),
    )
    noise = rng.random((k, k)) + k * np.eye(k)
    noise /= noise.sum(axis=0, keepdims=True)
    joint = noise / k
    per_class = {c: int(((given == i) & is_issue).sum()) for i, c in enumerate(classes)}
    summary = {
        "n_items": n,
        "n_classes": k,
        "classes": classes,
        "issue_counts": {
            "label": int(is_issue.sum()),
            "outlier": int(issues["is_outlier_issue"].sum()),
            "near_duplicate": 0,
        },
        "issues_per_class": {"label": per_class},
        "noise_matrix": noise.tolist(),
        "joint": joint.tolist(),
        "estimated_noise_rate": float(1 - np.trace(joint)),
        "notes": ["pred_probs from 5-fold cross-validation", EVIL],
        "settings": {"encoder": "hashing", "threshold": "auto"},
    }
    return issues, summary


class TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.seen[tag] = self.seen.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.seen[tag] = self.seen.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()


def check_well_formed(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    for tag in ("html", "head", "body", "main", "header", "style", "table"):
        assert checker.seen.get(tag, 0) >= 1, tag
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ET.fromstring(svg)
    return checker


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"url\(|@import|<script|<link|<img|<iframe", page, flags=re.I)


def test_full_report_is_self_contained_and_well_formed():
    issues, summary = make_audit()
    page = render_report(issues, summary)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert_self_contained(page)
    check_well_formed(page)
    assert "60 items" in page and "3 classes" in page and "generated at" in page
    assert 'id="noise-rate"' in page
    assert f"{100 * summary['estimated_noise_rate']:.1f}%" in page
    assert "near duplicate" in page and "outlier" in page
    assert (
        "x" * 194 not in page and "item 0 " + "x" * 193 + "…" in page
    )  # text truncated to 200 chars
    assert "hashing" in page and "pred_probs from 5-fold" in page


def test_worst_items_sorted_and_limited():
    issues, summary = make_audit(n=50)
    page = render_report(issues, summary, max_rows=5)
    table = page.split('id="worst-items"')[1]
    shown = re.findall(r"<tr[^>]*><td>(id\d+)</td>", table)
    expected = issues.sort_values("label_score").index[:5].tolist()
    assert shown == expected
    assert table.count('<tr class="flagged">') >= 1


def test_class_names_are_escaped_everywhere():
    issues, summary = make_audit(classes=["cat", EVIL, 'a"b&c'])
    issues.loc[issues.index[0], "text"] = EVIL
    page = render_report(issues, summary, title=EVIL)
    assert EVIL not in page
    assert EVIL_ESCAPED in page
    assert "&quot;" in page or "&#x27;" in page
    assert_self_contained(page)
    check_well_formed(page)
    for svg in (
        heatmap_svg([[1.0]], [EVIL], [EVIL], title=EVIL, row_title=EVIL, col_title=EVIL),
        bar_chart_svg({EVIL: 1}, title=EVIL, xlabel=EVIL),
        histogram_svg([0.1, 0.2], title=EVIL, xlabel=EVIL),
    ):
        assert EVIL not in svg and EVIL_ESCAPED in svg
        ET.fromstring(svg)


@pytest.mark.parametrize("k", [2, 100])
def test_report_handles_small_and_large_k(k):
    issues, summary = make_audit(k=k, n=400)
    page = render_report(issues, summary)
    assert page.count("<svg") == 3
    check_well_formed(page)
    assert_self_contained(page)
    assert len(page) < 400_000  # large heatmaps merge runs of equal colour


def test_empty_issue_set_no_flags():
    issues, summary = make_audit(flag_rate=0.0)
    issues["is_outlier_issue"] = False
    summary["issue_counts"] = {"label": 0, "outlier": 0, "near_duplicate": 0}
    summary["issues_per_class"] = {"label": {c: 0 for c in summary["classes"]}}
    page = render_report(issues, summary)
    check_well_formed(page)
    assert page.count("<svg") == 3
    assert "flagged (0)" in page
    assert 'class="flagged"' not in page


def test_zero_row_issues_table():
    issues, summary = make_audit()
    empty = issues.iloc[:0]
    summary.update(n_items=0, issue_counts={}, issues_per_class={}, notes=[], settings={})
    page = render_report(empty, summary)
    check_well_formed(page)
    assert page.count("<svg") == 3
    assert "no items" in page and "no data" in page and "No notes." in page


def test_minimal_columns_and_summary():
    issues, summary = make_audit()
    minimal = issues[["given_label", "suggested_label", "label_score", "is_label_issue"]]
    for key in ("issue_counts", "issues_per_class", "joint", "notes", "settings"):
        summary.pop(key)
    page = render_report(minimal, summary)
    check_well_formed(page)
    assert page.count("<svg") == 3
    assert "duplicate set" not in page and "<th>text</th>" not in page
    assert f'<td class="num">{int(minimal["is_label_issue"].sum())}</td>' in page


def test_missing_required_column_is_named():
    issues, summary = make_audit()
    with pytest.raises(ValidationError, match=r"missing column.*'label_score'"):
        render_report(issues.drop(columns="label_score"), summary)
    with pytest.raises(ValidationError, match=r"noise_matrix.*expected \(3, 3\)"):
        render_report(issues, {**summary, "noise_matrix": [[1.0]]})


def test_timestamp_is_shown():
    issues, summary = make_audit()
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert "2024-05-06T07:08:09+00:00" in render_report(issues, summary, generated_at=when)


def test_heatmap_values_only_for_small_k():
    small = np.eye(3) * 0.5 + 0.5 / 3
    svg = heatmap_svg(small, list("abc"), list("abc"), title="t", row_title="r", col_title="c")
    ET.fromstring(svg)
    assert svg.count('class="cell"') == 9
    assert ">0.67</text>" in svg
    k = 60
    big = np.full((k, k), 0.1) + np.eye(k)
    labels = [f"c{i}" for i in range(k)]
    svg = heatmap_svg(big, labels, labels, title="t", row_title="r", col_title="c")
    ET.fromstring(svg)
    assert 'class="cell"' not in svg
    assert ">c59<" not in svg  # tick labels dropped beyond the limit


def test_heatmap_truncates_long_labels():
    name = "a_really_long_class_name_indeed"
    svg = heatmap_svg(
        [[1, 0], [0, 1]], [name, "b"], [name, "b"], title="t", row_title="r", col_title="c"
    )
    assert "a_really_long_c…" in svg
    assert f"<title>{name}</title>" in svg  # full name on hover
    assert "rotate(-45" in svg


def test_bar_chart_sorted_and_truncated():
    values = {f"k{i:02d}": i for i in range(40)}
    svg = bar_chart_svg(values, title="t", xlabel="x")
    ET.fromstring(svg)
    labels = re.findall(r"</title>(k\d\d)</text>", svg)
    assert labels == [f"k{i:02d}" for i in range(39, 9, -1)]
    assert "showing top 30 of 40" in svg
    assert "showing top" not in bar_chart_svg({"a": 1, "b": 2}, title="t", xlabel="x")
    assert "no data" in bar_chart_svg({}, title="t", xlabel="x")


def test_histogram_stacks_flagged():
    values = np.linspace(0, 1, 100)
    svg = histogram_svg(values, bins=10, title="t", xlabel="x", highlight_mask=values < 0.2)
    ET.fromstring(svg)
    assert "flagged (20)" in svg and "not flagged (80)" in svg
    assert "#d62728" in svg
    plain = histogram_svg([0.5, 0.5, np.nan], title="t", xlabel="x")
    ET.fromstring(plain)
    assert "#d62728" not in plain and "1 non-finite" in plain
    with pytest.raises(ValueError, match="highlight_mask"):
        histogram_svg([0.1, 0.2], title="t", xlabel="x", highlight_mask=[True])


def test_write_report_atomic(tmp_path: Path):
    issues, summary = make_audit()
    target = tmp_path / "out" / "report.html"
    out = write_report(target, issues, summary, title="my audit")
    assert out == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    page = target.read_text(encoding="utf-8")
    assert "<title>my audit</title>" in page and page.count("<svg") == 3


def test_write_report_failure_leaves_nothing(tmp_path: Path, monkeypatch):
    issues, summary = make_audit()

    def boom(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(_html, "render_report", boom)
    target = tmp_path / "report.html"
    with pytest.raises(RuntimeError, match="render failed"):
        write_report(target, issues, summary)
    assert list(tmp_path.iterdir()) == []
    target.write_text("previous", encoding="utf-8")
    with pytest.raises(RuntimeError):
        write_report(target, issues, summary)
    assert target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_write_failure_midway_leaves_no_partial_file(tmp_path: Path, monkeypatch):
    issues, summary = make_audit()
    real = _html.atomic_write

    class Exploding:
        def __init__(self, fh):
            self.fh = fh

        def write(self, text):
            self.fh.write(text[:100])
            raise OSError("disk full")

    from contextlib import contextmanager

    @contextmanager
    def flaky(path):
        with real(path) as fh:
            yield Exploding(fh)

    monkeypatch.setattr(_html, "atomic_write", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path / "r.html", issues, summary)
    assert list(tmp_path.iterdir()) == []
