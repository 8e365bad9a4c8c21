"""The PostgreSQL compiler, run against a real server: exact result sets, and parity with SQLite.

The same invented posts go into an embedded SQLiteStore and into a PostgreSQL ``posts`` table;
every query must find the same ids on both (with ``compile_sqlite`` and ``compile_postgres``)."""
from __future__ import annotations

import calendar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_query import node_strategy
from townsquare.posts import Post
from townsquare.query import Cashtag, Hashtag, Mention, Not, Op, Or, Term, parse
from townsquare.store import pgschema, pgtext
from townsquare.store.base import Stored
from townsquare.store.postgres_query import SqlQuery, compile_postgres
from townsquare.store.sqlite import SQLiteStore
from townsquare.store.sqlite_query import compile_sqlite, has_fts_token

psycopg = pytest.importorskip("psycopg")

B = 1212092628029698048                              # a 2019-12 Snowflake id
B2020 = pgschema.year_bounds(2020)[0] + 12345        # in posts_y2020
H = 3_600_000
D1 = calendar.timegm((2020, 1, 2, 0, 0, 0)) * 1000   # 2020-01-02T00:00:00Z
NOW = D1 + 30 * H
NYC = (40.7128, -74.0060)

# Invented posts; key i is post id B + i (except 40 and 41, see ID). From NYC, 7 is 9.70 km
# north and 9 is 20.8 km.
POSTS = {
    0: ("Storm surge hits the harbor #storm, waves rising",
        {"created_at": D1, "author_handle": "Lia", "lang": "en", "like_count": 4,
         "retweet_count": 2, "reply_count": 0, "lat": NYC[0], "lon": NYC[1]}),
    1: ("storm watch for the coast",
        {"created_at": D1 - 1000, "author_handle": "max", "lang": "en"}),
    2: ("@lia Stay calm! The pier is intact",
        {"created_at": D1 + H, "author_handle": "nora", "lang": "en", "reply_to_id": B,
         "conversation_id": B, "like_count": 1}),
    3: ("stay calm during the storm",
        {"created_at": D1 + 2 * H, "author_handle": "omar", "lang": "en", "like_count": 0}),
    4: ("WAVE-2 cases climbing", {"created_at": D1 + 3 * H, "lang": "en", "reply_count": 5}),
    5: ("wave 2 testing open", {"created_at": D1 + 4 * H}),
    6: ("wave testing: 2 sites", {"created_at": D1 + 5 * H}),
    7: ("🔥🔥 brush fire on the hill", {"created_at": D1 + 6 * H, "lat": 40.80, "lon": NYC[1]}),
    8: ("smoke 🔥 again!!", {"created_at": D1 + 7 * H, "quote_count": 1}),
    9: ("storm 🌊 at the pier", {"created_at": D1 + 8 * H, "lat": 40.90, "lon": NYC[1]}),
    10: ("#STORM relief drive", {"created_at": D1 + 9 * H, "author_handle": "lia"}),
    11: ("the word storm, no tag here", {"created_at": D1 + 10 * H}),
    12: ("RT @lia: Storm surge hits the harbor",
         {"created_at": D1 + 11 * H, "author_handle": "pia", "repost_of_id": B,
          "retweet_count": 0}),
    13: ("see this storm map https://Example.org/Storm-Map",
         {"created_at": D1 + 12 * H, "quote_of_id": B + 1}),
    14: ("picture of the pier", {"created_at": D1 + 13 * H, "has_media": True}),
    15: ("$ZORK stock slides", {"created_at": D1 + 14 * H, "lang": "en"}),
    16: ("drizzle in paris",
         {"created_at": D1 + 15 * H, "lat": 48.8566, "lon": 2.3522, "lang": "fr"}),
    17: ("atoll update", {"created_at": D1 + 16 * H, "lat": 0.0, "lon": 179.99}),
    18: ("tormenta en la costa", {"created_at": D1 + 17 * H, "lang": "es"}),
    19: ("@lia be careful", {"created_at": D1 + 18 * H, "reply_to_id": B, "conversation_id": B,
                             "author_handle": "max"}),
    20: ("Tempête sur Brest #Tempête", {"created_at": D1 + 19 * H, "lang": "fr"}),
    21: ("Heute #überÖl und Äpfel", {"created_at": D1 + 20 * H, "lang": "de"}),
    22: ("Café ouvert, crème brûlée 50% off",
         {"created_at": D1 + 21 * H, "author_handle": "Émile"}),
    23: ("flood_relief fund #flood_relief", {"created_at": D1 + 22 * H}),
    24: ("🌊🌊🌊", {"created_at": D1 + 23 * H}),
    25: ("it's a NEAR miss, flood NOT here", {"created_at": D1 + 24 * H}),
    26: ("buoy at the origin", {"created_at": D1 + 24 * H + 1, "lat": 1e-200, "lon": -1e-200}),
    40: ("old storm archive", {"created_at": calendar.timegm((2009, 5, 1, 0, 0, 0)) * 1000}),
    41: ("summer storm news https://x.com/ÄBC", {"created_at": D1 + 25 * H}),
}
ID = {i: (777 if i == 40 else B2020 if i == 41 else B + i) for i in POSTS}   # 777: posts_legacy
IX = {v: k for k, v in ID.items()}
ALL = frozenset(POSTS)
STORM = {0, 1, 3, 9, 10, 11, 12, 13, 40, 41}


