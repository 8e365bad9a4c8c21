"""``from:``, ``to:`` and ``@mention`` with the handles of every platform, as the collectors store
them (X's ``ana``, Bluesky's ``ana.bsky.social``, Mastodon's ``ana@mastodon.example``): the parser
takes them, and both stores (SQLite and PostgreSQL) find the same posts, through each path a
search takes (a full scan, the full-text prefilter, candidates from an index beside the store)."""
from __future__ import annotations

import pytest

from townsquare.follow import IdSpace, NativeRef
from townsquare.posts import Post
from townsquare.query import Mention, Op, QueryError, Term, parse
from townsquare.store.base import Stored
from townsquare.store.sqlite import SQLiteStore

T = 1_700_000_000_000
X_ID = 1212092628029698048
_ids = IdSpace()


def bsky(rkey: str) -> int:
    return _ids.post_id(NativeRef("bluesky", f"at://did:plc:a/app.bsky.feed.post/{rkey}"))


def masto(local: str) -> int:
    return _ids.post_id(NativeRef("mastodon", f"mastodon.example/{local}"))


# key: (id, text, fields); every handle as its collector stores it
POSTS = {
    0: (bsky("p0"), "Ferry schedule changed at Port Kessel",
        {"author_handle": "ana.bsky.social", "source": "bluesky"}),
    1: (bsky("p1"), "@ana.bsky.social thanks for the ferry update",
        {"author_handle": "bob.bsky.social", "mentions": ["ana.bsky.social"],
         "reply_to_id": bsky("p0"), "conversation_id": bsky("p0"), "source": "bluesky"}),
    # a Mastodon post writes "@ana" for ana@mastodon.example (the host is only in the link)
    2: (masto("2"), "Shelter open at the school #riverton",
        {"author_handle": "ana@mastodon.example", "source": "mastodon"}),
    3: (masto("3"), "@ana the shelter is full now, ferry later",
        {"author_handle": "bob@social.example", "mentions": ["ana@mastodon.example"],
         "reply_to_id": masto("2"), "conversation_id": masto("2"), "source": "mastodon"}),
    4: (X_ID, "Ferry news from the harbor", {"author_handle": "ana", "source": "x"}),
    5: (X_ID + 1, "@ana see you at the pier", {"author_handle": "cityops", "source": "x"}),
    6: (bsky("p6"), "write to ana.bsky.social soon",          # named, not mentioned
        {"author_handle": "carl.bsky.social", "source": "bluesky"}),
    7: (bsky("p7"), "River level rising near the ferry",
        {"author_handle": "river-watch.bsky.social", "source": "bluesky"}),
    8: (masto("8"), "@ana is that you",                       # another instance's ana
        {"author_handle": "dan@mastodon.example", "mentions": ["ana@other.example"],
         "source": "mastodon"}),
}
ID = {k: v[0] for k, v in POSTS.items()}
IX = {v: k for k, v in ID.items()}
FERRY = {0, 1, 3, 4, 7}

CASES = [
    ("from:ana.bsky.social", {0}),
    ("from:ANA.Bsky.Social", {0}),
    ("from:@ana.bsky.social", {0}),
    ("from:ana@mastodon.example", {2}),
    ("from:ana", {4}),                                  # X's ana is no other platform's
    ("from:river-watch.bsky.social", {7}),
    ("from:ana.bsky.social OR from:ana@mastodon.example", {0, 2}),
    ("ferry -from:ana.bsky.social", FERRY - {0}),
    ("ferry from:bob.bsky.social", {1}),
    ("@ana.bsky.social", {1}),
    ("@ANA.bsky.social ferry", {1}),
    ("@ana@mastodon.example", {3}),
    ("@ana@other.example", {8}),
    ("@ana", {5}),
    ("-@ana.bsky.social ferry", FERRY - {1}),
    ("to:ana.bsky.social", {1}),
    ("to:ana@mastodon.example", {3}),
    ("to:ana", set()),
]


def test_the_parser_takes_every_platforms_handles():
    assert parse("from:ana.bsky.social") == Op("from", "ana.bsky.social")
    assert parse("from:@ana@mastodon.example") == Op("from", "ana@mastodon.example")
    assert parse("to:river-watch.bsky.social") == Op("to", "river-watch.bsky.social")
    assert parse("@ana.bsky.social") == Mention("ana.bsky.social")
    assert parse("@ana@mastodon.example") == Mention("ana@mastodon.example")
    assert parse("@ops.") == Term("@ops.")           # a sentence's full stop: a plain word
    for bad in ("from:a..b", "from:ana.", "from:a@b@c", "to:-ana"):
        with pytest.raises(QueryError, match="handle"):
            parse(bad)


def _posts() -> list[Stored]:
    out = []
    for k, (pid, text, kw) in POSTS.items():
        kw = dict(kw)
        out.append(Stored(Post(id=pid, text=text, created_at=T + k * 1000, lang="en",
                               **kw).normalized()))
    return out


@pytest.fixture(scope="module")
def lite(tmp_path_factory):
    s = SQLiteStore(tmp_path_factory.mktemp("lite") / "t.db")
    s.write_batch(_posts(), [])
    yield s
    s.close()


@pytest.fixture
def pg(pg_url):
    from townsquare.store.postgres import PostgresStore
    s = PostgresStore(pg_url)
    s.write_batch(_posts(), [])
    yield s
    s.close()


def found(store, q: str) -> dict[str, set[int]]:
    """What each path of a search finds: the query over every post, newest first through the
    full-text index, and over candidates (tags in their column only)."""
    node = parse(q)
    every = list(ID.values())
    return {"filter": {IX[i] for i in store.filter_ids(every, node, now_ms=T + 60_000)},
            "candidates": {IX[i] for i in store.filter_ids(every, node, now_ms=T + 60_000,
                                                           candidates=True)},
            "search": {IX[i] for i, _ in store.lexical_search(node, now_ms=T + 60_000,
                                                               order="time", limit=100)}}


@pytest.mark.parametrize("q, want", CASES)
def test_the_embedded_store(lite, q, want):
    assert found(lite, q) == {"filter": want, "candidates": want, "search": want}


def test_postgresql_finds_the_same(lite, pg):
    for q, want in CASES:
        assert found(pg, q) == found(lite, q) == {"filter": want, "candidates": want,
                                                  "search": want}, q
    # the namespaced posts sit in their own partition
    parts = dict(pg._db.execute("SELECT id, tableoid::regclass::text FROM posts").fetchall())
    assert {IX[i] for i, part in parts.items() if part == "posts_platforms"} == set(POSTS) - {4, 5}
