"""What every followed source shares: the frames it yields, credentials, and the reconnect loop.

A source turns its platform's frames into ``Decoded`` records; the collector
(``townsquare.follow.collector``) normalizes, batches and writes them. Connection plumbing is
the same for all: ``reconnecting`` opens a session, yields its frames, and on any failure waits
as ``Backoff`` says before opening the next, keeping the source's ``SourceStats`` current.

    >>> import asyncio
    >>> async def chunks():
    ...     for c in (b'{"a": 1}\\r\\n\\r\\n{"b"', b': 2}\\n{"cut'):
    ...         yield c
    >>> async def main():
    ...     return [line async for line in split_lines(chunks(), lambda: print("partial"))]
    >>> asyncio.run(main())
    partial
    [b'{"a": 1}', b'', b'{"b": 2}']
"""
from __future__ import annotations

import email.utils
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import httpx
import websockets.exceptions

from townsquare.follow.backoff import Backoff, Clock, ReconnectPolicy
from townsquare.follow.stats import SourceStats
from townsquare.posts import Post

T = TypeVar("T")


class FollowError(RuntimeError):
    """A source cannot go on (bad credentials, a refused request): the message says why."""


class StatusError(Exception):
    """A server answered a connection attempt with an HTTP error status."""

    def __init__(self, status: int, detail: str = "", retry_after_s: float | None = None):
        super().__init__(f"HTTP {status}" + (f": {detail}" if detail else ""))
        self.status = status
        self.retry_after_s = retry_after_s


class NetworkError(Exception):
    """A connection failed or broke below HTTP (the message says how)."""


# Failures that the reconnect loop retries as network errors.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    NetworkError, OSError, TimeoutError, EOFError, httpx.TransportError,
    websockets.exceptions.WebSocketException)


@dataclass(slots=True)
class Decoded:
    """One frame, read: the posts it holds and the ids it deletes, or why it could not be read."""

    posts: list[Post] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)
    error: str | None = None        # why the frame (or part of it) could not be read
    raw: str = ""                   # the frame, clipped, for the quarantine
    source_ms: int | None = None    # the event's time by the source's clock
    position: int | None = None     # where to resume after this frame (Jetstream's time_us)
    skipped: int = 0                # posts left out on purpose (no text: nothing to search)
    notice: str | None = None       # a message of the source's own for the log (X's errors)


@dataclass(slots=True)
class Link:
    """What the collector lends its source: the clock, the stats to keep, the logger."""

    clock: Clock
    stats: SourceStats
    log: logging.Logger

    def event(self, level: int, event: str, message: str, **fields: object) -> None:
        """A structured log line: ``event`` and ``fields`` go into the record's attributes."""
        self.log.log(level, message, extra={"event": event, "source": self.stats.source,
                                            "kind": self.stats.kind, **fields})


class Source(Protocol):
    """A platform stream. ``frames`` runs until cancelled (or until a finite input ends)."""

    kind: str           # x, bluesky, mastodon, ndjson
    name: str           # the dataset name its posts are stored under (Post.source)
    locator: str        # where frames come from, for logs and the quarantine (no secrets)

    def frames(self, link: Link) -> AsyncIterator[Decoded]: ...

    def committed(self, position: int) -> None:
        """Every frame up to ``position`` is in the store: where a restart resumes."""


