from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.cli import app
from truelabel.datasets import make_noisy_labels

runner = CliRunner()


@pytest.fixture
def feature_csv(tmp_path):
    rng = np.random.default_rng(0)
    n, k = 600, 3
    centers = rng.normal(scale=5.0, size=(k, 4))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(size=(n, 4))
    noisy, flipped = make_noisy_labels(y, noise_rate=0.1, random_state=0)
    names = np.array(["cat", "dog", "<b>bird</b>"])
    df = pd.DataFrame(X, columns=[f"f_{i}" for i in range(4)])
    df.insert(0, "label", names[noisy])
    df.insert(0, "item", [f"id{i}" for i in range(n)])
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path, flipped


def test_audit_features_writes_three_files(feature_csv, tmp_path):
    path, flipped = feature_csv
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--feature-cols",
            "f_*",
            "--id-col",
            "item",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    issues = pd.read_csv(out / "issues.csv")
    assert len(issues) == 600
    assert issues["label_score"].is_monotonic_increasing
    assert {"id", "given_label", "suggested_label", "is_label_issue"} <= set(issues)
    flagged = set(issues.loc[issues["is_label_issue"], "id"])
    truth = {f"id{i}" for i in np.flatnonzero(flipped)}
    assert len(flagged & truth) / len(flagged) > 0.8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_items"] == 600 and summary["issue_counts"]["label"] == len(flagged)
    html = (out / "report.html").read_text()
    assert "<b>bird</b>" not in html and "&lt;b&gt;bird&lt;/b&gt;" in html
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_audit_text_column(tmp_path):
    texts = (
        ["my card never arrived"] * 40
        + ["please refund my payment"] * 40
        + ["how do I change my pin"] * 40
    )
    labels = ["card"] * 40 + ["refund"] * 40 + ["pin"] * 40
    labels[3] = "refund"
    rng = np.random.default_rng(0)
    texts = [f"{t} {w}" for t, w in zip(texts, rng.choice(["now", "today", "asap", "thanks"], 120))]
    path = tmp_path / "t.jsonl"
    pd.DataFrame({"text": texts, "intent": labels}).to_json(path, orient="records", lines=True)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "intent",
            "--text-col",
            "text",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    issues = pd.read_csv(out / "issues.csv")
    assert issues.iloc[0]["id"] == 3 and issues.iloc[0]["suggested_label"] == "card"
    assert "text" in issues


def test_audit_pred_probs_file(feature_csv, tmp_path):
    path, _ = feature_csv
    df = pd.read_csv(path)
    classes = sorted(df["label"].unique())
    probs = np.full((len(df), 3), 0.1)
    probs[np.arange(len(df)), [classes.index(c) for c in df["label"]]] = 0.8
    npy = tmp_path / "p.npy"
    np.save(npy, probs)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--pred-probs",
            str(npy),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out / "issues.csv")["is_label_issue"].sum() == 0


def test_audit_clear_errors(feature_csv, tmp_path):
    path, _ = feature_csv
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "lable",
            "--feature-cols",
            "f_*",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 2
    assert "error: --label-col: no column named 'lable'; did you mean 'label'?" in res.output
    assert not out.exists()
    npy = tmp_path / "bad.npy"
    np.save(npy, np.full((5, 3), 1 / 3))
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--pred-probs",
            str(npy),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 2 and "error: --pred-probs: has 5 rows" in res.output
    res = runner.invoke(
        app, ["audit", str(path), "--label-col", "label", "--out", str(out), "--quiet"]
    )
    assert (
        res.exit_code == 2
        and "--text-col, --feature-cols, --features or --pred-probs" in res.output
    )


