"""The Post record: one public post, normalized from any source format.

Every reader in ``townsquare.ingest`` turns its input into ``Post`` objects; the store, search,
stories, ads and training all read this one shape.

    >>> from townsquare.posts import Post, snowflake_time_ms
    >>> p = Post(id=1212092628029698048, text="Flooding on #Main st, see @cityops https://t.co/x $ACME",
    ...          source="demo")
    >>> p = p.normalized()
    >>> p.hashtags, p.mentions, p.cashtags
    (['Main'], ['cityops'], ['ACME'])
    >>> p.created_at == snowflake_time_ms(p.id)
    True

Times are integers: milliseconds since the Unix epoch, UTC. The source's own labels (crowd labels,
event names, splits) are kept in ``labels`` as metadata only: product logic never reads them.
"""
from __future__ import annotations

import calendar
import re
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from townsquare.platforms import is_post_id
from townsquare.text.rules import CASHTAG, HASHTAG, MENTION, URL, URL_TRAIL

# Twitter's Snowflake epoch (2010-11-04T01:42:54.657Z). Ids are (ms - epoch) << 22 | worker | sequence.
SNOWFLAKE_EPOCH_MS = 1288834974657
# The first Snowflake ids were issued on 2010-11-04; anything that decodes earlier is a pre-Snowflake
# sequential id, whose time cannot be recovered from the id.
_SNOWFLAKE_MIN_ID = 1 << 40

# The longest post any platform allows: X's long posts (Premium) hold 25,000 characters (Mastodon
# allows 500 by default, Bluesky 300, Threads 500). A longer text is no platform's post (a file
# glued into one field, or an attack on language id and indexing): ``normalized`` refuses it, so
# the record is quarantined (file, line, ``text``) and an HTTP item answers an error. Refused, not
# cut: a cut post would be searched, summarized and cited as if it were what its author wrote.
MAX_TEXT_CHARS = 25_000
# Times datetime can represent (years 1-9999): what ``parse_time_ms`` returns. A post's own time
# must also be after 1970 and at most a day ahead of now (``Post.normalized``).
_TIME_MIN_MS = -62135596800000
_TIME_MAX_MS = 253402300799999
# Ids and counts (likes, reposts, ...) are stored as SQLite/PostgreSQL 64-bit integers.
_INT64_LIMIT = 1 << 63


class PostError(ValueError):
    """A record that cannot become a Post; ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{self.field}: {msg}" if self.field else msg


def snowflake_time_ms(post_id: int) -> int | None:
    """Creation time (ms since epoch, UTC) encoded in a Snowflake id, or None for older ids."""
    if post_id < _SNOWFLAKE_MIN_ID:
        return None
    return (post_id >> 22) + SNOWFLAKE_EPOCH_MS


def time_to_snowflake(ms: int) -> int:
    """Smallest Snowflake id whose time is ``ms``; ``since_id``/``max_id`` style bounds use it."""
    return (ms - SNOWFLAKE_EPOCH_MS) << 22


_TWITTER_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def _twitter_utc_ms(s: str) -> int | None:
    """Fast path for Twitter's format in UTC (every v1.1 time): 10x cheaper than strptime."""
    parts = s.split()
    if len(parts) != 6 or parts[4] != "+0000" or parts[1] not in _MONTHS:
        return None
    try:
        hh, mm, ss = (int(x) for x in parts[3].split(":"))
        return calendar.timegm((int(parts[5]), _MONTHS[parts[1]], int(parts[2]), hh, mm, ss)) * 1000
    except ValueError:
        return None