def _posts() -> list[Post]:
    return [Post(id=ID[i], text=t, source="t", **kw).normalized() for i, (t, kw) in POSTS.items()]


_COLS = ("id", "created_at", "author_handle", "text", "lang", "hashtags", "mentions", "urls",
         "cashtags", "has_media", "reply_to_id", "repost_of_id", "quote_of_id", "conversation_id",
         "retweet_count", "like_count", "reply_count", "quote_count", "lon", "lat")


@pytest.fixture
def pg(pg_url):
    conn = psycopg.connect(pg_url, autocommit=True)
    conn.execute(pgschema.SCHEMA)
    for year in (None, 2019, 2020):
        conn.execute(pgschema.partition_ddl(year))
    sql = (f"INSERT INTO posts ({', '.join(_COLS)}, source, content_hash, seq, ingested_at, words)"
           f" VALUES ({', '.join(['%s'] * (len(_COLS) + 5))})")
    for n, p in enumerate(_posts()):
        row = [getattr(p, c) or None if c in ("hashtags", "mentions", "urls", "cashtags")
               else getattr(p, c) for c in _COLS]       # lists: NULL when empty
        conn.execute(sql, (*row, "t", 0, n, 0, pgtext.tsvector_literal(p.text)))
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def lite():
    s = SQLiteStore(":memory:")
    s.write_batch([Stored(p) for p in _posts()], [])
    yield s
    s.close()


def pg_ids(conn, node, now_ms: int = NOW, candidates: bool = False) -> set[int]:
    """Post indexes the PostgreSQL query finds; checks ``fts`` is implied and runs as a tsquery."""
    c = compile_postgres(parse(node) if isinstance(node, str) else node, now_ms,
                         candidates=candidates)
    assert isinstance(c, SqlQuery) and c.where
    if candidates:
        sql = f"SELECT p.id FROM posts p WHERE p.id = ANY(%s) AND ({c.where})"
        got = {r[0] for r in conn.execute(sql, ([ID[i] for i in ALL], *c.params))}
    else:
        got = {r[0] for r in conn.execute(f"SELECT p.id FROM posts p WHERE {c.where}", c.params)}
    if c.fts is not None and not candidates:
        ranked = [r[0] for r in conn.execute(
            "SELECT p.id FROM posts p WHERE p.words @@ %s::tsquery AND (" + c.where + ") "
            "ORDER BY ts_rank_cd(p.words, %s::tsquery) DESC", (c.fts, *c.params, c.fts))]
        assert set(ranked) == got, f"fts {c.fts!r} is not implied by the query"
    return {IX[i] for i in got}


