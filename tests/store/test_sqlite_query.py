"""The SQL compiler, run against a real SQLite store: exact result sets per query."""
from __future__ import annotations

import calendar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_query import node_strategy
from townsquare.posts import Post
from townsquare.query import (
    MAX_DEPTH,
    And,
    Hashtag,
    Mention,
    Not,
    Op,
    Or,
    QueryError,
    parse,
)
from townsquare.store import sqlite_query
from townsquare.store.base import Stored
from townsquare.store.sqlite import SQLiteStore
from townsquare.store.sqlite_query import (
    SqlQuery,
    compile_sqlite,
    fts_string,
    has_fts_token,
)

B = 1212092628029698048
H = 3_600_000
D1 = calendar.timegm((2020, 1, 2, 0, 0, 0)) * 1000   # 2020-01-02T00:00:00Z
NOW = D1 + 20 * H
NYC = (40.7128, -74.0060)

# Invented posts. Index i is post id B + i. Distances from NYC: 7 is 9.70 km north, 9 is 20.8 km.
POSTS = {
    0: ("Flood on Main St #flood, water rising",
        dict(created_at=D1, author_handle="Ann", lang="en", like_count=10, retweet_count=3,
             reply_count=0, lat=NYC[0], lon=NYC[1])),
    1: ("flood warning for the valley", dict(created_at=D1 - 1000, author_handle="bob", lang="en")),
    2: ("@ann Don't panic! The bridge is fine",
        dict(created_at=D1 + 1 * H, author_handle="cara", lang="en", reply_to_id=B,
             conversation_id=B, like_count=2)),
    3: ("don't panic about the storm",
        dict(created_at=D1 + 2 * H, author_handle="dan", lang="en", like_count=0)),
    4: ("COVID-19 cases rising", dict(created_at=D1 + 3 * H, lang="en", reply_count=5)),
    5: ("covid 19 testing site open", dict(created_at=D1 + 4 * H)),
    6: ("covid testing: 19 sites", dict(created_at=D1 + 5 * H)),
    7: ("🔥🔥 wildfire near the ridge", dict(created_at=D1 + 6 * H, lat=40.80, lon=NYC[1])),
    8: ("fire 🔥 again!!", dict(created_at=D1 + 7 * H)),
    9: ("flood 🌊 in the square", dict(created_at=D1 + 8 * H, lat=40.90, lon=NYC[1])),
    10: ("#FLOOD relief fund", dict(created_at=D1 + 9 * H, author_handle="ann")),
    11: ("the word flood without a tag", dict(created_at=D1 + 10 * H)),
    12: ("RT @ann: Flood on Main St",
         dict(created_at=D1 + 11 * H, author_handle="eve", repost_of_id=B, retweet_count=0)),
    13: ("look at this flood warning https://Example.com/Flood-Map",
         dict(created_at=D1 + 12 * H, quote_of_id=B + 1)),
    14: ("photo of the bridge", dict(created_at=D1 + 13 * H, has_media=True)),
    15: ("$ACME shares fall", dict(created_at=D1 + 14 * H, lang="en")),
    16: ("rain in london", dict(created_at=D1 + 15 * H, lat=51.5074, lon=-0.1278, lang="en")),
    17: ("island report", dict(created_at=D1 + 16 * H, lat=0.0, lon=179.99)),
    18: ("inundación en la calle", dict(created_at=D1 + 17 * H, lang="es")),
    19: ("@ann stay safe",
         dict(created_at=D1 + 18 * H, reply_to_id=B, conversation_id=B, author_handle="bob")),
    20: ("Séisme à Paris #Séisme", dict(created_at=D1 + 19 * H, lang="fr")),
}
ALL = frozenset(POSTS)
FLOOD = {0, 1, 9, 10, 11, 12, 13}   # every post with the word flood


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    s = SQLiteStore(tmp_path_factory.mktemp("search") / "t.db")
    s.write_batch([Stored(Post(id=B + i, text=t, source="t", **kw).normalized())
                   for i, (t, kw) in POSTS.items()], [])
    yield s
    s.close()


