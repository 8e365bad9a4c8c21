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


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
