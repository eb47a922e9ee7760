from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# TRUELABEL_SHARED_DATASETS points a checkout elsewhere (e.g. a git worktree) at the data
SHARED = Path(
    os.environ.get(
        "TRUELABEL_SHARED_DATASETS",
        Path(__file__).resolve().parents[1].parent / "shared" / "datasets",
    )
)


@pytest.fixture
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(
            f"needs the shared datasets at {SHARED} (present in CI, absent in a fresh clone)"
        )
    return SHARED


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def noisy_problem():
    """Synthetic pred_probs with known flips: N=3000, K=5, 15% uniform noise."""
    from truelabel.datasets import make_noisy_labels

    rng = np.random.default_rng(0)
    n, k = 3000, 5
    true = rng.integers(0, k, n)
    noisy, flipped = make_noisy_labels(true, noise_rate=0.15, random_state=1)
    logits = rng.normal(size=(n, k)) + 3.0 * np.eye(k)[true]
    return noisy, softmax(logits), flipped, true


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache_in_a_temp_folder(tmp_path_factory):
    """The CLI caches sentence embeddings on disk by default: never in the user's cache."""
    previous = os.environ.get("TRUELABEL_CACHE_DIR")
    os.environ["TRUELABEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("embedding-cache"))
    yield
    if previous is None:
        os.environ.pop("TRUELABEL_CACHE_DIR", None)
    else:
        os.environ["TRUELABEL_CACHE_DIR"] = previous


#: the PostgreSQL server of the store tests (``.ci/run`` starts one and sets it)
PG_ENV = "TRUELABEL_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, monkeypatch):
    """None (the project's own SQLite file) or the URL of an emptied PostgreSQL schema."""
    sa = pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")
    import truelabel.store as ts

    monkeypatch.delenv(ts.DATABASE_ENV, raising=False)
    if request.param == "sqlite":
        return None
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} (.ci/run starts a server and sets it)")
    engine = sa.create_engine(ts.StoreSettings(url=url).url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url
