"""Compile a parsed query (``townsquare.query``) into SQLite SQL over ``posts p``.

    >>> from townsquare.query import parse
    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048 + i, text=t, source="t").normalized())
    ...                    for i, t in enumerate(["Flood on Main St #flood", "flood, RT", "Sunny"])], [])
    >>> c = compile_sqlite(parse('#FLOOD OR sunny'), now_ms=0)
    >>> c.fts
    '"FLOOD" OR "sunny"'
    >>> sql = ("SELECT p.id FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid "
    ...        f"WHERE posts_fts MATCH ? AND ({c.where}) ORDER BY bm25(posts_fts)")
    >>> sorted(r[0] - 1212092628029698048 for r in s._db.execute(sql, (c.fts, *c.params)))
    [0, 2]

What each node compiles to (every condition is two-valued, never NULL, so ``NOT`` is exact):

- ``Term``/``Phrase`` with at least one FTS5 token: the post's FTS5 entry matches the quoted string
  (a phrase of its tokens: case, accents and punctuation ignored, ``covid-19`` = "covid 19").
  Without any token (emoji, ``!!``): a case-sensitive substring of ``p.text``; never in ``fts``.
- ``#tag`` / ``@handle`` / ``$TAG``: the tag is in ``hashtags`` / ``mentions`` / ``cashtags``
  (case-insensitive, see ``_ci_in``) and the text has the tag's word, which makes the ``fts``
  prefilter exact (for a handle, the words the text shows of it: ``query.mention_text``, as a
  Mastodon post writes ``@ana`` for ``ana@host``).
- ``from:h``: ``author_handle`` (case-insensitive), any platform's handle as stored
  (``ana.bsky.social``, ``ana@mastodon.example``). ``to:h``: a reply (``reply_to_id`` set) that
  mentions h (the store keeps the replied-to user's id, not handle).
- ``lang:xx``: ``lang`` equal. ``since_ms``/``until_ms``: ``created_at >=`` / ``<`` (until is
  exclusive). ``within_time``: ``created_at >= now_ms - seconds*1000``. ``since_id``: ``id >``;
  ``max_id``: ``id <=``. ``min_*``: the count (NULL as 0) ``>=`` N. ``conversation_id``,
  ``quoted_tweet_id``: equal ``conversation_id`` / ``quote_of_id``. ``url:s``: a URL in ``urls``
  contains s, ASCII case-insensitive.
- ``filter:`` replies ``reply_to_id``, retweets and nativeretweets ``repost_of_id``, quote
  ``quote_of_id`` set; links ``urls``, hashtags, mentions non-empty; media ``has_media = 1``;
  has_engagement any count above 0. ``include:nativeretweets`` is true (nothing is hidden).
- ``geo``: the post has coordinates within the radius: haversine on SQLite's math functions when
  this build has them, else an equirectangular distance from plain arithmetic.

``fts`` is an FTS5 expression implied by the whole query (BM25 ranks with it): the conjunction of
an AND's text parts (excluded words as ``NOT``), the disjunction of an OR whose every side has
text, else None. ``where`` alone is the complete condition; bind ``fts`` positionally before
``params`` when both are used, as above. The equirectangular fallback is within 0.3% of the
haversine distance up to 100 km; it degrades for radii of hundreds of km near the poles.
"""
from __future__ import annotations

import functools
import math
import os
import sqlite3
import string
import threading
from dataclasses import dataclass

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

__all__ = ["EARTH_RADIUS_KM", "SqlQuery", "compile_sqlite", "fts_of", "fts_string", "has_fts_token",
           "has_math_functions"]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


@dataclass(frozen=True)
class SqlQuery:
    where: str          # SQL boolean expression over ``posts p``; "1" when no condition
    params: tuple       # positional '?' parameters of ``where``
    fts: str | None     # FTS5 MATCH expression every result satisfies, or None


