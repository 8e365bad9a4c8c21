"""Durations and times as the CLI's flags and the API's parameters spell them, in ms.

    >>> parse_duration("30m", "window"), parse_duration("2d", "window")
    (1800000, 172800000)
    >>> parse_time("2020-01-02", "since"), parse_time(None, "since")
    (1577923200000, None)
    >>> parse_time("soon", "since")
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, got 'soon'
"""
from __future__ import annotations

from townsquare.posts import PostError, parse_time_ms
from townsquare.services.errors import InputError

UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str, field: str) -> int:
    """``45s``, ``30m``, ``1h``, ``2d``: a positive whole number and one unit, in ms."""
    if len(text) < 2 or text[-1] not in UNIT_MS or not text[:-1].isdigit() or int(text[:-1]) < 1:
        raise InputError(f"expected a duration like 30m, 1h or 2d, got {text!r}", field)
    return int(text[:-1]) * UNIT_MS[text[-1]]


def parse_time(text: str | None, field: str) -> int | None:
    """A time (what ``posts.parse_time_ms`` reads: ISO 8601, Twitter's format, unix seconds or
    ms) in ms since the epoch, UTC; None stays None."""
    if text is None:
        return None
    try:
        return parse_time_ms(text, field)
    except PostError:
        raise InputError(f"expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, got {text!r}",
                         field) from None
