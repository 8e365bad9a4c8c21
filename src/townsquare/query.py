"""The search query language: Twitter's advanced search syntax, parsed into a small immutable AST.

Pure: no SQL, no I/O, no clock. The store compiles the AST into its own SQL
(``townsquare.store.sqlite_query``, ``townsquare.store.postgres_query``).

    >>> from townsquare.query import parse, to_string, positive_text
    >>> q = parse('flood OR #Flood from:@CityOps -filter:retweets since:2020-01-01')
    >>> q.children[0]
    Or(children=(Term(text='flood'), Hashtag(tag='Flood')))
    >>> q.children[1:]
    (Op(name='from', value='CityOps'), Not(child=Op(name='filter', value='retweets')), Op(name='since_ms', value=1577836800000))
    >>> to_string(q)
    'flood OR #Flood from:CityOps -filter:retweets since:2020-01-01'
    >>> positive_text(parse('"water rising" -dry #Flood'))
    ['water rising', 'Flood']
    >>> parse('a foo:bar')
    Traceback (most recent call last):
    ...
    townsquare.query.QueryError: unknown operator 'foo:' (token 'foo:bar' at position 2)

Syntax (as in Twitter search; operators, ``OR`` and ``AND`` are case-sensitive):

- Words separated by spaces are ANDed; ``AND`` (uppercase) may also be written explicitly.
- ``a OR b``: ``OR`` binds tighter than AND, so ``a b OR c`` is ``a AND (b OR c)``.
- ``( ... )`` groups. Parentheses are always structural outside quotes: search for ``:)`` as ``":)"``.
- ``"exact phrase"``; there is no escape for ``"`` inside a phrase.
- ``-x`` excludes a word, phrase, operator or group (``-"a b"``, ``-from:x``, ``-(a OR b)``). The ``-``
  must touch what it excludes; a lone ``-`` is an error. Only at the start of a word: ``covid-19`` is
  one word.
- ``+word`` is the word as-is, never an operator/keyword/tag: ``+OR``, ``+from:x``, ``+#tag``.
- ``#tag``, ``$TAG`` and ``@handle`` (when the whole word has that shape, as in twitter-text; ``#1``
  and ``$100`` are plain words). A handle is any platform's: X's ``cityops``, Bluesky's domain
  names (``@ana.bsky.social``), Mastodon's ``user@host`` (``@ana@mastodon.example``), the forms
  townsquare stores them in.
- A word ``name:value`` where ``name`` is lowercase ASCII letters/underscores and ``value`` is not
  empty and does not start with ``/`` or ``:`` is an operator; an unknown ``name`` is an error. Any
  other word with a colon is a plain word: ``https://t.co/x``, ``10:30``, ``Breaking:``, ``std::x``.
  A value may be quoted: ``url:"a b"``.
- Every query needs something positive: ``-a``, ``-a -b`` or ``a OR -b`` alone are errors.
- At most ``MAX_DEPTH`` (8) nested groups and ``MAX_ATOMS`` (256) words, phrases and operators,
  so that every query compiles within SQLite's parser limits.

Operators and the canonical ``Op(name, value)`` they parse into:

==========================================  ===================================================
``from:h`` ``to:h`` (``@`` optional)        ``Op("from"|"to", "h")``, h any platform's handle
``lang:xx``                                 ``Op("lang", "xx")`` (lowercased)
``since:D`` ``since_time:S``                ``Op("since_ms", ms)`` inclusive
``until:D`` ``until_time:S``                ``Op("until_ms", ms)`` exclusive
``within_time:2d|3h|5m|30s``                ``Op("within_time", seconds)``; "now" is the compiler's
``since_id:N`` / ``max_id:N``               ``Op("since_id", N)`` exclusive / ``Op("max_id", N)``
``min_retweets:N`` ``min_faves:N``          ``Op(name, N)``, at least N
``min_replies:N``
``filter:F`` / ``exclude:F``                ``Op("filter", F)`` / ``Not(Op("filter", F))``
``include:nativeretweets``                  ``Op("include", "nativeretweets")`` (matches all: the
                                            store never hides retweets)
``url:s``                                   ``Op("url", "s")`` substring of a URL
``conversation_id:N`` ``quoted_tweet_id:N`` ``Op(name, N)``
``geocode:LAT,LON,R`` / ``near:LAT,LON``    ``Op("geo", (lat, lon, radius_km))``; R is ``10km`` or
``within:R``                                ``6mi``; near: without within: uses 25 km
==========================================  ===================================================

D is ``YYYY-MM-DD`` or ``YYYY-MM-DD_HH:MM:SS_UTC`` (UTC); S is unix seconds. F is one of ``FILTERS``.
``near:`` takes coordinates only (no offline gazetteer) and pairs with the one ``within:`` of its
own group. Errors are ``QueryError(message, token, position)``, position a 0-based index into ``q``.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["FILTERS", "MAX_ATOMS", "MAX_DEPTH", "And", "Cashtag", "Hashtag", "Mention", "Node",
           "Not", "Op", "Or", "Phrase", "QueryError", "Term", "parse", "positive_text", "to_string"]


class QueryError(ValueError):
    """A query that cannot be parsed: ``token`` is the offending text, ``position`` its index."""

    def __init__(self, message: str, token: str = "", position: int = -1):
        super().__init__(message, token, position)
        self.message = message
        self.token = token
        self.position = position

    def __str__(self) -> str:
        if self.position < 0:
            return self.message
        return f"{self.message} (token {self.token!r} at position {self.position})"


# --- the AST -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    text: str


@dataclass(frozen=True)
class Phrase:
    text: str


@dataclass(frozen=True)
class Hashtag:
    tag: str


@dataclass(frozen=True)
class Cashtag:
    tag: str


@dataclass(frozen=True)
class Mention:
    handle: str


@dataclass(frozen=True)
class Op:
    name: str
    value: object


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple


@dataclass(frozen=True)
class Or:
    children: tuple


Node = Term | Phrase | Hashtag | Cashtag | Mention | Op | Not | And | Or

FILTERS = frozenset({"replies", "retweets", "nativeretweets", "quote", "links", "media",
                     "hashtags", "mentions", "has_engagement"})
_KNOWN = frozenset({"from", "to", "lang", "since", "until", "since_time", "until_time",
                    "since_id", "max_id", "within_time", "filter", "exclude", "include",
                    "min_retweets", "min_faves", "min_replies", "url", "conversation_id",
                    "quoted_tweet_id", "geocode", "near", "within"})
# Twitter operators this store has no data for: a specific error beats "unknown operator".
_UNSUPPORTED = {
    "list": "there are no lists in the store", "place": "there are no place ids in the store",
    "source": "the store does not keep the posting client", "card_name": "no card data",
    "card_domain": "no card data", "card_url": "no card data",
    "quoted_user_id": "the store does not keep the quoted user",
}
_UNSUPPORTED_FILTERS = {
    "images": "only whether a post has media is known: use filter:media",
    "videos": "only whether a post has media is known: use filter:media",
    "twimg": "only whether a post has media is known: use filter:media",
    "native_video": "only whether a post has media is known: use filter:media",
    "verified": "there is no verification data", "follows": "there is no follow graph",
    "social": "there is no follow graph", "trusted": "there is no follow graph",
    "news": "there is no news-site list", "safe": "there is no sensitivity data",
}
DEFAULT_NEAR_KM = 25.0
_MI_KM = 1.609344
_MAX_RADIUS_KM = 20038.0          # half of the Earth's circumference: beyond it is everywhere
MAX_ATOMS = 256                   # SQLite's expression depth (1000) bounds AND/OR chains
MAX_DEPTH = 8                     # nested groups: SQLite's parser stack overflows near 11
_MAX_UNIX_S = 253402300799        # 9999-12-31T23:59:59Z: every time stays a datetime
_MAX_INT = (1 << 63) - 1          # SQLite's INTEGER

_OPERATOR = re.compile(r"([a-z][a-z_]*):(.*)", re.DOTALL)
_HASHTAG = re.compile(r"#(\w*[^\W\d]\w*)")     # the shapes of townsquare.posts' extractors
_CASHTAG = re.compile(r"\$([A-Za-z]{1,6}(?:[._][A-Za-z]{1,2})?)")
# A handle of any platform: X's (word characters), Bluesky's (a domain name: labels joined by
# dots, hyphens inside), Mastodon's as townsquare stores it (user@host). A dot or hyphen must be
# followed by a word character, so "@ops." at the end of a sentence stays a plain word.
_NAME = r"\w+(?:(?:\.|-+)\w+)*"
_HANDLE_SHAPE = rf"(?=[^\s@]{{1,253}}(?:@[^\s@]{{1,253}})?$){_NAME}(?:@{_NAME})?"
_MENTION = re.compile(rf"@({_HANDLE_SHAPE})")
_HANDLE = re.compile(rf"@?({_HANDLE_SHAPE})")
_LANG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:_([0-9]{2}):([0-9]{2}):([0-9]{2})_(\w+))?")
_UINT = re.compile(r"[0-9]{1,19}")
_DURATION = re.compile(r"([0-9]{1,9})([dhms])")
_UNIT_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_RADIUS = re.compile(rf"({_NUM})(km|mi)")
_LATLON = re.compile(rf"({_NUM}),({_NUM})")
_GEOCODE = re.compile(rf"({_NUM}),({_NUM}),({_NUM})(km|mi)")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _looks_operator(word: str) -> bool:
    """The rule that tells an operator from a word with a colon (see the module docstring)."""
    m = _OPERATOR.fullmatch(word)
    return m is not None and (m[1] in _KNOWN or m[1] in _UNSUPPORTED
                              or (m[2] != "" and m[2][0] not in "/:"))


# --- lexer ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str        # "(" ")" "-" "OR" "AND" "phrase" "word" "op"
    raw: str         # the source text, for errors
    pos: int
    value: str = ""  # phrase text, word text, or operator value
    name: str = ""   # operator name


def _lex(q: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(q)
    while i < n:
        ch = q[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch, ch, i))
            i += 1
        elif ch == '"':
            end = q.find('"', i + 1)
            if end < 0:
                raise QueryError("unclosed quote", q[i:i + 20], i)
            toks.append(_Tok("phrase", q[i:end + 1], i, q[i + 1:end]))
            i = end + 1
        elif ch == "-":
            nxt = q[i + 1] if i + 1 < n else ""
            if not nxt or nxt.isspace() or nxt == ")":
                raise QueryError("'-' must be directly followed by what it excludes", "-", i)
            if nxt == "-":
                raise QueryError("double '-'", "--", i)
            toks.append(_Tok("-", "-", i))
            i += 1
        else:
            j = i
            while j < n and not q[j].isspace() and q[j] not in '()"':
                j += 1
            word = q[i:j]
            m = _OPERATOR.fullmatch(word)
            quoted = m is not None and not m[2] and j < n and q[j] == '"'
            if word in ("OR", "AND"):
                toks.append(_Tok(word, word, i))
            elif m and (quoted or _looks_operator(word)):
                value = m[2]
                if quoted:  # name:"quoted value"
                    end = q.find('"', j + 1)
                    if end < 0:
                        raise QueryError("unclosed quote", q[j:j + 20], j)
                    value, j = q[j + 1:end], end + 1
                toks.append(_Tok("op", q[i:j], i, value, m[1]))
            else:
                toks.append(_Tok("word", word, i, word))
            i = j
    return toks


# --- parser --------------------------------------------------------------------------------------
def parse(q: str) -> Node:
    """Parse a query string into an AST; raises ``QueryError`` for anything malformed.

    >>> parse('a b OR c')
    And(children=(Term(text='a'), Or(children=(Term(text='b'), Term(text='c')))))
    >>> parse('(a b')
    Traceback (most recent call last):
    ...
    townsquare.query.QueryError: unclosed '(' (token '(' at position 0)
    """
    if not isinstance(q, str):
        raise QueryError(f"a query is a string, not {type(q).__name__}")
    for i, ch in enumerate(q):
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            raise QueryError("invalid character", repr(ch), i)
    toks = _lex(q)
    if not toks:
        raise QueryError("empty query", q, 0)
    atoms = [t for t in toks if t.kind in ("word", "phrase", "op")]
    if len(atoms) > MAX_ATOMS:
        t = atoms[MAX_ATOMS]
        raise QueryError(f"more than {MAX_ATOMS} words, phrases and operators", t.raw, t.pos)
    p = _Parser(toks)
    node = p.parse_and()
    if p.i < len(toks):  # parse_and stops only at ')' or the end
        t = toks[p.i]
        raise QueryError("unmatched ')'", t.raw, t.pos)
    if not _positive(node):
        what = "a side of this OR" if isinstance(node, Or) else "the query"
        raise QueryError(f"{what} only excludes: add something to search for (a word, a "
                         "phrase, a tag or an operator)", toks[0].raw, toks[0].pos)
    return node


def _positive(node: Node) -> bool:
    """Whether the node selects posts by what they have, not only by what they lack."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(_positive(c) for c in node.children)
    return True


