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

from townsquare.posts import Post, PostError, optional_id, parse_id, parse_time_ms


def _int(v: Any) -> int | None:
    if v is None or v == "":
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _id_of(obj: dict, key: str) -> int | None:
    """An id field, preferring the exact ``*_str`` form (JSON numbers above 2^53 lose digits in
    JavaScript-produced files)."""
    return optional_id(obj.get(key + "_str", obj.get(key)), key)


def _full_text(obj: dict) -> tuple[str, dict]:
    ext = obj.get("extended_tweet")
    if isinstance(ext, dict) and isinstance(ext.get("full_text"), str):
        return ext["full_text"], ext.get("entities") or obj.get("entities") or {}
    text = obj.get("full_text", obj.get("text"))
    if not isinstance(text, str):
        raise PostError("missing text (text, full_text or extended_tweet.full_text)", "text")
    return text, obj.get("entities") or {}


def _names(entities: dict, key: str, name: str) -> list[str]:
    out = []
    for e in entities.get(key) or []:
        if isinstance(e, dict) and isinstance(e.get(name), str) and e[name] not in out:
            out.append(e[name])
    return out


def _coordinates(obj: dict) -> tuple[float | None, float | None]:
    c = obj.get("coordinates")
    if isinstance(c, dict) and isinstance(c.get("coordinates"), list) and len(c["coordinates"]) == 2:
        try:
            lon, lat = (float(x) for x in c["coordinates"])  # GeoJSON order: longitude first
            return lon, lat
        except (TypeError, ValueError):
            raise PostError(f"bad coordinates {c['coordinates']!r}", "coordinates") from None
    return None, None


def posts_from_v1(obj: dict, source: str, *, owner: dict | None = None) -> list[Post]:
    """The post in a v1.1 Tweet object, then the posts it embeds. ``owner`` supplies the author
    (``id``, ``handle``, ``name``) for archive tweets, which have no ``user`` object."""
    if not isinstance(obj, dict):
        raise PostError(f"expected a JSON object, got {type(obj).__name__}")
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
        originals = posts_from_v1(rt, source, owner=None)
        repost_of = originals[0].id
        if originals[0].author_handle:
            text = f"RT @{originals[0].author_handle}: {originals[0].text}"
        embedded.extend(originals)
    quote_of = _id_of(obj, "quoted_status_id")
    qt = obj.get("quoted_status")
    if isinstance(qt, dict):
        quoted = posts_from_v1(qt, source, owner=None)
        quote_of = quoted[0].id
        embedded.extend(quoted)

    media = (obj.get("extended_entities") or {}).get("media") or entities.get("media")
    urls = []
    for u in entities.get("urls") or []:
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
        retweet_count=_int(obj.get("retweet_count")),
        like_count=_int(obj.get("favorite_count")),
        reply_count=_int(obj.get("reply_count")),
        quote_count=_int(obj.get("quote_count")),
        lon=lon,
        lat=lat,
    )
    out.append(post)
    out.extend(embedded)
    return out
