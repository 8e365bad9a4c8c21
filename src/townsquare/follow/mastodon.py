"""Mastodon's streaming API: server-sent events of statuses, from one instance.

    >>> status = {"id": "111", "created_at": "2023-11-14T22:13:20.000Z", "language": "en",
    ...           "content": "<p>Levee holding <a href='https://m.example/tags/riverton' "
    ...                      "class='mention hashtag' rel='tag'>#<span>riverton</span></a></p>",
    ...           "account": {"id": "9", "acct": "ana", "display_name": "Ana"},
    ...           "tags": [{"name": "riverton"}], "mentions": [], "media_attachments": []}
    >>> (p,) = MastodonDecoder("m.example").posts(status, "m")
    >>> p.text, p.author_handle, p.hashtags
    ('Levee holding #riverton', 'ana@m.example', ['riverton'])

Run (``townsquare.cli.follow``; in the server: ``townsquare serve --follow "..."``)::

    townsquare follow mastodon https://mastodon.social                     # public timeline
    townsquare follow mastodon https://mastodon.social --local             # this instance only
    townsquare follow mastodon https://mastodon.social --tag riverton      # one hashtag
    read -rs MASTODON_TOKEN && export MASTODON_TOKEN     # typed without echo, not in history
    townsquare follow mastodon https://mastodon.social --token-env MASTODON_TOKEN

Credentials: many instances (Mastodon 4.2+ by default) require an access token for the public
streams: an application token with the ``read:statuses`` scope, sent as ``Authorization: Bearer``;
from an environment variable or a file, never the command line.

Events: ``update`` (and ``status.update``, an edit) becomes posts: the HTML content as text (the
stdlib ``html.parser``; paragraphs and line breaks kept, a link's full address rather than its
shortened display), a content warning before the text, mentions and tags as the status lists
them, its language, media, the reply it answers; a reblog becomes a repost (``repost_of_id``,
text ``RT @user@host: ...`` as X's own retweets read) and the reblogged status is stored too.
``delete`` deletes. Handles are always ``user@host``, so ``from:`` names one account across
instances. Posts without text are counted in ``skipped``. Ids: ``townsquare.follow.ids`` (per
instance). Heartbeat comments keep the connection alive; a silence of ``read_timeout_s`` is a dead
connection. Every reconnect sends ``Last-Event-ID`` when the server numbers its events (Mastodon
does not; the SSE standard allows it). Statuses missed while disconnected are not replayed by
Mastodon's streaming API.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from townsquare.follow.backoff import ReconnectPolicy
from townsquare.follow.ids import IdSpace, NativeRef, native_labels
from townsquare.follow.source import (
    Credential,
    Decoded,
    Link,
    StatusError,
    reconnecting,
    retry_after_s,
    split_lines,
)
from townsquare.ingest.items import clip
from townsquare.posts import Post, PostError, parse_time_ms

STREAMS = {"public": "/api/v1/streaming/public",
           "public:local": "/api/v1/streaming/public/local",
           "hashtag": "/api/v1/streaming/hashtag",
           "hashtag:local": "/api/v1/streaming/hashtag/local"}
POST_EVENTS = ("update", "status.update")


# --- server-sent events ---------------------------------------------------------------------------
@dataclass(slots=True)
class SSEvent:
    """One event (``event`` None for a comment: a heartbeat)."""

    event: str | None
    data: str = ""
    id: str | None = None


async def sse_events(lines: AsyncIterator[bytes]) -> AsyncIterator[SSEvent]:
    """Events of an SSE body, per the HTML standard's parsing rules (``data`` lines joined by
    newlines, ``event`` default ``message``, an event dispatched at a blank line). Comment lines
    come out as ``SSEvent(None)``; an event cut off before its blank line never comes out.

    >>> import asyncio
    >>> async def lines():
    ...     for l in (b":thump", b"event: delete", b"data: 42", b"", b"data: a", b"data: b", b""):
    ...         yield l
    >>> for ev in asyncio.run(_collect(sse_events(lines()))):
    ...     print(ev)
    SSEvent(event=None, data='', id=None)
    SSEvent(event='delete', data='42', id=None)
    SSEvent(event='message', data='a\\nb', id=None)
    """
    event: str | None = None
    data: list[str] = []
    last_id: str | None = None
    async for raw in lines:
        line = raw.decode("utf-8", "replace")
        if not line:
            if data:
                yield SSEvent(event or "message", "\n".join(data), last_id)
            event, data = None, []
            continue
        if line.startswith(":"):
            yield SSEvent(None)
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            last_id = value


async def _collect(it: AsyncIterator) -> list:
    return [x async for x in it]


# --- HTML content ---------------------------------------------------------------------------------
class _Text(HTMLParser):
    """Text and plain links of a status's HTML (mention and hashtag links are not URLs)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")
        elif tag == "a":
            a = dict(attrs)
            classes = (a.get("class") or "").split()
            plain = "mention" not in classes and "hashtag" not in classes and a.get("rel") != "tag"
            self._href = a.get("href") if plain else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            if self._href and self._href not in self.links:
                self.links.append(self._href)
            self._href = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> tuple[str, list[str]]:
    """(text, links) of Mastodon's HTML content.

    >>> text, links = html_to_text(
    ...     '<p>Road closed<br>see <a href="https://news.example/a/very/long">'
    ...     '<span class="invisible">https://</span><span class="ellipsis">news.example/a/</span>'
    ...     '<span class="invisible">very/long</span></a></p><p>Stay safe &amp; dry</p>')
    >>> print(text)
    Road closed
    see https://news.example/a/very/long
    <BLANKLINE>
    Stay safe & dry
    >>> links
    ['https://news.example/a/very/long']
    """
    p = _Text()
    p.feed(html)
    p.close()
    return "".join(p.parts).strip(), p.links


