"""Twitter API v2 responses: ``data`` (one tweet or a list) with ``includes.users``,
``includes.tweets`` and ``includes.media``.

    >>> page = {"data": [{"id": "1212092628029698048", "text": "Bridge closed", "author_id": "7",
    ...                   "created_at": "2019-12-31T18:30:00.000Z", "lang": "en",
    ...                   "referenced_tweets": [{"type": "replied_to", "id": "1212092000000000000"}]}],
    ...         "includes": {"users": [{"id": "7", "username": "cityops", "name": "City Ops"}]}}
    >>> [(p.author_handle, p.reply_to_id) for p in posts_from_v2_page(page, "demo")]
    [('cityops', 1212092000000000000)]

Reference: the v2 tweet object data dictionary (``entities`` with start/end offsets and
``tag``/``username``/``expanded_url``; ``public_metrics``; ``referenced_tweets`` of type
``replied_to``, ``quoted`` or ``retweeted``; ``geo.coordinates`` as a GeoJSON point; long posts in
``note_tweet.text``). Referenced tweets in ``includes.tweets`` are stored as posts too.
"""
from __future__ import annotations

from typing import Any

from townsquare.posts import (
    Post,
    PostError,
    optional_id,
    parse_count,
    parse_id,
    parse_time_ms,
)


def _dict(v: Any) -> dict:
    """``v`` when it is an object, else an empty one (a field of the wrong type reads as absent)."""
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _tags(entities: dict, key: str, name: str) -> list[str]:
    out: list[str] = []
    for e in _list(entities.get(key)):
        if isinstance(e, dict) and isinstance(e.get(name), str) and e[name] not in out:
            out.append(e[name])
    return out


def post_from_v2(t: dict, source: str, users: dict[str, dict] | None = None) -> Post:
    """One v2 tweet object; ``users`` maps author ids to ``includes.users`` entries."""
    if not isinstance(t, dict):
        raise PostError(f"expected a JSON object, got {type(t).__name__}")
    post_id = parse_id(t.get("id"), "id")
    note = t.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and isinstance(note.get("text"), str) \
        else t.get("text")
    if not isinstance(text, str):
        raise PostError("missing text", "text")
    entities = _dict(note.get("entities") if isinstance(note, dict) and note.get("entities")
                     else t.get("entities"))
    author_id = optional_id(t.get("author_id"), "author_id")
    user = (users or {}).get(str(author_id)) if author_id else None
    refs = {r["type"]: optional_id(r.get("id"), f"referenced_tweets.{r['type']}")
            for r in _list(t.get("referenced_tweets"))
            if isinstance(r, dict) and r.get("type") in ("replied_to", "quoted", "retweeted")}
    metrics = _dict(t.get("public_metrics"))
    lon = lat = None
    point = _dict(t.get("geo")).get("coordinates")
    if isinstance(point, dict) and isinstance(point.get("coordinates"), list):
        try:
            lon, lat = (float(x) for x in point["coordinates"])
        except (TypeError, ValueError, OverflowError):   # OverflowError: an int past a float
            raise PostError(f"bad coordinates {str(point['coordinates'])[:60]}",
                            "geo.coordinates") from None
    urls: list[str] = []
    for u in _list(entities.get("urls")):
        if isinstance(u, dict) and not u.get("media_key"):  # a media link is the photo, not a URL
            link = u.get("expanded_url") or u.get("url")
            if isinstance(link, str) and link not in urls:
                urls.append(link)
    attachments = _dict(t.get("attachments"))
    created = t.get("created_at")
    return Post(
        id=post_id,
        text=text,
        source=source,
        created_at=parse_time_ms(created) if created is not None else None,
        author_id=author_id,
        author_handle=_str(user.get("username")) if user else None,
        author_name=_str(user.get("name")) if user else None,
        lang=t.get("lang") if isinstance(t.get("lang"), str) else None,
        hashtags=_tags(entities, "hashtags", "tag"),
        mentions=_tags(entities, "mentions", "username"),
        urls=urls,
        cashtags=[c.upper() for c in _tags(entities, "cashtags", "tag")],
        has_media=bool(attachments.get("media_keys")),
        reply_to_id=refs.get("replied_to"),
        reply_to_user_id=optional_id(t.get("in_reply_to_user_id"), "in_reply_to_user_id"),
        repost_of_id=refs.get("retweeted"),
        quote_of_id=refs.get("quoted"),
        conversation_id=optional_id(t.get("conversation_id"), "conversation_id"),
        retweet_count=parse_count(metrics.get("retweet_count"), "retweet_count"),
        like_count=parse_count(metrics.get("like_count"), "like_count"),
        reply_count=parse_count(metrics.get("reply_count"), "reply_count"),
        quote_count=parse_count(metrics.get("quote_count"), "quote_count"),
        lon=lon,
        lat=lat,
    )


def users_of(page: dict) -> dict[str, dict]:
    return {str(u["id"]): u for u in _list(_dict(page.get("includes")).get("users"))
            if isinstance(u, dict) and "id" in u}


def included_tweets(page: dict) -> list[dict]:
    return [t for t in _list(_dict(page.get("includes")).get("tweets")) if isinstance(t, dict)]


def posts_from_v2_page(page: dict, source: str) -> list[Post]:
    """All posts of a response page, data first; raises on the first bad tweet (readers that want
    per-tweet quarantine iterate ``data`` themselves with ``post_from_v2``)."""
    users = users_of(page)
    data = page.get("data")
    tweets = [data] if isinstance(data, dict) else list(data or [])
    return [post_from_v2(t, source, users) for t in tweets + included_tweets(page)]
