"""The X (Twitter) account archive: ``data/tweets.js`` (older archives: ``tweet.js``).

    >>> strip_prefix('window.YTD.tweets.part0 = [{"tweet": {}}]')
    '[{"tweet": {}}]'

Each file is JavaScript: ``window.YTD.<name>.part<N> = `` followed by a JSON array whose items wrap
a v1.1-like tweet as ``{"tweet": {...}}`` with every number as a string and no ``user`` object.
The author is the account owner, read from ``account.js`` beside it when present. The array
streams item by item (``townsquare.ingest.jsonarray``): an archive of any size reads in flat
memory, and one cut off part way keeps the tweets before the cut.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson

from townsquare.ingest.items import Item, SkipFile, clip, open_text
from townsquare.ingest.jsonarray import iter_array
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
        with open_text(account) as f:
            items = orjson.loads(strip_prefix(f.read(1 << 20)))
        acc = items[0]["account"]
        handle, name = acc.get("username"), acc.get("accountDisplayName")
        return {"id": optional_id(acc.get("accountId"), "accountId"),
                "handle": handle if isinstance(handle, str) else None,
                "name": name if isinstance(name, str) else None}
    except (PostError, orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError,
            OSError, SkipFile):
        return None  # the tweets are still good without an author


def read_archive(path: Path, source: str, kind: str | None = None) -> Iterator[Item]:
    with open_text(path) as f:
        head = f.read(1 << 16)
        try:
            body = strip_prefix(head)
        except PostError as e:
            yield Item(1, error=str(e), raw=clip(head[:200]))
            return
        owner = _owner(path.parent)
        prefix_lines = head.count("\n", 0, len(head) - len(body))
        for item in iter_array(f, pending=body, first_line=1 + prefix_lines):
            n, raw = item.number, item.raw
            if item.error:
                yield Item(n, error=item.error, raw=raw)
                continue
            entry = item.value
            tweet = entry.get("tweet") if isinstance(entry, dict) else None
            if not isinstance(tweet, dict):
                yield Item(n, error="format: item has no 'tweet' object", raw=raw)
                continue
            try:
                yield Item(n, posts_from_v1(tweet, source, owner=owner), raw=raw)
            except PostError as e:
                yield Item(n, error=str(e), raw=raw)
            except (TypeError, ValueError, AttributeError, KeyError) as e:
                yield Item(n, error=f"malformed: {type(e).__name__}: {e}", raw=raw)