def _is_op(node: Node, name: str) -> bool:
    return isinstance(node, Op) and node.name == name


class _Parser:
    """Recursive descent over: and := or+ ; or := unary ('OR' unary)* ; unary := '-'? primary ;
    primary := '(' and ')' | phrase | word | operator."""

    def __init__(self, toks: list[_Tok]):
        self.toks = toks
        self.i = 0
        self.open: list[_Tok] = []  # the '(' of the groups being parsed

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse_and(self) -> Node:
        items: list[tuple[Node, _Tok]] = []
        while (t := self.peek()) is not None and t.kind != ")":
            if t.kind == "AND":
                self.i += 1
                nxt = self.peek()
                if not items or nxt is None or nxt.kind in (")", "OR", "AND"):
                    raise QueryError("AND needs something on both sides", t.raw, t.pos)
                continue
            items.append((self.parse_or(), t))
        if not items:
            if t is not None:  # a ')' right away
                if not self.open:
                    raise QueryError("unmatched ')'", t.raw, t.pos)
                raise QueryError("empty group", t.raw, t.pos)
            if self.open:
                raise QueryError("unclosed '('", self.open[-1].raw, self.open[-1].pos)
            raise QueryError("empty query", "", 0)
        children: list[Node] = []
        for node, _ in _fold_geo(items):
            children.extend(node.children if isinstance(node, And) else (node,))
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_or(self) -> Node:
        operands = [(self.peek(), self.parse_unary())]
        while (t := self.peek()) is not None and t.kind == "OR":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "OR", "AND"):
                raise QueryError("OR needs something on both sides", t.raw, t.pos)
            operands.append((nxt, self.parse_unary()))
        if len(operands) == 1:
            return operands[0][1]
        children: list[Node] = []
        for first, node in operands:
            if _is_op(node, "within"):
                raise QueryError("within: belongs next to a near:, not in an OR", first.raw,
                                 first.pos)
            node = _default_near(node)
            children.extend(node.children if isinstance(node, Or) else (node,))
        return Or(tuple(children))

    def parse_unary(self) -> Node:
        t = self.peek()
        if t is not None and t.kind == "-":
            self.i += 1
            nxt = self.peek()
            if nxt is None or nxt.kind in (")", "OR", "AND", "-"):
                raise QueryError("'-' must be directly followed by what it excludes", t.raw, t.pos)
            child = self.parse_primary()
            if _is_op(child, "within"):
                raise QueryError("within: cannot be excluded; exclude the near: instead",
                                 nxt.raw, nxt.pos)
            return Not(child)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        t = self.toks[self.i]  # callers guarantee a token is there
        self.i += 1
        if t.kind == "(":
            self.open.append(t)
            if len(self.open) > MAX_DEPTH:
                raise QueryError(f"more than {MAX_DEPTH} nested groups", t.raw, t.pos)
            node = self.parse_and()
            if self.peek() is None:
                raise QueryError("unclosed '('", t.raw, t.pos)
            self.i += 1
            self.open.pop()
            return node
        if t.kind == ")":
            raise QueryError("unmatched ')'", t.raw, t.pos)
        if t.kind in ("OR", "AND"):
            raise QueryError(f"{t.kind} needs something on both sides", t.raw, t.pos)
        if t.kind == "phrase":
            if not t.value.strip():
                raise QueryError("empty phrase", t.raw, t.pos)
            return Phrase(t.value)
        if t.kind == "op":
            return _operator(t)
        return _word(t)


