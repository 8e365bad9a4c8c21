from __future__ import annotations

import sqlite3

import pytest

from townsquare.posts import Post
from townsquare.store.base import Store, Stored
from townsquare.store.sqlite import SQLiteStore

T = 1_600_000_000_000
BASE = 1212092628029698048


def _s(i, text, **kw):
    return Stored(Post(id=BASE + i, text=text, source="s1", **kw).normalized(), "f.csv", i)


def _fill(store):
    store.write_batch([
        _s(1, "ann one", author_handle="Ann", author_id=7, created_at=T + 1),
        _s(2, "ann two", author_handle="ann", created_at=T + 2),
        _s(3, "ann three, by id only", author_id=7, created_at=T + 3),
        _s(4, "bob", author_handle="bob", author_id=8, created_at=T + 4),
        _s(5, "ann tie", author_handle="ANN", created_at=T + 2),
        _s(6, "no author", created_at=T + 5),
    ], [])


def test_newest_first_by_handle_any_case(store):
    _fill(store)
    got = [p.id - BASE for p in store.posts_by_author("@Ann")]
    assert got == [5, 2, 1]                        # created_at desc, then id desc on the tie


def test_a_numeric_key_matches_the_author_id_and_an_all_digit_handle(store):
    _fill(store)
    store.write_batch([_s(7, "handle 7", author_handle="7", created_at=T + 9)], [])
    assert [p.id - BASE for p in store.posts_by_author(7)] == [7, 3, 1]


def test_limit_and_before(store):
    _fill(store)
    assert [p.id - BASE for p in store.posts_by_author("ann", limit=2)] == [5, 2]
    assert [p.id - BASE for p in store.posts_by_author("ann", before_ms=T + 2)] == [1]
    assert store.posts_by_author("nobody") == []
    with pytest.raises(ValueError):
        store.posts_by_author("ann", limit=0)
    with pytest.raises(ValueError, match="not an author"):
        store.posts_by_author(" @ ")


def test_the_default_implementation_agrees_with_sqlite(store):
    _fill(store)
    for author, kw in [("ann", {}), (7, {}), ("ann", {"limit": 1}), ("ann", {"before_ms": T + 2})]:
        assert Store.posts_by_author(store, author, **kw) == store.posts_by_author(author, **kw)


def test_both_lookups_use_an_index(store):
    _fill(store)
    plans = []
    real = store._db

    pg = not isinstance(store, SQLiteStore)
    if pg:   # a handful of rows: without this, PostgreSQL rightly prefers reading the table
        real.execute("SET enable_seqscan = off")

    class Spy:
        def execute(self, sql, args=()):
            if sql.startswith("SELECT") and "FROM posts WHERE" in sql:
                if pg:
                    plan = real.execute("EXPLAIN " + sql, args).fetchall()
                    plans.append(" ".join(r[0] for r in plan))
                else:
                    plan = real.execute("EXPLAIN QUERY PLAN " + sql, args)
                    plans.append(" ".join(r[3] for r in plan))
            return real.execute(sql, args)

    store._db = Spy()
    try:
        store.posts_by_author("7")
    finally:
        store._db = real
    assert len(plans) == 2
    if pg:    # the partitions' copies of posts_handle (lower(author_handle)) and posts_author
        assert "Index" in plans[0] and "lower_created_at_idx" in plans[0], plans[0]
        assert "Index" in plans[1] and "author_id_created_at_idx" in plans[1], plans[1]
    else:
        assert "USING INDEX posts_handle" in plans[0] and "USING INDEX posts_author" in plans[1]


def test_a_store_written_before_the_index_gains_it(tmp_path):
    db = tmp_path / "old.db"
    s = SQLiteStore(db)
    _fill(s)
    s.close()
    con = sqlite3.connect(db)
    con.execute("DROP INDEX posts_handle")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s._db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'posts_handle'"
                         ).fetchone()[0] == 1
    assert [p.id - BASE for p in s.posts_by_author("ann")] == [5, 2, 1]
    assert s.integrity_check() == []
    s.close()
