"""Compile a parsed query (``townsquare.query``) into PostgreSQL SQL over ``posts p``.

    >>> from townsquare.query import parse
    >>> c = compile_postgres(parse('covid-19 -🔥'), now_ms=0)
    >>> c.where
    'p.words @@ %s::tsquery AND NOT (strpos(p.text, %s) > 0)'
    >>> c.params
    ("'covid' <-> '19'", '🔥')
    >>> c.fts
    "'covid' <-> '19'"
    >>> compile_postgres(parse('(#FLOOD OR "sunny day") -rain lang:en'), now_ms=0).fts
    "('flood' | 'sunny' <-> 'day') & !'rain'"

The semantics are those of ``townsquare.store.sqlite_query`` (read its docstring), over the
PostgreSQL schema (``townsquare.store.pgschema``), so a query finds the same posts on both
backends. Every condition is two-valued (never NULL), so ``NOT`` is exact. How each node compiles:

- ``Term``/``Phrase`` with at least one word (``pgtext.words``): ``p.words @@ tsquery``, the
  phrase of its words (case, accents and punctuation ignored, ``covid-19`` = "covid 19"), as
  FTS5 matches on the embedded store. Without a word (emoji, ``!!``): a case-sensitive
  substring of ``p.text`` (``strpos``); never in ``fts``.
- ``#tag`` / ``@handle`` / ``$TAG``: the tag is in the ``text[]`` column, case-insensitively
  (``_ci_in``), and (except with ``candidates``) the words have the tag's word, which keeps the
  ``fts`` prefilter exact. ``from:``/``to:``/``lang:``/times/ids/counts/``url:``/``filter:``/
  ``include:`` as in sqlite_query; ``geo`` is the haversine distance (PostgreSQL always has
  ``sin``/``cos``/``radians``).

``where`` uses psycopg ``%s`` placeholders (``params`` in order); ``fts`` is a ``tsquery``
string implied by the whole query, for the GIN lookup and ``ts_rank_cd``: the conjunction of an
AND's text parts (excluded words as ``& !``), the disjunction of an OR whose every side has text,
else None. Bind it as its own parameter (``p.words @@ %s::tsquery``).

``candidates=True`` is for checking a few given rows (the caller adds ``p.id = ANY(...)``): text
keeps the same ``@@`` test, which PostgreSQL can evaluate on each row's own ``tsvector`` in
microseconds (nothing like FTS5's whole set of matches is built), and a tag is checked in its
column only.

Differences from SQLite that remain:

- Case of tags and ``from:``/``to:`` handles is folded by PostgreSQL's ``lower()``, which under
  a Unicode ctype (C.UTF-8) folds every letter: ``#ÜBERÖL`` finds ``#überÖl`` here, not on
  SQLite, whose ``lower()`` is ASCII-only (under the C ctype this degrades to SQLite's rule).
- Which characters make words is ``pgtext``'s rule (Python's Unicode tables); FTS5's tables are
  older and count ~3,000 newer symbols (emoji such as 🤣 🦠, skin tones) and all unassigned and
  private-use code points as word characters. So ``🦠`` is a substring test here and a token
  there, and ``virus🦠`` has the word ``virus`` here but the token ``virus🦠`` there.
"""
from __future__ import annotations

import math
import string

from townsquare.query import (
    And,
    Cashtag,
    Hashtag,
    Mention,
    Node,
    Not,
    Op,
    Or,
    Phrase,
    Term,
    mention_text,
)
from townsquare.store.sqlite_query import EARTH_RADIUS_KM, SqlQuery
from townsquare.store.pgtext import phrase_tsquery

__all__ = ["SqlQuery", "compile_postgres", "tsquery_of"]


def compile_postgres(node: Node, now_ms: int, *, candidates: bool = False) -> SqlQuery:
    """Compile an AST; ``now_ms`` (ms since the epoch, UTC) resolves ``within_time:``.

    ``where`` is "TRUE" when there is no condition; see the module docstring for ``candidates``."""
    if not isinstance(now_ms, int) or isinstance(now_ms, bool):
        raise TypeError(f"now_ms must be an int (ms since the epoch), got {now_ms!r}")
    params: list = []
    where = _where(node, now_ms, params, candidates)
    return SqlQuery(where=where or "TRUE", params=tuple(params), fts=tsquery_of(node))


