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
