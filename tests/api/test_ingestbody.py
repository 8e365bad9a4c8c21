"""Reading ingest bodies: every v2 shape, and per-item errors that never sink the batch."""
from __future__ import annotations

import orjson
import pytest

from townsquare.api.ingestbody import BodyError, parse_body

T = {"id": "1212092628029698048", "text": "Flood on Main St", "author_id": "7"}


def test_a_single_tweet_object():
    (item,) = parse_body(orjson.dumps(T), "api")
    assert item.post.id == 1212092628029698048 and item.post.source == "api"


def test_a_page_gives_handles_and_stores_included_tweets():
    page = {"data": [T], "includes": {"users": [{"id": "7", "username": "ann", "name": "Ann"}],
                                      "tweets": [{"id": "1212092628029698040", "text": "orig"}]}}
    a, b = parse_body(orjson.dumps(page), "api")
    assert a.post.author_handle == "ann" and not a.included
    assert b.included and b.post.id == 1212092628029698040


def test_an_array_with_a_bad_item_keeps_the_good_ones():
    items = parse_body(orjson.dumps([T, "not a tweet", {"id": "5", "text": 3}]), "api")
    assert items[0].post is not None
    assert items[1].error and items[1].post is None
    assert "text" in items[2].error


@pytest.mark.parametrize("body,code", [(b"", "empty_body"), (b"[1,", "invalid_json"),
                                       (b'"x"', "invalid_body"), (b"[]", "empty_batch")])
def test_unreadable_bodies(body, code):
    with pytest.raises(BodyError) as e:
        parse_body(body, "api")
    assert e.value.code == code


def test_too_many_tweets():
    with pytest.raises(BodyError, match="at most 2") as e:
        parse_body(orjson.dumps([T, T, T]), "api", max_items=2)
    assert e.value.code == "batch_too_large"
