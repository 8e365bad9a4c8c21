"""The query parser: grammar, operators, errors, and round-trip properties."""
from __future__ import annotations

import calendar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from townsquare.query import (
    FILTERS,
    MAX_ATOMS,
    MAX_DEPTH,
    And,
    Cashtag,
    Hashtag,
    Mention,
    Not,
    Op,
    Or,
    Phrase,
    QueryError,
    Term,
    parse,
    positive_text,
    to_string,
)

T = Term


def day_ms(y, m, d, hh=0, mm=0, ss=0):
    return calendar.timegm((y, m, d, hh, mm, ss)) * 1000


# --- grammar ---------------------------------------------------------------------------------------
def test_implicit_and_and_or_binding_tighter_than_and():
    assert parse("a b") == And((T("a"), T("b")))
    assert parse("a AND b") == parse("a b")
    assert parse("a b OR c") == And((T("a"), Or((T("b"), T("c")))))
    assert parse("a OR b c") == And((Or((T("a"), T("b"))), T("c")))
    assert parse("a OR b OR c") == Or((T("a"), T("b"), T("c")))
    assert parse("(a b) OR c") == Or((And((T("a"), T("b"))), T("c")))


def test_or_and_and_are_case_sensitive_keywords():
    assert parse("a or b") == And((T("a"), T("or"), T("b")))
    assert parse("a and b") == And((T("a"), T("and"), T("b")))
    assert parse("+OR x") == And((T("OR"), T("x")))


def test_groups_flatten_into_their_parent():
    assert parse("a (b c)") == And((T("a"), T("b"), T("c")))
    assert parse("(a OR b) OR c") == Or((T("a"), T("b"), T("c")))
    assert parse("((a))") == T("a")


def test_phrases_keep_punctuation_and_case():
    assert parse('"don\'t panic!"') == Phrase("don't panic!")
    assert parse('"covid-19" x') == And((Phrase("covid-19"), T("x")))
    assert parse('"a OR b"') == Phrase("a OR b")
    assert parse('say"hi"') == And((T("say"), Phrase("hi")))


def test_exclusions_of_words_phrases_operators_and_groups():
    assert parse("a -b") == And((T("a"), Not(T("b"))))
    assert parse('a -"x y"') == And((T("a"), Not(Phrase("x y"))))
    assert parse("a -from:bob") == And((T("a"), Not(Op("from", "bob"))))
    assert parse("a -(b OR c)") == And((T("a"), Not(Or((T("b"), T("c"))))))
    assert parse("a -#Tag") == And((T("a"), Not(Hashtag("Tag"))))
    assert parse("a -filter:replies") == And((T("a"), Not(Op("filter", "replies"))))
    assert parse("a exclude:links") == And((T("a"), Not(Op("filter", "links"))))
    assert parse("covid-19") == T("covid-19")  # '-' only excludes at the start of a word


def test_tags_and_emoji():
    assert parse("#FLOOD") == Hashtag("FLOOD")
    assert parse("#séisme") == Hashtag("séisme")
    assert parse("$acme") == Cashtag("acme")
    assert parse("@City_Ops") == Mention("City_Ops")
    # not the shape of a tag: plain words
    assert parse("#1 $100 @") == And((T("#1"), T("$100"), T("@")))
    assert parse("🔥") == T("🔥")
    assert parse("flood 🌊") == And((T("flood"), T("🌊")))


def test_words_with_colons_that_are_not_operators():
    assert parse("https://t.co/abc") == T("https://t.co/abc")
    assert parse("at 10:30") == And((T("at"), T("10:30")))
    assert parse("Breaking: std::vector From:x") == And(
        (T("Breaking:"), T("std::vector"), T("From:x")))
    assert parse("+foo:bar") == T("foo:bar")


