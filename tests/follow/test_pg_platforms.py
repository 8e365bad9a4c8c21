"""PostgreSQL keeps the negative (namespaced) ids of other platforms in a partition of their own,
``posts_platforms`` (``FROM (MINVALUE) TO (0)``), and schema v2 moves them there out of v1's
``posts_legacy`` (which then starts at 0): a store written by v1 reads the same after the
upgrade, with every row where the new ranges put it."""
from __future__ import annotations

import pytest

from townsquare.follow import IdSpace, NativeRef
from townsquare.posts import Post
from townsquare.store import pgschema
from townsquare.store.base import Stored

psycopg = pytest.importorskip("psycopg")

X2019 = 1212092628029698048
X2020 = pgschema.year_bounds(2020)[0] + 5
LEGACY = 12345                                     # an old, non-Snowflake id
_ids = IdSpace()
BSKY = [_ids.post_id(NativeRef("bluesky", f"at://did:plc:a/app.bsky.feed.post/{k}"))
        for k in ("p1", "p2")]
MASTO = _ids.post_id(NativeRef("mastodon", "mastodon.example/7"))
T = 1_700_000_000_000
FLOOR_2011 = pgschema.year_bounds(pgschema.FIRST_YEAR)[0]       # where posts_legacy ends


def _posts() -> list[Stored]:
    texts = {X2019: "Levee report from the harbor", X2020: "New year flood watch",
             LEGACY: "Archive note about the levee", BSKY[0]: "Ferry Aurelia refloated",
             BSKY[1]: "Ferry back in port", MASTO: "Shelter open at the school"}
    return [Stored(Post(id=i, text=t, source="s", created_at=T).normalized(), "f", n)
            for n, (i, t) in enumerate(texts.items())]


def where(db) -> dict[int, str]:
    return dict(db.execute("SELECT id, tableoid::regclass::text FROM posts").fetchall())


def bounds(db) -> dict[str, str]:
    return dict(db.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'posts'::regclass"
    ).fetchall())


@pytest.fixture
def pg(pg_url):
    from townsquare.store.postgres import PostgresStore
    s = PostgresStore(pg_url)
    yield s
    s.close()


def test_namespaced_ids_have_a_partition_of_their_own(pg):
    pg.write_batch(_posts(), [])
    assert where(pg._db) == {X2019: "posts_y2019", X2020: "posts_y2020", LEGACY: "posts_legacy",
                             BSKY[0]: "posts_platforms", BSKY[1]: "posts_platforms",
                             MASTO: "posts_platforms"}
    b = bounds(pg._db)
    assert b["posts_platforms"] == "FOR VALUES FROM (MINVALUE) TO ('0')"
    assert b["posts_legacy"] == f"FOR VALUES FROM ('0') TO ('{FLOOR_2011}')"
    assert pg.stats()["partitions"] == ["posts_legacy", "posts_platforms", "posts_y2019",
                                        "posts_y2020"]
    assert sorted(pg.lexical_ids("ferry")) == sorted(BSKY)
    assert pg.get(MASTO).text == "Shelter open at the school"
    assert pg.delete([BSKY[0]]) == 1 and pg.get(BSKY[0]) is None
    assert pg.count() == 5 and pg.integrity_check() == []


def _as_written_by_v1(pg) -> None:
    """Turn the store into what schema v1 made of the same writes: ``posts_legacy`` from
    MINVALUE holding the negative ids, no ``posts_platforms``, and no table of a later version."""
    db = pg._db
    with db.transaction():
        db.execute("ALTER TABLE posts DETACH PARTITION posts_platforms")
        db.execute("ALTER TABLE posts DETACH PARTITION posts_legacy")
        db.execute(f"ALTER TABLE posts ATTACH PARTITION posts_legacy "
                   f"FOR VALUES FROM (MINVALUE) TO ({FLOOR_2011})")
        cols = ", ".join(pgschema.POST_COLUMNS)
        db.execute(f"INSERT INTO posts ({cols}) SELECT {cols} FROM posts_platforms")
        db.execute("DROP TABLE posts_platforms")
        db.execute("DROP TABLE deletions")                     # v3's
        pg._set_meta("schema_version", "1")


def test_the_v2_upgrade_moves_namespaced_posts_out_of_posts_legacy(pg, pg_url):
    from townsquare.store.postgres import PostgresStore
    pg.write_batch(_posts(), [])
    pg.delete([BSKY[1]])
    _as_written_by_v1(pg)
    assert pg.schema_version() == 1
    assert {where(pg._db)[i] for i in (BSKY[0], MASTO, LEGACY)} == {"posts_legacy"}
    assert bounds(pg._db)["posts_legacy"] == f"FOR VALUES FROM (MINVALUE) TO ('{FLOOR_2011}')"
    legacy_indexes = pg._db.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = 'posts_legacy'").fetchone()[0]

    s = PostgresStore(pg_url)                          # opening upgrades it
    try:
        assert s.schema_version() == pgschema.SCHEMA_VERSION
        assert where(s._db) == {X2019: "posts_y2019", X2020: "posts_y2020",
                                LEGACY: "posts_legacy", BSKY[0]: "posts_platforms",
                                MASTO: "posts_platforms"}
        b = bounds(s._db)
        assert b["posts_platforms"] == "FOR VALUES FROM (MINVALUE) TO ('0')"
        assert b["posts_legacy"] == f"FOR VALUES FROM ('0') TO ('{FLOOR_2011}')"
        # the moved rows read, search and index as before; both partitions keep their indexes
        assert s.get(BSKY[0]).text == "Ferry Aurelia refloated" and s.get(BSKY[1]) is None
        assert s.lexical_ids("ferry") == [BSKY[0]]
        assert sorted(s.lexical_ids("levee")) == sorted([X2019, LEGACY])
        for part in ("posts_legacy", "posts_platforms"):
            n = s._db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                              (part,)).fetchone()[0]
            assert n == legacy_indexes, part
        assert s.count() == 5 and s.integrity_check() == []
        assert [pid for _, pid in s.deletions_since(0, 10)] == [BSKY[1]]   # v3, after v2
        # the deleted post stays deleted, new posts of other platforms go to their partition
        later = _ids.post_id(NativeRef("bluesky", "at://did:plc:a/app.bsky.feed.post/p3"))
        s.write_batch([Stored(Post(id=BSKY[1], text="again", source="s", created_at=T)
                              .normalized()),
                       Stored(Post(id=later, text="Ferry schedule", source="s", created_at=T)
                              .normalized())], [])
        assert s.get(BSKY[1]) is None and where(s._db)[later] == "posts_platforms"
    finally:
        s.close()
