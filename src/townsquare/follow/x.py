"""X API v2 filtered stream: ``GET /2/tweets/search/stream``, and its rules.

    >>> frame = (b'{"data": {"id": "1647181156468154369", "text": "Levee holding on #Riverton",'
    ...          b' "author_id": "7", "created_at": "2023-04-15T10:12:45.000Z"},'
    ...          b' "includes": {"users": [{"id": "7", "username": "rivertonfire"}]},'
    ...          b' "matching_rules": [{"id": "1", "tag": "flood"}]}')
    >>> d = decode_x_frame(frame, "x")
    >>> [(p.id, p.author_handle, p.labels) for p in d.posts], d.source_ms
    ([(1647181156468154369, 'rivertonfire', {'rules': ['flood']})], 1681553565000)

Run (``townsquare.cli.follow``; in the server: ``townsquare serve --follow "..."``)::

    export X_BEARER_TOKEN=...        # an app-only bearer token of a Project with stream access
    townsquare follow x --rule "flood lang:en -is:retweet" --tag flood   # add a rule
    townsquare follow x --list-rules
    townsquare follow x --delete-rule RULE_ID
    townsquare follow x                  # follow the stream (--token-file PATH instead of the env)
    townsquare follow x --token-env MY_X_TOKEN --backfill-minutes 2      # another variable

Credentials: an app-only bearer token (``Authorization: Bearer``), from an environment variable
or a file (``Credential``); it never appears on a command line, in a log or in an error.

Frames are lines (``\\r\\n``): a post with its ``includes`` (authors, referenced posts, media,
read by ``townsquare.ingest.twitter_v2``; referenced posts are stored too, as ``ingest`` does),
a blank keep-alive line about every 20 s, or an error object (``operational-disconnect`` and
the like) before X closes the stream. A rule's tag (else its id) goes into the post's labels as
``rules``. X's compliance-stream delete events (``{"data": {"delete": {"tweet": ...}}}``) delete.

Reconnects follow X's policy (``townsquare.follow.backoff``). With ``backfill_minutes`` (1-5;
X grants it to some access levels only), each reconnect asks for the minutes missed since the last
frame, at most that many; the posts it re-delivers are upserted, not duplicated.
"""
from __future__ import annotations

import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from townsquare.follow.backoff import ReconnectPolicy
from townsquare.follow.source import (
    Credential,
    Decoded,
    FollowError,
    Link,
    StatusError,
    reconnecting,
    retry_after_s,
    split_lines,
)
from townsquare.ingest.items import clip
from townsquare.ingest.jsonfiles import items_from_object
from townsquare.posts import PostError, optional_id

DEFAULT_BASE_URL = "https://api.x.com"
STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"

# Everything twitter_v2.post_from_v2 reads: authors, references and media arrive in `includes`.
STREAM_PARAMS = {
    "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id,"
                  "attachments.media_keys,in_reply_to_user_id",
    "tweet.fields": "attachments,author_id,conversation_id,created_at,entities,geo,"
                    "in_reply_to_user_id,lang,note_tweet,possibly_sensitive,public_metrics,"
                    "referenced_tweets",
    "user.fields": "name,username",
    "media.fields": "type,url",
}
MAX_BACKFILL_MINUTES = 5


def delete_ids(obj: Any) -> list[int] | None:
    """The ids a delete notice names, or None when ``obj`` is not one: X's compliance stream
    (``{"data": {"delete": {"tweet": {"id": ...}}}}``) or v1.1's ``{"delete": {"status": ...}}``.

    >>> delete_ids({"delete": {"status": {"id_str": "1212092628029698048"}}})
    [1212092628029698048]
    """
    if not isinstance(obj, dict):
        return None
    data = obj.get("data")
    if isinstance(data, dict) and isinstance(data.get("delete"), dict):
        tweet = data["delete"].get("tweet") or {}
        return [i] if (i := optional_id(tweet.get("id"), "delete.tweet.id")) else []
    d = obj.get("delete")
    if isinstance(d, dict) and isinstance(d.get("status"), dict) and "text" not in obj:
        s = d["status"]
        return [i] if (i := optional_id(s.get("id_str", s.get("id")), "delete.status.id")) else []
    return None


def posts_of(obj: Any, source: str, raw: str, kind: str | None) -> Decoded:
    """A parsed JSON object in any format ``ingest`` reads (``kind``: force ``v1``/``v2``), as
    one frame: its posts and deletes, or why it holds none."""
    try:
        deletes = delete_ids(obj)
    except PostError as e:
        return Decoded(error=str(e), raw=raw)
    if deletes is not None:
        return Decoded(deletes=deletes)
    posts, errors = [], []
    for item in items_from_object(obj, source, 0, raw, kind):
        posts.extend(item.posts)
        if item.error:
            errors.append(item.error)
    source_ms = next((p.created_at for p in posts if p.created_at is not None), None)
    return Decoded(posts=posts, error="; ".join(errors) or None, raw=raw, source_ms=source_ms)


def decode_x_frame(line: bytes, source: str) -> Decoded:
    """One line of the filtered stream (not a keep-alive), read as ``ingest`` reads v2 pages."""
    raw = clip(line.decode("utf-8", "replace"))
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return Decoded(error=f"json: {e}", raw=raw)
    if (why := stream_error(obj)) is not None:
        return Decoded(notice=f"X says: {why}")
    d = posts_of(obj, source, raw, "v2")
    matched = obj.get("matching_rules") if isinstance(obj, dict) else None
    rules = [str(r.get("tag") or r.get("id")) for r in matched or []
             if isinstance(r, dict) and (r.get("tag") or r.get("id"))]
    if rules and d.posts:
        d.posts[0].labels = {**d.posts[0].labels, "rules": rules}   # data first, includes after
    return d


