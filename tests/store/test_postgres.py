"""What only the PostgreSQL store has: year partitions, schema versions and ``townsquare migrate``,
the pgvector index, state shared by API workers, and its errors. (Everything both stores do is
tested on both, in the other files of this folder.)"""
from __future__ import annotations

import json
import time

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.posts import Post
from townsquare.settings import redact_url
from townsquare.store import pgschema
from townsquare.store.base import Stored
from townsquare.store.postgres import PostgresStore

A = 1212092628029698048                      # 2019-12-31
Y2020 = pgschema.year_bounds(2020)[0] + 5    # a Snowflake id of 2020-01-01


def _s(pid, text, **kw):
    return Stored(Post(id=pid, text=text, source="s1", **kw).normalized(), "f.csv", 1)


@pytest.fixture
def pg(pg_url):
    s = PostgresStore(pg_url)
    yield s
    s.close()


def test_posts_go_to_the_partition_of_their_year(pg):
    pg.write_batch([_s(A, "old year"), _s(Y2020, "new year"), _s(12345, "pre-Snowflake id", created_at=1_300_000_000_000)], [])
    where = dict(pg._db.execute("SELECT id, tableoid::regclass::text FROM posts").fetchall())
    assert where == {A: "posts_y2019", Y2020: "posts_y2020", 12345: "posts_legacy"}
    assert pg.stats()["partitions"] == ["posts_legacy", "posts_y2019", "posts_y2020"]
    assert pg.count() == 3 and pg.integrity_check() == []


def test_year_bounds_follow_snowflake_time():
    low, high = pgschema.year_bounds(2020)
    assert pgschema.year_of_id(low) == 2020 and pgschema.year_of_id(low - 1) == 2019
    assert pgschema.year_of_id(high) == 2021
    last = pgschema.year_of_id((1 << 63) - 1)
    assert last == 2080 and pgschema.year_bounds(last)[1] is None   # runs to the largest id


def test_nul_characters_are_stored_as_replacement_characters(pg):
    s = _s(A, "fine text", author_name="x")
    s.post.author_name = "bad\x00name"         # normalized() cleans the text, not every field
    pg.write_batch([s], [])
    assert pg.get(A).author_name == "bad\ufffdname"


def test_accents_case_and_punctuation_match_as_in_the_embedded_store(pg):
    pg.write_batch([_s(A, "Séisme à Québec: COVID-19!"), _s(A + 1, "covid nineteen")], [])
    assert pg.lexical_ids("seisme") == [A] and pg.lexical_ids("QUEBEC") == [A]
    assert pg.lexical_ids('"covid 19"') == [A]
    assert sorted(pg.lexical_ids("covid")) == [A, A + 1]