def ids(store, q, now_ms: int = NOW) -> set[int]:
    """Run the query the two ways a caller does; they must agree. Returns post indexes."""
    c = compile_sqlite(parse(q) if isinstance(q, str) else q, now_ms)
    assert isinstance(c, SqlQuery) and c.where
    conn = store._db
    plain = {r[0] for r in conn.execute(
        f"SELECT p.id FROM posts p WHERE {c.where} ORDER BY p.created_at DESC", c.params)}
    if c.fts is not None:
        ranked = [r[0] for r in conn.execute(
            "SELECT p.id, bm25(posts_fts) FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid "
            f"WHERE posts_fts MATCH ? AND ({c.where}) ORDER BY bm25(posts_fts)",
            (c.fts, *c.params))]
        assert set(ranked) == plain, f"fts {c.fts!r} is not implied by the query"
    return {i - B for i in plain}


# --- text ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, expected", [
    ("flood", FLOOD),
    ("FLOOD", FLOOD),
    ("flood warning", {1, 13}),
    ("flood warning OR relief", {1, 10, 13}),
    # OR binds tighter: (panic OR relief) AND flood; a loose OR would also give 2 and 3
    ("panic OR relief flood", {10}),
    ("panic OR (relief flood)", {2, 3, 10}),
    ('"don\'t panic!"', {2, 3}),          # punctuation is not part of a phrase
    ('"panic about"', {3}),
    ('"covid-19"', {4, 5}),
    ("covid-19", {4, 5}),
    ("seisme", {20}),                      # accents are ignored in text
    ("🔥", {7, 8}),
    ("🔥🔥", {7}),
    ("flood 🌊", {9}),
    ("!!", {8}),
    ("fire", {8}),
    ("fire -🔥", set()),
    ("bridge -\"don't panic\"", {14}),
    ("flood -(warning OR relief)", {0, 9, 11, 12}),
    ("flood -warning -relief", {0, 9, 11, 12}),
])
def test_text(db, q, expected):
    assert ids(db, q) == expected


@pytest.mark.parametrize("q", ["+text:flood", "flo*", '"flood NOT warning"',
                               '"NEAR(flood warning)"', '"flood" "*"'])
def test_user_text_never_becomes_fts5_syntax(db, q):
    # unquoted, these would be a column filter, a prefix, a NOT and a NEAR: all would match
    assert ids(db, q) == set()


def test_tokenless_text_is_a_substring_test_and_never_in_fts():
    assert (has_fts_token("covid-19"), has_fts_token("é"), has_fts_token("🔥"),
            has_fts_token("!!")) == (True, True, False, False)
    c = compile_sqlite(parse("🔥"), NOW)
    assert c.fts is None and c.where == "instr(p.text, ?) > 0" and c.params == ("🔥",)
    assert fts_string('a "b"') == '"a ""b"""'


# --- tags and people --------------------------------------------------------------------------------
@pytest.mark.parametrize("q, expected", [
    ("#flood", {0, 10}),
    ("#FLOOD", {0, 10}),
    ("#Flood", {0, 10}),
    ("-#flood flood", {1, 9, 11, 12, 13}),  # the word without the tag still matches
    ("#séisme", {20}),
    ("#SÉISME", {20}),
    ("@ann", {2, 12, 19}),
    ("@ANN", {2, 12, 19}),
    ("$acme", {15}),
    ("$ACME", {15}),
    ("#relief", set()),                     # the word is there, the tag is not
    ("from:ann", {0, 10}),
    ("from:ANN", {0, 10}),
    ("-from:ann flood", {1, 9, 11, 12, 13}),
    ("to:ann", {2, 19}),
    ("to:bob", set()),
    ("lang:es", {18}),
    ("lang:EN", {0, 1, 2, 3, 4, 15, 16}),
    ("-lang:en flood", {9, 10, 11, 12, 13}),  # posts without a language are not "en"
])
def test_tags_people_language(db, q, expected):
    assert ids(db, q) == expected


