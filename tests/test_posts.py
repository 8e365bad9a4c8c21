from __future__ import annotations

import pytest

from townsquare.posts import (
    MAX_TEXT_CHARS,
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


# --- issue 17: no value in a record can crash a reader, the store or the HTTP path -------------

def test_text_longer_than_any_platform_allows_is_refused_by_name():
    assert Post(id=ID, text="a" * MAX_TEXT_CHARS, source="t").normalized().text
    with pytest.raises(PostError) as e:
        Post(id=ID, text="a" * (MAX_TEXT_CHARS + 1), source="t").normalized()
    assert e.value.field == "text" and "25,001 characters" in str(e.value)


@pytest.mark.parametrize("value", [1e30, -1e30, float("nan"), float("inf"), 10 ** 30,
                                   pytest.param(10 ** 5000, id="5000-digits"),
                                   "1e30", "9" * 40, "99999-01-01", "0001-01-01T00:00:00+01:00",
                                   "²", "Tue Dec 31 18:30:00 +0000 99999"])
def test_times_out_of_range_are_post_errors_never_overflow(value):
    # Before: 1e30 came back as a 31-digit int and the store raised OverflowError (exit 1);
    # "²" (str.isdigit() is true for it) raised ValueError from float().
    with pytest.raises(PostError) as e:
        Post(id=ID, text="x", source="t", created_at=parse_time_ms(value)).normalized()
    assert e.value.field == "created_at"


@pytest.mark.parametrize("kw,field", [
    ({"created_at": -1}, "created_at"),                       # before 1970
    ({"created_at": 10 ** 20}, "created_at"),                  # no datetime can show it
    ({"created_at": 1.5e12}, "created_at"),                    # a float, not ms
    ({"retweet_count": 1 << 63}, "retweet_count"),             # past SQLite's INTEGER
    ({"like_count": -1}, "like_count"),
    ({"quote_count": True}, "quote_count"),
    ({"author_id": 1 << 64}, "author_id"),
    ({"reply_to_id": "12"}, "reply_to_id"),
    ({"lat": float("nan"), "lon": 0.0}, "coordinates"),
    ({"lat": 1.0, "lon": float("inf")}, "coordinates"),
    ({"lat": "1", "lon": 2.0}, "coordinates"),
    ({"author_handle": 7}, "author_handle"),
    ({"lang": ["en"]}, "lang"),
    ({"hashtags": "flood"}, "hashtags"),
    ({"mentions": [None]}, "mentions"),
    ({"labels": []}, "labels"),
    ({"has_media": "yes"}, "has_media"),
    ({"source": ""}, "source"),
])
def test_every_numeric_and_typed_field_is_checked_by_name(kw, field):
    kw = {"source": "t", **kw}
    with pytest.raises(PostError) as e:
        Post(id=ID, text="x", **kw).normalized()
    assert e.value.field == field


def test_the_checks_pass_namespaced_ids_and_plain_posts():
    from townsquare.platforms import namespaced_id

    author = namespaced_id("bluesky", 99)
    p = Post(id=namespaced_id("bluesky", 12), text="x", source="t", created_at=0, author_id=author,
             reply_to_id=ID, retweet_count=0, like_count=(1 << 63) - 1, lat=-90, lon=180,
             hashtags=["a"], labels={"k": [1]}).normalized()
    assert p.author_id == author and p.lat == -90


def test_an_export_line_with_wrong_types_is_an_error_not_a_crash():
    d = Post(id=ID, text="x", source="t").normalized().to_dict()
    for field, bad in (("lat", "north"), ("hashtags", {"a": 1}), ("retweet_count", 2 ** 70)):
        with pytest.raises(PostError) as e:
            Post.from_dict({**d, field: bad, "lon": 1.0}).normalized()
        assert e.value.field in (field, "coordinates")


def test_ids_with_digits_int_refuses_are_post_errors():
    with pytest.raises(PostError):
        parse_id("²")                # str.isdigit() is true; int() raised ValueError
    with pytest.raises(PostError):
        parse_id(10 ** 5000)         # too long for repr() in an error message