def test_vectors_are_searched_through_the_hnsw_index(pg):
    rng = np.random.default_rng(0)
    V = rng.normal(size=(20, 8)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    pg.write_batch([_s(A + i, f"post {i}") for i in range(20)], [])
    pg.write_vectors("m", [(A + i, i + 1, V[i].astype(np.float16).tobytes()) for i in range(20)], 20)
    hits = pg.vector_search(V[3], 5)
    assert hits[0][0] == A + 3 and hits[0][1] == pytest.approx(1.0, abs=1e-2)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    plan = " ".join(r[0] for r in pg._db.execute(
        "EXPLAIN SELECT post_id FROM vectors ORDER BY emb <=> %s::halfvec LIMIT 5",
        ("[" + ",".join(["0.1"] * 8) + "]",)).fetchall())
    assert "vectors_emb" in plan                          # the HNSW index, not a sort
    pg.reset_vectors("other")
    assert pg.vector_search(V[3], 5) == [] and pg.embedding_lag()["embedded"] == 0


def test_shared_state_versions_and_one_leader(pg_url, pg):
    assert pg.get_shared("stories") == (0, None)
    assert pg.put_shared("stories", b"one") == 1 and pg.put_shared("stories", b"two") == 2
    other = PostgresStore(pg_url)
    try:
        assert other.get_shared("stories") == (2, b"two") and other.shared_version("stories") == 2
        assert pg.try_leader("background") is True
        assert other.try_leader("background") is False     # held by the first connection
        pg.close()                                         # the leader goes away ...
        # ... and another takes over: the server frees a session's advisory locks when it has
        # processed the disconnect, a moment after close() returns, so the next step may retry.
        deadline = time.monotonic() + 5.0
        while not other.try_leader("background") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.try_leader("background") is True
    finally:
        other.close()


def test_concurrent_writers_keep_seq_in_commit_order(pg_url):
    import threading
    stores = [PostgresStore(pg_url) for _ in range(3)]
    try:
        def write(k):
            for b in range(10):
                stores[k].write_batch([_s(A + k * 1000 + b * 10 + i, f"w{k} b{b} p{i}")
                                       for i in range(10)], [])
        ts = [threading.Thread(target=write, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        rows = stores[0].posts_since(0, 10_000)
        assert len(rows) == 300 and [r[1] for r in rows] == list(range(1, 301))
        assert stores[0].max_seq() == 300
    finally:
        for s in stores:
            s.close()


def test_a_bad_url_is_a_clear_error():
    with pytest.raises(ConnectionError, match="cannot connect to PostgreSQL at .*:\\*\\*\\*@"):
        PostgresStore("postgresql://u:secret@127.0.0.1:1/x", connect_timeout_s=2)


def test_a_newer_schema_is_refused(pg):
    pg._set_meta("schema_version", "99")
    with pytest.raises(RuntimeError, match="schema version 99 is newer"):
        PostgresStore(pg.url)


def test_upgrades_run_in_order_once(pg, monkeypatch):
    current = pgschema.SCHEMA_VERSION
    assert pg.schema_version() == current
    monkeypatch.setattr(pgschema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(pgschema, "UPGRADES", {
        **pgschema.UPGRADES, current + 1: ["ALTER TABLE quarantine ADD COLUMN note text"]})
    s = PostgresStore(pg.url)
    assert s.schema_version() == current + 1
    s.close()
    s = PostgresStore(pg.url)                             # already there: nothing runs again
    assert s.schema_version() == current + 1
    cols = {r[0] for r in s._db.execute("SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'quarantine'")}
    assert "note" in cols
    s.close()


def test_migrate_command_creates_checks_and_reports(pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv("TOWNSQUARE_STORE", raising=False)
    run = CliRunner().invoke
    r = run(app, ["--store", pg_url, "migrate", "--check", "--home", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert '"before": null' in r.output and '"pending": false' in r.output
    with psycopg.connect(pg_url) as c:                   # --check created nothing
        assert c.execute("SELECT to_regclass('posts')").fetchone()[0] is None
    r = run(app, ["--store", pg_url, "migrate", "--home", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"store": redact_url(pg_url), "before": None,
                                    "target": pgschema.SCHEMA_VERSION, "pending": False,
                                    "after": pgschema.SCHEMA_VERSION}
    r = run(app, ["--store", pg_url, "migrate", "--check", "--home", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["before"] == pgschema.SCHEMA_VERSION and report["pending"] is False
    r = run(app, ["--store", "mysql://x", "migrate", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "postgresql://" in r.output


def test_rate_buckets_are_shared_and_atomic(pg_url, pg):
    import threading
    assert [pg.take_token("k1", 2) for _ in range(3)][:2] == [0, 0]
    assert pg.take_token("k1", 2) >= 1                     # empty: wait about 30 s
    others = [PostgresStore(pg_url) for _ in range(4)]     # four workers, one key of 10/min
    granted = []
    try:
        def hammer(s):
            granted.extend(1 for _ in range(10) if s.take_token("k2", 10) == 0)
        ts = [threading.Thread(target=hammer, args=(s,)) for s in others]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        for s in others:
            s.close()
    assert len(granted) == 10                              # not one token spent twice


def test_any_word_match_leaves_out_words_most_posts_have(pg):
    pg.write_batch([_s(A + i, f"the storm report number {i}" + (" bridge" if i % 10 == 0 else ""),
                       lang="en") for i in range(200)], [])
    q = pg.match_any(["storm", "bridge"], common_share=0.05).expr
    assert "'storm'" in q and "'bridg'" in q               # no statistics yet: every word kept
    pg._db.execute("ANALYZE posts_y2019")                  # what autovacuum does by itself
    pg._common_cache = None
    q = pg.match_any(["storm", "bridge"], common_share=0.05).expr
    assert "'storm'" not in q and "'bridg'" in q           # 'storm' is in every post
    assert pg.match_any(["storm"], common_share=0.05) is None       # nothing left to match
    assert pg.match_any(["storm"]).expr == "('storm')"           # no threshold: kept
    hits = pg.lexical_search(None, any_words=pg.match_any(["bridges"]), limit=50)
    assert len(hits) == 20                                 # stemmed: bridges finds bridge
