"""Post ids across platforms: X ids as they are, every other platform in the negative half.

    >>> from townsquare.platforms import platform_of
    >>> space = IdSpace()
    >>> ref = NativeRef("bluesky", "at://did:plc:riverton/app.bsky.feed.post/3kq2bzdvmsc2a")
    >>> pid = space.post_id(ref)
    >>> pid < 0, platform_of(pid), platform_of(1212092628029698048)
    (True, 'bluesky', 'x')
    >>> pid == space.post_id(ref)        # stable: a re-delivered post upserts over itself
    True
    >>> ref.url()
    'https://bsky.app/profile/did:plc:riverton/post/3kq2bzdvmsc2a'

The layout of an id (X's positive half, a platform code and a 60-bit hash in the negative half)
and the checks every layer uses (``is_post_id``, ``platform_of``) live on the ground floor, in
``townsquare.platforms``; this module computes the hash.

Why a hash and not a lookup table: an id must be computable from the frame alone. A Bluesky reply
names its parent by AT URI, a Mastodon delete event names the status by its local id, and both
arrive long before (or without) the post they point to; a hash maps them with no store read, in
any process, and the mapping never needs to be written, migrated or shared between machines. The
same native key always gives the same id, so duplicate deliveries (a Jetstream cursor rewound, a
reconnect) upsert in place and a delete finds its post.

Why 60 bits are enough: the expected number of colliding pairs among ``n`` posts is
``n**2 / 2**61``: 0.004 for 10**8 posts, 0.4 for 10**9 (about a year of Bluesky's whole firehose).
No bits go to time: a time prefix would make ids sort by age (appends to the ``posts`` B-tree, as
Snowflakes do), but every bit taken from the hash squares into collisions among posts of the same
period. The cost is insert locality: writes of namespaced posts land all over the B-tree (about
15% slower than sequential ids on a 20,000-post store, more once the store outgrows the cache).
A second-preimage (a crafted post that lands on a chosen victim's id) costs about 2**60 hashes.
``IdSpace(key=...)`` makes the mapping private to a deployment when that is not enough; the key
then has to live with the store (lose it and every id changes). The default key is public and the
same everywhere, so one platform post has one id in every townsquare store.

Native keys (``NativeRef.native_id``), chosen so that every id a frame can carry maps back:

- ``bluesky``: the post's AT URI ``at://DID/app.bsky.feed.post/RKEY``; authors: the DID.
- ``mastodon``: ``HOST/LOCAL_ID``. Mastodon ids are per instance, and delete events and
  ``in_reply_to_id`` carry only the local id, so the instance is part of the key: a status
  federated to two instances and followed on both is two posts (the late stage's near-duplicate
  link joins them). Authors: ``HOST/ACCOUNT_ID``.

Not done yet (see the README's "Follow live streams"): store columns ``platform``, ``native_id``
and ``url`` with a unique index on ``native_id``, so that a hash collision is refused instead of
overwriting; until then ``native_labels`` puts the native key and the URL in the post's labels
(metadata only). Web pages and summaries cite a post by URL: ``post_url`` for X ids, the stored
URL otherwise (``townsquare.platforms.post_url``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from townsquare.platforms import PLATFORMS, namespaced_id

DEFAULT_KEY = b"townsquare/ids/v1"


@dataclass(frozen=True, slots=True)
class NativeRef:
    """A post (or author) as its platform names it: ``platform`` and the native key above."""

    platform: str
    native_id: str

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {self.platform!r}; one of {', '.join(PLATFORMS)}")
        if not self.native_id:
            raise ValueError("empty native id")

    def url(self, handle: str | None = None) -> str:
        """The post's page on its platform (``handle``: Mastodon's ``user@host`` when known).

        >>> NativeRef("mastodon", "mastodon.example/110000000000000001").url("ana@mastodon.example")
        'https://mastodon.example/@ana/110000000000000001'
        """
        if self.platform == "bluesky":
            did, _, rkey = self.native_id.removeprefix("at://").partition("/app.bsky.feed.post/")
            return f"https://bsky.app/profile/{did}/post/{rkey}"
        host, _, local = self.native_id.partition("/")
        if handle:
            user, _, user_host = handle.partition("@")
            # A remote account's page on this instance is /@user@their.host
            at = user if user_host in ("", host) else handle
            return f"https://{host}/@{at}/{local}"
        return f"https://{host}/statuses/{local}"


class IdSpace:
    """Maps native keys to store ids (see the module docstring); ``key`` makes it private."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes = DEFAULT_KEY):
        if not 1 <= len(key) <= 64:
            raise ValueError("key must be 1 to 64 bytes (BLAKE2b's key size)")
        self._key = key

    def _id(self, person: bytes, ref: NativeRef) -> int:
        digest = hashlib.blake2b(f"{ref.platform}:{ref.native_id}".encode(), digest_size=8,
                                 key=self._key, person=person).digest()
        return namespaced_id(ref.platform, int.from_bytes(digest, "big"))

    def post_id(self, ref: NativeRef) -> int:
        """The store id of a post."""
        return self._id(b"townsquare.post", ref)

    def author_id(self, ref: NativeRef) -> int:
        """The store's ``author_id`` for an account (authors hash apart from posts)."""
        return self._id(b"townsquare.user", ref)


def native_labels(ref: NativeRef, url: str | None = None) -> dict[str, str]:
    """Labels that keep a namespaced post's native key and URL in the store until it has columns
    for them (``Post.labels`` is metadata: no product logic reads it).

    >>> native_labels(NativeRef("mastodon", "m.example/7"), "https://m.example/@a/7")
    {'platform': 'mastodon', 'native_id': 'm.example/7', 'url': 'https://m.example/@a/7'}
    """
    return {"platform": ref.platform, "native_id": ref.native_id, "url": url or ref.url()}