def _word(t: _Tok) -> Node:
    w = t.value
    if w.startswith("+"):
        if len(w) == 1:
            raise QueryError("'+' must be directly followed by a word", t.raw, t.pos)
        return Term(w[1:])
    if m := _HASHTAG.fullmatch(w):
        return Hashtag(m[1])
    if m := _CASHTAG.fullmatch(w):
        return Cashtag(m[1])
    if m := _MENTION.fullmatch(w):
        return Mention(m[1])
    return Term(w)


def _fold_geo(items: list[tuple[Node, _Tok]]) -> list[tuple[Node, _Tok]]:
    """Pair ``near:`` with the ``within:`` of the same group into one ``geo`` operator."""
    withins = [(n, t) for n, t in items if _is_op(n, "within")]
    nears = [(n, t) for n, t in items
             if _is_op(n, "near") or (isinstance(n, Not) and _is_op(n.child, "near"))]
    radius = DEFAULT_NEAR_KM
    if withins:
        w, wt = withins[-1]
        if len(withins) > 1:
            raise QueryError("more than one within: in a group", wt.raw, wt.pos)
        if not nears:
            raise QueryError("within: needs a near: in the same group", wt.raw, wt.pos)
        if len(nears) > 1:
            raise QueryError("within: is ambiguous next to several near:", wt.raw, wt.pos)
        radius = w.value
    return [(_default_near(n, radius), t) for n, t in items if not _is_op(n, "within")]


