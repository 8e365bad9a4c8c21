"""Any NDJSON feed: one JSON object per line over HTTP (chunked, long-lived) or on stdin.

    >>> d = decode_ndjson_line(b'{"delete": {"status": {"id_str": "1212092628029698048"}}}', "feed")
    >>> d.deletes
    [1212092628029698048]

Run (``townsquare.cli.follow``; in the server: ``townsquare serve --follow "..."``)::

    townsquare follow ndjson https://firehose.example/posts          # a long-lived HTTP response
    some-exporter | townsquare follow ndjson -                       # stdin, until it ends
    townsquare follow ndjson https://... --token-env FEED_TOKEN      # with a bearer token

Credentials: none, or a bearer token (``Authorization: Bearer``) from an environment variable
or a file.

Each line is any object ``townsquare ingest`` reads from JSON Lines (X v1.1 and v2 objects, v2
pages with ``includes``, townsquare's own export), told apart per line as ``ingest`` does, or
forced with ``kind`` (``v1``/``v2``). Delete notices (X's compliance stream, v1.1's ``delete``)
delete. Blank lines are keep-alives; a line that is not JSON or not a post is quarantined with its
reason. Over HTTP the feed is reconnected with the common back-off (``townsquare.follow.backoff``)
and re-delivered lines upsert; stdin ends the collector at end of input.
"""
from __future__ import annotations

import asyncio
import io
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from townsquare.follow.backoff import ReconnectPolicy
from townsquare.follow.source import (
    Credential,
    Decoded,
    Link,
    StatusError,
    reconnecting,
    retry_after_s,
    split_lines,
)
from townsquare.follow.x import posts_of
from townsquare.ingest.items import clip

KINDS = (None, "v1", "v2")
_READ = 1 << 16


def decode_ndjson_line(line: bytes, source: str, kind: str | None = None) -> Decoded:
    """One line (not blank): its posts, its deletes, or why it holds neither."""
    raw = clip(line.decode("utf-8", "replace"))
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return Decoded(error=f"json: {e}", raw=raw)
    return posts_of(obj, source, raw, kind)


def _shown_url(url: str) -> str:
    """The URL as logs and stats show it: no user, password or query (they may hold secrets).

    >>> _shown_url("https://bot:s3cret@feed.example:8443/posts?key=s3cret")
    'https://feed.example:8443/posts'
    """
    u = urlsplit(url)
    host = u.hostname or ""
    if u.port:
        host += f":{u.port}"
    return urlunsplit((u.scheme, host, u.path, "", ""))


def _is_pipe(f: BinaryIO) -> bool:
    try:
        mode = os.fstat(f.fileno()).st_mode
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False                     # an in-memory file: read in a thread
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


class NDJSONStream:
    """An NDJSON feed as a ``Source``: ``from_url`` (HTTP) or ``from_file`` (stdin, a pipe)."""

    kind = "ndjson"

    def __init__(self, *, name: str, locator: str, url: str | None = None,
                 file: BinaryIO | None = None, kind: str | None = None,
                 token: Credential | None = None, read_timeout_s: float = 90.0,
                 policy: ReconnectPolicy | None = None):
        if (url is None) == (file is None):
            raise ValueError("give a url or a file, not both")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of v1, v2 (or None: per line)")
        self.name = name
        self.locator = locator
        self.url = url
        self.file = file
        self.object_kind = kind
        self.token = token
        self.read_timeout_s = read_timeout_s
        self.policy = policy or ReconnectPolicy()

    @classmethod
    def from_url(cls, url: str, *, name: str = "ndjson", kind: str | None = None,
                 token: Credential | None = None, **kw) -> "NDJSONStream":
        return cls(name=name, locator=f"ndjson:{_shown_url(url)}", url=url, kind=kind,
                   token=token, **kw)

    @classmethod
    def from_file(cls, file: BinaryIO, *, name: str = "ndjson", kind: str | None = None
                  ) -> "NDJSONStream":
        return cls(name=name, locator="ndjson:stdin", file=file, kind=kind)

    def committed(self, position: int) -> None:
        """Nothing to keep: a feed has no cursor townsquare knows."""

    async def frames(self, link: Link) -> AsyncIterator[Decoded]:
        lines = self._file_lines(link) if self.file is not None else self._http_lines(link)
        async for line in lines:
            if not line.strip():
                link.stats.keepalives += 1
                continue
            yield decode_ndjson_line(line, self.name, self.object_kind)

    async def _file_lines(self, link: Link) -> AsyncIterator[bytes]:
        f = self.file
        assert f is not None
        read = getattr(f, "read1", f.read)       # read1: what a pipe has, without waiting for more

        async def chunks() -> AsyncIterator[bytes]:
            if _is_pipe(f):
                # A pipe or terminal is read by the event loop: a stop cancels the read at
                # once, where a thread blocked in read() would hold the process until input came.
                reader = asyncio.StreamReader(limit=_READ)
                transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                    lambda: asyncio.StreamReaderProtocol(reader), f)
                try:
                    while chunk := await reader.read(_READ):
                        yield chunk
                finally:
                    transport.close()
            else:
                while chunk := await asyncio.to_thread(read, _READ):
                    yield chunk

        def partial() -> None:
            link.stats.partial_frames += 1
        link.stats.on_connect(link.clock.time())
        try:
            async for line in split_lines(chunks(), partial):
                yield line
        finally:
            link.stats.on_disconnect(None)

    async def _http_lines(self, link: Link) -> AsyncIterator[bytes]:
        timeout = httpx.Timeout(10.0, read=self.read_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            async for line in reconnecting(lambda: self._session(client, link), link,
                                           self.policy):
                yield line

    @asynccontextmanager
    async def _session(self, client: httpx.AsyncClient, link: Link):
        headers = {"Accept": "application/x-ndjson, application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.value()}"
        response = await client.send(client.build_request("GET", self.url, headers=headers),
                                     stream=True)
        try:
            if response.status_code != 200:
                body = (await response.aread())[:200].decode("utf-8", "replace").strip()
                raise StatusError(response.status_code, body,
                                  retry_after_s(response.headers, link.clock.time()))

            def partial() -> None:
                link.stats.partial_frames += 1
            yield split_lines(response.aiter_bytes(), partial)
        finally:
            await response.aclose()
