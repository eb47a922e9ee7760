"""A small real project for the web tests: 12 text items in 3 classes (one class and one text
are ``<script>`` tags), a stored audit run with hand-made issues and ``pred_probs.npy``, and
its review queue; on SQLite, and on PostgreSQL when TRUELABEL_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the [web] extra is not installed")
sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")

import truelabel.store as ts  # noqa: E402
from truelabel.review import AuditIssueSource, ReviewQueue  # noqa: E402

XSS = "<script>alert(1)</script>"
CLASSES = [XSS, "ham", "spam"]  # natural order, as the project stores them
# rows 2, 5 and 9 are flagged as label errors: given -> suggested, score (lower = worse)
FLAGGED = {2: ("ham", "spam", 0.10), 5: ("spam", "ham", 0.20), 9: ("ham", XSS, 0.30)}


def _texts() -> list[str]:
    texts = [f"message number {i}" for i in range(12)]
    texts[9] = f"{XSS} hello"
    texts[4] = "100% off_sale"
    return texts


def _labels() -> list[str]:
    labels = ["ham", "spam", "ham", "spam", "ham", "spam", XSS, XSS, "ham", "ham", "spam", "ham"]
    return labels


def _pred_probs() -> np.ndarray:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=12)
    for row, (_, suggested, _) in FLAGGED.items():
        probs[row] = [0.1, 0.1, 0.1]
        probs[row, CLASSES.index(suggested)] = 0.8
    probs[2] = [0.05, 0.25, 0.70]  # spam 0.70 > ham 0.25 > xss 0.05
    return probs


def build_project(folder, database_url=None):
    folder.parent.mkdir(parents=True, exist_ok=True)
    """Create, 'audit' (hand-made issues) and queue the test project in ``folder``."""
    data = folder.parent / f"{folder.name}-data"
    data.mkdir()
    csv = data / "items.csv"
    frame = pd.DataFrame({"id": [f"i{k}" for k in range(12)], "text": _texts(), "label": _labels()})
    frame.to_csv(csv, index=False)
    ts.init_project(
        folder, data=csv, label_col="label", text_col="text", id_col="id", database_url=database_url
    )
    with ts.opened(folder, database_url=database_url) as handle:
        assert handle.settings["classes"] == CLASSES
        issues = pd.DataFrame(
            {
                "is_label_issue": [k in FLAGGED for k in range(12)],
                "label_score": [FLAGGED[k][2] if k in FLAGGED else 0.9 for k in range(12)],
                "given_label": _labels(),
                "suggested_label": [FLAGGED[k][1] if k in FLAGGED else None for k in range(12)],
            }
        )
        with handle.store.read() as s:
            item_ids = ts.item_ids_by_position(s, project_id=handle.project_id)
        with handle.store.write() as s:
            run_id = ts.start_run(s, project_id=handle.project_id, kind="audit").id
        out = folder / "runs" / str(run_id)
        out.mkdir(parents=True)
        np.save(out / "pred_probs.npy", _pred_probs())
        queue = ReviewQueue([AuditIssueSource(issues, item_ids=item_ids)]).build()
        with handle.store.write() as s:
            ts.store_audit_issues(s, run_id=run_id, item_ids=item_ids, issues=issues)
            ts.add_review_tasks(s, project_id=handle.project_id, queue=queue, run_id=run_id)
            ts.finish_run(s, run_id=run_id, summary={})
    return folder


@pytest.fixture
def project(tmp_path, db_url):
    return build_project(tmp_path / "proj", db_url), db_url


def make_client(project_dir, database_url=None, **settings):
    from fastapi.testclient import TestClient

    from truelabel.web import Settings, create_app

    app = create_app(Settings(project=project_dir, database_url=database_url, **settings))
    host = settings.get("host", "127.0.0.1")
    return TestClient(app, base_url=f"http://{host}")


@pytest.fixture
def client(project):
    with make_client(*project) as c:
        c.headers["X-CSRF-Token"] = c.get("/api/session").json()["csrf_token"]
        yield c
