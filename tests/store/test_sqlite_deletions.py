"""The deletions log (``Store.deletions_since``) and the store's part of the maintenance step
(``Store.compact``), on both backends; what only the embedded store does to its files
(``secure_delete``, the FTS5 merge, the truncated write-ahead log) at the end."""
from __future__ import annotations

import sqlite3

from townsquare.posts import Post
from townsquare.store import open_store
from townsquare.store.base import Stored
from townsquare.store.pgschema import SCHEMA_VERSION as PG_SCHEMA_VERSION
from townsquare.store.sqlite import SCHEMA_VERSION, SQLiteStore

A, B, C, D = (1212092628029698048 + i for i in range(4))
NEVER = 1212092628029698999              # an id no batch ever stored
TOKEN = "zqxdeletetoken7731"


def _s(pid: int, text: str) -> Stored:
    return Stored(Post(id=pid, text=text, source="s1").normalized(), "f.csv", 1)


def _log(store) -> list[int]:
    return [pid for _seq, pid in store.deletions_since(0, 1000)]


def test_the_log_holds_each_deleted_stored_post_in_commit_order(store):
    store.write_batch([_s(A, "one"), _s(B, "two"), _s(C, "three"), _s(D, "four")], [])
    assert store.deletions_since(0, 10) == []
    assert store.delete([C, A]) == 2
    assert store.delete([B]) == 1
    log = store.deletions_since(0, 10)
    seqs = [seq for seq, _pid in log]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] > 0
    assert {pid for _, pid in log[:2]} == {A, C} and log[2][1] == B     # one commit, then the next
    assert store.get(D) is not None and D not in _log(store)


def test_only_posts_that_were_stored_are_logged_once(store):
    store.write_batch([_s(A, "one")], [])
    assert store.delete([NEVER]) == 0                 # a tombstone ahead of its post
    assert store.deleted_ids() == {NEVER} and _log(store) == []
    store.delete([A, NEVER])
    store.delete([A])                                 # already gone: nothing to purge again
    assert _log(store) == [A]
    res = store.write_batch([_s(A, "one again")], [])  # a deleted id is never stored again...
    assert res.skipped_deleted == 1
    store.delete([A])
    assert _log(store) == [A]                         # ...so never logged again either


def test_deletions_since_pages_after_a_watermark(store):
    ids = [A + i for i in range(10)]
    store.write_batch([_s(i, f"post {i}") for i in ids], [])
    for i in ids:
        store.delete([i])
    seen, seq = [], 0
    while page := store.deletions_since(seq, 3):
        assert len(page) <= 3 and all(s > seq for s, _ in page)
        seen += [pid for _, pid in page]
        seq = page[-1][0]
    assert seen == ids and store.deletions_since(seq, 3) == []


def test_the_log_has_its_own_sequence_that_is_never_reused(store):
    store.write_batch([_s(A, "one"), _s(B, "two")], [])
    store.delete([A])
    (first, _), = store.deletions_since(0, 10)
    store.write_batch([_s(C, "three")], [])
    store.delete([B])
    store.delete([C])
    later = [seq for seq, _ in store.deletions_since(first, 10)]
    assert len(later) == 2 and min(later) > first
    assert store.deletions_since(max(later), 10) == []


def test_the_log_persists(store_target):
    s = open_store(store_target)
    s.write_batch([_s(A, "one"), _s(B, "two")], [])
    s.delete([B])
    s.close()
    with open_store(store_target) as s:
        assert _log(s) == [B]


def test_compact_reports_the_deletions_since_the_last_one_and_is_cheap_without(store):
    first = store.compact()
    assert first["deletions"] == 0 and first["seconds"] >= 0
    store.write_batch([_s(A, "flood on main"), _s(B, "bridge closed"), _s(C, "all clear")], [])
    store.delete([A, B])
    did = store.compact()
    assert did["deletions"] == 2
    if isinstance(store, SQLiteStore):
        assert did["fts_merge_steps"] >= 1 and did["wal_truncated"]
    else:
        assert "posts" in did["vacuumed"]
    again = store.compact()
    assert again["deletions"] == 0
    assert again.get("fts_merge_steps", 0) == 0 and again.get("vacuumed", []) == []
    store.delete([C])
    assert store.compact()["deletions"] == 1
    assert store.count() == 0 and store.lexical_ids("flood") == []


# --- the embedded store's files ----------------------------------------------------------------
def test_secure_delete_is_on(tmp_path):
    # Freed pages and deleted cells are zeroed as they go. Some builds turn it on by default
    # (Debian's is compiled with SQLITE_SECURE_DELETE); others (python.org's, macOS's) do not.
    with SQLiteStore(tmp_path / "t.db") as s:
        assert s._db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_compact_removes_a_deleted_posts_words_from_the_database_and_its_log(tmp_path):
    db = tmp_path / "t.db"
    s = SQLiteStore(db)
    # Another connection keeps the write-ahead log file while the store writes and compacts.
    other = sqlite3.connect(db)
    other.execute("SELECT count(*) FROM posts").fetchone()
    try:
        posts = [_s(A + i, f"Bridge closed on route {i} after the flood") for i in range(50)]
        s.write_batch(posts + [_s(D + 100, f"Flood at the {TOKEN} tower")], [])
        for i in range(0, 50, 10):                # several FTS5 segments, written apart
            s.write_batch([_s(B + 1000 + i, f"more flood news {i}")], [])
        s.delete([D + 100])
        s.checkpoint()
        held = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.db"))
        # FTS5 deletes by adding a delete marker: the word stays in the older b-tree (the test
        # would prove nothing otherwise).
        assert TOKEN[3:].encode() in held
        did = s.compact()
        assert did["deletions"] == 1 and did["fts_merge_steps"] >= 1 and did["wal_truncated"]
        assert (tmp_path / "t.db-wal").stat().st_size == 0
        for path in tmp_path.iterdir():
            data = path.read_bytes()
            # the whole word, and its tail (FTS5 writes a term minus the prefix it shares with
            # the term before it)
            assert TOKEN.encode() not in data and TOKEN[3:].encode() not in data, path.name
        assert s.lexical_ids("flood", limit=100) and s.lexical_ids(TOKEN) == []
        assert s.integrity_check() == []
    finally:
        other.close()
        s.close()


def test_a_version_four_store_logs_its_tombstones_on_upgrade(tmp_path):
    db = tmp_path / "old.db"
    with SQLiteStore(db) as s:
        s.write_batch([_s(A, "one"), _s(B, "two")], [])
        s.delete([B, NEVER])
    con = sqlite3.connect(db)                  # make it look like a version 4 store: no log
    con.execute("DROP TABLE deletions")
    con.execute("UPDATE deleted SET deleted_at = 1 WHERE id = 1212092628029698999")   # NEVER
    con.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with SQLiteStore(db) as s:
        assert s._meta("schema_version") == str(SCHEMA_VERSION)
        # every tombstone (which of them were stored is not known any more), oldest first
        assert _log(s) == [NEVER, B]
        s.write_batch([_s(C, "three")], [])
        s.delete([C])
        assert _log(s) == [NEVER, B, C]


def test_a_version_two_postgres_store_logs_its_tombstones_on_upgrade(pg_url):
    with open_store(pg_url) as s:
        s.write_batch([_s(A, "one"), _s(B, "two")], [])
        s.delete([B])
        s._db.execute("DROP TABLE deletions")
        s._set_meta("schema_version", "2")
    with open_store(pg_url) as s:
        assert s.schema_version() == PG_SCHEMA_VERSION
        assert _log(s) == [B]
        s.delete([A])
        assert _log(s) == [B, A]
