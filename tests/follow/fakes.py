"""Local fake servers for the follow tests and ``bench/follow.py``, and the frames they replay.

Every server binds to 127.0.0.1 on a free port and plays a script: one act per connection
(an HTTP error answer, a stream that ends cleanly, is cut mid-frame, or stays open). Frames are
built at test time from the invented posts of ``tests/fixtures/formats`` or from synthetic text;
no recorded platform data is stored anywhere.

- ``HttpFake``: HTTP/1.1 with chunked bodies: X's filtered stream and rules, Mastodon's SSE, any
  NDJSON feed.
- ``JetstreamFake``: a websocket server replaying an event log from the client's ``cursor``.
- ``InThread``: runs either in an event loop on a thread of its own, for a client that is another
  process (``townsquare follow``, ``townsquare serve --follow``).
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets.asyncio.server

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
SNOWFLAKE_EPOCH_MS = 1288834974657


# --- HTTP -----------------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]          # lowercased names
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Status:
    """Answer a connection with an error status (and close it)."""

    code: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """Answer 200 with a chunked body: each element of ``body`` is one chunk. ``end``: ``close``
    (a clean end), ``cut`` (write ``tail``, a frame's first bytes, then drop the connection
    without ending the body), or ``hold`` (stay open until the server closes)."""

    body: Iterable[bytes] | AsyncIterable[bytes]
    end: str = "close"
    tail: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Act = Status | Stream
Handler = Callable[[Request], "Awaitable[Act] | Act"]


class HttpFake:
    """Serves ``acts`` in order on ``stream_path`` (one per connection; once they run out, an
    empty stream held open), and ``routes`` (path -> handler) for everything else."""

    def __init__(self, stream_path: str, acts: list[Act], routes: dict[str, Handler] | None = None):
        self.stream_path = stream_path
        self.acts = list(acts)
        self.routes = routes or {}
        self.requests: list[Request] = []
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._closing = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> "HttpFake":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._closing.set()
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stream_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == self.stream_path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = b""
            if int(headers.get("content-length", 0)):
                body = await reader.readexactly(int(headers["content-length"]))
            url = urlsplit(target)
            req = Request(method, url.path, parse_qs(url.query), headers, body)
            self.requests.append(req)
            if url.path == self.stream_path:
                self.connections += 1
                act = self.acts.pop(0) if self.acts else Stream([], end="hold")
            elif url.path in self.routes:
                act = self.routes[url.path](req)
                if asyncio.iscoroutine(act):
                    act = await act
            else:
                act = Status(404, b'{"title": "Not Found"}')
            await self._answer(writer, act)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, act: Act) -> None:
        if isinstance(act, Status):
            head = [f"HTTP/1.1 {act.code} Fake", f"Content-Length: {len(act.body)}",
                    "Content-Type: application/json", "Connection: close"]
            head += [f"{k}: {v}" for k, v in act.headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + act.body)
            await writer.drain()
            return
        head = ["HTTP/1.1 200 OK", f"Content-Type: {act.content_type}",
                "Transfer-Encoding: chunked", "Connection: close"]
        head += [f"{k}: {v}" for k, v in act.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        if isinstance(act.body, AsyncIterable):
            async for chunk in act.body:
                await _chunk(writer, chunk)
        else:
            for chunk in act.body:
                await _chunk(writer, chunk)
        if act.end == "cut":
            if act.tail:
                await _chunk(writer, act.tail)
            # Close the TCP connection (after what was written) without ending the chunked
            # body: the client reads a message cut short. (An abort would send a reset, which
            # may discard bytes the client has not read yet.)
            writer.close()
        elif act.end == "hold":
            await self._closing.wait()
            writer.transport.abort()
        else:
            writer.write(b"0\r\n\r\n")
            await writer.drain()


async def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    if data:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()


# --- websocket (Jetstream) ------------------------------------------------------------------------
@dataclass
class Deliver:
    """Send the log's events from the client's cursor (or where the last session stopped) up to
    index ``upto`` (None: all), then ``end``: ``close`` (a close frame), ``cut`` (end the TCP
    connection without one), ``mid-frame`` (send half of the next event's frame, then end it) or
    ``hold``."""

    upto: int | None = None
    end: str = "close"


@dataclass
class Reject:
    """Refuse the websocket handshake with an HTTP status."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)


class JetstreamFake:
    """Replays ``events`` (Jetstream event dicts, ``time_us`` ascending) per ``acts``."""

    def __init__(self, events: list[dict], acts: list[Deliver | Reject]):
        self.events = events
        self.acts = list(acts)
        self.requests: list[dict[str, list[str]]] = []
        self.sent: list[int] = []           # indexes of the events sent, in order, all sessions
        self._live = 0
        self._current: Deliver | Reject | None = None
        self._server: Any = None
        self._closing = asyncio.Event()

    async def __aenter__(self) -> "JetstreamFake":
        self._server = await websockets.asyncio.server.serve(
            self._serve, "127.0.0.1", 0, process_request=self._handshake, compression=None)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._closing.set()
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        host, port = list(self._server.sockets)[0].getsockname()[:2]
        return f"ws://{host}:{port}/subscribe"

    def _handshake(self, connection: Any, request: Any) -> Any:
        self.requests.append(parse_qs(urlsplit(request.path).query))
        act = self.acts.pop(0) if self.acts else Deliver(end="hold")
        self._current = act
        if isinstance(act, Reject):
            response = connection.respond(act.code, "refused\n")
            for k, v in act.headers.items():
                response.headers[k] = v
            return response
        return None

    async def _serve(self, ws: Any) -> None:
        act = self._current
        assert isinstance(act, Deliver)
        query = self.requests[-1]
        if "cursor" in query:
            cursor = int(query["cursor"][0])
            start = next((i for i, e in enumerate(self.events) if e["time_us"] >= cursor),
                         len(self.events))
        else:
            start = self._live
        upto = len(self.events) if act.upto is None else act.upto
        wanted = set(query.get("wantedDids", []))
        for i in range(start, upto):
            if wanted and self.events[i]["did"] not in wanted:
                continue
            await ws.send(json.dumps(self.events[i]))
            self.sent.append(i)
        self._live = max(start, upto)
        if act.end == "close":
            await ws.close()
        elif act.end == "hold":
            await self._closing.wait()
        else:
            if act.end == "mid-frame" and upto < len(self.events):
                payload = json.dumps(self.events[upto]).encode()
                # A text frame's header announcing the whole payload, then only half of it.
                n = len(payload)
                size = (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
                        if n < 65536 else bytes([127]) + n.to_bytes(8, "big"))
                ws.transport.write(b"\x81" + size + payload[:n // 2])
            ws.transport.close()            # no close frame: the connection just ends


# --- for another process -------------------------------------------------------------------------
class InThread:
    """``with InThread(HttpFake(...)) as fake:`` serves the fake from an event loop on a thread of
    its own until the block ends, so that a subprocess can be its client while the test waits.

        >>> with InThread(HttpFake("/feed", [Stream([b"{}\\n"])])) as fake:
        ...     import httpx
        ...     httpx.get(fake.url + "/feed").text
        '{}\\n'
    """

    def __init__(self, fake: HttpFake | JetstreamFake):
        self.fake = fake
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-server",
                                        daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.__aenter__(), self._loop).result(30)
        return self.fake

    def __exit__(self, *exc: Any) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.fake.__aexit__(None, None, None),
                                             self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


# --- frames ---------------------------------------------------------------------------------------
def snowflake(ms: int, seq: int = 0) -> int:
    return ((ms - SNOWFLAKE_EPOCH_MS) << 22) | (seq & 0x3FFFFF)


def x_fixture_frames() -> list[dict]:
    """The v2 fixture page as filtered-stream frames: one per post of ``data``, with its author
    and the posts it references in ``includes``."""
    page = json.loads((FIXTURES / "v2_sample.json").read_text())
    users = {u["id"]: u for u in page["includes"]["users"]}
    tweets = {t["id"]: t for t in page["includes"].get("tweets", [])}
    frames = []
    for n, t in enumerate(page["data"]):
        refs = [tweets[r["id"]] for r in t.get("referenced_tweets", []) if r["id"] in tweets]
        authors = [users[a] for a in {t.get("author_id"), *(r.get("author_id") for r in refs)}
                   if a in users]
        frames.append({"data": t, "includes": {"users": authors, "tweets": refs},
                       "matching_rules": [{"id": str(100 + n), "tag": "riverton"}]})
    return frames


def x_synthetic_frame(i: int, base_ms: int = 1_700_000_000_000) -> dict:
    """A filtered-stream frame of a made-up post ``i`` (ids ascend with ``i``)."""
    ms = base_ms + i * 10
    return {"data": {"id": str(snowflake(ms, i)), "text": f"Riverton river gauge report {i}",
                     "author_id": str(1000 + i % 7), "lang": "en",
                     "created_at": _iso(ms)},
            "includes": {"users": [{"id": str(1000 + i % 7), "username": f"gauge{i % 7}",
                                    "name": f"Gauge {i % 7}"}]},
            "matching_rules": [{"id": "1", "tag": "riverton"}]}


def x_delete_frame(post_id: int) -> dict:
    """X's compliance-stream delete event."""
    return {"data": {"delete": {"tweet": {"id": str(post_id), "author_id": "1"},
                                "event_at": "2023-11-14T22:13:20.000Z"}}}


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _iso(ms: int) -> str:
    import datetime as dt
    d = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def jetstream_events(n: int, *, start_us: int = 1_700_000_000_000_000, step_us: int = 1000,
                     dids: int = 5) -> list[dict]:
    """``n`` made-up post creations, one identity event first for each author."""
    events: list[dict] = []
    t = start_us
    for d in range(dids):
        events.append({"did": f"did:plc:author{d}", "time_us": t, "kind": "identity",
                       "identity": {"did": f"did:plc:author{d}",
                                    "handle": f"author{d}.bsky.example",
                                    "seq": d, "time": _iso(t // 1000)}})
        t += step_us
    for i in range(n):
        events.append(jetstream_post(i, t, did=f"did:plc:author{i % dids}"))
        t += step_us
    return events


def jetstream_post(i: int, time_us: int, *, did: str, text: str | None = None,
                   record: dict | None = None) -> dict:
    rec = record or {"$type": "app.bsky.feed.post", "text": text or f"Ferry schedule update {i}",
                     "langs": ["en"], "createdAt": _iso(time_us // 1000)}
    return {"did": did, "time_us": time_us, "kind": "commit",
            "commit": {"rev": f"rev{i}", "operation": "create", "collection": "app.bsky.feed.post",
                       "rkey": f"3kpost{i:08d}", "record": rec, "cid": f"bafy{i}"}}


def jetstream_delete(post_event: dict, time_us: int) -> dict:
    c = post_event["commit"]
    return {"did": post_event["did"], "time_us": time_us, "kind": "commit",
            "commit": {"rev": c["rev"] + "d", "operation": "delete",
                       "collection": "app.bsky.feed.post", "rkey": c["rkey"]}}


def mastodon_status(i: int, *, host: str = "mastodon.example", base_ms: int = 1_700_000_000_000,
                    reblog: dict | None = None) -> dict:
    """A made-up status ``i`` as the streaming API sends it."""
    acct = f"reporter{i % 3}"
    return {"id": str(110_000_000_000_000_000 + i), "created_at": _iso(base_ms + i * 1000),
            "uri": f"https://{host}/users/{acct}/statuses/{i}",
            "url": f"https://{host}/@{acct}/{110_000_000_000_000_000 + i}",
            "content": "" if reblog else
            f"<p>Shelter open at school {i} <a href=\"https://{host}/tags/riverton\" "
            f"class=\"mention hashtag\" rel=\"tag\">#<span>riverton</span></a></p>",
            "language": "en", "spoiler_text": "", "sensitive": False,
            "account": {"id": str(500 + i % 3), "acct": acct, "username": acct,
                        "display_name": f"Reporter {i % 3}"},
            "tags": [] if reblog else [{"name": "riverton",
                                        "url": f"https://{host}/tags/riverton"}],
            "mentions": [], "media_attachments": [], "reblog": reblog,
            "in_reply_to_id": None, "in_reply_to_account_id": None,
            "replies_count": 0, "reblogs_count": i % 4, "favourites_count": i % 5}


def sse(event: str | None, data: str = "", event_id: str | None = None) -> bytes:
    """One server-sent event (``event`` None: a heartbeat comment)."""
    if event is None:
        return b":thump\n"
    out = f"event: {event}\n" + "".join(f"data: {d}\n" for d in data.split("\n"))
    if event_id is not None:
        out = f"id: {event_id}\n" + out
    return (out + "\n").encode()
