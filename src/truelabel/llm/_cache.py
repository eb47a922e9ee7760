"""On-disk response cache of the LLM client: one SQLite file, keyed by the request.

The key is the SHA-256 of the canonical JSON of (endpoint URL, request body), the body
holding the model, the prompt and every sampling parameter, so any change of endpoint,
model, prompt or parameter is a miss and a re-run of the same requests makes no request.
The API key is not part of the key (the same request answered under another key is the
same answer) and is never written. Only successful answers are stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "request_key"]


def request_key(url: str, body: dict[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``(url, body)`` (sorted keys, no spaces)."""
    text = json.dumps([url, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """Responses by request key in ``<folder>/responses.sqlite3`` (WAL, thread-safe).

    Parameters
    ----------
    folder : path
        Created if missing. Several processes may share it (SQLite locking).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "responses.sqlite3"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)"
            )
            self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response of ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, response: dict[str, Any]) -> None:
        """Store ``response`` under ``key`` (a later answer to the same request replaces it)."""
        text = json.dumps(response, ensure_ascii=False)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, text))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.folder)!r})"
