"""The v1.1, v2 and archive readers on the samples written from the public format docs
(tests/fixtures/formats/README.md lists which sample holds which field)."""
from __future__ import annotations

import orjson
import pytest

from townsquare.ingest.archive import strip_prefix
from townsquare.ingest.detect import SkipFile, detect_format, reader_for
from townsquare.ingest.jsonfiles import read_json, read_jsonl
from townsquare.ingest.twitter_v1 import posts_from_v1
from townsquare.ingest.twitter_v2 import post_from_v2
from townsquare.posts import PostError, parse_time_ms

from ..conftest import FIXTURES


def _posts(path, fmt=None):
    fmt = fmt or detect_format(path)
    out = {}
    for item in reader_for(path, fmt, "fx", None):
        assert item.ok, item.error
        for p in item.posts:
            out[p.id] = p.normalized()
    return out


def test_v1_extended_text_and_extended_entities():
    p = _posts(FIXTURES / "v1_sample.json")[1646789275921985536]
    assert len(p.text) == 240 and p.text.startswith("#RivertonFlood update")
    assert p.mentions == ["rivertonalerts"]           # only in extended_tweet.entities
    assert p.urls == ["https://www.rivertongazette.example/flood-live"]
    assert p.cashtags == ["ACME"] and p.hashtags == ["RivertonFlood"]
    assert (p.retweet_count, p.like_count, p.reply_count, p.quote_count) == (57, 88, 12, 4)
    assert p.author_id == 118273645 and p.author_handle == "rivertongazette"
    assert p.created_at == parse_time_ms("2023-04-14T08:15:33Z")


def test_v1_reply_coordinates_and_media():
    p = _posts(FIXTURES / "v1_sample.json")[1646767009880350729]
    assert p.reply_to_id == 1646755711067107333 and p.reply_to_user_id == 2840217593
    assert (p.lon, p.lat) == (-72.4513, 44.2718)      # GeoJSON order, not the deprecated geo
    assert p.has_media


def test_v1_retweet_links_and_stores_the_original():
    posts = _posts(FIXTURES / "v1_sample.json")
    rt = posts[1646762788174974979]
    assert rt.repost_of_id == 1646755711067107333
    original = posts[1646755711067107333]
    assert original.author_handle == "rivertonalerts"
    assert rt.text == f"RT @rivertonalerts: {original.text}"   # full text, not the truncated copy


def test_v1_quote_links_and_stores_the_quoted_post():
    posts = _posts(FIXTURES / "v1_sample.json")
    assert posts[1646785023937908738].quote_of_id == 1646780544161181697
    assert posts[1646780544161181697].author_handle == "RivertonFire"


def test_v2_page_with_includes():
    posts = _posts(FIXTURES / "v2_sample.json")
    assert len(posts) == 7                              # 4 in data + 3 in includes.tweets
    first = posts[1647181156468154369]
    assert first.author_handle == "rivertongazette" and first.author_name == "The Riverton Gazette"
    assert first.cashtags == ["ACME"] and first.hashtags == ["Riverton", "RivertonFlood"]
    assert first.urls == ["https://www.rivertongazette.example/cleanup"]   # media link excluded
    assert first.has_media and first.like_count == 97
    reply = posts[1647148618592854022]
    assert (reply.lang, reply.reply_to_id, reply.reply_to_user_id, reply.conversation_id) == (
        "fr", 1647133957243813895, 2840217593, 1647133957243813895)
    assert (reply.lon, reply.lat) == (-72.4478, 44.2701)
    assert posts[1647166408183824384].quote_of_id == 1647008959757844482
    assert posts[1647166408183824384].lang == "es"
    assert posts[1647173402009546760].repost_of_id == 1647170396039942148


def test_archive_tweets_take_the_owner_from_account_js():
    posts = _posts(FIXTURES / "archive" / "data" / "tweets.js")
    assert len(posts) == 3
    assert {p.author_handle for p in posts.values()} == {"tomfromriverton"}
    assert {p.author_id for p in posts.values()} == {2371649820}
    assert posts[1647616519154225153].reply_to_id == 1646789275921985536
    assert posts[1647605788253888515].like_count == 3    # string counts parsed


def test_archive_prefix_is_required():
    with pytest.raises(PostError, match="window.YTD"):
        strip_prefix('[{"tweet": {}}]')


def test_bad_tweet_in_a_v2_page_keeps_the_good_ones(tmp_path):
    page = orjson.loads((FIXTURES / "v2_sample.json").read_bytes())
    page["data"][1]["id"] = "not-an-id"
    f = tmp_path / "page.json"
    f.write_bytes(orjson.dumps(page))
    items = list(read_json(f, "fx"))
    assert len(items) == 1
    assert len(items[0].posts) == 6
    assert "tweet 2: id_str" in items[0].error or "tweet 2: id" in items[0].error


def test_jsonl_mixes_v1_and_v2_and_reports_bad_lines(tmp_path):
    v1 = orjson.loads((FIXTURES / "v1_sample.json").read_bytes())
    v2 = orjson.loads((FIXTURES / "v2_sample.json").read_bytes())
    f = tmp_path / "mixed.jsonl"
    f.write_bytes(orjson.dumps(v1[0]) + b"\n{not json\n\n" + orjson.dumps(v2["data"][0]) + b"\n"
                  + orjson.dumps({"hello": 1}) + b"\n")
    items = list(read_jsonl(f, "fx"))
    assert [i.line for i in items] == [1, 2, 4, 5]
    assert items[0].ok and items[2].ok and items[2].posts[0].id == 1647181156468154369
    assert items[1].error.startswith("json:")
    assert items[3].error.startswith("format: not a post object")


def test_v1_missing_text_is_a_named_error():
    with pytest.raises(PostError, match="text"):
        posts_from_v1({"id_str": "1212092628029698048"}, "fx")
    with pytest.raises(PostError, match="id"):
        post_from_v2({"text": "x"}, "fx")


def test_detection_and_skips(tmp_path):
    assert detect_format(FIXTURES / "v1_sample.json") == "json"
    assert detect_format(FIXTURES / "archive" / "data" / "tweets.js") == "archive"
    with pytest.raises(SkipFile, match="account"):
        detect_format(FIXTURES / "archive" / "data" / "account.js")
    notes = tmp_path / "annotations.jsonl"
    notes.write_text('{"conversation_id": "abc", "annotations": []}\n')
    with pytest.raises(SkipFile, match="other than posts"):
        detect_format(notes)
    (tmp_path / "README.md").write_text("# notes\n")
    with pytest.raises(SkipFile, match="not a post file"):
        detect_format(tmp_path / "README.md")


def test_forcing_v2_reads_bare_tweet_objects_as_v2(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_bytes(orjson.dumps({"id": "1212092628029698048", "text": "hi",
                                "created_at": "2019-12-31T18:30:00.000Z"}) + b"\n")
    (item,) = reader_for(f, "v2", "fx", None)
    assert item.posts[0].created_at == parse_time_ms("2019-12-31T18:30:00Z")
