"""Turn an ingest request body into posts, one status per item, never failing the whole batch.

    >>> items = parse_body(b'{"data": [{"id": "1212092628029698048", "text": "hi"}, {"text": "no id"}]}', "api")
    >>> [(i.index, i.post.id if i.post else None, i.error) for i in items]
    [(0, 1212092628029698048, None), (1, None, 'id: missing (every tweet needs its id)')]

Accepted shapes (Twitter API v2): one tweet object (``{"id", "text", ...}``), a response page
(``{"data": tweet or [tweets], "includes": {"users", "tweets"}}``, where ``includes.users`` give
authors' handles and ``includes.tweets`` are stored as posts too), or a JSON array of tweet
objects. A body that is not JSON, or JSON of another shape, is one error for the whole request
(``BodyError``); a bad tweet inside a good body is an error for that item only, and the good ones
are stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from townsquare.ingest.twitter_v2 import included_tweets, post_from_v2, users_of
from townsquare.posts import Post, PostError


class BodyError(ValueError):
    """The request body as a whole cannot be read: ``code`` names why for the JSON error."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class BodyItem:
    index: int                    # position in ``data`` (then in ``includes.tweets``)
    post: Post | None
    error: str | None = None
    included: bool = False        # from includes.tweets (a referenced tweet), not data
    raw: Any = None


def _describe(e: Exception) -> str:
    if isinstance(e, PostError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def parse_body(body: bytes, source: str, *, max_items: int = 10_000) -> list[BodyItem]:
    """Items of a request body, in order; raises ``BodyError`` for an unreadable body or one
    with more than ``max_items`` tweets (``data`` and ``includes.tweets`` together)."""
    if not body.strip():
        raise BodyError("empty_body", "the request body is empty: send a tweet object, a v2 "
                                      "response page ({\"data\": [...]}) or a JSON array of tweets")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BodyError("invalid_json", f"the body is not valid JSON: {e}") from None
    if isinstance(doc, list):
        tweets, extra, users = doc, [], {}
    elif isinstance(doc, dict) and "data" in doc:
        data = doc["data"]
        if isinstance(data, dict):
            tweets = [data]
        elif isinstance(data, list):
            tweets = data
        else:
            raise BodyError("invalid_body", f"'data' must be a tweet object or an array of them, "
                                            f"got {type(data).__name__}")
        extra, users = included_tweets(doc), users_of(doc)
    elif isinstance(doc, dict):
        tweets, extra, users = [doc], [], {}
    else:
        raise BodyError("invalid_body", f"expected a JSON object or array, got "
                                        f"{type(doc).__name__}")
    n = len(tweets) + len(extra)
    if n > max_items:
        raise BodyError("batch_too_large", f"{n:,} tweets in one request; at most {max_items:,} "
                                           f"(split the batch)")
    if not tweets:
        raise BodyError("empty_batch", "no tweets in the request ('data' is empty)")
    items: list[BodyItem] = []
    for i, t in enumerate(tweets):
        items.append(_item(i, t, source, users, included=False))
    for i, t in enumerate(extra):
        items.append(_item(i, t, source, users, included=True))
    return items


def _item(i: int, t: Any, source: str, users: dict, *, included: bool) -> BodyItem:
    if isinstance(t, dict) and t.get("id") is None:
        return BodyItem(i, None, "id: missing (every tweet needs its id)", included, t)
    try:
        post = post_from_v2(t, source, users).normalized()
    except (PostError, ValueError, TypeError) as e:
        return BodyItem(i, None, _describe(e), included, t)
    return BodyItem(i, post, None, included, t)
