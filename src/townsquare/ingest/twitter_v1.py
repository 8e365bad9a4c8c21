"""Twitter API v1.1 Tweet objects (streaming, REST, search), and the X archive's variant of them.

    >>> obj = {"id_str": "1212092628029698048", "created_at": "Tue Dec 31 18:30:00 +0000 2019",
    ...        "text": "RT @cityops: Road closed", "user": {"id_str": "42", "screen_name": "ann"},
    ...        "retweeted_status": {"id_str": "1212092000000000000", "full_text": "Road closed",
    ...                             "user": {"id_str": "7", "screen_name": "cityops"}}}
    >>> [(p.id, p.repost_of_id) for p in posts_from_v1(obj, "demo")]
    [(1212092628029698048, 1212092000000000000), (1212092000000000000, None)]

Reference: the v1.1 Tweet, User, Entities and Geo object documentation. The full text of a
long post is ``extended_tweet.full_text`` (streaming) or ``full_text`` (``tweet_mode=extended``);
``text`` is then truncated with an ellipsis. A retweet's own text is truncated too, so it is
rebuilt as ``RT @author: <original full text>``. Embedded ``retweeted_status`` and
``quoted_status`` are posts in their own right and are returned after the post that embeds them.
The archive's tweets carry every number as a string and no ``user`` (the account owner wrote them).
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


def _id_of(obj: dict, key: str) -> int | None:
    """An id field, preferring the exact ``*_str`` form (JSON numbers above 2^53 lose digits in
    JavaScript-produced files)."""
    return optional_id(obj.get(key + "_str", obj.get(key)), key)


def _dict(v: Any) -> dict:
    """``v`` when it is an object, else an empty one: a field of the wrong type is read as absent
    (files from scrapers put strings or lists where the API has objects)."""
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _full_text(obj: dict) -> tuple[str, dict]:
    ext = obj.get("extended_tweet")
    if isinstance(ext, dict) and isinstance(ext.get("full_text"), str):
        return ext["full_text"], _dict(ext.get("entities") or obj.get("entities"))
    text = obj.get("full_text", obj.get("text"))
    if not isinstance(text, str):
        raise PostError("missing text (text, full_text or extended_tweet.full_text)", "text")
    return text, _dict(obj.get("entities"))


def _names(entities: dict, key: str, name: str) -> list[str]:
    out = []
    for e in _list(entities.get(key)):
        if isinstance(e, dict) and isinstance(e.get(name), str) and e[name] not in out:
            out.append(e[name])
    return out


def _coordinates(obj: dict) -> tuple[float | None, float | None]:
    c = obj.get("coordinates")
    if isinstance(c, dict) and isinstance(c.get("coordinates"), list) and len(c["coordinates"]) == 2:
        try:
            lon, lat = (float(x) for x in c["coordinates"])  # GeoJSON order: longitude first
            return lon, lat
        except (TypeError, ValueError, OverflowError):   # OverflowError: an int past a float
            raise PostError(f"bad coordinates {str(c['coordinates'])[:60]}", "coordinates") from None
    return None, None


# A retweet embeds its original, which may embed the post it quotes: deeper nesting is no tweet
# (and a chain of a thousand would exhaust the interpreter's stack).
MAX_EMBEDDED_DEPTH = 4


def posts_from_v1(obj: dict, source: str, *, owner: dict | None = None,
                  _depth: int = 0) -> list[Post]:
    """The post in a v1.1 Tweet object, then the posts it embeds. ``owner`` supplies the author
    (``id``, ``handle``, ``name``) for archive tweets, which have no ``user`` object."""
    if not isinstance(obj, dict):
        raise PostError(f"expected a JSON object, got {type(obj).__name__}")
    if _depth > MAX_EMBEDDED_DEPTH:
        raise PostError(f"embedded tweets nested more than {MAX_EMBEDDED_DEPTH} deep",
                        "retweeted_status")
    post_id = parse_id(obj.get("id_str", obj.get("id")), "id_str")
    text, entities = _full_text(obj)
    user = obj.get("user") if isinstance(obj.get("user"), dict) else None
    author_id = _id_of(user, "id") if user else (owner or {}).get("id")
    handle = user.get("screen_name") if user else (owner or {}).get("handle")
    name = user.get("name") if user else (owner or {}).get("name")

    out: list[Post] = []
    embedded: list[Post] = []
    repost_of = None
    rt = obj.get("retweeted_status")
    if isinstance(rt, dict):
        originals = posts_from_v1(rt, source, owner=None, _depth=_depth + 1)
        repost_of = originals[0].id
        if originals[0].author_handle:
            text = f"RT @{originals[0].author_handle}: {originals[0].text}"
        embedded.extend(originals)
    quote_of = _id_of(obj, "quoted_status_id")
    qt = obj.get("quoted_status")
    if isinstance(qt, dict):
        quoted = posts_from_v1(qt, source, owner=None, _depth=_depth + 1)
        quote_of = quoted[0].id
        embedded.extend(quoted)

    media = _dict(obj.get("extended_entities")).get("media") or entities.get("media")
    urls = []
    for u in _list(entities.get("urls")):
        if isinstance(u, dict):
            link = u.get("expanded_url") or u.get("url")
            if isinstance(link, str) and link not in urls:
                urls.append(link)
    lon, lat = _coordinates(obj)
    created = obj.get("created_at")
    post = Post(
        id=post_id,
        text=text,
        source=source,
        created_at=parse_time_ms(created) if created is not None else None,
        author_id=author_id,
        author_handle=handle if isinstance(handle, str) else None,
        author_name=name if isinstance(name, str) else None,
        lang=obj.get("lang") if isinstance(obj.get("lang"), str) else None,
        hashtags=_names(entities, "hashtags", "text"),
        mentions=_names(entities, "user_mentions", "screen_name"),
        urls=urls,
        cashtags=[s.upper() for s in _names(entities, "symbols", "text")],
        has_media=bool(media),
        reply_to_id=_id_of(obj, "in_reply_to_status_id"),
        reply_to_user_id=_id_of(obj, "in_reply_to_user_id"),
        repost_of_id=repost_of,
        quote_of_id=quote_of,
        retweet_count=parse_count(obj.get("retweet_count"), "retweet_count"),
        like_count=parse_count(obj.get("favorite_count"), "favorite_count"),
        reply_count=parse_count(obj.get("reply_count"), "reply_count"),
        quote_count=parse_count(obj.get("quote_count"), "quote_count"),
        lon=lon,
        lat=lat,
    )
    out.append(post)
    out.extend(embedded)
    return out
