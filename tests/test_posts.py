from __future__ import annotations

import pytest

from townsquare.posts import (
    Post,
    PostError,
    extract_cashtags,
    extract_hashtags,
    extract_mentions,
    extract_urls,
    parse_id,
    parse_time_ms,
    snowflake_time_ms,
    time_to_snowflake,
)

ID = 1212092628029698048


def test_snowflake_decodes_creation_time():
    assert snowflake_time_ms(ID) == (ID >> 22) + 1288834974657
    ms = parse_time_ms("2015-04-25T09:54:27Z")
    assert snowflake_time_ms(time_to_snowflake(ms)) == ms


def test_snowflake_matches_a_real_dataset_id():
    # CrisisNLP AIDR row: id 591903085670215681 has tweet_time "Sat Apr 25 09:54:27 +0000 2015"
    assert snowflake_time_ms(591903085670215681) // 1000 == parse_time_ms(
        "Sat Apr 25 09:54:27 +0000 2015") // 1000


def test_pre_snowflake_ids_have_no_time():
    assert snowflake_time_ms(20) is None
    with pytest.raises(PostError, match="created_at"):
        Post(id=20, text="just setting up my twttr", source="t").normalized()


@pytest.mark.parametrize("value,expected", [
    ("Wed Oct 10 20:19:24 +0000 2018", 1539202764000),
    ("2018-10-10T20:19:24.000Z", 1539202764000),
    ("2018-10-10T22:19:24+02:00", 1539202764000),
    ("2018-10-10 20:19:24", 1539202764000),      # naive means UTC
    (1539202764, 1539202764000),                  # unix seconds
    ("1539202764000", 1539202764000),             # unix ms as text
])
def test_parse_time_formats(value, expected):
    assert parse_time_ms(value) == expected


def test_parse_time_rejects_garbage_naming_the_field():
    with pytest.raises(PostError, match=r"tweet_time: unrecognized time format"):
        parse_time_ms("yesterday", "tweet_time")


@pytest.mark.parametrize("raw", ["'325208201740029952'", " 325208201740029952", '"325208201740029952"',
                                 325208201740029952])
def test_parse_id_strips_quotes_and_spaces(raw):
    assert parse_id(raw) == 325208201740029952


@pytest.mark.parametrize("raw", ["abc", "", "-5", "1e9", "99999999999999999999", None, True])
def test_parse_id_rejects_non_ids(raw):
    with pytest.raises(PostError):
        parse_id(raw)


def test_entities_from_text():
    text = "Floods! #NepalQuake #séisme #2015 @BBCNews mail me a@b.com $ACME $5 https://t.co/x."
    assert extract_hashtags(text) == ["NepalQuake", "séisme"]   # "#2015" is not a hashtag
    assert extract_mentions(text) == ["BBCNews"]                  # an email is not a mention
    assert extract_cashtags(text) == ["ACME"]                     # "$5" is not a cashtag
    assert extract_urls(text) == ["https://t.co/x"]               # trailing punctuation dropped


def test_hashtags_keep_their_case_and_emoji_does_not_break_them():
    assert extract_hashtags("🌊#RivertonFlood🌊 #rivertonflood") == ["RivertonFlood", "rivertonflood"]


def test_normalized_fills_time_entities_and_conversation():
    p = Post(id=ID, text="#Flood at @cityops", source="t", lang="EN").normalized()
    assert p.created_at == snowflake_time_ms(ID)
    assert (p.hashtags, p.mentions, p.lang) == (["Flood"], ["cityops"], "en")
    assert p.conversation_id == ID   # a post that replies to nothing starts a conversation


@pytest.mark.parametrize("kw,field", [
    ({"text": "   "}, "text"),
    ({"text": "x", "lat": 91.0, "lon": 0.0}, "coordinates"),
    ({"text": "x", "created_at": 4102444800000}, "created_at"),   # year 2100
])
def test_normalized_rejects_bad_fields_by_name(kw, field):
    with pytest.raises(PostError) as e:
        Post(id=ID, source="t", **kw).normalized()
    assert e.value.field == field


def test_to_dict_round_trips():
    p = Post(id=ID, text="x #y", source="t", author_id=7, lat=1.5, lon=2.5,
             labels={"event": "e"}).normalized()
    d = p.to_dict()
    assert d["id"] == str(ID) and d["created_at"].endswith("Z")
    assert Post.from_dict(d) == p


def test_from_dict_names_unknown_fields():
    with pytest.raises(PostError, match="colour"):
        Post.from_dict({"id": "1", "text": "x", "source": "t", "colour": "red"})


def test_twitter_html_entities_are_unescaped_once():
    p = Post(id=1212092628029698048, text="R&amp;D: a &lt;b&gt; tag &amp;amp; more", source="t")
    assert p.normalized().text == "R&D: a <b> tag &amp; more"