def _default_near(node: Node, radius: float = DEFAULT_NEAR_KM) -> Node:
    if isinstance(node, Not):
        return Not(_default_near(node.child, radius))
    if _is_op(node, "near"):
        lat, lon = node.value
        return Op("geo", (lat, lon, radius))
    return node


# --- operator values -----------------------------------------------------------------------------
def _operator(t: _Tok) -> Node:
    name, v = t.name, t.value

    def bad(why: str) -> QueryError:
        return QueryError(f"{name}: {why}", t.raw, t.pos)

    if name in _UNSUPPORTED:
        raise bad(f"not supported ({_UNSUPPORTED[name]})")
    if name not in _KNOWN:
        raise QueryError(f"unknown operator '{name}:'", t.raw, t.pos)
    if not v:
        raise bad("needs a value")
    if name in ("from", "to"):
        if not (m := _HANDLE.fullmatch(v)):
            raise bad("not a user handle")
        return Op(name, m[1])
    if name == "lang":
        if not _LANG.fullmatch(v):
            raise bad("not a language code (like en, es, und)")
        return Op("lang", v.lower())
    if name in ("since", "until"):
        return Op(f"{name}_ms", _date_ms(v, bad))
    if name in ("since_time", "until_time"):
        if not _UINT.fullmatch(v) or int(v) > _MAX_UNIX_S:
            raise bad("not unix seconds (a whole number up to year 9999)")
        return Op(f"{name[:5]}_ms", int(v) * 1000)
    if name in ("since_id", "max_id", "conversation_id", "quoted_tweet_id", "min_retweets",
                "min_faves", "min_replies"):
        if not _UINT.fullmatch(v) or int(v) > _MAX_INT:
            raise bad("not a whole number")
        return Op(name, int(v))
    if name == "within_time":
        if not (m := _DURATION.fullmatch(v)) or int(m[1]) == 0:
            raise bad("not a duration like 2d, 3h, 5m or 30s")
        return Op(name, int(m[1]) * _UNIT_S[m[2]])
    if name in ("filter", "exclude"):
        if v in _UNSUPPORTED_FILTERS:
            raise bad(f"{v} is not supported ({_UNSUPPORTED_FILTERS[v]})")
        if v not in FILTERS:
            raise bad(f"unknown filter {v!r}; known: {', '.join(sorted(FILTERS))}")
        return Op("filter", v) if name == "filter" else Not(Op("filter", v))
    if name == "include":
        if v != "nativeretweets":
            raise bad("only include:nativeretweets is supported (use filter: and -filter:)")
        return Op("include", v)
    if name == "url":
        return Op("url", v)
    if name == "geocode":
        if not (m := _GEOCODE.fullmatch(v)):
            raise bad("not LAT,LON,RADIUS (like 40.7,-74.0,10km)")
        lat, lon = _lat_lon(m[1], m[2], bad)
        return Op("geo", (lat, lon, _radius(m[3], m[4], bad)))
    if name == "near":
        if v == "me":
            raise bad("near:me is not supported (there is no user location)")
        if not (m := _LATLON.fullmatch(v)):
            raise bad("needs LAT,LON: place names are not supported (no offline gazetteer)")
        return Op("near", _lat_lon(m[1], m[2], bad))
    # within
    if not (m := _RADIUS.fullmatch(v)):
        raise bad("not a radius like 10km or 5mi")
    return Op("within", _radius(m[1], m[2], bad))


