"""Import size limits of ``truelabel init`` (data file, items, text length, image size) and
of the web app's request bodies and login fields: each refusal is clear, names the flag that
raises the limit, and leaves nothing behind."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")

import truelabel.store as ts  # noqa: E402
from truelabel.cli import app  # noqa: E402
from truelabel.exceptions import ValidationError  # noqa: E402

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_db_env(monkeypatch):
    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)


def _csv(tmp_path, n=20, long_row=None, chars=50):
    texts = [f"text {i}" for i in range(n)]
    if long_row is not None:
        texts[long_row] = "x" * chars
    path = tmp_path / "d.csv"
    pd.DataFrame({"t": texts, "y": ["a", "b"] * (n // 2)}).to_csv(path, index=False)
    return path


def _init(folder, data, *extra):
    args = ["init", str(folder), "--data", str(data), "--label-col", "y", "--text-col", "t"]
    return runner.invoke(app, [*args, *extra])


def test_limits_refuse_with_the_flag_and_leave_nothing(tmp_path):
    data = _csv(tmp_path, long_row=7, chars=120)
    size_mb = data.stat().st_size / 1024 / 1024
    cases = [
        (["--max-file-mb", f"{size_mb / 2}"], r"--data: .*MiB, above the import limit.*--max-file-mb"),
        (["--max-items", "19"], r"--data: has 20 items, above the import limit of 19.*--max-items"),
        (["--max-text-chars", "119"], r"--text-col: row 7 has 120 characters \(1 rows are above.*--max-text-chars"),
    ]  # fmt: skip
    for extra, pattern in cases:
        folder = tmp_path / "p"
        res = _init(folder, data, *extra)
        assert res.exit_code == 2, res.output
        assert pd.Series([" ".join(res.output.split())]).str.contains(pattern).all(), res.output
        assert not folder.exists()  # refused before anything was written
    # at the limit: fine
    res = _init(tmp_path / "ok", data, "--max-items", "20", "--max-text-chars", "120")
    assert res.exit_code == 0 and "20 items" in res.output, res.output


def test_default_limits_and_bad_values():
    limits = ts.ImportLimits()
    assert (limits.max_file_mb, limits.max_items, limits.max_text_chars, limits.max_image_mb) == (
        4096.0,
        10_000_000,
        100_000,
        50.0,
    )
    for key, flag in [("max_items", "--max-items"), ("max_file_mb", "--max-file-mb")]:
        with pytest.raises(ValidationError, match=f"{flag}: got 0; pass a positive number"):
            ts.ImportLimits(**{key: 0})
    with pytest.raises(ValidationError, match="--max-text-chars: got True"):
        ts.ImportLimits(max_text_chars=True)
    limits.check_texts(["x" * 100_000, None])  # at the limit
    with pytest.raises(ValidationError, match="row 1 has 100001 characters"):
        limits.check_texts([None, "x" * 100_001])


def test_image_size_limit(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"\x89PNG" + b"0" * 2000)
    (tmp_path / "img" / "b.png").write_bytes(b"\x89PNG" + b"0" * 50)
    data = tmp_path / "d.csv"
    pd.DataFrame({"p": ["img/b.png", "img/a.png"], "y": ["a", "b"]}).to_csv(data, index=False)
    args = [
        "init",
        str(tmp_path / "p"),
        "--data",
        str(data),
        "--label-col",
        "y",
        "--image-col",
        "p",
    ]
    res = runner.invoke(app, [*args, "--max-image-mb", "0.001"])
    assert res.exit_code == 2 and "row 1: image 'a.png'" in res.output, res.output
    assert "--max-image-mb" in " ".join(res.output.split())
    assert not (tmp_path / "p").exists()
    assert runner.invoke(app, [*args, "--max-image-mb", "0.01"]).exit_code == 0


def test_login_fields_are_bounded(tmp_path):
    pytest.importorskip("fastapi")
    from .web.conftest import build_project, make_client

    folder = build_project(tmp_path / "proj")
    with make_client(folder, team=True) as client:
        token = client.get("/api/csrf").json()["csrf_token"]
        res = client.post(
            "/api/login",
            json={"username": "a", "password": "p" * 1001},
            headers={"X-CSRF-Token": token},
        )
        assert res.status_code == 422 and "1000 characters" in res.text