class Credential:
    """A secret (a bearer token) read when used, from an environment variable or a file.

    Its ``repr`` names where it comes from, never the value: it goes into an ``Authorization``
    header and nowhere else (not argv, not logs, not errors).

    >>> c = Credential.from_env("X_BEARER_TOKEN", {"X_BEARER_TOKEN": "s3cret"})
    >>> c, c.value()
    (Credential($X_BEARER_TOKEN), 's3cret')
    """

    __slots__ = ("_where", "_read")

    def __init__(self, where: str, read: Callable[[], str | None]):
        self._where = where
        self._read = read

    @classmethod
    def from_env(cls, name: str, environ: Mapping[str, str]) -> "Credential":
        """From ``environ[name]`` (the caller passes the environment: see ``settings``)."""
        return cls(f"${name}", lambda: environ.get(name))

    @classmethod
    def from_file(cls, path: str | Path) -> "Credential":
        """From the first line of a file (a secrets mount)."""
        p = Path(path)

        def read() -> str | None:
            try:
                return p.read_text(encoding="utf-8").strip().splitlines()[0]
            except (OSError, IndexError):
                return None
        return cls(str(p), read)

    def value(self) -> str:
        v = (self._read() or "").strip()
        if not v:
            raise FollowError(f"credential {self._where} is not set or empty")
        return v

    def __repr__(self) -> str:
        return f"Credential({self._where})"


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float | None:
    """How long a server asked to wait: ``Retry-After`` (seconds or a date) or X's
    ``x-rate-limit-reset`` (epoch seconds); None when it did not say.

    >>> retry_after_s({"retry-after": "120"}, 0)
    120.0
    >>> retry_after_s({"x-rate-limit-reset": "1090"}, 1000)
    90.0
    """
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after")
    if value:
        if value.strip().isdigit():
            return float(value)
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now_s)
        except (TypeError, ValueError):
            pass
    reset = lower.get("x-rate-limit-reset")
    if reset and reset.strip().isdigit():
        return max(0.0, float(reset) - now_s)
    return None


async def split_lines(chunks: AsyncIterator[bytes], on_partial: Callable[[], None]
                      ) -> AsyncIterator[bytes]:
    """Complete lines of a byte stream (``\\r\\n`` or ``\\n``), without the line end. A line is
    a frame only once its newline arrived: bytes left when the stream ends or breaks were cut
    mid-frame, and are dropped with ``on_partial()`` (the frame comes again after a reconnect,
    through a rewound cursor, X's backfill, or not at all)."""
    buf = bytearray()
    try:
        async for chunk in chunks:
            start = 0
            end = chunk.find(b"\n")
            if end < 0:
                buf += chunk
                continue
            while end >= 0:
                if buf:
                    buf += chunk[start:end]
                    line, buf = bytes(buf), bytearray()
                else:
                    line = chunk[start:end]
                yield line[:-1] if line.endswith(b"\r") else line
                start = end + 1
                end = chunk.find(b"\n", start)
            buf += chunk[start:]
    finally:
        if buf.strip():
            on_partial()


async def reconnecting(connect: Callable[[], AbstractAsyncContextManager[AsyncIterator[T]]],
                       link: Link, policy: ReconnectPolicy) -> AsyncIterator[T]:
    """Frames of consecutive sessions, forever: ``connect()`` opens one (raising ``StatusError``
    for an HTTP error answer, or a network error), and each failure waits as ``Backoff`` says.
    Raises ``FollowError`` on a status no retry can fix."""
    backoff = Backoff(policy)
    stats = link.stats
    while True:
        opened = delivered = False
        retry: float | None = None
        try:
            async with connect() as frames:
                opened = True
                stats.on_connect(link.clock.time())
                link.event(logging.INFO, "connected", f"{stats.source}: connected to "
                           f"{stats.locator}")
                async for frame in frames:
                    if not delivered:
                        delivered = True
                        backoff.established()
                    yield frame
            kind, why = "network", "closed by the server"
        except StatusError as e:
            if e.status in policy.fatal_statuses:
                stats.on_disconnect(str(e))
                link.event(logging.ERROR, "refused", f"{stats.source}: {e}; not retrying",
                           status=e.status)
                raise FollowError(f"{stats.source}: {e}") from None
            kind, why, retry = ("rate" if e.status == 429 else "http"), str(e), e.retry_after_s
        except NETWORK_ERRORS as e:
            kind, why = "network", f"{type(e).__name__}: {e}".rstrip(": ")
        stats.on_disconnect(why)
        delay = backoff.next_delay(kind, retry)
        stats.reconnects += 1
        link.event(logging.WARNING, "disconnected",
                   f"{stats.source}: {why}; reconnecting in {delay:g} s",
                   failure=kind, delay_s=delay, was_connected=opened)
        await link.clock.sleep(delay)