def stream_error(obj: Any) -> str | None:
    """The message of a stream error object (sent before X closes the stream), else None."""
    if not isinstance(obj, dict) or "data" in obj or not isinstance(obj.get("errors"), list):
        return None
    parts = []
    for e in obj["errors"]:
        if isinstance(e, dict):
            parts.append(": ".join(str(e[k]) for k in ("title", "detail") if e.get(k)))
    return "; ".join(p for p in parts if p) or "error"


class XStream:
    """The filtered stream as a ``Source``; rules are managed with ``XRules``."""

    kind = "x"

    def __init__(self, token: Credential, *, name: str = "x", base_url: str = DEFAULT_BASE_URL,
                 backfill_minutes: int = 0, read_timeout_s: float = 30.0,
                 policy: ReconnectPolicy | None = None):
        if not 0 <= backfill_minutes <= MAX_BACKFILL_MINUTES:
            raise ValueError(f"backfill_minutes must be 0 to {MAX_BACKFILL_MINUTES}")
        self.name = name
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.locator = f"x:{self.base_url}{STREAM_PATH}"
        self.backfill_minutes = backfill_minutes
        # X sends a keep-alive every 20 s: silence well past that means a dead connection.
        self.read_timeout_s = read_timeout_s
        self.policy = policy or ReconnectPolicy()
        self._last_frame_s: float | None = None

    def committed(self, position: int) -> None:
        """Nothing to keep: X resumes by time (``backfill_minutes``), not by a cursor."""

    async def frames(self, link: Link) -> AsyncIterator[Decoded]:
        timeout = httpx.Timeout(10.0, read=self.read_timeout_s)
        async with httpx.AsyncClient(timeout=timeout) as client:
            async for line in reconnecting(lambda: self._session(client, link), link,
                                           self.policy):
                self._last_frame_s = link.clock.monotonic()
                if not line.strip():
                    link.stats.keepalives += 1
                    continue
                yield decode_x_frame(line, self.name)

    def _params(self, link: Link) -> dict[str, str]:
        params = dict(STREAM_PARAMS)
        if self.backfill_minutes and self._last_frame_s is not None:
            missed = link.clock.monotonic() - self._last_frame_s
            minutes = min(self.backfill_minutes, max(1, math.ceil(missed / 60)))
            params["backfill_minutes"] = str(minutes)
        return params

    @asynccontextmanager
    async def _session(self, client: httpx.AsyncClient, link: Link):
        request = client.build_request(
            "GET", self.base_url + STREAM_PATH, params=self._params(link),
            headers={"Authorization": f"Bearer {self.token.value()}"})
        response = await client.send(request, stream=True)
        try:
            if response.status_code != 200:
                body = (await response.aread())[:500]
                raise StatusError(response.status_code, _problem(body),
                                  retry_after_s(response.headers, link.clock.time()))

            def partial() -> None:
                link.stats.partial_frames += 1
            yield split_lines(response.aiter_bytes(), partial)
        finally:
            await response.aclose()


def _problem(body: bytes) -> str:
    """A short reason from an X error body (``title``/``detail`` of a problem object)."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(obj, dict):
        if obj.get("title") or obj.get("detail"):
            return ": ".join(str(obj[k]) for k in ("title", "detail") if obj.get(k))[:200]
        if (why := stream_error(obj)) is not None:
            return why[:200]
    return ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A filtered-stream rule: its query ``value``, an optional ``tag``, and X's ``id``."""

    value: str
    tag: str | None = None
    id: str | None = None


class XRules:
    """Add, list and delete the filtered stream's rules (``/2/tweets/search/stream/rules``)."""

    def __init__(self, token: Credential, *, base_url: str = DEFAULT_BASE_URL,
                 timeout_s: float = 30.0):
        self.token = token
        self.url = base_url.rstrip("/") + RULES_PATH
        self.timeout_s = timeout_s

    async def _call(self, method: str, *, params: dict | None = None,
                    body: dict | None = None) -> dict:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            try:
                r = await client.request(method, self.url, params=params, json=body, headers={
                    "Authorization": f"Bearer {self.token.value()}"})
            except httpx.TransportError as e:
                raise FollowError(f"rules: {type(e).__name__}: {e}") from None
        if r.status_code >= 400:
            raise FollowError(f"rules: HTTP {r.status_code}: {_problem(r.content)}".rstrip(": "))
        try:
            doc = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            raise FollowError("rules: the answer is not JSON") from None
        return doc if isinstance(doc, dict) else {}

    async def list(self) -> list[Rule]:
        doc = await self._call("GET")
        return [Rule(r["value"], r.get("tag"), r.get("id")) for r in doc.get("data") or []
                if isinstance(r, dict) and "value" in r]

    async def add(self, rules: Sequence[Rule], *, dry_run: bool = False
                  ) -> tuple[list[Rule], list[str]]:
        """Add rules; returns (the rules X created, X's reasons for those it did not)."""
        body = {"add": [{"value": r.value, **({"tag": r.tag} if r.tag else {})} for r in rules]}
        doc = await self._call("POST", params={"dry_run": "true"} if dry_run else None, body=body)
        created = [Rule(r["value"], r.get("tag"), r.get("id")) for r in doc.get("data") or []
                   if isinstance(r, dict) and "value" in r]
        errors = [": ".join(str(e[k]) for k in ("title", "value", "details") if e.get(k))
                  for e in doc.get("errors") or [] if isinstance(e, dict)]
        return created, errors

    async def delete(self, ids: Sequence[str]) -> int:
        """Delete rules by id; returns how many X deleted."""
        doc = await self._call("POST", body={"delete": {"ids": [str(i) for i in ids]}})
        summary = (doc.get("meta") or {}).get("summary") or {}
        return int(summary.get("deleted", 0))