# --- statuses -------------------------------------------------------------------------------------
def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class MastodonDecoder:
    """Statuses of one instance (``host``) as posts."""

    def __init__(self, host: str, ids: IdSpace | None = None):
        self.host = host
        self.ids = ids or IdSpace()

    def ref(self, local_id: Any) -> NativeRef:
        if not isinstance(local_id, (str, int)) or not str(local_id).strip():
            raise PostError(f"not a status id: {local_id!r}", "id")
        return NativeRef("mastodon", f"{self.host}/{str(local_id).strip()}")

    def handle(self, acct: Any) -> str | None:
        """``user@host`` for a local ``user`` too: one spelling of an account everywhere."""
        if not isinstance(acct, str) or not acct:
            return None
        return acct if "@" in acct else f"{acct}@{self.host}"

    def posts(self, status: Any, source: str) -> list[Post]:
        """The status as a post; for a reblog, the reblogged status first, then the repost. An
        empty list when the status has no text (media only)."""
        if not isinstance(status, dict):
            raise PostError("expected a status object")
        ids = self.ids
        ref = self.ref(status.get("id"))
        account = status.get("account") if isinstance(status.get("account"), dict) else {}
        handle = self.handle(account.get("acct"))
        reblog = status.get("reblog")
        out: list[Post] = []
        quote_of = None
        if isinstance(reblog, dict):
            out = self.posts(reblog, source)
            if not out:
                return []
            original = out[0]
            text = f"RT @{original.author_handle}: {original.text}"
            links: list[str] = []
        else:
            text, links = html_to_text(status.get("content") or "")
            if status.get("spoiler_text"):
                text = f"{status['spoiler_text']}\n\n{text}".strip()
            quote = status.get("quote")
            if isinstance(quote, dict) and isinstance(quote.get("quoted_status"), dict):
                quote_of = ids.post_id(self.ref(quote["quoted_status"].get("id")))
        if not text.strip():
            return []
        if status.get("created_at") is None:
            raise PostError("missing created_at", "created_at")
        reply_to = status.get("in_reply_to_id")
        reply_user = status.get("in_reply_to_account_id")
        post = Post(
            id=ids.post_id(ref), text=text, source=source,
            created_at=parse_time_ms(status["created_at"]),
            author_id=ids.author_id(NativeRef("mastodon", f"{self.host}/{account['id']}"))
            if account.get("id") is not None else None,
            author_handle=handle,
            author_name=account.get("display_name") or None,
            lang=status.get("language") if isinstance(status.get("language"), str) else None,
            hashtags=[t["name"] for t in status.get("tags") or []
                      if isinstance(t, dict) and isinstance(t.get("name"), str)],
            mentions=[h for m in status.get("mentions") or [] if isinstance(m, dict)
                      and (h := self.handle(m.get("acct")))],
            urls=links,
            has_media=bool(status.get("media_attachments")),
            reply_to_id=ids.post_id(self.ref(reply_to)) if reply_to else None,
            reply_to_user_id=ids.author_id(NativeRef("mastodon", f"{self.host}/{reply_user}"))
            if reply_user else None,
            repost_of_id=out[0].id if out else None,
            quote_of_id=quote_of,
            retweet_count=_count(status.get("reblogs_count")),
            like_count=_count(status.get("favourites_count")),
            reply_count=_count(status.get("replies_count")),
            labels=native_labels(ref, status.get("url") or ref.url(handle)),
        )
        return out + [post]

    def decode(self, ev: SSEvent, source: str) -> Decoded:
        """One event: posts for ``update``/``status.update``, a delete for ``delete``."""
        raw = clip(f"event: {ev.event}\ndata: {ev.data}")
        try:
            if ev.event == "delete":
                return Decoded(deletes=[self.ids.post_id(self.ref(ev.data))])
            if ev.event not in POST_EVENTS:
                return Decoded()                   # notifications, filters, announcements
            try:
                status = orjson.loads(ev.data)
            except orjson.JSONDecodeError as e:
                return Decoded(error=f"json: {e}", raw=raw)
            posts = self.posts(status, source)
            if not posts:
                return Decoded(skipped=1)
            return Decoded(posts=posts, raw=raw, source_ms=posts[-1].created_at)
        except PostError as e:
            return Decoded(error=str(e), raw=raw)
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            return Decoded(error=f"malformed: {type(e).__name__}: {e}", raw=raw)