# --- time and ids ----------------------------------------------------------------------------------
@pytest.mark.parametrize("q, expected", [
    ("until:2020-01-02 flood", {1}),          # until is exclusive: post 0 is at 00:00 exactly
    ("since:2020-01-02 flood", FLOOD - {1}),  # since is inclusive
    ("since:2020-01-02_01:00:00_UTC until:2020-01-02_03:00:00_UTC", {2, 3}),
    (f"since_time:{(D1 + H) // 1000} until_time:{(D1 + 3 * H) // 1000}", {2, 3}),
    (f"until_time:{D1 // 1000} flood", {1}),
    (f"until_time:{D1 // 1000 + 1} flood", {0, 1}),
    (f"since_id:{B + 18}", {19, 20}),          # exclusive
    (f"max_id:{B + 1}", {0, 1}),               # inclusive
    (f"since_id:{B} max_id:{B + 2}", {1, 2}),
    ("within_time:2h", {19, 20}),
    ("within_time:120m", {19, 20}),
    ("within_time:20h", ALL - {1}),            # from D1 exactly; post 1 is a second before
    ("within_time:21h", ALL),
    (f"conversation_id:{B}", {0, 2, 19}),
    (f"quoted_tweet_id:{B + 1}", {13}),
])
def test_time_and_ids(db, q, expected):
    assert ids(db, q) == expected


def test_within_time_uses_the_given_now(db):
    assert ids(db, "within_time:1h", now_ms=NOW) == {20}
    # a lower bound only: posts after "now" (clock skew, a fixed now) are not cut off
    assert ids(db, "within_time:1h", now_ms=D1 + 2 * H) == ALL - {0, 1}


# --- filters and counts ----------------------------------------------------------------------------
@pytest.mark.parametrize("q, expected", [
    ("filter:replies", {2, 19}),
    ("-filter:replies @ann", {12}),
    ("filter:retweets", {12}),
    ("filter:nativeretweets", {12}),
    ("-filter:retweets flood", FLOOD - {12}),
    ("exclude:nativeretweets flood", FLOOD - {12}),
    ("include:nativeretweets flood", FLOOD),
    ("filter:quote", {13}),
    ("filter:links", {13}),
    ("filter:media", {14}),
    ("-filter:media bridge", {2}),
    ("filter:hashtags", {0, 10, 20}),
    ("filter:mentions", {2, 12, 19}),
    ("filter:has_engagement", {0, 2, 4}),
    ("min_faves:1", {0, 2}),
    ("min_faves:10", {0}),
    ("min_faves:0", ALL),                       # a missing count is 0
    ("-min_faves:10 flood", FLOOD - {0}),       # ... so it is under any maximum
    ("min_retweets:1", {0}),
    ("min_replies:5", {4}),
    ("url:example.com", {13}),
    ("url:FLOOD-map", {13}),                    # case-insensitive
    ("url:nowhere.org", set()),
])
def test_filters_and_counts(db, q, expected):
    assert ids(db, q) == expected


# --- geo -------------------------------------------------------------------------------------------
GEO_CASES = [
    ("geocode:40.7128,-74.0060,10km", {0, 7}),
    ("geocode:40.7128,-74.0060,25km", {0, 7, 9}),
    ("geocode:40.7128,-74.0060,6.2mi", {0, 7}),   # 9.98 km
    ("geocode:40.7128,-74.0060,5mi", {0}),        # 8.05 km
    ("near:40.7128,-74.0060 within:10km", {0, 7}),
    ("near:40.7128,-74.0060", {0, 7, 9}),          # the default 25 km
    ("geocode:51.5,-0.12,5km", {16}),
    ("geocode:0,-179.99,5km", {17}),               # across the antimeridian
    ("-geocode:40.7128,-74.0060,10km flood", {1, 9, 10, 11, 12, 13}),  # no coordinates: not near
    ("rain OR (flood near:40.7128,-74.0060 within:10km)", {0, 16}),
]