def _date_ms(v: str, bad) -> int:
    m = _DATE.fullmatch(v)
    if not m:
        raise bad("not a date: YYYY-MM-DD or YYYY-MM-DD_HH:MM:SS_UTC")
    if m[7] is not None and m[7].upper() != "UTC":
        raise bad("only UTC times are supported (_UTC)")
    parts = tuple(int(x) for x in m.groups()[:6] if x is not None) + (0, 0, 0)
    try:
        datetime(*parts[:6])
    except ValueError as e:
        raise bad(f"no such date or time ({e})") from None
    return calendar.timegm(parts[:6]) * 1000


def _lat_lon(lat_s: str, lon_s: str, bad) -> tuple[float, float]:
    lat, lon = float(lat_s), float(lon_s)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad("latitude must be in [-90, 90] and longitude in [-180, 180]")
    return lat, lon


def _radius(num: str, unit: str, bad) -> float:
    r = float(num) * (_MI_KM if unit == "mi" else 1.0)
    if not (0 < r <= _MAX_RADIUS_KM):
        raise bad(f"the radius must be above 0 and at most {_MAX_RADIUS_KM:g} km")
    return r


def mention_text(handle: str) -> str:
    """What a post's text shows of a handle it mentions: the handle, except Mastodon's
    ``user@host``, which a post writes ``@user`` (the host is only in the link). The stores'
    full-text prefilter for ``@handle`` looks for these words.

    >>> mention_text("ana@mastodon.example"), mention_text("ana.bsky.social")
    ('ana', 'ana.bsky.social')
    """
    return handle.split("@", 1)[0]


