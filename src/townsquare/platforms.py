"""Which platform a post id belongs to: X ids as they are, every other platform in the negative half.

    >>> bluesky = namespaced_id("bluesky", 12345)
    >>> bluesky < 0, platform_of(bluesky), platform_of(1212092628029698048)
    (True, 'bluesky', 'x')
    >>> is_post_id(bluesky), is_post_id(1212092628029698048), is_post_id(0), is_post_id(-1)
    (True, True, False, False)
    >>> post_url(1212092628029698048, "cityops")
    'https://x.com/cityops/status/1212092628029698048'

The store keys every post by one signed 64-bit integer (``posts.id``: SQLite's rowid, the
FTS5/tantivy/faiss key, PostgreSQL's partition key). X ids are positive Snowflakes below 2**63,
and every existing command, URL and file keeps using them unchanged, so X owns the positive half.
Every other platform maps into the negative half::

    bit 63      sign = 1                      (never an X id)
    bits 62-60  platform code, 1..6           (0 and 7 reserved: 7 would make -1, a sentinel)
    bits 59-0   a 60-bit hash of the post's native key

This module is the ground floor's part of that layout: what every layer needs to tell a valid id
from a bad one (``posts.parse_id`` and ``Post.normalized`` accept exactly ``is_post_id``) and to
name a post's platform. How a native key becomes the 60 bits (a keyed BLAKE2b), and why a hash
and not a lookup table, is the collectors' business: ``townsquare.follow.ids``. Authors of
namespaced posts get ids of the same layout (hashed apart from posts), so ``is_post_id`` holds
for them too.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Platform codes (bits 62-60 of a namespaced id). Append only: a code, once used, is forever.
PLATFORMS: dict[str, int] = {"bluesky": 1, "mastodon": 2}
HASH_BITS = 60                     # the low bits of a namespaced id: its native key's hash
_NAMES = {code: name for name, code in PLATFORMS.items()}
_SIGN = 1 << 63
_HASH_MASK = (1 << HASH_BITS) - 1


def namespaced_id(platform: str, key_hash: int) -> int:
    """The id of ``platform``'s post (or author) whose native key hashes to ``key_hash`` (its low
    60 bits are used).

    >>> platform_of(namespaced_id("mastodon", 7))
    'mastodon'
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}")
    return -_SIGN + (PLATFORMS[platform] << HASH_BITS) + (key_hash & _HASH_MASK)


def platform_of(post_id: int) -> str:
    """The platform an id belongs to: ``"x"`` for positive ids, else the namespace's platform.
    Raises ``ValueError`` for a value that is not an id of any platform (see ``is_post_id``)."""
    if not is_post_id(post_id):
        raise ValueError(f"not a townsquare post id: {post_id!r}")
    return "x" if post_id > 0 else _NAMES[(post_id + _SIGN) >> HASH_BITS]


def is_post_id(value: object) -> bool:
    """Whether ``value`` is a valid id: a positive X id below 2**63, or a namespaced id (negative,
    with a known platform code)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if 0 < value < _SIGN:
        return True
    return -_SIGN <= value < 0 and ((value + _SIGN) >> HASH_BITS) in _NAMES


def post_url(post_id: int, handle: str | None = None) -> str | None:
    """The original URL of an X post from its id; None for other platforms (their URL is not in
    the id: the collectors keep it in the post's labels as ``url``)."""
    if platform_of(post_id) != "x":
        return None
    return f"https://x.com/{handle or 'i/web'}/status/{post_id}"


def original_url(post_id: int, handle: str | None, labels: Mapping[str, Any]) -> str | None:
    """Where a stored post lives on its platform: X's from the id, another platform's from the
    ``url`` its collector kept in the post's labels (at the top, or under the source's name).

    >>> original_url(1212092628029698048, "cityops", {})
    'https://x.com/cityops/status/1212092628029698048'
    >>> original_url(namespaced_id("bluesky", 7), None,
    ...              {"jetstream": {"url": "https://bsky.app/profile/a/post/3k"}})
    'https://bsky.app/profile/a/post/3k'
    """
    if platform_of(post_id) == "x":
        return post_url(post_id, handle)
    if isinstance(labels.get("url"), str):
        return labels["url"]
    for value in labels.values():
        if isinstance(value, Mapping) and isinstance(value.get("url"), str):
            return value["url"]
    return None