def parse_time_ms(value: Any, field_name: str = "created_at") -> int:
    """Parse the time formats found in post data into ms since epoch (UTC).

    Accepts Twitter's v1.1 format, ISO 8601 (v2, with ``Z`` or an offset; naive means UTC),
    and integers/numeric strings of unix seconds or milliseconds.
    Every value it returns is a time ``format_time`` can write (years 1 to 9999); anything else,
    NaN and infinities included, is a ``PostError`` naming the field.

        >>> parse_time_ms("2019-12-31T18:30:00Z"), parse_time_ms(1577817000)
        (1577817000000, 1577817000000)
        >>> parse_time_ms(1e30)
        Traceback (most recent call last):
        ...
        townsquare.posts.PostError: created_at: time out of range: 1e+30
    """
    if isinstance(value, bool):
        raise PostError(f"not a time: {value!r}", field_name)
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:            # an int too large for a float (arbitrary-size JSON ints)
            raise PostError(f"time out of range: {_shown(value)}", field_name) from None
        ms = v if v > 1e11 else v * 1000  # > 1e11 can only be ms (year 5138 in seconds)
        if not _TIME_MIN_MS <= ms <= _TIME_MAX_MS:   # also false for NaN
            raise PostError(f"time out of range: {_shown(value)}", field_name)
        return int(ms)
    if not isinstance(value, str) or not value.strip():
        raise PostError(f"not a time: {_shown(value)}", field_name)
    s = value.strip()
    # isascii: str.isdigit() is also true for digits float() refuses ("²")
    if s.isascii() and s.lstrip("-").replace(".", "", 1).isdigit():
        return parse_time_ms(float(s), field_name)
    if s[:3].isalpha() and (fast := _twitter_utc_ms(s)) is not None:
        return fast
    try:
        if s[:3].isalpha():
            dt = datetime.strptime(s, _TWITTER_TIME)
        else:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp() * 1000)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out by an offset
        raise PostError(f"unrecognized time format {_shown(value)}", field_name) from None
    if not _TIME_MIN_MS <= ms <= _TIME_MAX_MS:
        raise PostError(f"time out of range: {_shown(value)}", field_name)
    return ms


def _shown(value: Any, n: int = 40) -> str:
    """``repr(value)`` cut to ``n`` characters: a reason quotes the value, never all of a huge one."""
    try:
        r = repr(value)
    except ValueError:                   # an int of more than 4,300 digits has no repr
        return "a number of more than 4,300 digits"
    return r if len(r) <= n else r[:n] + "…"