def compile_sqlite(node: Node, now_ms: int, *, candidates: bool = False) -> SqlQuery:
    """Compile an AST; ``now_ms`` (ms since the epoch, UTC) resolves ``within_time:``.

    ``candidates=True`` compiles for checking a few given rows (``p.id IN (...)`` added by the
    caller) rather than for searching: a text condition becomes a per-row FTS5 lookup (``MATCH
    ... AND rowid = p.id``, ~20 us a row) instead of the set of all matches (which SQLite builds
    whole, in time proportional to the word's frequency), and a tag is checked in its column
    only (the word test exists for the ``fts`` pushdown, which this mode does not use)."""
    if not isinstance(now_ms, int) or isinstance(now_ms, bool):
        raise TypeError(f"now_ms must be an int (ms since the epoch), got {now_ms!r}")
    params: list = []
    where = _where(node, now_ms, params, candidates)
    return SqlQuery(where=where or "1", params=tuple(params), fts=fts_of(node))


# --- FTS5 helpers ----------------------------------------------------------------------------------
def fts_string(text: str) -> str:
    """``text`` as one FTS5 string: whatever it holds (operators, ``*``, ``"``) is literal.

    >>> fts_string('say "NEAR" OR *')
    '"say ""NEAR"" OR *"'
    """
    return '"' + text.replace('"', '""') + '"'


_tok_lock = threading.Lock()
_tok_db: tuple[int, sqlite3.Connection] | None = None   # (pid, connection): not shared by forks


def _private_db() -> sqlite3.Connection:
    """A private in-memory database with the store's tokenizer (never the caller's connection)."""
    global _tok_db
    if _tok_db is None or _tok_db[0] != os.getpid():
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.execute("CREATE VIRTUAL TABLE tok USING fts5(text, "
                   "tokenize=\"unicode61 remove_diacritics 2\")")
        _tok_db = (os.getpid(), db)
    return _tok_db[1]


@functools.lru_cache(maxsize=8192)
def has_fts_token(text: str) -> bool:
    """Whether the FTS5 tokenizer finds a token in ``text`` (a string without one, like an emoji,
    cannot be MATCHed: its empty phrase matches nothing). Asked from SQLite itself, because its
    Unicode tables are not Python's (it splits on some letters and keeps some symbols).

    >>> has_fts_token("covid-19"), has_fts_token("🌊"), has_fts_token("!!")
    (True, False, False)
    """
    with _tok_lock:
        db = _private_db()
        db.execute("INSERT INTO tok(rowid, text) VALUES (1, ?)", (text,))
        try:  # a text always matches the phrase of its own tokens, if it has any
            return db.execute("SELECT count(*) FROM tok WHERE tok MATCH ?",
                              (fts_string(text),)).fetchone()[0] > 0
        finally:
            db.execute("DELETE FROM tok")


@functools.lru_cache(maxsize=1)
def has_math_functions() -> bool:
    """Whether this SQLite was built with its math functions (``sin``, ``cos``, ``radians``)."""
    with _tok_lock:
        try:
            _private_db().execute("SELECT sin(radians(1)), cos(1)")
            return True
        except sqlite3.OperationalError:
            return False


# --- WHERE ---------------------------------------------------------------------------------------
_FTS_IN = "p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)"
_FTS_ROW = "EXISTS (SELECT 1 FROM posts_fts WHERE posts_fts MATCH ? AND rowid = p.id)"
_FILTERS = {
    "replies": "p.reply_to_id IS NOT NULL",
    "retweets": "p.repost_of_id IS NOT NULL",
    "nativeretweets": "p.repost_of_id IS NOT NULL",
    "quote": "p.quote_of_id IS NOT NULL",
    "links": "p.urls IS NOT NULL",
    "media": "p.has_media = 1",
    "hashtags": "p.hashtags IS NOT NULL",
    "mentions": "p.mentions IS NOT NULL",
    "has_engagement": "coalesce(p.retweet_count, 0) + coalesce(p.like_count, 0) + "
                      "coalesce(p.reply_count, 0) + coalesce(p.quote_count, 0) > 0",
}
_COUNTS = {"min_retweets": "retweet_count", "min_faves": "like_count", "min_replies": "reply_count"}
_SIMPLE = {  # name -> (SQL with one '?', two-valued)
    "lang": "p.lang IS ?",
    "since_ms": "p.created_at >= ?",
    "until_ms": "p.created_at < ?",
    "since_id": "p.id > ?",
    "max_id": "p.id <= ?",
    "conversation_id": "p.conversation_id IS ?",
    "quoted_tweet_id": "p.quote_of_id IS ?",
    "url": "EXISTS (SELECT 1 FROM json_each(p.urls) WHERE instr(lower(value), lower(?)) > 0)",
}


