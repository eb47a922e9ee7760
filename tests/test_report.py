from __future__ import annotations

import base64
import hashlib
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
    assert not re.search(r"url\(|@import|<link|<img|<iframe|\bsrc\s*=", page, flags=re.I)
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1 and page.count("<script") == 1  # only the table sorter
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert csp.group(1) == (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    )


def section(page: str, name: str) -> str:
    """The HTML of ``<section id=name>``, or '' when the page has none."""
    match = re.search(rf'<section id="{name}">.*?</section>', page, flags=re.S)
    return match.group(0) if match else ""


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([\w-]+)">', page)


def test_full_report_is_self_contained_and_well_formed():
    issues, summary = make_audit()
    page = render_report(issues, summary)
    assert page.startswith("<!DOCTYPE html>")
    assert section_ids(page) == [
        "summary",
        "next-steps",
        "scores",
        "confused-pairs",
        "noise-matrix",
        "per-class",
        "worst-items",
        "notes",
        "settings",
    ]
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
    joint = np.eye(k) / k * 0.9
    for a in range(0, min(k, 16), 2):  # eight confused pairs: (0, 1), (2, 3), ...
        joint[a, a + 1] = 0.1 / min(k // 2, 8)
    summary["joint"] = (joint / joint.sum()).tolist()
    page = render_report(issues, summary)
    check_well_formed(page)
    assert_self_contained(page)
    assert len(page) < 400_000
    heat = section(page, "noise-matrix")
    shown = re.findall(r"<title>(class_\d+)</title>", heat)  # tick labels, rows then columns
    if k == 2:
        assert shown == ["class_0", "class_1"] * 2
    else:  # only the classes of the top confused pairs, with readable labels
        pairs = section(page, "confused-pairs").replace("<wbr>", "")
        in_pairs = set(re.findall(r'<td class="name">(class_\d+)</td>', pairs))
        assert 2 <= len(set(shown)) <= 12 and set(shown) <= in_pairs
        assert "Only the" in heat and "of 100" in heat


def test_empty_issue_set_no_flags():
    issues, summary = make_audit(flag_rate=0.0)
    issues["is_outlier_issue"] = False
    summary["issue_counts"] = {"label": 0, "outlier": 0, "near_duplicate": 0}
    summary["issues_per_class"] = {"label": {c: 0 for c in summary["classes"]}}
    page = render_report(issues, summary)
    check_well_formed(page)
    assert "flagged (0)" in section(page, "scores")
    assert 'class="flagged"' not in page
    assert "per-class" not in section_ids(page)  # no chart of zero bars
    assert "Zoom" not in page
    assert "Nothing was flagged" in section(page, "next-steps")


def test_zero_row_issues_table():
    issues, summary = make_audit()
    empty = issues.iloc[:0]
    summary.update(n_items=0, issue_counts={}, issues_per_class={}, notes=[], settings={})
    page = render_report(empty, summary)
    check_well_formed(page)
    assert section_ids(page) == ["summary", "next-steps", "noise-matrix"]
    assert "No notes" not in page and "no items" not in page


def test_minimal_columns_and_summary():
    issues, summary = make_audit()
    minimal = issues[["given_label", "suggested_label", "label_score", "is_label_issue"]]
    for key in ("issue_counts", "issues_per_class", "joint", "notes", "settings"):
        summary.pop(key)
    page = render_report(minimal, summary)
    check_well_formed(page)
    assert "confused-pairs" not in section_ids(page)  # no joint, no pairs
    assert "notes" not in section_ids(page) and "settings" not in section_ids(page)
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
    assert "<title>my audit</title>" in page and 'id="worst-items"' in page


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


# --- confused pairs, worked by hand -------------------------------------------------------

# P(given, true) for classes cat, EVIL, dog; 20 labelled items. Directed pairs estimated at
# >= 1 item: (dog -> EVIL) .15 * 20 = 3, (cat -> EVIL) .10 * 20 = 2, (EVIL -> cat) .05 * 20 = 1.
# Shares of the given class: .15 / .30 = 50%, .10 / .40 = 25%, .05 / .30 = 16.7%.
PAIR_JOINT = np.array([[0.30, 0.10, 0.00], [0.05, 0.25, 0.00], [0.00, 0.15, 0.15]])


def pairs_audit() -> tuple[pd.DataFrame, dict]:
    classes = ["cat", EVIL, "dog"]
    given = ["cat"] * 8 + [EVIL] * 6 + ["dog"] * 6
    suggested = list(given)
    score = np.linspace(0.5, 0.99, 20)
    flagged = np.zeros(20, dtype=bool)
    # four dog items suggested EVIL (scores .3, .1, .2, .05), one cat item suggested EVIL
    for i, s in zip([14, 15, 16, 17], [0.3, 0.1, 0.2, 0.05]):
        suggested[i], score[i], flagged[i] = EVIL, s, True
    suggested[3], score[3], flagged[3] = EVIL, 0.15, True
    issues = pd.DataFrame(
        {
            "given_label": given,
            "suggested_label": suggested,
            "label_score": score,
            "is_label_issue": flagged,
            "text": [f"text {i}" if i != 17 else EVIL for i in range(20)],
        },
        index=pd.Index([f"id{i}" for i in range(20)]),
    )
    py = PAIR_JOINT.sum(axis=0)
    summary = {
        "n_items": 20,
        "n_classes": 3,
        "classes": classes,
        "issue_counts": {"label": int(flagged.sum())},
        "noise_matrix": (PAIR_JOINT / py).tolist(),
        "joint": PAIR_JOINT.tolist(),
        "estimated_noise_rate": 0.3,
    }
    return issues, summary


def table_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)
    return [re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S) for r in rows]