# --- operators -------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, op", [
    ("from:NASA", Op("from", "NASA")),
    ("from:@nasa", Op("from", "nasa")),
    ("to:cityops", Op("to", "cityops")),
    ("lang:EN", Op("lang", "en")),
    ("since:2020-01-02", Op("since_ms", day_ms(2020, 1, 2))),
    ("until:2020-01-02", Op("until_ms", day_ms(2020, 1, 2))),
    ("since:2020-01-02_10:30:05_UTC", Op("since_ms", day_ms(2020, 1, 2, 10, 30, 5))),
    ("until:1969-12-31", Op("until_ms", -86_400_000)),
    ("since_time:1577836800", Op("since_ms", 1577836800000)),
    ("until_time:0", Op("until_ms", 0)),
    ("since_id:1212092628029698048", Op("since_id", 1212092628029698048)),
    ("max_id:9223372036854775807", Op("max_id", 2**63 - 1)),
    ("within_time:2d", Op("within_time", 172800)),
    ("within_time:3h", Op("within_time", 10800)),
    ("within_time:5m", Op("within_time", 300)),
    ("within_time:30s", Op("within_time", 30)),
    ("min_retweets:5", Op("min_retweets", 5)),
    ("min_faves:0", Op("min_faves", 0)),
    ("min_replies:010", Op("min_replies", 10)),
    ("url:Example.com/x", Op("url", "Example.com/x")),
    ('url:"a b"', Op("url", "a b")),
    ("conversation_id:42", Op("conversation_id", 42)),
    ("quoted_tweet_id:7", Op("quoted_tweet_id", 7)),
    ("include:nativeretweets", Op("include", "nativeretweets")),
    ("geocode:37.77,-122.41,10km", Op("geo", (37.77, -122.41, 10.0))),
    ("geocode:0,0,1mi", Op("geo", (0.0, 0.0, 1.609344))),
    ("near:51.5,-0.12 within:3km", Op("geo", (51.5, -0.12, 3.0))),
    ("within:2mi near:1,2", Op("geo", (1.0, 2.0, 2 * 1.609344))),
    ("near:1,2", Op("geo", (1.0, 2.0, 25.0))),
])
def test_operator_values(q, op):
    assert parse(q) == op


@pytest.mark.parametrize("f", sorted(FILTERS))
def test_every_filter_and_its_negations(f):
    assert parse(f"filter:{f}") == Op("filter", f)
    assert parse(f"x -filter:{f}") == parse(f"x exclude:{f}") == And((T("x"), Not(Op("filter", f))))


def test_near_pairs_with_the_within_of_its_own_group():
    assert parse("fire near:1,2 within:5km") == And((T("fire"), Op("geo", (1.0, 2.0, 5.0))))
    assert parse("x -near:1,2 within:5km") == And((T("x"), Not(Op("geo", (1.0, 2.0, 5.0)))))
    assert parse("(near:1,2 within:5km) OR near:3,4") == Or(
        (Op("geo", (1.0, 2.0, 5.0)), Op("geo", (3.0, 4.0, 25.0))))


def test_within_time_keeps_the_duration_not_a_time():
    # no clock in the parser: the same query parses to the same AST at any time
    assert parse("x within_time:1h") == And((T("x"), Op("within_time", 3600)))


# --- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("q, token, position, words", [
    ("flood foo:bar", "foo:bar", 6, "unknown operator"),
    ("a (b OR c", "(", 2, "unclosed '('"),
    ("a b) c", ")", 3, "unmatched ')'"),
    ('a "b c', '"b c', 2, "unclosed quote"),
    ('x url:"ab', '"ab', 6, "unclosed quote"),
    ('a ""', '""', 2, "empty phrase"),
    ("a ()", ")", 3, "empty group"),
    ("a OR", "OR", 2, "OR needs"),
    ("OR a", "OR", 0, "OR needs"),
    ("a OR OR b", "OR", 2, "OR needs"),
    ("(a OR) b", "OR", 3, "OR needs"),
    ("a AND", "AND", 2, "AND needs"),
    ("a - b", "-", 2, "'-' must"),
    ("a -", "-", 2, "'-' must"),
    ("a --b", "--", 2, "double"),
    ("x since:2020-02-30", "since:2020-02-30", 2, "no such date"),
    ("x until:2020-1-2", "until:2020-1-2", 2, "not a date"),
    ("x since:2020-01-01_25:00:00_UTC", "since:2020-01-01_25:00:00_UTC", 2, "no such date"),
    ("x since:2020-01-01_10:00:00_PST", "since:2020-01-01_10:00:00_PST", 2, "only UTC"),
    ("x since_time:-5", "since_time:-5", 2, "unix seconds"),
    ("x since_id:12a", "since_id:12a", 2, "whole number"),
    ("x max_id:99999999999999999999", "max_id:99999999999999999999", 2, "whole number"),
    ("x min_faves:1.5", "min_faves:1.5", 2, "whole number"),
    ("x min_faves:", "min_faves:", 2, "needs a value"),
    ("x within_time:2w", "within_time:2w", 2, "duration"),
    ("x within_time:0s", "within_time:0s", 2, "duration"),
    ("x lang:english", "lang:english", 2, "language"),
    ("x from:a..b", "from:a..b", 2, "handle"),
    ("x filter:bogus", "filter:bogus", 2, "unknown filter"),
    ("x filter:images", "filter:images", 2, "not supported"),
    ("x include:retweets", "include:retweets", 2, "include:nativeretweets"),
    ("x list:123", "list:123", 2, "not supported"),
    ("x geocode:1,2", "geocode:1,2", 2, "LAT,LON,RADIUS"),
    ("x geocode:91,2,1km", "geocode:91,2,1km", 2, "latitude"),
    ("x geocode:1,2,0km", "geocode:1,2,0km", 2, "radius"),
    ("x near:Paris", "near:Paris", 2, "gazetteer"),
    ('x near:"The Hague"', 'near:"The Hague"', 2, "gazetteer"),
    ("x near:me", "near:me", 2, "near:me"),
    ("x within:5km", "within:5km", 2, "needs a near:"),
    ("near:1,2 (within:5km)", "within:5km", 10, "needs a near:"),
    ("near:1,2 near:3,4 within:5km", "within:5km", 18, "ambiguous"),
    ("near:1,2 within:5km within:6km", "within:6km", 20, "more than one"),
    ("near:1,2 -within:5km", "within:5km", 10, "cannot be excluded"),
    ("near:1,2 OR within:5km", "within:5km", 12, "not in an OR"),
    ("-a", "-", 0, "only excludes"),
    ("-a -from:x -#t", "-", 0, "only excludes"),
    ("-(a b)", "-", 0, "only excludes"),
    ("a OR -b", "a", 0, "side of this OR"),
    ("", "", 0, "empty query"),
    ("   ", "   ", 0, "empty query"),
    ("a\x00b", "'\\x00'", 1, "invalid character"),
])
def test_errors_name_the_token_and_position(q, token, position, words):
    with pytest.raises(QueryError) as e:
        parse(q)
    assert (e.value.token, e.value.position) == (token, position)
    assert words in e.value.message
    assert repr(token) in str(e.value) and f"position {position}" in str(e.value)