# --- WHERE ---------------------------------------------------------------------------------------
_WORDS = "p.words @@ %s::tsquery"
_FILTERS = {
    "replies": "p.reply_to_id IS NOT NULL",
    "retweets": "p.repost_of_id IS NOT NULL",
    "nativeretweets": "p.repost_of_id IS NOT NULL",
    "quote": "p.quote_of_id IS NOT NULL",
    # cardinality, not IS NOT NULL: an empty array written by some other tool is still "none"
    "links": "coalesce(cardinality(p.urls), 0) > 0",
    "media": "p.has_media IS TRUE",
    "hashtags": "coalesce(cardinality(p.hashtags), 0) > 0",
    "mentions": "coalesce(cardinality(p.mentions), 0) > 0",
    "has_engagement": "coalesce(p.retweet_count, 0) + coalesce(p.like_count, 0) + "
                      "coalesce(p.reply_count, 0) + coalesce(p.quote_count, 0) > 0",
}
_COUNTS = {"min_retweets": "retweet_count", "min_faves": "like_count", "min_replies": "reply_count"}
_SIMPLE = {  # name -> (SQL with one %s, two-valued: the value is never NULL)
    "lang": "p.lang IS NOT DISTINCT FROM %s",
    "since_ms": "p.created_at >= %s",
    "until_ms": "p.created_at < %s",
    "since_id": "p.id > %s",
    "max_id": "p.id <= %s",
    "conversation_id": "p.conversation_id IS NOT DISTINCT FROM %s",
    "quoted_tweet_id": "p.quote_of_id IS NOT DISTINCT FROM %s",
}
# translate(), not lower(): url: is ASCII case-insensitive on both stores (PostgreSQL's lower()
# would also fold non-ASCII letters under a Unicode ctype, and SQLite's does not).
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_URL = (f"EXISTS (SELECT 1 FROM unnest(p.urls) AS u(v) WHERE strpos(translate(v, "
        f"'{string.ascii_uppercase}', '{string.ascii_lowercase}'), %s) > 0)")


def _where(node: Node, now_ms: int, params: list, cand: bool = False) -> str:
    # Precedence is NOT > AND > OR as in SQLite, and no atom has a top-level OR, so only an OR
    # inside an AND needs parentheses (kept minimal so the SQL reads like sqlite_query's).
    if isinstance(node, And):
        if not node.children:
            return "TRUE"
        return " AND ".join(f"({_where(c, now_ms, params, cand)})" if isinstance(c, Or)
                            else _where(c, now_ms, params, cand) for c in node.children)
    if isinstance(node, Or):
        if not node.children:
            return "FALSE"
        return " OR ".join(_where(c, now_ms, params, cand) for c in node.children)
    if isinstance(node, Not):
        return f"NOT ({_where(node.child, now_ms, params, cand)})"
    if isinstance(node, (Term, Phrase)):
        tsq = phrase_tsquery(node.text)
        if tsq is not None:
            # The same test in both modes: @@ on the row's own tsvector costs microseconds, and
            # as a plain search the planner may use the GIN index on words for it.
            params.append(tsq)
            return _WORDS
        if "\x00" in node.text:
            return "FALSE"   # PostgreSQL text cannot hold NUL (and the store strips it)
        params.append(node.text)
        return "strpos(p.text, %s) > 0"
    if isinstance(node, Hashtag):
        return _tag(node.tag, "p.hashtags", params, cand)
    if isinstance(node, Mention):
        return _tag(node.handle, "p.mentions", params, cand, mention_text(node.handle))
    if isinstance(node, Cashtag):
        return _tag(node.tag, "p.cashtags", params, cand)
    if isinstance(node, Op):
        return _op(node, now_ms, params)
    raise TypeError(f"not a query node: {node!r}")


def _ci_in(expr: str, value: str, params: list) -> str:
    """``expr`` equals ``value`` ignoring case: ``lower(expr)`` against ``lower()`` of the value
    in its as-typed, lower, UPPER and Capitalized forms. Both sides go through the server's
    lower(), so Python's and PostgreSQL's case tables never have to agree; under a Unicode
    ctype the forms are redundant, under the C ctype (ASCII-only lower()) they are exactly
    SQLite's rule (``sqlite_query._ci_in``), which finds ``#Séisme`` for ``#SÉISME``."""
    forms = list(dict.fromkeys((value, value.lower(), value.upper(), value.capitalize())))
    params.extend(forms)
    return f"lower({expr}) IN ({', '.join(['lower(%s)'] * len(forms))})"


def _tag_only(value: str, column: str, params: list) -> str:
    # unnest(NULL) yields no rows, so a post without tags is simply FALSE, never NULL
    return f"EXISTS (SELECT 1 FROM unnest({column}) AS t(v) WHERE {_ci_in('v', value, params)})"


def _tag(tag: str, column: str, params: list, cand: bool = False, words: str | None = None
         ) -> str:
    """The tag in ``column``, and (unless ``cand``) its ``words`` (default: the tag) in the text
    (``query.mention_text`` for a handle, as in sqlite_query)."""
    sql = _tag_only(tag, column, params)
    tsq = phrase_tsquery(tag if words is None else words)
    if tsq is not None and not cand:
        # The word test makes ``fts`` (which holds the tag's word) exact, as in sqlite_query.
        params.append(tsq)
        sql += f" AND {_WORDS}"
    return sql