def _where(node: Node, now_ms: int, params: list, cand: bool = False) -> str:
    # Parentheses only where SQL precedence (NOT > AND > OR) needs them: SQLite's parser stack
    # (100 entries) overflows on deep nesting, and every level of parentheses costs some.
    # No atom has a top-level OR, so only an OR inside an AND needs them.
    if isinstance(node, And):
        if not node.children:
            return "1"
        return " AND ".join(f"({_where(c, now_ms, params, cand)})" if isinstance(c, Or)
                            else _where(c, now_ms, params, cand) for c in node.children)
    if isinstance(node, Or):
        if not node.children:
            return "0"
        return " OR ".join(_where(c, now_ms, params, cand) for c in node.children)
    if isinstance(node, Not):
        return f"NOT ({_where(node.child, now_ms, params, cand)})"
    if isinstance(node, (Term, Phrase)):
        if has_fts_token(node.text):
            params.append(fts_string(node.text))
            return _FTS_ROW if cand else _FTS_IN
        params.append(node.text)
        return "instr(p.text, ?) > 0"
    if isinstance(node, Hashtag):
        return _tag(node.tag, "p.hashtags", params, cand)
    if isinstance(node, Mention):
        return _tag(node.handle, "p.mentions", params, cand, mention_text(node.handle))
    if isinstance(node, Cashtag):
        return _tag(node.tag, "p.cashtags", params, cand)
    if isinstance(node, Op):
        return _op(node, now_ms, params)
    raise TypeError(f"not a query node: {node!r}")


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _ci_in(expr: str, value: str, params: list) -> str:
    """``expr`` equals ``value`` ignoring case. SQLite's lower() folds ASCII only, so besides
    ASCII case, the value is also tried in its lower, UPPER and Capitalized forms: that finds
    ``#Séisme`` for ``#SÉISME``; it misses a stored tag only when its non-ASCII letters are in
    neither one case nor Capitalized (``#überÖl``)."""
    forms = list(dict.fromkeys(f.translate(_ASCII_LOWER) for f in (
        value, value.lower(), value.upper(), value.capitalize())))   # as SQLite's lower() would
    params.extend(forms)
    return f"lower({expr}) IN ({', '.join('?' * len(forms))})"


def _tag(tag: str, column: str, params: list, cand: bool = False, words: str | None = None
         ) -> str:
    """The tag in ``column``, and (unless ``cand``) its ``words`` (default: the tag) in the text."""
    words = tag if words is None else words
    sql = f"EXISTS (SELECT 1 FROM json_each({column}) WHERE {_ci_in('value', tag, params)})"
    if has_fts_token(words) and not cand:
        params.append(fts_string(words))
        sql += f" AND {_FTS_IN}"
    return sql


def _op(node: Op, now_ms: int, params: list) -> str:
    name, v = node.name, node.value
    if name in _SIMPLE:
        params.append(v)
        return _SIMPLE[name]
    if name in _COUNTS:
        params.append(v)
        return f"coalesce(p.{_COUNTS[name]}, 0) >= ?"
    if name == "from":
        return f"p.author_handle IS NOT NULL AND {_ci_in('p.author_handle', v, params)}"
    if name == "to":
        return f"p.reply_to_id IS NOT NULL AND {_tag_only(v, 'p.mentions', params)}"
    if name == "within_time":
        params.append(now_ms - v * 1000)
        return "p.created_at >= ?"
    if name == "filter":
        return _FILTERS[v]
    if name == "include":
        return "1"
    if name == "geo":
        return _geo(*v, params, math_functions=has_math_functions())
    raise ValueError(f"operator {name!r} cannot be compiled")


def _tag_only(value: str, column: str, params: list) -> str:
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE {_ci_in('value', value, params)})"


