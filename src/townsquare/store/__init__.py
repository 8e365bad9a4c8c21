"""Persistence behind the ``Store`` interface; ``open_store`` picks the backend.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as s:
    ...     s.count()
    0

The embedded SQLite store is the default. A ``postgresql://`` URL opens the server-mode store
(``townsquare.store.postgres``) instead; the home folder then keeps only the files that are not
posts (API keys, ads, models). Which one a process uses is its settings' business
(``townsquare.settings.Settings.db_target``); this package opens what it is given.
"""
from __future__ import annotations

from pathlib import Path

from townsquare.settings import DB_FILE
from townsquare.store.base import Quarantined, Store, Stored, WriteResult
from townsquare.store.sqlite import SQLiteStore

__all__ = ["Store", "Stored", "Quarantined", "WriteResult", "open_store"]


def open_store(target: str | Path) -> Store:
    """Open a store: a ``postgresql://`` URL, ``":memory:"``, a ``.db`` file, or a home folder
    (its ``townsquare.db``)."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from townsquare.store.postgres import PostgresStore    # psycopg: only in server mode
        return PostgresStore(target)
    if str(target) == ":memory:":
        return SQLiteStore(":memory:")
    p = Path(target)
    return SQLiteStore(p if p.suffix == ".db" else p / DB_FILE)