def lite_ids(store, node, now_ms: int = NOW, candidates: bool = False) -> set[int]:
    c = compile_sqlite(parse(node) if isinstance(node, str) else node, now_ms,
                       candidates=candidates)
    extra = f"p.id IN ({', '.join(str(ID[i]) for i in ALL)}) AND " if candidates else ""
    return {IX[r[0]] for r in store._db.execute(
        f"SELECT p.id FROM posts p WHERE {extra}({c.where})", c.params)}


# Every operator, negations, nesting; expected post indexes where worked out by hand.
CASES = [
    ("storm", STORM),
    ("STORM", STORM),
    ("storm watch OR relief", {1, 10}),
    ("calm OR relief storm", {3, 10}),             # OR binds tighter than AND
    ("calm OR (relief storm)", {2, 3, 10}),
    ('"stay calm!"', {2, 3}),                      # punctuation is not part of a phrase
    ('"calm during"', {3}),
    ('"wave-2"', {4, 5}),
    ("Wave-2", {4, 5}),
    ("tempete", {20}),                             # accents are ignored in text
    ('"CREME brulee"', {22}),
    ("café", {22}),
    ("🔥", {7, 8}),
    ("🔥🔥", {7}),
    ("storm 🌊", {9}),
    ("🌊 -storm", {24}),
    ("!!", {8}),
    ("%", {22}),                                   # a literal % is a parameter, not SQL
    ("smoke -🔥", set()),
    ('pier -"stay calm"', {9, 14}),
    ("storm -(watch OR relief)", STORM - {1, 10}),
    ("storm -watch -relief -🌊", STORM - {1, 9, 10}),
    ("(storm OR fire) -(hill OR map) -from:lia", {1, 3, 9, 11, 12, 40, 41}),
    ('"flood NOT here"', {25}), ('"NEAR miss"', {25}), ("flo*", set()), ("it's", {25}),
    ("#storm", {0, 10}), ("#Storm", {0, 10}), ("-#storm storm", STORM - {0, 10}),
    ("#relief", set()),                            # the word is there, the tag is not
    ("#tempête", {20}), ("#TEMPÊTE", {20}), ("#überÖl", {21}),
    ("#FLOOD_RELIEF", {23}), ("flood relief", {23}), ("flood", {23, 25}),
    ("@lia", {2, 12, 19}), ("@LIA -filter:retweets", {2, 19}), ("$zork", {15}), ("$ZORK", {15}),
    ("from:LIA", {0, 10}), ("from:émile", {22}), ("-from:lia storm", STORM - {0, 10}),
    ("to:lia", {2, 19}), ("to:max", set()),
    ("lang:EN", {0, 1, 2, 3, 4, 15}), ("-lang:en storm", STORM - {0, 1, 3}),
    ("until:2020-01-02 storm", {1, 40}), ("since:2020-01-02 storm", STORM - {1, 40}),
    (f"since_time:{(D1 + H) // 1000} until_time:{(D1 + 3 * H) // 1000}", {2, 3}),
    (f"since_id:{B + 23}", {24, 25, 26, 41}), (f"max_id:{B + 1}", {0, 1, 40}),
    ("within_time:7h", {24, 25, 26, 41}), ("within_time:30h", ALL - {1, 40}),
    (f"conversation_id:{B}", {0, 2, 19}), (f"quoted_tweet_id:{B + 1}", {13}),
    ("min_faves:1", {0, 2}), ("min_faves:0", ALL), ("-min_faves:4 storm", STORM - {0}),
    ("min_retweets:1", {0}), ("min_replies:5", {4}),
    ("filter:replies", {2, 19}), ("filter:retweets", {12}), ("filter:nativeretweets", {12}),
    ("exclude:nativeretweets storm", STORM - {12}), ("include:nativeretweets storm", STORM),
    ("filter:quote", {13}), ("filter:links", {13, 41}), ("filter:media", {14}),
    ("-filter:media pier", {2, 9}), ("filter:hashtags", {0, 10, 20, 21, 23}),
    ("filter:mentions", {2, 12, 19}), ("filter:has_engagement", {0, 2, 4, 8}),
    ("url:example.org", {13}), ("url:STORM-map", {13}), ("url:ÄBC", {41}), ("url:x.COM/", {41}),
    ("url:äbc", set()),                            # ASCII case-insensitive only, on both
    ("geocode:40.7128,-74.0060,10km", {0, 7}), ("geocode:40.7128,-74.0060,25km", {0, 7, 9}),
    ("geocode:40.7128,-74.0060,6.2mi", {0, 7}), ("geocode:40.7128,-74.0060,5mi", {0}),
    ("near:40.7128,-74.0060", {0, 7, 9}), ("geocode:48.85,2.35,5km", {16}),
    ("geocode:0,-179.99,5km", {17}),               # across the antimeridian
    ("-geocode:40.7128,-74.0060,10km storm", STORM - {0}),   # no coordinates: not near
    ("drizzle OR (storm near:40.7128,-74.0060 within:10km)", {0, 16}),
    ("geocode:10,10,20038km", {0, 7, 9, 16, 17, 26}),  # everywhere: every post with coordinates
    # sin(1e-202)² underflows: an error on PostgreSQL unless guarded (see postgres_query._SIN_SQ)
    ("geocode:0,0,1km", {26}), ("geocode:1e-200,-1e-200,1e-300km", {26}),
    ("geocode:1e-150,0,1km", {26}), ("geocode:0,1e-170,0.001km -buoy", set()),
]


