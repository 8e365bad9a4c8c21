from __future__ import annotations

from townsquare.ingest.enrich import LateStage
from townsquare.posts import Post
from townsquare.store.base import Quarantined, Stored

A, B, C = 1212092628029698048, 1212092628029698049, 1212092628029698050


def _s(pid, text, source="s1", **kw):
    return Stored(Post(id=pid, text=text, source=source, **kw).normalized(), "f.csv", 1)


def test_upsert_is_idempotent_and_counts_what_changed(store):
    r1 = store.write_batch([_s(A, "flood on main"), _s(B, "bridge closed")], [])
    r2 = store.write_batch([_s(A, "flood on main"), _s(B, "bridge closed")], [])
    r3 = store.write_batch([_s(A, "flood on main street")], [])
    assert (r1.inserted, r2.unchanged, r3.updated) == (2, 2, 1)
    assert store.count() == 2
    assert store.lexical_ids("street") == [A] and store.lexical_ids('"flood on main"') == [A]
    assert store.integrity_check() == []


def test_near_duplicate_roots_counts_and_texts_answer_by_id(store):
    store.write_batch([_s(A, "water rising fast near the old mill bridge"),
                       _s(B, "RT @x: water rising fast near the old mill bridge"),
                       _s(C, "a different post")], [])
    LateStage(store).run()
    assert store.dup_roots([A, B, C, 999]) == {B: A}        # the others: their own roots
    assert store.dup_counts([A, C]) == {A: 1}                              # C has none
    assert store.dup_info([B, C]) == {B: (A, 1), C: (C, 0)}
    assert store.texts_of([C, 999]) == {C: "a different post"}


def test_a_store_written_before_the_members_index_gains_it_on_open(tmp_path):
    from townsquare.store import open_store
    store = open_store(tmp_path / "t.db")
    store.write_batch([_s(A, "water rising fast near the old mill bridge"),
                       _s(B, "RT @x: water rising fast near the old mill bridge")], [])
    LateStage(store).run()
    store._db.execute("DROP INDEX posts_members")          # as an older version wrote it
    store.close()
    store = open_store(tmp_path / "t.db")
    assert store.dup_roots([A, B]) == {B: A}
    plan = store._db.execute("EXPLAIN QUERY PLAN SELECT id, dup_of FROM posts INDEXED BY "
                             "posts_members WHERE dup_of IS NOT NULL AND id IN (?)",
                             (B,)).fetchall()
    assert "COVERING INDEX posts_members" in plan[0][-1]
    store.close()


def test_shown_reads_what_a_search_result_shows_as_the_whole_post_has_it(store):
    store.write_batch([_s(A, "flood on main", author_handle="ann", author_id=42,
                          created_at=1_600_000_000_000, lang="en", hashtags=["flood"]),
                       _s(B, "bridge closed")], [])
    shown = store.shown([A, B, 999])                                       # 999: no such post
    whole = store.posts_by_id([A, B])
    assert sorted(shown) == [A, B]
    for pid, row in shown.items():
        assert row == tuple(getattr(whole[pid], name) for name in row._fields)
    assert (shown[A].author_handle, shown[A].author_id, shown[A].lang) == ("ann", 42, "en")
    assert store.shown([]) == {}


def test_merge_keeps_what_the_new_record_lacks_and_labels_per_source(store):
    store.write_batch([_s(A, "quake", "aidr", author_handle="ann", lat=1.0, lon=2.0,
                          labels={"label": "x"})], [])
    store.write_batch([_s(A, "quake", "crowdflower", labels={"label": "y"})], [])
    p = store.get(A)
    assert (p.author_handle, p.lat, p.source) == ("ann", 1.0, "aidr")
    assert {k: v["labels"] for k, v in store.sources_of(A).items()} == {
        "aidr": {"label": "x"}, "crowdflower": {"label": "y"}}
    assert store.stats()["by_source"] == {"aidr": 1, "crowdflower": 1}


def test_delete_removes_from_every_index_and_is_never_undone(store):
    store.write_batch([_s(A, "water rising fast near the old mill bridge"),
                       _s(B, "RT @x: water rising fast near the old mill bridge"),
                       _s(C, "water rising fast near the old mill bridge!")], [])
    LateStage(store).run()
    assert store.dup_of(B) == A and store.dup_of(C) == A
    assert store.delete([A, 999]) == 1
    assert store.get(A) is None and sorted(store.lexical_ids("mill")) == [B, C]
    assert store.sources_of(A) == {}
    assert store.dup_of(B) is None and store.dup_of(C) == B   # the earliest survivor leads
    assert store.signatures([A]) == {}
    r = store.write_batch([_s(A, "water rising fast near the old mill bridge")], [])
    assert r.skipped_deleted == 1 and store.get(A) is None
    assert store.integrity_check() == []


def test_changed_text_goes_through_the_late_stage_again(store):
    store.write_batch([_s(A, "the bridge on route nine is closed now")], [])
    LateStage(store).run()
    assert store.stats()["late_stage"]["pending_posts"] == 0
    store.write_batch([_s(A, "el puente de la ruta nueve está cerrado ahora mismo")], [])
    assert store.stats()["late_stage"]["pending_posts"] == 1
    assert store.get(A).lang is None
    LateStage(store).run()
    assert store.get(A).lang == "es"


