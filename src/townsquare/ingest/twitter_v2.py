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

from townsquare.posts import Post, PostError, optional_id, parse_id, parse_time_ms


def _tags(entities: dict, key: str, name: str) -> list[str]:
    out: list[str] = []
    for e in entities.get(key) or []:
        if isinstance(e, dict) and isinstance(e.get(name), str) and e[name] not in out:
            out.append(e[name])
    return out


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


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
    entities = (note.get("entities") if isinstance(note, dict) and note.get("entities")
                else t.get("entities")) or {}
    author_id = optional_id(t.get("author_id"), "author_id")
    user = (users or {}).get(str(author_id)) if author_id else None
    refs = {r.get("type"): optional_id(r.get("id"), f"referenced_tweets.{r.get('type')}")
            for r in t.get("referenced_tweets") or [] if isinstance(r, dict)}
    metrics = t.get("public_metrics") if isinstance(t.get("public_metrics"), dict) else {}
    lon = lat = None
    geo = t.get("geo") if isinstance(t.get("geo"), dict) else {}
    point = geo.get("coordinates")
    if isinstance(point, dict) and isinstance(point.get("coordinates"), list):
        try:
            lon, lat = (float(x) for x in point["coordinates"])
        except (TypeError, ValueError):
            raise PostError(f"bad coordinates {point['coordinates']!r}", "geo.coordinates") from None
    urls: list[str] = []
    for u in entities.get("urls") or []:
        if isinstance(u, dict) and not u.get("media_key"):  # a media link is the photo, not a URL
            link = u.get("expanded_url") or u.get("url")
            if isinstance(link, str) and link not in urls:
                urls.append(link)
    attachments = t.get("attachments") if isinstance(t.get("attachments"), dict) else {}
    created = t.get("created_at")
    return Post(
        id=post_id,
        text=text,
        source=source,
        created_at=parse_time_ms(created) if created is not None else None,
        author_id=author_id,
        author_handle=user.get("username") if user else None,
        author_name=user.get("name") if user else None,
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
        retweet_count=_int(metrics.get("retweet_count")),
        like_count=_int(metrics.get("like_count")),
        reply_count=_int(metrics.get("reply_count")),
        quote_count=_int(metrics.get("quote_count")),
        lon=lon,
        lat=lat,
    )


def users_of(page: dict) -> dict[str, dict]:
    includes = page.get("includes") if isinstance(page.get("includes"), dict) else {}
    return {str(u["id"]): u for u in includes.get("users") or []
            if isinstance(u, dict) and "id" in u}


def included_tweets(page: dict) -> list[dict]:
    includes = page.get("includes") if isinstance(page.get("includes"), dict) else {}
    return [t for t in includes.get("tweets") or [] if isinstance(t, dict)]


def posts_from_v2_page(page: dict, source: str) -> list[Post]:
    """All posts of a response page, data first; raises on the first bad tweet (readers that want
    per-tweet quarantine iterate ``data`` themselves with ``post_from_v2``)."""
    users = users_of(page)
    data = page.get("data")
    tweets = [data] if isinstance(data, dict) else list(data or [])
    return [post_from_v2(t, source, users) for t in tweets + included_tweets(page)]