def test_each_operator_matches_by_hand_and_sqlite(pg, lite):
    for q, expected in CASES:
        got = pg_ids(pg, q)
        assert got == expected, q
        assert lite_ids(lite, q) == got, q
        assert pg_ids(pg, Not(parse(q))) == ALL - got, q        # two-valued: NOT is exact
        assert pg_ids(pg, q, candidates=True) == got, q
        assert lite_ids(lite, q, candidates=True) == got, q


def test_non_ascii_case_folding_is_complete_on_postgres(pg, lite):
    # The one intended difference: PostgreSQL's lower() folds every letter under C.UTF-8, while
    # SQLite's folds ASCII only (sqlite_query tries a few case forms of the value).
    ctype = pg.execute("SELECT datctype FROM pg_database WHERE datname = current_database()"
                       ).fetchone()[0]
    if pg.execute("SELECT lower('ÄÖ') = 'äö'").fetchone()[0] is not True:
        pytest.skip(f"lower() is ASCII-only under ctype {ctype!r}")
    assert pg_ids(pg, "#ÜBERÖL") == {21} and lite_ids(lite, "#ÜBERÖL") == set()
    assert pg_ids(pg, "from:ÉMILE") == {22} == lite_ids(lite, "from:ÉMILE")


@pytest.mark.parametrize("q, fts", [
    ("storm", "'storm'"),
    ("storm -watch", "'storm' & !'watch'"),
    ('a (b OR c) -d -"e f"', "'a' & ('b' | 'c') & !'d' & !('e' <-> 'f')"),
    ("storm OR #relief", "'storm' | 'relief'"),
    ("#storm -#relief", "'storm'"),                # an excluded tag still allows its word
    ("@lia $ZORK", "'lia' & 'zork'"),
    ('"stay calm!" from:max', "'stay' <-> 'calm'"),
    ("storm 🌊", "'storm'"),
    ("(a -b) OR Wave-2", "('a' & !'b') | 'wave' <-> '2'"),
    ("from:lia", None), ("storm OR from:lia", None), ("🔥", None), ("lang:en -storm", None),
])
def test_fts_pushdown(q, fts):
    assert compile_postgres(parse(q), NOW).fts == fts