def test_confused_pairs_table_exact():
    issues, summary = pairs_audit()
    page = render_report(issues, summary)
    rows = table_rows(section(page, "confused-pairs"))
    assert [r[:5] for r in rows] == [
        ["dog", EVIL_ESCAPED, "3", "50.0%", "4"],
        ["cat", EVIL_ESCAPED, "2", "25.0%", "1"],
        [EVIL_ESCAPED, "cat", "1", "16.7%", "0"],
    ]
    # worst three flagged dog -> EVIL items, worst first, with their (escaped) text
    assert re.findall(r"<code>(id\d+)</code>", rows[0][5]) == ["id17", "id15", "id16"]
    assert EVIL_ESCAPED in rows[0][5]
    assert re.findall(r"<code>(id\d+)</code>", rows[1][5]) == ["id3"]
    assert rows[2][5] == "none flagged"
    steps = section(page, "next-steps")
    assert f"<code>dog</code> given where <code>{EVIL_ESCAPED}</code> is likely" in steps
    assert "about 3 items" in steps


def test_noise_matrix_masks_diagonal_in_colour_scale():
    issues, summary = pairs_audit()
    heat = section(render_report(issues, summary), "noise-matrix")
    assert heat.count('fill="#cccccc"') == 3  # the diagonal, grey
    # the largest off-diagonal entry (dog | EVIL = .15 / .5 = .3) takes the darkest colour
    assert re.search(r'fill="#08306b"><title>given label=dog, true label=&lt;script', heat)
    assert ">0.30</text>" in heat


def test_escaping_in_every_section():
    issues, summary = pairs_audit()
    issues.index = pd.Index([EVIL if i == 17 else f"id{i}" for i in range(20)])
    summary.update(notes=[EVIL], settings={EVIL: EVIL})
    page = render_report(issues, summary, title=EVIL)
    assert_self_contained(page)
    check_well_formed(page)
    for name in section_ids(page):
        part = section(page, name)
        assert EVIL not in part, name
    for name in ("confused-pairs", "noise-matrix", "worst-items", "notes", "settings"):
        assert EVIL_ESCAPED in section(page, name), name


# --- histograms ---------------------------------------------------------------------------


def bins_in(svg: str) -> dict[str, tuple[int, int]]:
    found = re.findall(r'<title class="bin">(\[.*?\)): (\d+) not flagged, (\d+) flagged', svg)
    return {b: (int(p), int(f)) for b, p, f in found}


def red_heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'height="([\d.]+)" fill="#d62728">', svg)]


@pytest.mark.parametrize("log_scale", [False, True])
def test_histogram_counts_flagged_per_bin(log_scale):
    rng = np.random.default_rng(0)
    values = rng.random(500)
    mask = values < 0.3
    svg = histogram_svg(
        values, bins=10, title="t", xlabel="x", highlight_mask=mask, log_scale=log_scale
    )
    ET.fromstring(svg)
    edges = np.linspace(values.min(), values.max(), 11)
    plain = np.histogram(values[~mask], edges)[0]
    flagged = np.histogram(values[mask], edges)[0]
    got = sorted(bins_in(svg).values(), key=lambda pf: pf)
    want = sorted((int(p), int(f)) for p, f in zip(plain, flagged) if p or f)
    assert got == want
    assert len(red_heights(svg)) == int((flagged > 0).sum())
    assert f"flagged ({mask.sum()})" in svg and f"not flagged ({(~mask).sum()})" in svg
    assert "highest flagged: 0.3" in svg or "highest flagged: 0.29" in svg


