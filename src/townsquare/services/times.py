"""Durations and times as the CLI's flags and the API's parameters spell them, in ms.

    >>> parse_duration("30m", "window"), parse_duration("2d", "window")
    (1800000, 172800000)
    >>> parse_duration("99999d", "window", max_ms=30 * UNIT_MS["d"])
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: at most 30d, got '99999d'
    >>> parse_time("2020-01-02", "since"), parse_time(None, "since")
    (1577923200000, None)
    >>> parse_time("soon", "since")
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: expected a time like 2020-01-02 or 2020-01-02T10:00:00Z, got 'soon'
    >>> parse_at("2013-04-15T18:00Z", "at"), parse_at(None, "at")
    (1366048800000, None)
    >>> parse_at("1969-12-31", "at")
    Traceback (most recent call last):
    ...
    townsquare.services.errors.InputError: must be from 1970-01-01 on, got '1969-12-31'
"""
from __future__ import annotations

from townsquare.posts import PostError, parse_time_ms
from townsquare.services.errors import InputError

UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str, field: str, *, max_ms: int | None = None) -> int:
    """``45s``, ``30m``, ``1h``, ``2d``: a positive whole number and one unit, in ms; at most
    ``max_ms`` when given."""
    number, unit = text[:-1], text[-1:]
    # isdecimal, not isdigit: int() refuses '²'. 15 digits are past any bound, and reading
    # 5,000 would be refused by int() itself.
    if unit not in UNIT_MS or not number.isdecimal() or len(number) > 15 or int(number) < 1:
        raise InputError(f"expected a duration like 30m, 1h or 2d, got {_cut(text)!r}", field)
    ms = int(number) * UNIT_MS[unit]
    if max_ms is not None and ms > max_ms:
        raise InputError(f"at most {_spell(max_ms)}, got {text!r}", field)
    return ms


def _spell(ms: int) -> str:
    """``ms`` in the largest unit that divides it: ``2592000000`` -> ``30d``."""
    for unit in "dhms":
        if ms % UNIT_MS[unit] == 0:
            return f"{ms // UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


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


def parse_at(text: str | None, field: str) -> int | None:
    """A moment to look at (``--at``, ``at=``): a time as ``parse_time`` reads it, from the unix
    epoch on (the windows before it are read too, and no post is older); None stays None."""
    ms = parse_time(text, field)
    if ms is not None and ms < 0:
        raise InputError(f"must be from 1970-01-01 on, got {_cut(text)!r}", field)
    return ms