def test_quarantine_upserts_by_file_and_line(store):
    q = Quarantined("s1", "f.csv", 7, "id: not a numeric id", "x,y")
    store.write_batch([], [q])
    store.write_batch([], [q])
    assert [(i.file, i.line, i.reason) for i in store.quarantine_items()] == [
        ("f.csv", 7, "id: not a numeric id")]
    assert store.stats()["quarantine_by_reason"] == {"id": 1}


def test_stats_by_day_and_language(store):
    store.write_batch([_s(A, "hello", lang="en"), _s(B, "bonjour", lang="fr")], [])
    s = store.stats()
    assert s["by_lang"] == {"en": 1, "fr": 1}
    assert s["by_day"] == {"2019-12-31": 2}   # from the Snowflake ids


def test_two_datasets_with_different_text_reingest_as_unchanged(store):
    first = [_s(A, "quake hits the coast", "aidr"), _s(A, "quake hits the coast!!", "crowdflower")]
    store.write_batch(first[:1], [])
    store.write_batch(first[1:], [])
    again = [store.write_batch([s], []) for s in first]
    assert [r.unchanged for r in again] == [1, 1]
    assert store.get(A).text == "quake hits the coast!!"     # the last dataset read still wins


def test_second_annotation_from_one_source_adds_its_labels(store):
    r1 = store.write_batch([_s(A, "bridge down", labels={"label": "damage"})], [])
    r2 = store.write_batch([_s(A, "bridge down", labels={"label": "not informative"})], [])
    r3 = store.write_batch([_s(A, "bridge down", labels={"label": "damage"})], [])
    assert (r1.inserted, r2.updated, r3.unchanged) == (1, 1, 1)
    assert store.sources_of(A)["s1"]["labels"] == {"label": ["damage", "not informative"]}
    same_batch = store.write_batch([_s(B, "road shut", labels={"label": "x"}),
                                    _s(B, "road shut", labels={"label": "y"})], [])
    assert same_batch.inserted == 1
    assert store.sources_of(B)["s1"]["labels"] == {"label": ["x", "y"]}


def test_a_version_one_store_is_upgraded_in_place(tmp_path):
    import sqlite3

    from townsquare.store.sqlite import SCHEMA_VERSION, SQLiteStore
    db = tmp_path / "old.db"
    SQLiteStore(db).close()
    con = sqlite3.connect(db)     # make it look like a version 1 store: no per-source hash
    con.execute("ALTER TABLE post_sources DROP COLUMN content_hash")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    s = SQLiteStore(db)
    assert s.write_batch([_s(A, "hello")], []).inserted == 1
    assert s._meta("schema_version") == str(SCHEMA_VERSION)
    assert s.integrity_check() == []
    s.close()


def test_migrate_upgrades_an_old_store_and_check_reports_it(tmp_path):
    import sqlite3

    from typer.testing import CliRunner

    from townsquare.cli import app
    from townsquare.store import open_store
    from townsquare.store.sqlite import SCHEMA_VERSION
    open_store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "townsquare.db")          # make it a v1 store
    db.execute("ALTER TABLE post_sources DROP COLUMN content_hash")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    run = CliRunner().invoke
    r = run(app, ["migrate", "--home", str(tmp_path), "--check"])
    assert r.exit_code == 1 and "pending" in r.stdout
    r = run(app, ["migrate", "--home", str(tmp_path)])
    assert r.exit_code == 0 and f"v1 -> v{SCHEMA_VERSION} applied" in r.stdout
    cols = [c[1] for c in sqlite3.connect(tmp_path / "townsquare.db").execute(
        "PRAGMA table_info(post_sources)")]
    assert "content_hash" in cols
    assert run(app, ["migrate", "--home", str(tmp_path), "--check"]).exit_code == 0


def test_reads_go_through_a_memory_map_unless_turned_off(tmp_path):
    import pytest
    from townsquare.store.sqlite import MMAP_BYTES, SQLiteStore
    s = SQLiteStore(tmp_path / "a.db")
    mapped = s._db.execute("PRAGMA mmap_size").fetchone()[0]
    assert 0 < mapped <= MMAP_BYTES                      # capped at the build's limit
    off = SQLiteStore(tmp_path / "b.db", mmap_bytes=0)
    assert off._db.execute("PRAGMA mmap_size").fetchone()[0] == 0
    with pytest.raises(ValueError, match="mmap_bytes"):
        SQLiteStore(tmp_path / "c.db", mmap_bytes=-1)


def test_stats_is_its_counts_and_lags_read_apart(store):
    store.write_batch([_s(A, "hello", lang="en"), _s(B, "bonjour", lang="fr", source="s2")], [])
    s = store.stats()
    assert s == {"posts": 2, **store.stats_counts(), "late_stage": store.late_stage_lag(),
                 "embeddings": store.embedding_lag()}
    assert store.stats_counts()["by_source"] == {"s1": 1, "s2": 1}
    late = store.late_stage_lag()
    assert (late["pending_posts"], late["ingested"], late["processed_through_seq"]) == (2, 2, 0)
    assert late["oldest_pending_age_s"] >= 0.0
    LateStage(store).run()
    assert store.late_stage_lag()["pending_posts"] == 0
    assert store.late_stage_lag()["oldest_pending_age_s"] == 0.0


def test_posts_pending_embedding_are_counted_up_to_a_bound(store):
    store.write_batch([_s(A, "one"), _s(B, "two"), _s(C, "three")], [])
    assert store.embedding_pending() == 3
    assert [store.embedding_pending(at_most=n) for n in (1, 2, 3, 10)] == [1, 2, 3, 3]
    assert store.embedded_through() == store.embedding_lag()["processed_through_seq"] == 0