class MastodonStream:
    """One instance's stream as a ``Source``. ``stream``: ``public``, ``public:local``,
    ``hashtag`` or ``hashtag:local`` (the last two with ``tag``). ``streaming_url``: where the
    instance serves its streaming API when not at ``base_url`` (its ``/api/v1/instance`` says)."""

    kind = "mastodon"

    def __init__(self, base_url: str, *, stream: str = "public", tag: str | None = None,
                 token: Credential | None = None, name: str | None = None,
                 streaming_url: str | None = None, ids: IdSpace | None = None,
                 read_timeout_s: float = 90.0, policy: ReconnectPolicy | None = None):
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; one of {', '.join(STREAMS)}")
        if stream.startswith("hashtag") != bool(tag):
            raise ValueError("a tag goes with the hashtag streams, and only with them")
        host = urlsplit(base_url).hostname
        if not host:
            raise ValueError(f"not an instance URL: {base_url!r}")
        self.host = host
        self.url = (streaming_url or base_url).rstrip("/") + STREAMS[stream]
        self.params = {"tag": tag.lstrip("#")} if tag else {}
        self.token = token
        self.name = name or f"mastodon:{host}"
        self.locator = f"mastodon:{self.url}" + (f"?tag={self.params['tag']}" if tag else "")
        self.decoder = MastodonDecoder(host, ids)
        self.read_timeout_s = read_timeout_s
        self.policy = policy or ReconnectPolicy()
        self.last_event_id: str | None = None

    def committed(self, position: int) -> None:
        """Nothing to keep: the streaming API does not replay."""

    async def frames(self, link: Link) -> AsyncIterator[Decoded]:
        timeout = httpx.Timeout(10.0, read=self.read_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client:
            async for ev in reconnecting(lambda: self._session(client, link), link, self.policy):
                if ev.event is None:
                    link.stats.keepalives += 1
                    continue
                if ev.id is not None:
                    self.last_event_id = ev.id
                yield self.decoder.decode(ev, self.name)

    @asynccontextmanager
    async def _session(self, client: httpx.AsyncClient, link: Link):
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.value()}"
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        request = client.build_request("GET", self.url, params=self.params, headers=headers)
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                body = (await response.aread())[:300].decode("utf-8", "replace")
                raise StatusError(response.status_code, _error_of(body),
                                  retry_after_s(response.headers, link.clock.time()))

            def partial() -> None:
                link.stats.partial_frames += 1
            yield sse_events(split_lines(response.aiter_bytes(), partial))
        finally:
            await response.aclose()


def _error_of(body: str) -> str:
    """Mastodon's ``{"error": "..."}`` message, else the body's start."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.strip()[:200]
    return str(doc.get("error", ""))[:200] if isinstance(doc, dict) else ""