def _geo(lat: float, lon: float, radius_km: float, params: list, *, math_functions: bool) -> str:
    """Posts with coordinates within ``radius_km`` of (lat, lon); without coordinates, never.

    Both forms first bound the latitude (|dlat| <= the radius's angle holds at any distance) and
    are written flat (no nested calls or parentheses), for SQLite's parser stack."""
    ang = radius_km / EARTH_RADIUS_KM                           # radians
    dlat = math.degrees(ang) * (1 + 1e-9) + 1e-9
    params.extend((lat - dlat, lat + dlat))
    head = "p.lat IS NOT NULL AND p.lon IS NOT NULL AND p.lat BETWEEN ? AND ?"
    half = math.pi / 360                                        # degrees -> half-angle radians
    if math_functions:
        # haversine: hav(d/R) = hav(dlat) + cos(lat1) cos(lat2) hav(dlon) <= hav(radius/R), with
        # hav(x) = sin²(x/2); periodic in 360 degrees, so the antimeridian needs nothing.
        params.extend((half, lat * half) * 2 + (math.cos(math.radians(lat)), 2 * half)
                      + (half, lon * half) * 2 + (math.sin(min(ang, math.pi) / 2) ** 2 * (1 + 1e-12),))
        return (f"{head} AND sin(p.lat * ? - ?) * sin(p.lat * ? - ?) + ? * cos(p.lat * ?) "
                f"* sin(p.lon * ? - ?) * sin(p.lon * ? - ?) <= ?")
    # Equirectangular, in degrees: dlon² cos²(mid-latitude) + dlat² <= radius², dlon the shorter
    # way round. cos is its Taylor series to u^8 (|error| < 3e-5 on [-pi/2, pi/2]) in t = u²,
    # written out as products of T = k (p.lat + lat)² so that nothing nests.
    t = "? * (p.lat + ?) * (p.lat + ?)"
    cos_mid = f"(1 - {t} / 2 + {t} * {t} / 24 - {t} * {t} * {t} / 720 + {t} * {t} * {t} * {t} / 40320)"
    dlon = "min(abs(p.lon - ?), 360 - abs(p.lon - ?))"
    t_params = (half * half, lat, lat) * 10
    params.extend((lon, lon, lon, lon) + t_params + t_params
                  + (lat, lat, math.degrees(ang) ** 2 * (1 + 1e-12)))
    return f"{head} AND {dlon} * {dlon} * {cos_mid} * {cos_mid} + (p.lat - ?) * (p.lat - ?) <= ?"


# --- FTS pushdown ----------------------------------------------------------------------------------
def fts_of(node: Node) -> str | None:
    """An FTS5 expression E with: node true => E matches (None when there is no such text).

    >>> from townsquare.query import parse
    >>> fts_of(parse("flood -warning")), fts_of(parse("from:x"))
    ('"flood" NOT "warning"', None)

    A Term/Phrase is exactly its FTS match, so an excluded one may become FTS5 ``NOT``; an
    excluded tag may not (``-#flood`` still allows the word flood)."""
    if isinstance(node, (Term, Phrase)):
        return fts_string(node.text) if has_fts_token(node.text) else None
    if isinstance(node, (Hashtag, Cashtag)):
        return fts_string(node.tag) if has_fts_token(node.tag) else None
    if isinstance(node, Mention):
        words = mention_text(node.handle)
        return fts_string(words) if has_fts_token(words) else None
    if isinstance(node, Or):
        sides = [(c, fts_of(c)) for c in node.children]
        if not sides or any(e is None for _, e in sides):
            return None
        return " OR ".join(_grouped(c, e) for c, e in sides)
    if isinstance(node, And):
        pos = [(c, e) for c in node.children if (e := fts_of(c)) is not None]
        if not pos:
            return None  # FTS5 cannot say "NOT x" without something positive
        neg = [fts_string(c.child.text) for c in node.children
               if isinstance(c, Not) and isinstance(c.child, (Term, Phrase))
               and has_fts_token(c.child.text)]
        expr = " AND ".join(_grouped(c, e) for c, e in pos)
        if len(pos) == 1 and len(neg) == 1 and not isinstance(pos[0][0], (And, Or)):
            return f"{expr} NOT {neg[0]}"
        return f"({expr}) NOT ({' OR '.join(neg)})" if neg else expr
    return None  # operators, and a Not alone


def _grouped(child: Node, expr: str) -> str:
    return f"({expr})" if isinstance(child, (And, Or)) else expr
