"""``Store.filter_rank_fields``: the semantic candidates' check and ranking fields in one read,
equal to ``filter_ids`` then ``rank_fields`` (the base class's two reads)."""
from __future__ import annotations

import pytest

from townsquare.posts import Post
from townsquare.query import parse
from townsquare.store.base import Store, Stored

BASE = 1212092628029698048


@pytest.fixture
def filled(store):
    store.write_batch([Stored(Post(
        id=BASE + i, text=f"report {i}" + (" #Flood" if i % 2 else "") + (" -x" if i % 3 else ""),
        source="t", created_at=1_600_000_000_000 + i * 1000, lang="en" if i % 2 else "fr",
        like_count=i or None, retweet_count=i % 4 or None, reply_count=None,
        quote_count=i % 2).normalized()) for i in range(12)], [])
    return store


@pytest.mark.parametrize("query", [None, "#flood", "report -#flood", "lang:fr", "since:2020-09-13",
                                   "lang:en -report", "-x lang:en", "lang:fr -(report OR flood)",
                                   'since:2020-09-13 -"report 3"'])
def test_one_read_equals_filter_then_fields(filled, query):
    node = parse(query) if query else None
    ids = [BASE + i for i in range(0, 12)] + [BASE + 999]          # one id that does not exist
    seq = filled.max_seq() - 3                                      # a snapshot: 3 posts later
    got = filled.filter_rank_fields(ids, node, now_ms=1_700_000_000_000, max_seq=seq)
    ok = filled.filter_ids(ids, node, now_ms=1_700_000_000_000, max_seq=seq)
    assert got == filled.rank_fields(sorted(ok))
    assert got == Store.filter_rank_fields(filled, ids, node, now_ms=1_700_000_000_000,
                                           max_seq=seq)
    assert BASE + 999 not in got and len(got) <= 9
