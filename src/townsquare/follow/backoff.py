"""When to reconnect: X's documented policy, a clock that tests can replace.

    >>> b = Backoff(ReconnectPolicy())
    >>> [b.next_delay("network") for _ in range(3)], b.next_delay("http"), b.next_delay("rate")
    ([0.25, 0.5, 0.75], 5.0, 60.0)
    >>> b.established(); b.next_delay("network")      # a working connection dropped: at once
    0.0

The policy is the one X documents for its streaming endpoints, used for every source here (the
others document none; it is a conservative default that never hammers a server):

- once an established connection drops, reconnect at once;
- a network error (TCP/TLS, a read timeout, a connection cut mid-frame): back off linearly, 250 ms
  more per failed attempt, at most 16 s;
- an HTTP error (5xx, and other statuses that may pass): exponentially, 5 s doubling to 320 s;
- HTTP 429 (rate limited): exponentially from 1 minute, doubling; capped here at 16 minutes. A
  ``Retry-After`` (or X's ``x-rate-limit-reset``) that asks for longer wins.

A connection counts as established once it delivered a frame (a post or a keep-alive); that resets
all three sequences. Statuses that no retry can fix (bad request, unauthorized, forbidden, not
found) stop the collector with an error instead of retrying forever.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    """Wall time (stats, lag), a monotonic time (durations) and sleep (back-off)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Back-off parameters in seconds; the defaults are X's documented values."""

    network_step_s: float = 0.25
    network_max_s: float = 16.0
    http_first_s: float = 5.0
    http_max_s: float = 320.0
    rate_first_s: float = 60.0
    rate_max_s: float = 960.0
    fatal_statuses: frozenset[int] = field(default_factory=lambda: frozenset({400, 401, 403, 404}))


KINDS = ("network", "http", "rate")


class Backoff:
    """The delay before each reconnect, per kind of failure (``KINDS``)."""

    def __init__(self, policy: ReconnectPolicy):
        self.policy = policy
        self._failures = dict.fromkeys(KINDS, 0)
        self._dropped = False

    def established(self) -> None:
        """A connection delivered a frame: the next reconnect (after it drops) is immediate."""
        self._failures = dict.fromkeys(KINDS, 0)
        self._dropped = True

    def next_delay(self, kind: str, retry_after_s: float | None = None) -> float:
        """Seconds to wait before the next attempt after a failure of ``kind``."""
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {', '.join(KINDS)}")
        p = self.policy
        if self._dropped:
            # The first attempt after an established connection dropped goes at once, whatever
            # ended it (X: "attempt to reconnect immediately"); a 429 still waits its minute.
            self._dropped = False
            if kind != "rate":
                return 0.0
        n = self._failures[kind]
        self._failures[kind] = n + 1
        if kind == "network":
            delay = min(p.network_step_s * (n + 1), p.network_max_s)
        elif kind == "http":
            delay = min(p.http_first_s * 2 ** n, p.http_max_s)
        else:
            delay = min(p.rate_first_s * 2 ** n, p.rate_max_s)
        if retry_after_s is not None and retry_after_s > delay:
            delay = retry_after_s
        return float(delay)