def test_limits_are_errors_not_crashes():
    ok = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert parse(ok) == T("a")
    with pytest.raises(QueryError) as e:
        parse("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert e.value.position == MAX_DEPTH and "nested" in e.value.message
    with pytest.raises(QueryError):
        parse("(" * 5000 + "a" + ")" * 5000)
    assert len(parse(" ".join(["w"] * MAX_ATOMS)).children) == MAX_ATOMS
    with pytest.raises(QueryError) as e:
        parse(" ".join(["w"] * (MAX_ATOMS + 1)))
    assert e.value.position == 2 * MAX_ATOMS


def test_query_error_is_a_value_error_with_fields():
    e = QueryError("bad", "tok", 3)
    assert isinstance(e, ValueError)
    assert (e.message, e.token, e.position) == ("bad", "tok", 3)
    assert str(e) == "bad (token 'tok' at position 3)"


# --- rendering and positive text -------------------------------------------------------------------
@pytest.mark.parametrize("q, rendered", [
    ("a b OR c", "a b OR c"),
    ("(a b) OR c", "(a b) OR c"),
    ("-(a OR b) x", "-(a OR b) x"),
    ("-(-a) b", "-(-a) b"),
    ("since_time:1577836800", "since:2020-01-01"),
    ("since:2020-01-01_00:00:01_UTC", "since:2020-01-01_00:00:01_UTC"),
    ("within_time:120m", "within_time:2h"),
    ("until:0999-12-31_23:59:59_UTC", "until:0999-12-31_23:59:59_UTC"),
    ("exclude:links x", "-filter:links x"),
    ("+OR +#x +-y +a:b ++", "+OR +#x +-y +a:b ++"),
    ('url:"a b" url:"(x)" url:"c"', 'url:"a b" url:"(x)" url:c'),
])
def test_to_string(q, rendered):
    assert to_string(parse(q)) == rendered
    assert parse(rendered) == parse(q)


def test_to_string_refuses_what_the_language_cannot_say():
    for bad in (T("a b"), T(""), Phrase('say "hi"'), Phrase("  "), Hashtag("1"),
                Op("since_ms", 1500)):
        with pytest.raises(ValueError):
            to_string(bad)


def test_positive_text_skips_exclusions_and_operators():
    q = parse('Flood OR flood "high water" #Storm $ACME @ops -dry -"low tide" -#x from:bob 🌊')
    assert positive_text(q) == ["Flood", "high water", "Storm", "ACME", "ops", "🌊"]
    assert positive_text(parse("from:bob lang:en")) == []


# --- properties ------------------------------------------------------------------------------------
_NO_SPACE = st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                          exclude_characters='"()')


