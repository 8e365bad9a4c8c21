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

from townsquare.text.rules import CASHTAG, HASHTAG, MENTION, URL, URL_TRAIL

# Twitter's Snowflake epoch (2010-11-04T01:42:54.657Z). Ids are (ms - epoch) << 22 | worker | sequence.
SNOWFLAKE_EPOCH_MS = 1288834974657
# The first Snowflake ids were issued on 2010-11-04; anything that decodes earlier is a pre-Snowflake
# sequential id, whose time cannot be recovered from the id.
_SNOWFLAKE_MIN_ID = 1 << 40


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
    """
    if isinstance(value, bool):
        raise PostError(f"not a time: {value!r}", field_name)
    if isinstance(value, (int, float)):
        v = float(value)
        return int(v if v > 1e11 else v * 1000)  # > 1e11 can only be ms (year 5138 in seconds)
    if not isinstance(value, str) or not value.strip():
        raise PostError(f"not a time: {value!r}", field_name)
    s = value.strip()
    if s.lstrip("-").replace(".", "", 1).isdigit():
        return parse_time_ms(float(s), field_name)
    if s[:3].isalpha() and (fast := _twitter_utc_ms(s)) is not None:
        return fast
    try:
        if s[:3].isalpha():
            dt = datetime.strptime(s, _TWITTER_TIME)
        else:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise PostError(f"unrecognized time format {value!r}", field_name) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def format_time(ms: int) -> str:
    """ISO 8601 UTC with a ``Z``, millisecond precision (the v2 API's shape)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_id(value: Any, field_name: str = "id") -> int:
    """A platform id as a positive int; tolerates quotes (``'5410...'``) and surrounding spaces."""
    if isinstance(value, bool):
        raise PostError(f"not an id: {value!r}", field_name)
    if isinstance(value, int):
        if value <= 0:
            raise PostError(f"id must be positive, got {value}", field_name)
        return value
    if isinstance(value, str):
        s = value.strip().strip("'\"").strip()
        if s.isdigit() and len(s) <= 19:
            v = int(s)
            if 0 < v < (1 << 63):
                return v
    raise PostError(f"not a numeric id: {str(value)[:40]!r}", field_name)


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
        if not isinstance(self.id, int) or isinstance(self.id, bool) or self.id <= 0:
            raise PostError(f"id must be a positive integer, got {self.id!r}", "id")
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
        if not text.strip():
            raise PostError("empty text", "text")
        if self.created_at is None:
            self.created_at = snowflake_time_ms(self.id)
            if self.created_at is None:
                raise PostError("no created_at and the id is not a Snowflake id", "created_at")
        if self.created_at > (time.time() + 86400) * 1000:
            raise PostError(f"created_at {format_time(self.created_at)} is in the future",
                            "created_at")
        if (self.lat is None) != (self.lon is None):
            self.lat = self.lon = None
        elif self.lat is not None and not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise PostError(f"coordinates out of range: lat={self.lat} lon={self.lon}", "coordinates")
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
