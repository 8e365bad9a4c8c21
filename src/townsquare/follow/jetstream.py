"""Bluesky through Jetstream: a websocket of JSON events, resumable by a ``time_us`` cursor.

    >>> event = {"did": "did:plc:ana", "time_us": 1700000000123456, "kind": "commit",
    ...          "commit": {"operation": "create", "collection": "app.bsky.feed.post",
    ...                     "rkey": "3kq2bzdvmsc2a", "record": {
    ...                         "text": "Ferry cancelled, see #Riverton", "langs": ["en"],
    ...                         "createdAt": "2023-11-14T22:13:20.000Z",
    ...                         "facets": [{"index": {"byteStart": 22, "byteEnd": 31},
    ...                                     "features": [{"$type": "app.bsky.richtext.facet#tag",
    ...                                                   "tag": "Riverton"}]}]}}}
    >>> d = JetstreamDecoder().decode(event, "bluesky")
    >>> p = d.posts[0]
    >>> p.id < 0, p.hashtags, p.lang, d.position
    (True, ['Riverton'], 'en', 1700000000123456)
    >>> p.labels["url"]
    'https://bsky.app/profile/did:plc:ana/post/3kq2bzdvmsc2a'

Run (``townsquare.cli.follow``; in the server: ``townsquare serve --follow "..."``)::

    townsquare follow bluesky                              # the whole network's posts
    townsquare follow bluesky --did did:plc:... --did ...  # some accounts only

    townsquare follow bluesky wss://jetstream1.us-west.bsky.network/subscribe   # another instance

Credentials: none (Jetstream is public). The default instance is
``wss://jetstream2.us-east.bsky.network/subscribe``. The cursor is kept in ``HOME/follow/``.

The subscription asks for ``wantedCollections=app.bsky.feed.post`` (and ``wantedDids`` when
given). A ``commit`` create (or update) becomes a post: its text, first language, facets
(mentions by the handle as written, links, hashtags), reply parent and thread root, a quoted post
(``app.bsky.embed.record``), media, the author's DID (hashed into ``author_id``) and handle when an
``identity`` event named it. A ``commit`` delete deletes the post everywhere. Posts without text
(images only) are counted in ``skipped``, not stored. Ids: ``townsquare.follow.ids``.

Cursor: after each committed batch the last event's ``time_us`` is written to
``STATE_DIR/NAME.cursor``; a restart (and every reconnect) resumes from it rewound by
``rewind_s`` (5 s), because Jetstream does not promise a gapless replay at the exact boundary. The
events replayed twice are upserted onto the same ids (``unchanged``), never stored twice.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import websockets.asyncio.client
import websockets.exceptions

from townsquare.follow.backoff import ReconnectPolicy
from townsquare.follow.ids import IdSpace, NativeRef, native_labels
from townsquare.follow.source import Decoded, Link, StatusError, reconnecting, retry_after_s
from townsquare.follow.stats import file_stem
from townsquare.ingest.items import clip
from townsquare.posts import Post, PostError, parse_time_ms

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
POST_COLLECTION = "app.bsky.feed.post"
_FACET = "app.bsky.richtext.facet#"
_AT_POST = re.compile(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/?#]+)$")


def post_ref(uri: Any) -> NativeRef | None:
    """The post an AT URI names, or None when it names something else (a list, a feed).

    >>> post_ref("at://did:plc:ana/app.bsky.feed.post/3kq2")
    NativeRef(platform='bluesky', native_id='at://did:plc:ana/app.bsky.feed.post/3kq2')
    >>> post_ref("at://did:plc:ana/app.bsky.graph.list/1") is None
    True
    """
    if isinstance(uri, str) and _AT_POST.match(uri):
        return NativeRef("bluesky", uri)
    return None


class JetstreamDecoder:
    """Reads Jetstream events; remembers handles from ``identity`` events (the ``handles`` most
    recent, so memory stays bounded on the whole firehose)."""

    def __init__(self, ids: IdSpace | None = None, *, handles: int = 100_000):
        self.ids = ids or IdSpace()
        self.max_handles = handles
        self.handles: OrderedDict[str, str] = OrderedDict()

    def decode(self, ev: Any, source: str, raw: str = "") -> Decoded:
        if not isinstance(ev, dict):
            return Decoded(error="format: not a Jetstream event", raw=raw)
        position = ev.get("time_us") if isinstance(ev.get("time_us"), int) else None
        did = ev.get("did")
        kind = ev.get("kind")
        try:
            if kind == "identity":
                ident = ev.get("identity") or {}
                if isinstance(ident.get("handle"), str) and isinstance(did, str):
                    self.handles[did] = ident["handle"]
                    self.handles.move_to_end(did)
                    while len(self.handles) > self.max_handles:
                        self.handles.popitem(last=False)
                return Decoded(position=position)
            commit = ev.get("commit")
            if kind != "commit" or not isinstance(commit, dict) \
                    or commit.get("collection") != POST_COLLECTION:
                return Decoded(position=position)     # account events, other collections
            if not isinstance(did, str) or not isinstance(commit.get("rkey"), str):
                raise PostError("commit without did or rkey")
            ref = NativeRef("bluesky", f"at://{did}/{POST_COLLECTION}/{commit['rkey']}")
            source_ms = position // 1000 if position else None
            op = commit.get("operation")
            if op == "delete":
                return Decoded(deletes=[self.ids.post_id(ref)], position=position,
                               source_ms=source_ms)
            if op not in ("create", "update"):
                return Decoded(position=position)
            post = self._post(ref, did, commit.get("record"), source)
            if post is None:
                return Decoded(position=position, source_ms=source_ms, skipped=1)
            return Decoded(posts=[post], raw=raw, position=position, source_ms=source_ms)
        except PostError as e:
            return Decoded(error=str(e), raw=raw, position=position)
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            return Decoded(error=f"malformed: {type(e).__name__}: {e}", raw=raw,
                           position=position)

    def _post(self, ref: NativeRef, did: str, record: Any, source: str) -> Post | None:
        if not isinstance(record, dict):
            raise PostError("missing record", "record")
        text = record.get("text")
        if not isinstance(text, str):
            raise PostError("missing text", "text")
        if not text.strip():
            return None
        if record.get("createdAt") is None:
            raise PostError("missing createdAt", "createdAt")
        mentions, urls, tags = _facets(text, record.get("facets"))
        reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
        parent = post_ref((reply.get("parent") or {}).get("uri"))
        root = post_ref((reply.get("root") or {}).get("uri"))
        quoted, has_media, link = _embed(record.get("embed"))
        if link and link not in urls:
            urls.append(link)
        langs = record.get("langs")
        ids = self.ids
        post_id = ids.post_id(ref)
        return Post(
            id=post_id, text=text, source=source,
            created_at=parse_time_ms(record["createdAt"], "createdAt"),
            author_id=ids.author_id(NativeRef("bluesky", did)),
            author_handle=self.handles.get(did),
            lang=langs[0] if isinstance(langs, list) and langs and isinstance(langs[0], str)
            else None,
            hashtags=tags, mentions=mentions, urls=urls, has_media=has_media,
            reply_to_id=ids.post_id(parent) if parent else None,
            reply_to_user_id=ids.author_id(NativeRef("bluesky", _did_of(parent)))
            if parent else None,
            quote_of_id=ids.post_id(quoted) if quoted else None,
            conversation_id=ids.post_id(root) if root else (None if parent else post_id),
            labels=native_labels(ref),
        )


def _did_of(ref: NativeRef) -> str:
    return ref.native_id.removeprefix("at://").split("/", 1)[0]


def _facets(text: str, facets: Any) -> tuple[list[str], list[str], list[str]]:
    """(mentions, links, hashtags) of a post's facets. A mention facet names a DID; the handle
    as written is the text it covers (facet offsets count UTF-8 bytes)."""
    mentions: list[str] = []
    urls: list[str] = []
    tags: list[str] = []
    if not isinstance(facets, list):
        return mentions, urls, tags
    data = None
    for f in facets:
        if not isinstance(f, dict):
            continue
        for feat in f.get("features") or []:
            if not isinstance(feat, dict):
                continue
            kind = str(feat.get("$type", "")).removeprefix(_FACET)
            if kind == "mention":
                index = f.get("index") or {}
                data = data if data is not None else text.encode()
                start, end = index.get("byteStart"), index.get("byteEnd")
                if isinstance(start, int) and isinstance(end, int):
                    handle = data[start:end].decode("utf-8", "replace").strip().lstrip("@")
                    if handle and handle not in mentions:
                        mentions.append(handle)
            elif kind == "link" and isinstance(feat.get("uri"), str):
                if feat["uri"] not in urls:
                    urls.append(feat["uri"])
            elif kind == "tag" and isinstance(feat.get("tag"), str):
                if feat["tag"] not in tags:
                    tags.append(feat["tag"])
    return mentions, urls, tags


def _embed(embed: Any) -> tuple[NativeRef | None, bool, str | None]:
    """(the quoted post, whether media is attached, an external link card's URL)."""
    if not isinstance(embed, dict):
        return None, False, None
    kind = embed.get("$type")
    if kind == "app.bsky.embed.record":
        return post_ref((embed.get("record") or {}).get("uri")), False, None
    if kind == "app.bsky.embed.recordWithMedia":
        inner = (embed.get("record") or {}).get("record") or {}
        return post_ref(inner.get("uri")), True, None
    if kind == "app.bsky.embed.external":
        uri = (embed.get("external") or {}).get("uri")
        return None, False, uri if isinstance(uri, str) else None
    return None, kind in ("app.bsky.embed.images", "app.bsky.embed.video"), None


class JetstreamStream:
    """Jetstream as a ``Source``; ``state_dir`` keeps the cursor (none: start live)."""

    kind = "bluesky"

    def __init__(self, url: str = DEFAULT_URL, *, name: str = "bluesky",
                 dids: Sequence[str] = (), state_dir: str | Path | None = None,
                 rewind_s: float = 5.0, ids: IdSpace | None = None,
                 policy: ReconnectPolicy | None = None, open_timeout_s: float = 10.0):
        if rewind_s < 0:
            raise ValueError(f"rewind_s must be >= 0, got {rewind_s}")
        self.url = url
        self.name = name
        self.locator = f"bluesky:{url}"
        self.dids = list(dids)
        self.cursor_file = (Path(state_dir) / f"{file_stem(name)}.cursor") if state_dir else None
        self.rewind_us = int(rewind_s * 1_000_000)
        self.decoder = JetstreamDecoder(ids)
        self.policy = policy or ReconnectPolicy()
        self.open_timeout_s = open_timeout_s
        self.received_us: int | None = None       # the last event read, this run
        self.requested: list[str] = []             # every URL connected to (tests, logs)

    # --- cursor -----------------------------------------------------------------------------------
    def saved_cursor(self) -> int | None:
        """The ``time_us`` of the last committed event, as saved; None when there is none."""
        if self.cursor_file is None:
            return None
        try:
            return int(self.cursor_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def committed(self, position: int) -> None:
        if self.cursor_file is None:
            return
        self.cursor_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(str(position))
        os.replace(tmp, self.cursor_file)           # atomic: a crash leaves the old or the new

    def _connect_url(self) -> str:
        params: list[tuple[str, str]] = [("wantedCollections", POST_COLLECTION)]
        params += [("wantedDids", d) for d in self.dids]
        last = self.received_us if self.received_us is not None else self.saved_cursor()
        if last is not None:
            params.append(("cursor", str(max(0, last - self.rewind_us))))
        return f"{self.url}?{urlencode(params)}"

    # --- stream -----------------------------------------------------------------------------------
    async def frames(self, link: Link) -> AsyncIterator[Decoded]:
        decode = self.decoder.decode
        async for message in reconnecting(lambda: self._session(link), link, self.policy):
            try:
                ev = orjson.loads(message)
            except orjson.JSONDecodeError as e:
                yield Decoded(error=f"json: {e}", raw=clip(str(message)))
                continue
            d = decode(ev, self.name, clip(message) if isinstance(message, str) else "")
            if d.position is not None:
                self.received_us = d.position
            yield d

    @asynccontextmanager
    async def _session(self, link: Link):
        url = self._connect_url()
        self.requested.append(url)
        try:
            ws = await websockets.asyncio.client.connect(
                url, open_timeout=self.open_timeout_s, close_timeout=1.0, max_size=4 << 20)
        except websockets.exceptions.InvalidStatus as e:
            r = e.response
            raise StatusError(r.status_code, r.reason_phrase,
                              retry_after_s(dict(r.headers.raw_items()), link.clock.time())
                              ) from None
        try:
            yield ws            # iterates messages; ends on a clean close, raises on a cut one
        finally:
            await ws.close()
