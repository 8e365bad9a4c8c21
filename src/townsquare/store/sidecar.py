"""Small SQLite files beside the store (API keys, campaigns, profiles): one way to open them.

    >>> db = connect(":memory:")
    >>> db.execute("PRAGMA journal_mode").fetchone()[0] in ("memory", "wal")
    True
    >>> db.execute("PRAGMA journal_size_limit").fetchone()[0] == JOURNAL_LIMIT_BYTES
    True

Sidecars hold what must not travel with the posts (credentials) or what another part owns (ads).
Opened in autocommit mode (callers write ``BEGIN IMMEDIATE`` when they need a transaction), in
WAL mode so readers never block the writer, shareable across the threads of a server (callers
serialize their own statements with a lock), with a 30 s busy timeout so two processes writing
at once wait for each other instead of failing. Their write-ahead log is trimmed back to
``JOURNAL_LIMIT_BYTES`` whenever SQLite restarts it (a burst of writes leaves no large file).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

JOURNAL_LIMIT_BYTES = 4 << 20


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating the folder) a sidecar database; ``":memory:"`` for tests."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT_BYTES}")
    return db