def test_compiled_sql_shapes():
    c = compile_postgres(parse("🔥"), NOW)
    assert c.fts is None and c.where == "strpos(p.text, %s) > 0" and c.params == ("🔥",)
    assert compile_postgres(parse("include:nativeretweets"), NOW).where == "TRUE"
    # candidates: a tag is checked in its column only; text keeps its per-row @@ test
    assert "@@" not in compile_postgres(Hashtag("storm"), NOW, candidates=True).where
    assert compile_postgres(Term("storm"), NOW, candidates=True).where == "p.words @@ %s::tsquery"
    assert compile_postgres(Term("a\x00"), NOW).params == ("'a'",)
    assert compile_postgres(Term("🔥\x00"), NOW).where == "FALSE"
    assert compile_postgres(Op("url", "\x00"), NOW).where == "FALSE"


@pytest.mark.parametrize("node, now", [
    (Term("x"), 1.5), (Term("x"), True), (Term("x"), None), ("storm", 0), (Op("bogus", 1), 0),
    (Op("filter", "nope"), 0), (Or((Term("x"), 42)), 0),
])
def test_bad_input_raises_as_sqlite_does(node, now):
    with pytest.raises(Exception) as lite_err:
        compile_sqlite(node, now)
    with pytest.raises(type(lite_err.value)):
        compile_postgres(node, now)


_WORDS = st.sampled_from(["storm", "Storm", "watch", "calm", "🔥", "🌊", "!!", "wave-2",
                          "pier", "relief", "rising", "café", "50%", "harbor"])
_PHRASES = st.sampled_from(["stay calm!", "wave 2", "surge hits", "🔥🔥", "crème BRÛLÉE"])
_EXTRA = st.sampled_from([
    Hashtag("storm"), Hashtag("Tempête"), Mention("lia"), Cashtag("ZORK"), Op("from", "lia"),
    Op("to", "lia"), Op("lang", "en"), Op("filter", "replies"), Op("filter", "links"),
    Op("min_faves", 1), Op("since_ms", D1), Op("until_ms", D1 + 5 * H),
    Op("within_time", 7200), Op("geo", (NYC[0], NYC[1], 10.0)), Op("url", "example"),
    Op("max_id", B + 10), Op("filter", "has_engagement")])


def test_random_queries_agree_with_sqlite_and_negate_exactly(pg, lite):
    @settings(max_examples=150, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.function_scoped_fixture])
    @given(node_strategy(_WORDS, _PHRASES, _EXTRA, max_leaves=6), st.booleans())
    def check(node, candidates):
        got = pg_ids(pg, node, candidates=candidates)
        assert got == lite_ids(lite, node, candidates=candidates)
        assert pg_ids(pg, Not(node), candidates=candidates) == ALL - got

    check()


def _same_class(c: str) -> bool:
    return has_fts_token(c) == bool(pgtext.words(c))


# Text whose every character is a word character for both FTS5 and pgtext, or for neither. They
# disagree on ~3,000 assigned characters (and on unassigned and private-use ones, which FTS5
# takes as word characters): FTS5's Unicode tables are older than Python's, so newer emoji
# (🤣 🦠 🏻) are tokens on SQLite and not words here. That is pgtext's rule, not the compiler's.
_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters='"\x00').filter(_same_class)
_ANY_TERMS = st.text(_CHARS, min_size=1, max_size=12).filter(
    lambda t: not any(c.isspace() for c in t))
_ANY_PHRASES = st.text(_CHARS, min_size=1, max_size=20).filter(lambda t: t.strip() != "")


def test_arbitrary_asts_agree_with_sqlite(pg, lite):
    # node_strategy's own leaves: any text, tags, handles, URLs, ids and radii; the two stores
    # agree except where only PostgreSQL folds non-ASCII case (none of these posts' tags).
    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(node_strategy(_ANY_TERMS, _ANY_PHRASES, max_leaves=5))
    def check(node):
        assert pg_ids(pg, node) == lite_ids(lite, node)

    check()