def _op(node: Op, now_ms: int, params: list) -> str:
    name, v = node.name, node.value
    if name in _SIMPLE:
        params.append(v)
        return _SIMPLE[name]
    if name in _COUNTS:
        params.append(v)
        return f"coalesce(p.{_COUNTS[name]}, 0) >= %s"
    if name == "url":
        if "\x00" in v:
            return "FALSE"
        params.append(v.translate(_ASCII_LOWER))
        return _URL
    if name == "from":
        # lower(author_handle) IN (...) can use the posts_handle expression index
        return f"p.author_handle IS NOT NULL AND {_ci_in('p.author_handle', v, params)}"
    if name == "to":
        return f"p.reply_to_id IS NOT NULL AND {_tag_only(v, 'p.mentions', params)}"
    if name == "within_time":
        params.append(now_ms - v * 1000)
        return "p.created_at >= %s"
    if name == "filter":
        return _FILTERS[v]
    if name == "include":
        return "TRUE"
    if name == "geo":
        return _geo(*v, params)
    raise ValueError(f"operator {name!r} cannot be compiled")


def _geo(lat: float, lon: float, radius_km: float, params: list) -> str:
    """Posts with coordinates within ``radius_km`` of (lat, lon); without coordinates, never.

    The latitude bound (|dlat| <= the radius's angle holds at any distance) comes first so a
    btree on lat could serve it; the NULL tests make the whole AND FALSE, never NULL."""
    ang = radius_km / EARTH_RADIUS_KM                           # radians
    dlat = math.degrees(ang) * (1 + 1e-9) + 1e-9
    # haversine: hav(d/R) = hav(dlat) + cos(lat1) cos(lat2) hav(dlon) <= hav(radius/R), with
    # hav(x) = sin²(x/2); periodic in 360 degrees, so the antimeridian needs nothing. The same
    # arithmetic as sqlite_query's (radians as a product), so both stores agree to the last bit.
    half = math.pi / 360                                        # degrees -> half-angle radians
    limit = max(math.sin(min(ang, math.pi) / 2) ** 2 * (1 + 1e-12), _HAV_FLOOR)
    params.extend((lat - dlat, lat + dlat)
                  + (half, lat * half) * 2 + (math.cos(math.radians(lat)), 2 * half)
                  + (half, lon * half) * 2 + (limit,))
    return ("p.lat IS NOT NULL AND p.lon IS NOT NULL AND p.lat BETWEEN %s AND %s AND "
            f"{_SIN_SQ.format('p.lat')} + %s * cos(p.lat * %s) * {_SIN_SQ.format('p.lon')} <= %s")


# PostgreSQL raises "value out of range: underflow" where a float8 product of nonzero factors
# rounds to 0 (SQLite returns the 0): sin(x)² does for |x| < 1e-162, as when the query's or the
# post's latitude is 1e-200. So |sin| is floored at 1e-130 (a distance of 1e-124 km): a square
# is then at least 1e-260 and the whole product (cos factors >= 6e-17) stays far above 1e-308;
# the radius is floored to match (_HAV_FLOOR above both floored terms), so a post at the very
# point is still found. (A stored |lat| under 1e-321 would still underflow p.lat * %s: no real
# coordinate is that close to 0 without being 0.)
_SIN_SQ = ("greatest(abs(sin({0} * %s - %s)), 1e-130::float8) "
           "* greatest(abs(sin({0} * %s - %s)), 1e-130::float8)")
_HAV_FLOOR = 3e-260


# --- FTS pushdown --------------------------------------------------------------------------------
def tsquery_of(node: Node) -> str | None:
    """A tsquery E with: node true => ``p.words @@ E`` (None when there is no such text).

    >>> from townsquare.query import parse
    >>> tsquery_of(parse("flood -warning")), tsquery_of(parse("from:x"))
    ("'flood' & !'warning'", None)

    A Term/Phrase is exactly its tsquery, so an excluded one may become ``!``; an excluded tag
    may not (``-#flood`` still allows the word flood). ``!`` binds tighter than ``<->``, so a
    negated phrase is parenthesized; ``&`` tighter than ``|``, but groups are kept explicit."""
    if isinstance(node, (Term, Phrase)):
        return phrase_tsquery(node.text)
    if isinstance(node, (Hashtag, Cashtag)):
        return phrase_tsquery(node.tag)
    if isinstance(node, Mention):
        return phrase_tsquery(mention_text(node.handle))
    if isinstance(node, Or):
        sides = [(c, tsquery_of(c)) for c in node.children]
        if not sides or any(e is None for _, e in sides):
            return None
        return " | ".join(_grouped(c, e) for c, e in sides)
    if isinstance(node, And):
        pos = [(c, e) for c in node.children if (e := tsquery_of(c)) is not None]
        if not pos:
            return None  # "!x" alone would need a scan of every row: leave it to where
        neg = [q for c in node.children
               if isinstance(c, Not) and isinstance(c.child, (Term, Phrase))
               and (q := phrase_tsquery(c.child.text)) is not None]
        return " & ".join([_grouped(c, e) for c, e in pos]
                          + [f"!({q})" if " " in q else f"!{q}" for q in neg])
    return None  # operators, and a Not alone


def _grouped(child: Node, expr: str) -> str:
    return f"({expr})" if isinstance(child, (And, Or)) else expr
