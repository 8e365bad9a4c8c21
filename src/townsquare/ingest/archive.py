"""The X (Twitter) account archive: ``data/tweets.js`` (older archives: ``tweet.js``).

    >>> strip_prefix('window.YTD.tweets.part0 = [{"tweet": {}}]')
    '[{"tweet": {}}]'

Each file is JavaScript: ``window.YTD.<name>.part<N> = `` followed by a JSON array whose items wrap
a v1.1-like tweet as ``{"tweet": {...}}`` with every number as a string and no ``user`` object.
The author is the account owner, read from ``account.js`` beside it when present.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson

from townsquare.ingest.items import Item, clip
from townsquare.ingest.twitter_v1 import posts_from_v1
from townsquare.posts import PostError, optional_id

_PREFIX = re.compile(r"^\s*window\.YTD\.(\w+)\.part\d+\s*=\s*")


def archive_name(head: str) -> str | None:
    """The archive section a file holds (``tweets``, ``account``, ...), from its first bytes."""
    m = _PREFIX.match(head)
    return m.group(1) if m else None


def strip_prefix(text: str) -> str:
    m = _PREFIX.match(text)
    if not m:
        raise PostError("not an archive file: no 'window.YTD.<name>.partN = ' prefix", "prefix")
    return text[m.end():]


def _owner(folder: Path) -> dict | None:
    account = folder / "account.js"
    if not account.exists():
        return None
    try:
        items = orjson.loads(strip_prefix(account.read_text(encoding="utf-8")))
        acc = items[0]["account"]
        return {"id": optional_id(acc.get("accountId"), "accountId"),
                "handle": acc.get("username"), "name": acc.get("accountDisplayName")}
    except (PostError, orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None  # the tweets are still good without an author


def read_archive(path: Path, source: str, kind: str | None = None) -> Iterator[Item]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        items = orjson.loads(strip_prefix(text))
    except PostError as e:
        yield Item(1, error=str(e), raw=clip(text[:200]))
        return
    except orjson.JSONDecodeError as e:
        yield Item(1, error=f"json: {e}", raw=clip(text[:200]))
        return
    if not isinstance(items, list):
        yield Item(1, error="format: archive body is not a JSON array", raw=clip(text[:200]))
        return
    owner = _owner(path.parent)
    for n, entry in enumerate(items, 1):
        raw = clip(orjson.dumps(entry).decode())
        tweet = entry.get("tweet") if isinstance(entry, dict) else None
        if not isinstance(tweet, dict):
            yield Item(n, error="format: item has no 'tweet' object", raw=raw)
            continue
        try:
            yield Item(n, posts_from_v1(tweet, source, owner=owner), raw=raw)
        except PostError as e:
            yield Item(n, error=str(e), raw=raw)