# --- rendering -----------------------------------------------------------------------------------
def to_string(node: Node) -> str:
    """A query string that parses back to ``node`` (for any AST ``parse`` can return).

    >>> to_string(parse('(a OR "b c") -(d e) within_time:7200s geocode:1.5,2,3mi'))
    'a OR "b c" -(d e) within_time:2h geocode:1.5,2.0,4.828032km'
    """
    if isinstance(node, And):
        return " ".join(f"({to_string(c)})" if isinstance(c, And) else to_string(c)
                        for c in node.children)
    if isinstance(node, Or):
        return " OR ".join(f"({to_string(c)})" if isinstance(c, (And, Or)) else to_string(c)
                           for c in node.children)
    if isinstance(node, Not):
        c = node.child
        inner = to_string(c)
        return f"-({inner})" if isinstance(c, (And, Or, Not)) else f"-{inner}"
    if isinstance(node, Term):
        return _render_term(node.text)
    if isinstance(node, Phrase):
        if '"' in node.text or not node.text.strip():
            raise ValueError(f"phrase cannot be written in the query language: {node.text!r}")
        return f'"{node.text}"'
    if isinstance(node, Hashtag):
        return _checked(f"#{node.tag}", node)
    if isinstance(node, Cashtag):
        return _checked(f"${node.tag}", node)
    if isinstance(node, Mention):
        return _checked(f"@{node.handle}", node)
    if isinstance(node, Op):
        return _render_op(node)
    raise ValueError(f"not a query node: {node!r}")


