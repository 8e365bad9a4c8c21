from __future__ import annotations

import sqlite3

import pytest

from townsquare.posts import Post
from townsquare.store.base import Stored, author_key
from townsquare.store.sqlite import SCHEMA_VERSION, SQLiteStore

A, B, C = 1212092628029698048, 1212092628029698049, 1212092628029698050


def _s(pid, text, **kw):
    return Stored(Post(id=pid, text=text, source="s1", **kw).normalized(), "f.csv", 1)


def test_opt_out_stores_lowercased_handles_and_ids_and_counts_only_new_ones(store):
    assert store.opt_out(["@CityOps", "ann", 42]) == 3
    assert store.opted_out() == {"cityops", "ann", "42"}
    assert store.opt_out(["cityops", "ANN", "@Bob"]) == 1          # only bob is new
    assert store.opted_out() == {"cityops", "ann", "42", "bob"}
    assert store.stats()["opted_out"] == 4


def test_opt_in_removes_and_counts_what_existed(store):
    store.opt_out(["ann", "bob"])
    assert store.opt_in(["@ANN", "nobody"]) == 1
    assert store.opted_out() == {"bob"}


def test_an_opt_out_keeps_the_time_of_the_first_request(store):
    store.opt_out(["ann"])
    first = store._db.execute("SELECT opted_out_at FROM opt_outs").fetchone()[0]
    store._db.execute("UPDATE opt_outs SET opted_out_at = 1")
    store.opt_out(["Ann"])
    assert store._db.execute("SELECT opted_out_at FROM opt_outs").fetchone()[0] == 1 != first


def test_opted_out_at_is_the_first_requests_time_and_none_after_opt_in(store):
    assert store.opted_out_at("ann") is None
    store.opt_out(["@Ann"])
    first = store.opted_out_at("ANN")
    assert isinstance(first, int) and first > 1_600_000_000_000
    store.opt_out(["ann"])
    assert store.opted_out_at("ann") == first
    store.opt_in(["ann"])
    assert store.opted_out_at("ann") is None


def test_an_empty_author_is_refused_and_nothing_is_written(store):
    with pytest.raises(ValueError, match="not an author"):
        store.opt_out(["ann", " @ "])
    assert store.opted_out() == set()
    assert author_key(" @CityOps ") == "cityops"


def test_opt_outs_persist_and_do_not_remove_posts(store_target):
    from townsquare.store import open_store
    s = open_store(store_target)
    s.write_batch([_s(A, "flood on main", author_handle="Ann")], [])
    s.opt_out(["ann"])
    s.close()
    s = open_store(store_target)
    assert s.opted_out() == {"ann"} and s.get(A) is not None
    s.close()


def test_deleted_ids_are_the_tombstones(store):
    store.write_batch([_s(A, "one"), _s(B, "two")], [])
    assert store.deleted_ids() == set()
    store.delete([A, C])                   # C was never stored: still remembered as deleted
    assert store.deleted_ids() == {A, C}


def test_iter_posts_by_time_orders_by_created_at_then_id(store):
    t = 1_600_000_000_000
    store.write_batch([_s(A, "late", created_at=t + 5), _s(B, "tie b", created_at=t),
                       _s(C, "tie c", created_at=t)], [])
    assert [p.id for p in store.iter_posts(by_time=True, batch_size=1)] == [B, C, A]
    assert [p.id for p in store.iter_posts()] == [A, B, C]


def test_a_version_three_store_is_upgraded_and_gains_opt_outs(tmp_path):
    db = tmp_path / "old.db"
    SQLiteStore(db).close()
    con = sqlite3.connect(db)              # make it look like a version 3 store: no opt_outs
    con.execute("DROP TABLE opt_outs")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s._meta("schema_version") == str(SCHEMA_VERSION)
    assert s.opt_out(["ann"]) == 1 and s.opted_out() == {"ann"}
    assert s.integrity_check() == []
    s.close()


def test_is_opted_out_is_a_point_lookup_matching_opted_out(store):
    s = store
    s.opt_out(["@Ann", "1212092628029698048"])
    assert s.is_opted_out("ann") and s.is_opted_out(" @ANN ")
    assert s.is_opted_out(1212092628029698048) and not s.is_opted_out("bob")
    assert {k for k in ("ann", "bob", "1212092628029698048") if s.is_opted_out(k)} == s.opted_out()


def test_posts_between_is_a_half_open_time_range_in_time_order(store):
    from townsquare.store.base import Store
    t = 1_600_000_000_000
    store.write_batch([_s(A, "a", created_at=t + 5), _s(B, "b", created_at=t),
                       _s(C, "c", created_at=t), _s(C + 1, "d", created_at=t + 9)], [])
    got = lambda *a, **k: [p.id for p in store.posts_between(*a, **k)]  # noqa: E731
    assert got(t, t + 9) == [B, C, A]                     # since inclusive, until exclusive
    assert got(t + 1) == [A, C + 1] and got(None, t + 1) == [B, C]
    assert got(t, t + 10, batch_size=1) == [B, C, A, C + 1]   # pages across a tie
    assert got(t + 6, t + 9) == [] and got() == [B, C, A, C + 1]
    assert [p.id for p in Store.posts_between(store, t, t + 9)] == got(t, t + 9)  # the default
