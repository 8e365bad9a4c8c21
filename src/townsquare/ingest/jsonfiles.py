"""JSON inputs: whole JSON documents and JSON Lines, holding v1.1 objects, v2 responses or
townsquare's own export, told apart per object.

    >>> kind_of({"data": [], "includes": {}}), kind_of({"id_str": "1", "text": "x"})
    ('v2', 'v1')

A JSON document (``.json``) is a v1.1 object, a list of them, a v1.1 search page (``statuses``),
a v2 response page, or a list of v2 tweets. A list streams one item at a time
(``townsquare.ingest.jsonarray``): memory stays flat whatever its size, a bad item is quarantined
alone, and a list cut off part way keeps every item before the cut (the cut is quarantined with
its item number and line). An object document is parsed whole. JSON Lines stream line by line; a
line longer than ``MAX_LINE_CHARS`` is quarantined without being held. Line numbers in the
quarantine are file lines for JSON Lines and item numbers (1-based) for JSON documents.

Measured on 76,484 v1.1 tweets (55 MB) as one array, on the 2-core machine under other load:
parsed whole as before, 2.3 s and 388 MiB peak; streamed, 2.0 s and 40 MiB.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from townsquare.ingest.items import MAX_LINE_CHARS, Item, clip, open_text, read_lines
from townsquare.ingest.jsonarray import iter_array
from townsquare.ingest.twitter_v1 import posts_from_v1
from townsquare.ingest.twitter_v2 import included_tweets, post_from_v2, users_of
from townsquare.posts import Post, PostError

KINDS = ("v1", "v2", "townsquare")


def kind_of(obj: Any) -> str | None:
    """Which post format a JSON object is, or None when it is not a post at all."""
    if not isinstance(obj, dict):
        return None
    if "data" in obj and isinstance(obj["data"], (list, dict)):
        return "v2"
    if "statuses" in obj and isinstance(obj["statuses"], list):
        return "v1"
    if "source" in obj and "hashtags" in obj and "text" in obj and "id" in obj:
        return "townsquare"
    if "id_str" in obj or "user" in obj or "full_text" in obj or "extended_tweet" in obj:
        return "v1"
    if "id" in obj and "text" in obj:
        # v2 tweets have ISO times, v1 tweets Twitter's "Wed Oct 10 ..." format
        created = obj.get("created_at")
        if isinstance(created, str) and created[:3].isalpha():
            return "v1"
        return "v2"
    return None


def _townsquare_posts(obj: dict, source: str) -> list[Post]:
    """An export line: the post (its primary source first), once per source that holds it."""
    d = dict(obj)
    sources = d.pop("sources", None) or {}
    base = Post.from_dict(d)
    out = [base]
    for src, labels in sorted(sources.items()):
        if src != base.source:
            p = Post.from_dict(dict(d, source=src, labels=labels or {}))
            out.append(p)
    return out


def items_from_object(obj: Any, source: str, line: int, raw: str, kind: str | None = None) -> Iterator[Item]:
    """Items for one parsed object. A v2 page or a v1.1 search page holds several tweets: each
    good tweet is kept even when a neighbour is bad (that one is reported on the same line)."""
    k = kind or kind_of(obj)
    try:
        if k == "v2" and isinstance(obj, dict) and "data" in obj:
            users = users_of(obj)
            data = obj["data"]
            posts, errors = [], []
            for n, t in enumerate(([data] if isinstance(data, dict) else data) + included_tweets(obj)):
                try:
                    posts.append(post_from_v2(t, source, users))
                except PostError as e:
                    errors.append(f"tweet {n + 1}: {e}")
            if posts or errors:               # an empty page holds no record (as "statuses": [])
                yield Item(line, posts, "; ".join(errors) or None, raw)
        elif k == "v2":
            yield Item(line, [post_from_v2(obj, source)], raw=raw)
        elif k == "v1" and isinstance(obj, dict) and "statuses" in obj:
            for t in obj["statuses"]:        # tweets, each its own item (a page in a page is not)
                yield from items_from_object(t, source, line, raw, "v1-tweet")
        elif k in ("v1", "v1-tweet"):
            yield Item(line, posts_from_v1(obj, source), raw=raw)
        elif k == "townsquare":
            yield Item(line, _townsquare_posts(obj, source), raw=raw)
        else:
            keys = ", ".join(sorted(obj)[:8]) if isinstance(obj, dict) else type(obj).__name__
            yield Item(line, error=f"format: not a post object (has {keys})", raw=raw)
    except PostError as e:
        yield Item(line, error=str(e), raw=raw)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        yield Item(line, error=f"malformed: {type(e).__name__}: {e}", raw=raw)


def read_jsonl(path: Path, source: str, kind: str | None = None) -> Iterator[Item]:
    """One JSON object per line; blank lines are skipped."""
    with open_text(path) as f:
        for n, line in enumerate(read_lines(f), 1):
            if line is None:
                yield Item(n, error=f"json: line longer than {MAX_LINE_CHARS:,} characters: "
                                    "not a post")
                continue
            s = line.strip()
            if not s:
                continue
            try:
                obj = orjson.loads(s)
            except orjson.JSONDecodeError as e:
                yield Item(n, error=f"json: {e}", raw=clip(s))
                continue
            yield from items_from_object(obj, source, n, clip(s), kind)


def read_json(path: Path, source: str, kind: str | None = None) -> Iterator[Item]:
    """A JSON document: a list streams item by item, anything else is parsed whole."""
    with open_text(path) as f:
        head = f.read(1 << 16)
        if head.lstrip(" \t\r\n")[:1] == "[":
            for item in iter_array(f, pending=head):
                if item.error:
                    yield Item(item.number, error=item.error, raw=item.raw)
                else:
                    yield from items_from_object(item.value, source, item.number, item.raw, kind)
            return
        text = head + f.read()
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        yield Item(1, error=f"json: {e}", raw=clip(text[:2000]))
        return
    yield from items_from_object(doc, source, 1, clip(text), kind)