def _render_term(text: str) -> str:
    if not text or any(c.isspace() or c in '()"' for c in text):
        raise ValueError(f"term cannot be written in the query language: {text!r}")
    plain = _Tok("word", text, 0, text)
    if (text[0] in "-+" or text in ("OR", "AND") or _looks_operator(text)
            or _word(plain) != Term(text)):
        return "+" + text   # as-is: never an operator, keyword, tag or exclusion
    return text


def _checked(s: str, node: Node) -> str:
    if _word(_Tok("word", s, 0, s)) != node:
        raise ValueError(f"not a valid tag: {node!r}")
    return s


def _render_op(node: Op) -> str:
    name, v = node.name, node.value
    if name in ("since_ms", "until_ms"):
        if not isinstance(v, int) or v % 1000:
            raise ValueError(f"{name} must be whole seconds in ms: {v!r}")
        try:
            dt = _EPOCH + timedelta(milliseconds=v)
        except OverflowError:
            raise ValueError(f"{name} out of range: {v!r}") from None
        text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}"  # strftime's %Y does not pad
        if v % 86_400_000:
            text += f"_{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}_UTC"
        return f"{name[:5]}:{text}"
    if name == "within_time":
        unit = next(u for u in "dhms" if v % _UNIT_S[u] == 0)
        return f"within_time:{v // _UNIT_S[unit]}{unit}"
    if name == "geo":
        lat, lon, r = v
        return f"geocode:{float(lat)!r},{float(lon)!r},{float(r)!r}km"
    if name in ("url", "from", "to", "lang", "filter", "include"):
        v = str(v)
        if '"' in v or not v:
            raise ValueError(f"{name}: value cannot be written: {v!r}")
        if any(c.isspace() or c in "()" for c in v):
            return f'{name}:"{v}"'
        return f"{name}:{v}"
    return f"{name}:{v}"


# --- text for highlighting and semantic search ---------------------------------------------------
def positive_text(node: Node) -> list[str]:
    """Words, phrases and tag words a result should contain (nothing under a ``Not``), in query
    order, without case-insensitive repeats.

    >>> positive_text(parse('Flood OR flood "high water" @ops $ACME -dry from:x'))
    ['Flood', 'high water', 'ops', 'ACME']
    """
    out: list[str] = []
    seen: set[str] = set()

    def walk(n: Node) -> None:
        if isinstance(n, (And, Or)):
            for c in n.children:
                walk(c)
            return
        text = {Term: "text", Phrase: "text", Hashtag: "tag", Cashtag: "tag",
                Mention: "handle"}.get(type(n))
        if text is not None:
            s = getattr(n, text)
            if s.casefold() not in seen:
                seen.add(s.casefold())
                out.append(s)

    walk(node)
    return out
