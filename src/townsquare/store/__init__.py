"""Persistence behind the ``Store`` interface; ``open_store`` picks the backend.

    >>> from townsquare.store import open_store
    >>> with open_store(":memory:") as s:
    ...     s.count()
    0
"""
from __future__ import annotations

import os
from pathlib import Path

from townsquare.store.base import Quarantined, Store, Stored, WriteResult
from townsquare.store.sqlite import SQLiteStore

__all__ = ["Store", "Stored", "Quarantined", "WriteResult", "open_store", "resolve_home"]

DEFAULT_HOME = ".townsquare"
DB_FILE = "townsquare.db"


def resolve_home(home: str | Path | None = None) -> Path:
    """The data folder: ``home`` (``--home``), else ``$TOWNSQUARE_HOME``, else ``./.townsquare``."""
    return Path(home or os.environ.get("TOWNSQUARE_HOME") or DEFAULT_HOME)


def open_store(target: str | Path | None = None) -> Store:
    """Open a store: ``":memory:"``, a ``.db`` file, or a home folder (its ``townsquare.db``)."""
    if str(target) == ":memory:":
        return SQLiteStore(":memory:")
    p = resolve_home(target) if target is None or not str(target).endswith(".db") else Path(target)
    if p.suffix != ".db":
        p = p / DB_FILE
    return SQLiteStore(p)
