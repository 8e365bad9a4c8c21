"""``Store.index_rows_since``: what the tantivy index keeps of a post, with the ``filter:`` flags
the store's SQL decides, and ``enriched_through``, the late stage's watermark."""
from __future__ import annotations

import pytest

from townsquare.posts import Post
from townsquare.query import parse
from townsquare.search.lexquery import FLAGS
from townsquare.store.base import Enrichment, Store, Stored

BASE = 1212092628029698048


def _posts() -> list[Post]:
    return [Post(id=BASE + i, text=f"report {i}" + (" #Flood @ana" if i % 2 else "")
                 + (" https://example.org" if i % 3 == 0 else "") + (" $AAPL" if i == 4 else ""),
                 source="t", created_at=1_600_000_000_000 + i, author_handle="Ann",
                 lang="en" if i % 2 else None, reply_to_id=BASE if i % 4 == 1 else None,
                 repost_of_id=BASE if i == 2 else None, quote_of_id=BASE if i == 3 else None,
                 has_media=i == 5, like_count=i).normalized() for i in range(8)]


@pytest.fixture
def filled(store):
    store.write_batch([Stored(p) for p in _posts()], [])
    return store


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_flags_are_the_store_filters(filled, name):
    rows = filled.index_rows_since(0, 100)
    want = filled.filter_ids([r.id for r in rows], parse(f"filter:{name}"), now_ms=0)
    assert {r.id for r in rows if FLAGS[name] in r.flags} == want


def test_rows_in_seq_order_after_a_seq_with_their_fields(filled):
    rows = filled.index_rows_since(0, 100)
    assert [r.seq for r in rows] == sorted(r.seq for r in rows) and len(rows) == 8
    assert [r.id for r in filled.index_rows_since(rows[2].seq, 3)] == [r.id for r in rows[3:6]]
    r = {r.id: r for r in rows}[BASE + 4]
    assert (r.created_at, r.lang, r.author_handle, r.cashtags, r.like_count) == (
        1_600_000_000_004, None, "Ann", ["AAPL"], 4)
    # the generic reading (posts_by_id) and the embedded store's own agree
    assert Store.index_rows_since(filled, 0, 100) == rows


def test_enriched_through_is_the_late_stage_watermark(filled):
    assert filled.enriched_through() == 0
    filled.write_enrichment(Enrichment(watermark=5))
    assert filled.enriched_through() == 5 == filled.stats()["late_stage"]["processed_through_seq"]


def test_rows_read_straight_from_sql_equal_the_generic_reading_over_varied_posts(store):
    """The embedded store builds each row from its columns without a ``Post``: the same rows as
    ``IndexRow.of`` over ``posts_by_id`` (the generic reading), for every mix of lists, flags
    and missing counts (seeded)."""
    import random
    rng = random.Random(7)
    posts = []
    for i in range(300):
        def some(prefix):
            return [f"{prefix}{rng.randrange(5)}" for _ in range(rng.randrange(3))]
        posts.append(Post(
            id=BASE + 100 + i, text=f"post {i} " + " ".join(
                [f"#{t}" for t in some("tag")] + [f"@{t}" for t in some("user")]
                + [f"${rng.choice(['AAPL', 'TSLA', 'GOOG'])}" for _ in some("c")]
                + ["https://example.org/x"] * rng.randrange(2)),
            source="t", created_at=1_600_000_000_000 + i,
            author_handle=rng.choice([None, "Ann", "bob"]), lang=rng.choice([None, "en", "fr"]),
            reply_to_id=rng.choice([None, BASE]), repost_of_id=rng.choice([None, BASE]),
            quote_of_id=rng.choice([None, BASE]), has_media=rng.random() < 0.3,
            like_count=rng.choice([None, 0, 3]), retweet_count=rng.choice([None, 2]),
            reply_count=rng.choice([None, 1]), quote_count=rng.choice([None, 5])).normalized())
    store.write_batch([Stored(p) for p in posts], [])
    rows = store.index_rows_since(0, 1000)
    assert len(rows) == 300 and any(r.flags for r in rows) and any(not r.flags for r in rows)
    assert any(r.cashtags for r in rows) and any(r.like_count is None for r in rows)
    assert Store.index_rows_since(store, 0, 1000) == rows