def test_interrupted_write_keeps_previous_outputs(feature_csv, tmp_path, monkeypatch):
    path, _ = feature_csv
    out = tmp_path / "out"
    args = _args(path, out)
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "report.html").read_bytes()

    import truelabel.report as report

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_report", boom)
    monkeypatch.setattr("truelabel.report._html.render_report", boom)
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 130
    assert (out / "report.html").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_demo_runs_and_scores(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "precision" in res.output
    assert (out / "report.html").stat().st_size > 1000
    from truelabel.demo import run_demo

    scores = run_demo(tmp_path / "d2", noise_rate=0.08, random_state=0)
    assert scores["precision"] > 0.85 and scores["recall"] > 0.75 and scores["auprc"] > 0.9


# -- fails early, cleanly -------------------------------------------------------------------
def _args(path, out, *extra):
    return [
        "audit",
        str(path),
        "--label-col",
        "label",
        "--feature-cols",
        "f_*",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the audit computes anything."""

    def boom(*a, **k):
        raise AssertionError("computed before checking --out")

    monkeypatch.setattr("truelabel.pipeline.audit_dataset", boom)


def _one_clean_error(res, message):
    text = res.output.strip()  # errors are printed unwrapped (soft wrap): paths stay whole
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert text.startswith("error: ") and message in text, text
    return text


def test_version():
    from truelabel import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"truelabel {__version__}"


def test_out_is_a_file_refused_before_computing(feature_csv, tmp_path, no_compute):
    path, _ = feature_csv
    target = tmp_path / "out"
    target.write_text("keep me")
    res = runner.invoke(app, _args(path, target))
    _one_clean_error(res, f"error: --out: '{target}' is a file; pass a directory path")
    assert target.read_text() == "keep me"


def test_out_that_cannot_be_created_refused_before_computing(feature_csv, tmp_path, no_compute):
    path, _ = feature_csv
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    res = runner.invoke(app, _args(path, blocker / "sub" / "out"))
    _one_clean_error(res, f"cannot create '{blocker / 'sub' / 'out'}': '{blocker}' is a file")


def test_out_not_writable_refused_before_computing(feature_csv, tmp_path, monkeypatch, no_compute):
    """A directory the process cannot write to (simulated: the probe file fails as on a
    read-only file system, which even root cannot write to)."""
    import tempfile

    path, _ = feature_csv

    def read_only(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    res = runner.invoke(app, _args(path, tmp_path))
    _one_clean_error(res, f"--out: cannot write to '{tmp_path}' (Permission denied)")
    res = runner.invoke(app, _args(path, tmp_path / "new" / "out"))
    _one_clean_error(
        res, f"--out: cannot create '{tmp_path / 'new' / 'out'}' in '{tmp_path}' (Permission"
    )
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write to read-only dirs"
)
def test_out_in_read_only_directory(feature_csv, tmp_path, no_compute):
    path, _ = feature_csv
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        res = runner.invoke(app, _args(path, ro / "out"))
        _one_clean_error(res, "cannot create")
    finally:
        ro.chmod(0o755)


def test_earlier_results_need_overwrite(feature_csv, tmp_path):
    path, _ = feature_csv
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # unrelated files do not block
    assert runner.invoke(app, _args(path, out)).exit_code == 0
    first = (out / "summary.json").read_text()
    (out / "summary.json").write_text("{}")
    res = runner.invoke(app, _args(path, out))
    _one_clean_error(
        res,
        f"--out: '{out}' already holds results of an earlier run (issues.csv, summary.json, "
        "report.html, pred_probs.npy); pass --overwrite to replace them",
    )
    assert (out / "summary.json").read_text() == "{}"  # untouched
    res = runner.invoke(app, _args(path, out, "--overwrite"))
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text()) == json.loads(first)
    assert (out / "notes.txt").read_text() == "mine"


def test_demo_refuses_earlier_results_without_overwrite(tmp_path, no_compute):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.html").write_text("old")
    res = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    _one_clean_error(res, "already holds results of an earlier run (report.html)")


def test_os_error_on_a_user_path_is_one_line(feature_csv, tmp_path, monkeypatch):
    path, _ = feature_csv

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("truelabel.data.Dataset.from_file", denied)
    res = runner.invoke(app, _args(path, tmp_path / "out"))
    _one_clean_error(res, f"error: Permission denied ({path})")


def test_n_neighbors_checked(feature_csv, tmp_path, no_compute):
    path, _ = feature_csv
    res = runner.invoke(app, _args(path, tmp_path / "o", "--n-neighbors", "0"))
    _one_clean_error(res, "--n-neighbors: got 0; pass an int >= 1")


def test_tsv_named_csv_and_bad_jsonl_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    words = ["card", "refund", "pin"]
    rows = [f"my {w}, {rng.integers(100)} please\t{w}" for w in words for _ in range(30)]
    path = tmp_path / "intents.csv"
    path.write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--text-col",
            "text",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
        ],
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert f"warning: path: '{path}' is tab-separated, not comma-separated" in text
    assert len(pd.read_csv(tmp_path / "o" / "issues.csv")) == 90
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    source = "out-of-fold (logistic regression on TF-IDF)"
    if summary["encoder"]["kind"] == "sentence embeddings":
        source = "out-of-fold (mean of logistic regressions on TF-IDF and on sentence embeddings)"
    assert summary["details"]["label"]["pred_probs_source"] == source
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n{"text": "c" "label": "y"}\n'
    )
    res = runner.invoke(
        app,
        [
            "audit",
            str(bad),
            "--label-col",
            "label",
            "--text-col",
            "text",
            "--out",
            str(tmp_path / "o2"),
            "--quiet",
        ],
    )
    _one_clean_error(res, f"error: DATA: line 3 of '{bad}' is not a JSON object (Expecting ','")
    assert not (tmp_path / "o2").exists()


# -- warnings, not nonsense -----------------------------------------------------------------
def test_tiny_classes_warn_and_nothing_else_leaks(tmp_path):
    """Observation 5 in small: 40 classes of 2 items. Before: 'estimated label noise rate
    100.0%' with scikit-learn UserWarnings and no word of warning; classes c0, c1, c10."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(40), 2)
    df = pd.DataFrame(rng.normal(size=(80, 4)), columns=[f"f_{i}" for i in range(4)])
    df.insert(0, "label", [f"c{i}" for i in y])
    path = tmp_path / "tiny.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "out"
    res = runner.invoke(app, _args(path, out))
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert (
        "warning: 40 of 40 classes have fewer labelled items than the 5 folds ('c0': 2, 'c1': 2,"
        in text
    )
    assert "Give every class at least 5 labelled items" in text
    summary = json.loads((out / "summary.json").read_text())
    rate = summary["estimated_noise_rate"]
    assert rate > 0.5
    assert f"warning: the estimated label noise rate is {rate:.1%}, above 50%" in text
    assert f"estimated label noise rate: {rate:.1%} (unreliable, see the warning)" in text
    assert "UserWarning" not in text and "sklearn" not in text and "not shown" not in text
    assert summary["classes"] == [f"c{i}" for i in range(40)]  # natural order
    assert len(summary["warnings"]) == 2 and "above 50%" in summary["warnings"][1]


def test_other_libraries_warnings_are_counted_not_shown(feature_csv, tmp_path, monkeypatch):
    import warnings

    import truelabel.pipeline as pipeline

    real = pipeline.audit_dataset

    def noisy(*a, **k):
        warnings.warn("divide by zero encountered", RuntimeWarning, stacklevel=1)
        warnings.warn("divide by zero encountered", RuntimeWarning, stacklevel=1)
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "audit_dataset", noisy)
    path, _ = feature_csv
    res = runner.invoke(app, _args(path, tmp_path / "o"))
    assert res.exit_code == 0, res.output
    assert "divide by zero" not in res.output
    assert "(2 warning(s) from other libraries not shown)" in " ".join(res.output.split())


def test_summary_json_bounded_with_many_classes(tmp_path):
    """K = 60 > SUMMARY_MAX_CLASSES: no K x K matrices; the top confused pairs are the
    largest off-diagonal cells of the joint (checked against a naive loop)."""
    from truelabel import Audit
    from truelabel.pipeline import SUMMARY_MAX_CLASSES, SUMMARY_TOP_PAIRS, write_audit

    k = 60
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(k), 20)
    p = np.full((y.size, k), 0.2 / (k - 1))
    true = np.where(rng.random(y.size) < 0.25, (y + 1 + (y % 3)) % k, y)
    p[np.arange(y.size), true] = 0.8
    res = Audit({"label": {}}).run(labels=y, pred_probs=p, classes=[f"c{i}" for i in range(k)])
    write_audit(res, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert k > SUMMARY_MAX_CLASSES and "noise_matrix" not in summary and "joint" not in summary
    joint = res.noise.joint
    cells = [(joint[s, t], s, t) for s in range(k) for t in range(k) if s != t and joint[s, t] > 0]
    cells.sort(key=lambda c: -c[0])
    expected = cells[:SUMMARY_TOP_PAIRS]
    pairs = summary["top_confused_pairs"]
    assert len(pairs) == len(expected) == 50
    assert [p["share_of_items"] for p in pairs] == pytest.approx([c[0] for c in expected])
    top = pairs[0]
    s, t = expected[0][1], expected[0][2]
    assert (top["given"], top["likely_true"]) == (f"c{s}", f"c{t}")
    assert top["n_items"] == res.noise.confident_joint[s, t]
    assert top["p_given_if_true"] == pytest.approx(res.noise.noise_matrix[s, t])
    assert (tmp_path / "summary.json").stat().st_size < 40_000
    small = Audit({"label": {}}).run(
        labels=y % 3, pred_probs=np.full((y.size, 3), 1 / 3) * 0 + np.eye(3)[y % 3] * 0.7 + 0.1
    )
    write_audit(small, tmp_path / "small")
    s3 = json.loads((tmp_path / "small" / "summary.json").read_text())
    assert len(s3["noise_matrix"]) == 3 and "top_confused_pairs" not in s3


def test_pred_probs_in_text_column_order_refused(tmp_path):
    names = [f"c{i}" for i in range(12)]  # natural order c0..c11; text order c0, c1, c10, ...
    y = np.repeat(np.arange(12), 10)
    df = pd.DataFrame({"label": [names[i] for i in y], "f_0": y.astype(float)})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    text_order = sorted(names)
    p = np.full((y.size, 12), 0.1 / 11)
    p[np.arange(y.size), [text_order.index(names[i]) for i in y]] = 0.9
    np.save(tmp_path / "p.npy", p)
    base = ["audit", str(path), "--label-col", "label", "--quiet"]
    res = runner.invoke(
        app, [*base, "--pred-probs", str(tmp_path / "p.npy"), "--out", str(tmp_path / "o")]
    )
    _one_clean_error(
        res,
        "error: --pred-probs: its columns seem to follow the text order of the class names (c0, c1, "
        "c10, c11, ...): the most probable class matches 100% of the labels in that order but "
        "17% in truelabel's natural order (c0, c1, c2, c3, ...)",
    )
    order = [text_order.index(c) for c in names]
    np.save(tmp_path / "p2.npy", p[:, order])
    res = runner.invoke(
        app, [*base, "--pred-probs", str(tmp_path / "p2.npy"), "--out", str(tmp_path / "o2")]
    )
    assert res.exit_code == 0, res.output


def test_data_directory_lists_the_tables_in_it(tmp_path):
    (tmp_path / "train.csv").write_text("label\na\n")
    (tmp_path / "notes.txt").write_text("x")
    res = runner.invoke(
        app, ["audit", str(tmp_path), "--label-col", "label", "--out", str(tmp_path / "o")]
    )
    _one_clean_error(
        res,
        f"error: DATA: '{tmp_path}' is a directory; pass the path of a file, e.g. "
        f"'{tmp_path / 'train.csv'}' (tables here: train.csv)",
    )


def test_cli_on_trec_fine_labels_end_to_end(shared_datasets, tmp_path):
    """A new user's run on real data: TREC questions (first 600, ~40 fine classes, some
    tiny) saved tab-separated under a .csv name. Expected warnings computed from the file."""
    df = pd.read_csv(shared_datasets / "text_trec" / "train.csv").iloc[:600]
    path = tmp_path / "trec.csv"
    df[["text", "fine_label"]].to_csv(path, sep="\t", index=False)
    out = tmp_path / "out"
    args = ["audit", str(path), "--label-col", "fine_label", "--text-col", "text"]
    res = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    counts = df["fine_label"].value_counts()
    classes = sorted(counts.index)  # TREC names hold no digits: natural order = text order
    small = sorted((n, classes.index(c), c) for c, n in counts.items() if n < 5)
    shown = ", ".join(f"'{c}': {n}" for n, _, c in small[:10])
    more = f" and {len(small) - 10} more" if len(small) > 10 else ""
    assert (
        f"warning: {len(small)} of {len(classes)} classes have fewer labelled items than the 5 "
        f"folds ({shown}{more})" in res.output
    )
    assert f"warning: path: '{path}' is tab-separated" in res.output
    assert "sklearn" not in res.output and "Traceback" not in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == classes and summary["n_items"] == 600
    assert len(summary["top_confused_pairs"]) == 50 and "noise_matrix" not in summary
    assert (out / "summary.json").stat().st_size < 60_000
    unreliable = summary["estimated_noise_rate"] > 0.5  # likely, with ~15 items per class
    assert len(summary["warnings"]) == 2 + unreliable
    assert ("above 50%" in res.output) == unreliable
    assert len(pd.read_csv(out / "issues.csv")) == 600
    again = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert again.exit_code == 2 and "already holds results of an earlier run" in again.output


def test_help_lists_the_main_commands_first():
    from truelabel.cli import app as cli_app

    res = CliRunner().invoke(cli_app, ["--help"])
    names = [
        ln.split()[1] for ln in res.output.splitlines() if ln.startswith("│ ") and ln[2:3].isalpha()
    ]
    assert names[:4] == ["audit", "autolabel", "certify", "consensus"], names
    assert names[-1] == "demo"