@pytest.mark.parametrize("q, expected", GEO_CASES)
def test_geo(db, q, expected):
    assert ids(db, q) == expected


@pytest.mark.parametrize("q, expected", GEO_CASES)
def test_geo_without_sqlite_math_functions(db, q, expected, monkeypatch):
    monkeypatch.setattr(sqlite_query, "has_math_functions", lambda: False)
    assert "sin(" not in compile_sqlite(parse(q), NOW).where
    assert ids(db, q) == expected


# --- the fts pushdown ------------------------------------------------------------------------------
@pytest.mark.parametrize("q, fts", [
    ("flood", '"flood"'),
    ("flood -warning", '"flood" NOT "warning"'),
    ("a (b OR c) -d -e", '("a" AND ("b" OR "c")) NOT ("d" OR "e")'),
    ("flood OR #relief", '"flood" OR "relief"'),
    ("#flood -#relief", '"flood"'),             # an excluded tag still allows its word
    ("@ann $ACME", '"ann" AND "ACME"'),
    ('"don\'t panic!" from:bob', '"don\'t panic!"'),
    ("flood 🌊", '"flood"'),
    ("(a -b) OR c", '("a" NOT "b") OR "c"'),
    ("from:ann", None),
    ("flood OR from:ann", None),
    ("🔥", None),
    ("lang:en -flood", None),
])
def test_fts_pushdown(q, fts):
    assert compile_sqlite(parse(q), NOW).fts == fts


def test_where_is_never_empty_and_time_is_an_int():
    assert compile_sqlite(parse("include:nativeretweets"), NOW).where == "1"
    with pytest.raises(TypeError):
        compile_sqlite(parse("x"), 1.5)


def test_the_deepest_queries_compile_and_run(db, monkeypatch):
    leaves = "geocode:1,2,3km #c @d from:x lang:en"
    shapes = ["a b OR -(" * MAX_DEPTH + leaves + ")" * MAX_DEPTH,
              "a OR (b -(" * (MAX_DEPTH // 2) + leaves + "))" * (MAX_DEPTH // 2),
              "-(" * MAX_DEPTH + leaves + ")" * MAX_DEPTH + " x"]
    for math_functions in (True, False):
        monkeypatch.setattr(sqlite_query, "has_math_functions", lambda m=math_functions: m)
        for q in shapes:
            ids(db, q)


# --- properties ------------------------------------------------------------------------------------
_WORDS = st.sampled_from(["flood", "Flood", "warning", "panic", "🔥", "🌊", "!!", "covid-19",
                          "bridge", "relief", "rising", "main"])
_PHRASES = st.sampled_from(["don't panic!", "covid 19", "flood warning", "🔥🔥", "on Main"])
_EXTRA = st.sampled_from([
    Hashtag("flood"), Hashtag("Séisme"), Mention("ann"), Op("from", "ann"), Op("to", "ann"),
    Op("lang", "en"), Op("filter", "replies"), Op("filter", "links"), Op("min_faves", 1),
    Op("since_ms", D1), Op("until_ms", D1 + 5 * H), Op("within_time", 7200),
    Op("geo", (NYC[0], NYC[1], 10.0)), Op("url", "example"), Op("max_id", B + 10)])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(node_strategy(_WORDS, _PHRASES, _EXTRA, max_leaves=6))
def test_compiled_queries_run_compose_and_negate_exactly(db, node):
    got = ids(db, node)                       # also: the fts pushdown is implied
    assert ids(db, Not(node)) == ALL - got    # every condition is two-valued
    if isinstance(node, (And, Or)):
        parts = [ids(db, c) for c in node.children]
        expect = set.intersection(*parts) if isinstance(node, And) else set.union(*parts)
        assert got == expect


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_parsed_text_compiles_and_runs(db, q):
    try:
        node = parse(q)
    except QueryError:
        return
    ids(db, node)