def test_log_histogram_keeps_a_few_flagged_items_visible():
    values = np.r_[np.full(9990, 0.99), np.full(10, 0.2)]
    mask = values < 0.5
    linear = histogram_svg(values, title="t", xlabel="x", highlight_mask=mask)
    logged = histogram_svg(values, title="t", xlabel="x", highlight_mask=mask, log_scale=True)
    assert red_heights(linear) == [pytest.approx(220 * 10 / 10000, abs=0.06)]  # a sliver
    # log10(11) / log10(10001) of the 220 px plot: a quarter of the height
    assert red_heights(logged) == [pytest.approx(220 * np.log10(11) / np.log10(10001), abs=0.06)]
    assert "count (log scale)" in logged


def test_histogram_value_range_zooms():
    values = np.r_[np.linspace(0.0, 0.4, 41), np.full(100, 0.95)]
    mask = values < 0.2
    svg = histogram_svg(
        values, bins=4, title="t", xlabel="x", highlight_mask=mask, value_range=(0.0, 0.4)
    )
    assert "100 outside the range" in svg
    assert sum(p + f for p, f in bins_in(svg).values()) == 41


def test_report_zooms_on_flagged_range_when_most_items_score_high():
    issues, summary = make_audit(n=400, flag_rate=0.0)
    scores = np.r_[np.linspace(0.02, 0.4, 20), np.full(380, 0.98)]
    issues["label_score"] = scores
    issues["is_label_issue"] = scores < 0.3
    part = section(render_report(issues, summary), "scores")
    assert part.count("<svg") == 2
    assert (
        "Zoom on the flagged range" in part and "384 items score higher" in part
    )  # 380 + 4 in (.328, .4]
    assert "count (log scale)" in part


# --- sorting, empty parts, next steps -------------------------------------------------------


def test_tables_are_sortable_and_start_worst_first():
    issues, summary = make_audit(n=50)
    page = render_report(issues, summary)
    table = section(page, "worst-items")
    assert '<table class="sortable">' in table
    assert '<th aria-sort="ascending"><button type="button">label_<wbr>score</button></th>' in table
    values = [float(v) for v in re.findall(r'<td class="num" data-v="([^"]+)">', table)[::3]]
    assert values == sorted(values) and values[0] == issues["label_score"].min()
    assert '<table class="sortable">' in section(page, "confused-pairs")


def test_duplicate_set_column_only_when_a_row_has_a_set():
    issues, summary = make_audit(n=30)
    assert ">duplicate set<" not in render_report(issues, summary)  # every set is -1
    worst = issues["label_score"].idxmin()
    issues.loc[worst, "near_duplicate_set"] = 4
    table = section(render_report(issues, summary), "worst-items")
    assert '<button type="button">duplicate set</button>' in table
    assert '<td class="num" data-v="4">4</td>' in table


def cli_options() -> dict[str, set[str]]:
    from typer.main import get_command

    from truelabel.cli._app import app

    group = get_command(app)
    return {
        name: {opt for param in cmd.params for opt in param.opts}
        for name, cmd in group.commands.items()  # type: ignore[attr-defined]
    }


def test_next_steps_point_at_columns_and_real_commands():
    issues, summary = make_audit()
    issues.loc[issues.index[:3], "is_near_duplicate_issue"] = True
    issues.loc[issues.index[:3], "near_duplicate_set"] = [0, 0, 1]
    page = render_report(issues, summary)
    steps = section(page, "next-steps")
    n_label = int(issues["is_label_issue"].sum())
    assert f"Review the {n_label} items with <code>is_label_issue</code> = True" in steps
    for column in ("label_score", "given_label", "suggested_label", "near_duplicate_set"):
        assert f"<code>{column}</code>" in steps
    assert "3 items have <code>is_near_duplicate_issue</code> = True in 2 sets" in steps
    assert "<code>is_outlier_issue</code> = True" in steps
    commands = re.findall(r"<code>truelabel (\w+)([^<]*)</code>", steps)
    assert {c for c, _ in commands} == {"audit", "certify"}
    options = cli_options()
    for command, args in commands:
        for option in re.findall(r"--[\w-]+", args):
            assert option in options[command], (command, option)
    assert "--out" in options["audit"] and "<code>--out</code>" in steps
    # every issues column is explained
    glossary = steps.split("Columns of issues.csv")[1]
    for column in issues.columns:
        assert f"<code>{column}</code>" in glossary, column


