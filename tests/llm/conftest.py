from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch, tmp_path):
    """Tests never read the developer's server settings or write the user cache."""
    for name in ("TRUELABEL_LLM_URL", "TRUELABEL_LLM_MODEL", "TRUELABEL_LLM_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "cache"))
