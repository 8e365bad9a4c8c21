"""Page cursors: a page's state (the snapshot's ``seq`` and "now", the offset or the last
post) as an opaque string, checked field by field when it comes back from a client.

    >>> c = encode_cursor({"v": 1, "f": fingerprint("flood", "top"), "s": 9, "n": 0, "o": 20})
    >>> decode_cursor(c, "flood", "top")["o"]
    20
    >>> decode_cursor(c, "fire", "top")
    Traceback (most recent call last):
    ...
    townsquare.search.config.SearchError: cursor belongs to another query or mode; start again without it
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from townsquare.search.config import SearchError

__all__ = ["MAX_TIME_MS", "decode_cursor", "encode_cursor", "fingerprint"]


def fingerprint(query: str, mode: str) -> str:
    """What ties a cursor to its query and mode: 12 hex digits of their SHA-1."""
    return hashlib.sha1(f"{mode}\x00{query}".encode()).hexdigest()[:12]


def encode_cursor(d: dict) -> str:
    """A page's state as URL-safe base64 of its JSON, padding dropped."""
    return base64.urlsafe_b64encode(orjson.dumps(d)).decode().rstrip("=")


# A cursor comes back from the client, so every field is checked before it reaches the store:
# a missing key, a string for a number or an integer past SQLite's 64 bits would otherwise fail
# deep in a query (and answer 500). Ranges: seq and offset >= 0, "now" a ms time up to year 9999,
# ``top``'s recency reference "r" like "now", the (created_at, id) of ``latest``'s last post any
# 64-bit pair.
MAX_TIME_MS = 253_402_300_799_999     # 9999-12-31T23:59:59.999Z
_I64 = (-(2**63), 2**63 - 1)
_CURSOR_INTS = {"v": (1, 1), "s": (0, _I64[1]), "n": (0, MAX_TIME_MS),
                "o": (0, _I64[1]), "r": (0, MAX_TIME_MS)}
_CURSOR_KEYS = {"top": {"v", "f", "s", "n", "o", "r"}, "latest": {"v", "f", "s", "n", "b"}}


def _int_in(x: Any, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x <= hi          # bool is an int: refused by ``type``


def _cursor_ok(d: Any, mode: str) -> bool:
    """Whether ``d`` has the shape of a cursor this server issues for ``mode``."""
    if not isinstance(d, dict) or not {"v", "f", "s", "n"} <= d.keys() <= _CURSOR_KEYS[mode]:
        return False
    if not all(_int_in(d[k], *bounds) for k, bounds in _CURSOR_INTS.items() if k in d):
        return False
    b = d.get("b", [0, 0])
    return isinstance(b, list) and len(b) == 2 and all(_int_in(x, *_I64) for x in b)


def decode_cursor(cursor: str, query: str, mode: str) -> dict:
    """The state a cursor carries; ``SearchError`` for anything this server did not issue for
    ``query`` and ``mode``.

    >>> decode_cursor(encode_cursor({"v": 1, "f": fingerprint("a", "top"), "s": "9", "n": 0}),
    ...                "a", "top")
    Traceback (most recent call last):
    ...
    townsquare.search.config.SearchError: cursor 'eyJ2IjoxLCJmIjoiMmFk': not a cursor this server issued
    """
    try:
        d = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        d = None
    if not _cursor_ok(d, mode):
        raise SearchError(f"cursor {cursor[:20]!r}: not a cursor this server issued")
    if d["f"] != fingerprint(query, mode):
        raise SearchError("cursor belongs to another query or mode; start again without it")
    return d