def test_next_steps_leave_out_checks_that_did_not_flag():
    issues, summary = make_audit()
    issues["is_outlier_issue"] = False
    steps = section(render_report(issues, summary), "next-steps")
    assert "is_near_duplicate_issue</code> = True" not in steps
    assert "is_outlier_issue</code> = True" not in steps


# --- audits without labels, AuditResult ----------------------------------------------------


def unlabelled_result():
    from truelabel import Audit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    X[5] += 12.0  # an outlier
    X[7] = X[6] + 1e-6  # a near-duplicate
    return Audit(random_state=0).run(features=X)


def test_write_report_for_an_audit_without_labels(tmp_path: Path):
    result = unlabelled_result()
    assert "is_label_issue" not in result.issues
    out = write_report(result, tmp_path / "r.html")
    page = out.read_text(encoding="utf-8")
    check_well_formed(page)
    assert_self_contained(page)
    ids = section_ids(page)
    assert ids == ["summary", "next-steps", "worst-items"]
    assert "noise-rate" not in page and "given label" not in page
    assert "80 items &middot; generated at" in page  # no "0 classes"
    table = section(page, "worst-items")
    assert "lowest score (the lowest of each item's scores)" in table.replace("&#x27;", "'")
    first = re.findall(r"<tr[^>]*><td>(\d+)</td>", table)[:3]
    worst = result.issues[["outlier_score", "near_duplicate_score"]].min(axis=1)
    assert first == [str(i) for i in worst.sort_values(kind="stable").index[:3]]
    assert set(first) >= {"5"} or {"6", "7"} <= set(first)


def test_audit_result_write_report_shortcut(tmp_path: Path):
    result = unlabelled_result()
    path = result.write_report(tmp_path / "a.html", title="shortcut")
    assert path == tmp_path / "a.html" and "<title>shortcut</title>" in path.read_text()


def test_write_report_bad_arguments():
    issues, summary = make_audit()
    with pytest.raises(ValidationError, match=r"result: got DataFrame, expected an AuditResult"):
        write_report(issues, "x.html")
    with pytest.raises(ValidationError, match=r"path: got int"):
        write_report(unlabelled_result(), 3)


def test_label_issues_exact():
    from truelabel import Audit

    labels = np.array([0] * 6 + [1] * 6)
    p0 = np.array([0.9, 0.85, 0.2, 0.8, 0.9, 0.95, 0.1, 0.15, 0.95, 0.2, 0.1, 0.3])
    result = Audit(random_state=0).run(labels=labels, pred_probs=np.c_[p0, 1 - p0])
    flagged = result.label_issues()
    # item 8 (given 1, p(0) = .95) is worse than item 2 (given 0, p(0) = .2); nothing else
    assert flagged.index.tolist() == [8, 2]
    assert list(flagged.columns) == list(result.issues.columns)
    pd.testing.assert_frame_equal(flagged, result.issues.loc[[8, 2]])
    assert flagged["label_score"].is_monotonic_increasing
    assert flagged["suggested_label"].tolist() == ["0", "1"]


def test_label_issues_without_label_check():
    with pytest.raises(ValidationError, match=r"issue_types: the label check did not run"):
        unlabelled_result().label_issues()


def test_warnings_are_shown_under_the_summary_escaped_and_absent_when_none():
    issues, summary = make_audit()
    html = render_report(issues, summary)
    assert 'id="warnings"' not in html  # nothing warned: no empty section
    summary["warnings"] = ["classes with fewer than 5 items: 'c7' (2)", EVIL]
    html = render_report(issues, summary)
    section = html[html.index('<section id="warnings">') :]
    section = section[: section.index("</section>")]
    assert "classes with fewer than 5 items: &#x27;c7&#x27; (2)" in section or (
        "classes with fewer than 5 items: &#39;c7&#39; (2)" in section
    )
    assert EVIL_ESCAPED in section and EVIL not in html
    # right after the summary, before the next steps
    assert html.index('id="summary"') < html.index('id="warnings"') < html.index('id="next')
