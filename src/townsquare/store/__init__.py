"""Persistence behind the ``Store`` interface; ``open_store`` picks the backend.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as s:
    ...     s.count()
    0

The embedded SQLite store is the default. A ``postgresql://`` URL, given as the target or in
``$TOWNSQUARE_STORE`` (the CLI's ``townsquare --store URL ...`` sets it), opens the server-mode
store (``townsquare.store.postgres``) instead; the home folder then keeps only the files that are
not posts (API keys, ads, models).
"""
from __future__ import annotations

import os
from pathlib import Path

from townsquare.store.base import Quarantined, Store, Stored, WriteResult
from townsquare.store.sqlite import SQLiteStore

__all__ = ["Store", "Stored", "Quarantined", "WriteResult", "open_store", "resolve_home",
           "store_url", "STORE_ENV"]

STORE_ENV = "TOWNSQUARE_STORE"

DEFAULT_HOME = ".townsquare"
DB_FILE = "townsquare.db"


def resolve_home(home: str | Path | None = None) -> Path:
    """The data folder: ``home`` (``--home``), else ``$TOWNSQUARE_HOME``, else ``./.townsquare``."""
    return Path(home or os.environ.get("TOWNSQUARE_HOME") or DEFAULT_HOME)


def store_url() -> str | None:
    """The server-mode store's URL from ``$TOWNSQUARE_STORE``, or None (embedded)."""
    url = os.environ.get(STORE_ENV, "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"${STORE_ENV}: expected a postgresql:// URL, got {url[:40]!r}")
    return url


def open_store(target: str | Path | None = None) -> Store:
    """Open a store: a ``postgresql://`` URL, ``":memory:"``, a ``.db`` file, or a home folder
    (its ``townsquare.db``)."""
    if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
        from townsquare.store.postgres import PostgresStore
        return PostgresStore(target)
    if str(target) == ":memory:":
        return SQLiteStore(":memory:")
    p = resolve_home(target) if target is None or not str(target).endswith(".db") else Path(target)
    if p.suffix != ".db":
        p = p / DB_FILE
    return SQLiteStore(p)