def node_strategy(terms=None, phrases=None, extra=None, max_leaves: int = 8):
    """Hypothesis strategy of ASTs in the shape ``parse`` returns (flattened, positive at the
    root, at most MAX_DEPTH groups deep). Shared with the SQL tests, which give their own words
    and ``extra`` leaves that match their posts."""
    terms = terms if terms is not None else st.text(_NO_SPACE, min_size=1, max_size=12).filter(
        lambda t: not any(c.isspace() for c in t))
    phrases = phrases if phrases is not None else st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters='"\x00'),
        min_size=1, max_size=20).filter(lambda t: t.strip() != "")
    ids = st.integers(0, 2**63 - 1)
    secs = st.integers(-62135596800, 253402300799)  # years 1 to 9999
    lat = st.floats(-90, 90, allow_nan=False)
    lon = st.floats(-180, 180, allow_nan=False)
    radius = st.floats(1e-6, 20038, allow_nan=False)
    ops = st.one_of(
        st.builds(Op, st.sampled_from(["from", "to"]), st.from_regex(r"\w{1,15}", fullmatch=True)),
        st.builds(Op, st.just("lang"), st.from_regex(r"[a-z]{2,3}(-[a-z0-9]{1,8})?", fullmatch=True)),
        st.builds(Op, st.sampled_from(["since_ms", "until_ms"]), secs.map(lambda s: s * 1000)),
        st.builds(Op, st.sampled_from(["since_id", "max_id", "conversation_id", "quoted_tweet_id",
                                       "min_retweets", "min_faves", "min_replies"]), ids),
        st.builds(Op, st.just("within_time"), st.one_of(
            st.integers(1, 999_999_999), st.integers(1, 10**5).map(lambda d: d * 86400))),
        st.builds(Op, st.just("filter"), st.sampled_from(sorted(FILTERS))),
        st.just(Op("include", "nativeretweets")),
        st.builds(Op, st.just("url"), st.text(st.characters(exclude_categories=("Cs",),
                                                            exclude_characters='"\x00'),
                                              min_size=1, max_size=15)),
        st.builds(lambda a, b, r: Op("geo", (a, b, r)), lat, lon, radius),
    )
    leaves = st.one_of(
        terms.map(Term), phrases.map(Phrase),
        st.from_regex(r"\w{0,5}[^\W\d]\w{0,5}", fullmatch=True).map(Hashtag),
        st.from_regex(r"[A-Za-z]{1,6}([._][A-Za-z]{1,2})?", fullmatch=True).map(Cashtag),
        st.from_regex(r"\w{1,15}", fullmatch=True).map(Mention),
        ops,
        *([extra] if extra is not None else []),
    )

    def extend(children):
        group = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(children.map(Not), group.map(And), group.map(Or))

    return st.recursive(leaves, extend, max_leaves=max_leaves).map(canonical).filter(
        lambda n: _positive(n) and groups(n) <= MAX_DEPTH)


def canonical(node):
    """Flatten And-in-And and Or-in-Or, as the parser does."""
    if isinstance(node, Not):
        return Not(canonical(node.child))
    if isinstance(node, (And, Or)):
        kids = []
        for c in map(canonical, node.children):
            kids.extend(c.children if type(c) is type(node) else (c,))
        return type(node)(tuple(kids))
    return node


def _positive(n) -> bool:
    if isinstance(n, Not):
        return False
    if isinstance(n, And):
        return any(map(_positive, n.children))
    if isinstance(n, Or):
        return all(map(_positive, n.children))
    return True


def groups(n, depth: int = 0) -> int:
    """The parentheses depth of ``to_string(n)``."""
    if isinstance(n, Not):
        inner = isinstance(n.child, (And, Or, Not))
        return groups(n.child, depth + inner)
    if isinstance(n, (And, Or)):
        return max(groups(c, depth + (isinstance(n, Or) and isinstance(c, And)))
                   for c in n.children)
    return depth


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_returns_a_node_or_raises_query_error(q):
    try:
        node = parse(q)
    except QueryError as e:
        assert isinstance(e.position, int) and e.message
        return
    assert parse(to_string(node)) == node


_QUERYISH = st.lists(st.sampled_from(
    ["a", "b", "OR", "AND", "(", ")", "-", '"', "#t", "$X", "@u", "from:x", "x:y", "near:1,2",
     "within:3km", "since:2020-01-01", "10:30", "🔥", "+", " ", "-(", "filter:links", "url:"]),
    max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_QUERYISH, st.lists(_QUERYISH, max_size=4).map(" ".join)))
def test_query_like_text_parses_or_raises_query_error(q):
    try:
        node = parse(q)
    except QueryError:
        return
    assert parse(to_string(node)) == node


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.filter_too_much])
@given(node_strategy())
def test_to_string_round_trips(node):
    s = to_string(node)
    assert parse(s) == node, s
    assert set(positive_text(node)) <= {w for w in positive_text(parse(s))}


def test_groups_counts_the_parentheses_of_the_rendering():
    assert groups(parse("a -(b (c OR -(d e)))")) == 2
    assert groups(parse("(a b) OR c")) == 1