def format_time(ms: int) -> str:
    """ISO 8601 UTC with a ``Z``, millisecond precision (the v2 API's shape)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_id(value: Any, field_name: str = "id") -> int:
    """A post (or user) id as an int: an X id (positive) or another platform's namespaced id
    (negative, ``townsquare.platforms``); tolerates quotes (``'5410...'``) and surrounding spaces.

    >>> parse_id("'1212092628029698048'"), parse_id("-8070450532247928832")
    (1212092628029698048, -8070450532247928832)
    """
    if isinstance(value, bool):
        raise PostError(f"not an id: {value!r}", field_name)
    if isinstance(value, int):
        if not is_post_id(value):
            raise PostError(f"not a post id: {_shown(value)} (X ids are positive; other platforms' ids "
                            "are negative with a platform code)", field_name)
        return value
    if isinstance(value, str):
        s = value.strip().strip("'\"").strip()
        digits = s[1:] if s.startswith("-") else s
        if (digits.isascii() and digits.isdigit() and len(digits) <= 19
                and is_post_id(v := int(s))):
            return v
    raise PostError(f"not a numeric id: {str(value)[:40]!r}", field_name)


def parse_count(value: Any, field_name: str) -> int | None:
    """A count (likes, reposts, replies): None when absent, else an int from a JSON number or a
    string of digits (X archives write numbers as strings). ``Post.normalized`` checks the range.

        >>> parse_count("12", "like_count"), parse_count(3.0, "like_count"), parse_count("", "x")
        (12, 3, None)
    """
    if value is None or value == "":
        return None
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():     # NaN and infinities are not
        return int(value)
    # isascii: str.isdigit() is also true for "²", which int() refuses; 19 digits hold every
    # 64-bit count, and more would be a long int() for nothing
    if type(value) is str and value.isascii() and value.strip().isdigit() and len(value) <= 40:
        return int(value)
    raise PostError(f"not a count: {_shown(value)}", field_name)


def optional_id(value: Any, field_name: str) -> int | None:
    if value is None or value == "" or value == "NA":
        return None
    return parse_id(value, field_name)


# Entities, by twitter-text's rules (``townsquare.text.rules``): in text order, each once.
def extract_hashtags(text: str) -> list[str]:
    return _unique(m.group(1) for m in HASHTAG.finditer(text))


def extract_mentions(text: str) -> list[str]:
    return _unique(m.group(1) for m in MENTION.finditer(text))


def extract_cashtags(text: str) -> list[str]:
    return _unique(m.group(1).upper() for m in CASHTAG.finditer(text))


def extract_urls(text: str) -> list[str]:
    return _unique(m.group(0).rstrip(URL_TRAIL) for m in URL.finditer(text))


_ID_FIELDS = ("author_id", "reply_to_id", "reply_to_user_id", "repost_of_id", "quote_of_id",
              "conversation_id")
_COUNT_FIELDS = ("retweet_count", "like_count", "reply_count", "quote_count")


def _is_number(v: Any) -> bool:
    return type(v) is float or type(v) is int


def _strings(v: Any) -> bool:
    """Whether ``v`` is a list of strings (a loop: cheaper than ``all()`` on the short lists of
    a post's entities)."""
    if type(v) is not list:
        return False
    for x in v:
        if type(x) is not str:
            return False
    return True


def _unique(items) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        if it and it not in seen:
            seen[it] = None
    return list(seen)


_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def _unescape(m: re.Match) -> str:
    return _ENTITIES[m.group(1)]


@dataclass(slots=True)
class Post:
    """One public post. Only ``id``, ``text`` and ``source`` are required; the rest is filled when
    the source has it (``normalized()`` derives what can be derived)."""

    id: int
    text: str
    source: str
    created_at: int | None = None          # ms since epoch, UTC
    author_id: int | None = None
    author_handle: str | None = None       # screen name without "@"
    author_name: str | None = None
    lang: str | None = None                # ISO 639-1 code, "und" when undetermined
    hashtags: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)   # screen names without "@"
    urls: list[str] = field(default_factory=list)       # expanded where the source gives it
    cashtags: list[str] = field(default_factory=list)
    has_media: bool = False
    reply_to_id: int | None = None
    reply_to_user_id: int | None = None
    repost_of_id: int | None = None        # a native retweet / repost of this post
    quote_of_id: int | None = None
    conversation_id: int | None = None
    retweet_count: int | None = None
    like_count: int | None = None
    reply_count: int | None = None
    quote_count: int | None = None
    lon: float | None = None
    lat: float | None = None
    labels: dict[str, Any] = field(default_factory=dict)  # the source's own labels: metadata only

    def normalized(self) -> "Post":
        """Validate and fill derived fields in place; returns the post. Raises PostError naming
        the bad field. (In place: readers build a fresh Post per record, and a copy per post
        cost 10% of the ingest rate.)"""
        if not is_post_id(self.id):
            raise PostError(f"not a post id: {self.id!r} (X ids are positive; other platforms' "
                            "ids are negative with a platform code)", "id")
        if not isinstance(self.text, str):
            raise PostError("missing text", "text")
        text = self.text
        if "\x00" in text:
            text = self.text = text.replace("\x00", "")
        if "&" in text:
            # Twitter's APIs (and the datasets built from them) escape exactly &, < and > in
            # text; the same post typed in by hand has them plain. One pass, so "&amp;lt;"
            # (a literal "&lt;" in the post) becomes "&lt;" and not "<".
            text = self.text = _ENTITY.sub(_unescape, text)
        if len(text) > MAX_TEXT_CHARS:
            raise PostError(f"{len(text):,} characters: longer than the {MAX_TEXT_CHARS:,} any "
                            "platform allows", "text")
        if not text.strip():
            raise PostError("empty text", "text")
        if self.created_at is None:
            self.created_at = snowflake_time_ms(self.id)
            if self.created_at is None:
                raise PostError("no created_at and the id is not a Snowflake id", "created_at")
        created = self.created_at
        if not isinstance(created, int) or isinstance(created, bool) or created < 0:
            raise PostError(f"not a time after 1970: {_shown(created)}", "created_at")
        if created > (time.time() + 86400) * 1000:
            shown = format_time(created) if created <= _TIME_MAX_MS else _shown(created)
            raise PostError(f"created_at {shown} is in the future", "created_at")
        if (self.lat is None) != (self.lon is None):
            self.lat = self.lon = None
        elif self.lat is not None and not (_is_number(self.lat) and _is_number(self.lon)
                                           and -90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            # (NaN fails every comparison, so it lands here too)
            raise PostError(f"coordinates out of range: lat={_shown(self.lat)} "
                            f"lon={_shown(self.lon)}", "coordinates")
        self._check_metadata()
        if self.author_handle:
            self.author_handle = self.author_handle.lstrip("@") or None
        if self.lang:
            self.lang = self.lang.lower()
        else:
            self.lang = None
        # Entities from the text when the source gave none (the quick membership tests skip
        # the regexes for the many posts without any).
        if not self.hashtags and ("#" in text or "＃" in text):
            self.hashtags = extract_hashtags(text)
        if not self.mentions and ("@" in text or "＠" in text):
            self.mentions = extract_mentions(text)
        if not self.cashtags and "$" in text:
            self.cashtags = extract_cashtags(text)
        if not self.urls and "://" in text:
            self.urls = extract_urls(text)
        # A post that replies to nothing starts its own conversation (Twitter's rule).
        if self.conversation_id is None and self.reply_to_id is None:
            self.conversation_id = self.id
        return self

    def _check_metadata(self) -> None:
        """Types and ranges of the fields besides id, text and time: a reader fills them from
        whatever a file holds (townsquare's export is read back field by field), and a wrong
        type or a number past 64 bits must be this record's error, not the store's crash.

        One expression passes the common post (plain ids and counts, strings, lists of strings:
        0.7 us, where a loop over the fields cost 2 us, ~5% of the ingest rate); anything it
        does not pass (None aside) is looked at field by field, which names the field."""
        if (((a := self.author_id) is None or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.reply_to_id) is None or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.reply_to_user_id) is None
                     or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.repost_of_id) is None or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.quote_of_id) is None or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.conversation_id) is None
                     or (type(a) is int and 0 < a < _INT64_LIMIT))
                and ((a := self.retweet_count) is None
                     or (type(a) is int and 0 <= a < _INT64_LIMIT))
                and ((a := self.like_count) is None or (type(a) is int and 0 <= a < _INT64_LIMIT))
                and ((a := self.reply_count) is None or (type(a) is int and 0 <= a < _INT64_LIMIT))
                and ((a := self.quote_count) is None or (type(a) is int and 0 <= a < _INT64_LIMIT))
                and type(self.source) is str and self.source != ""
                and ((a := self.author_handle) is None or type(a) is str)
                and ((a := self.author_name) is None or type(a) is str)
                and ((a := self.lang) is None or type(a) is str)
                and type(self.has_media) is bool and type(self.labels) is dict
                and _strings(self.hashtags) and _strings(self.mentions) and _strings(self.urls)
                and _strings(self.cashtags)):
            return
        for name in _ID_FIELDS:     # namespaced (negative) ids of other platforms pass here
            v = getattr(self, name)
            if v is not None and not is_post_id(v):
                raise PostError(f"not an id: {_shown(v)}", name)
        for name in _COUNT_FIELDS:
            v = getattr(self, name)
            if v is not None and (type(v) is not int or not 0 <= v < _INT64_LIMIT):
                raise PostError(f"not a count: {_shown(v)}", name)
        if type(self.source) is not str or not self.source:
            raise PostError(f"not a source name: {_shown(self.source)}", "source")
        for name in ("author_handle", "author_name", "lang"):
            v = getattr(self, name)
            if v is not None and type(v) is not str:
                raise PostError(f"not a string: {_shown(v)}", name)
        for name in ("hashtags", "mentions", "urls", "cashtags"):
            if not _strings(getattr(self, name)):
                raise PostError(f"not a list of strings: {_shown(getattr(self, name))}", name)
        if type(self.has_media) is not bool:
            raise PostError(f"not true or false: {_shown(self.has_media)}", "has_media")
        if type(self.labels) is not dict:
            raise PostError(f"not an object: {_shown(self.labels)}", "labels")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, ``created_at`` as ISO 8601 UTC; the export format."""
        d = asdict(self)
        if self.created_at is not None:
            d["created_at"] = format_time(self.created_at)
        d["id"] = str(self.id)  # ids exceed JavaScript's 2^53: strings, like the v2 API
        for k in ("author_id", "reply_to_id", "reply_to_user_id", "repost_of_id", "quote_of_id",
                  "conversation_id"):
            if d[k] is not None:
                d[k] = str(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Post":
        """Inverse of ``to_dict`` (townsquare's own JSONL export reads back through this)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise PostError(f"unknown field(s) {sorted(unknown)}", sorted(unknown)[0])
        kw = dict(d)
        kw["id"] = parse_id(kw.get("id"))
        for k in ("author_id", "reply_to_id", "reply_to_user_id", "repost_of_id", "quote_of_id",
                  "conversation_id"):
            kw[k] = optional_id(kw.get(k), k)
        if kw.get("created_at") is not None:
            kw["created_at"] = parse_time_ms(kw["created_at"])
        return cls(**kw)


POST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Post))
