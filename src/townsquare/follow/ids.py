"""Post ids across platforms: X ids as they are, every other platform in the negative half.

    >>> space = IdSpace()
    >>> ref = NativeRef("bluesky", "at://did:plc:riverton/app.bsky.feed.post/3kq2bzdvmsc2a")
    >>> pid = space.post_id(ref)
    >>> pid < 0, platform_of(pid), platform_of(1212092628029698048)
    (True, 'bluesky', 'x')
    >>> pid == space.post_id(ref)        # stable: a re-delivered post upserts over itself
    True
    >>> ref.url()
    'https://bsky.app/profile/did:plc:riverton/post/3kq2bzdvmsc2a'

The store keys every post by one signed 64-bit integer (``posts.id``, SQLite's rowid and the
FTS5/tantivy/faiss key). X ids are positive Snowflakes below 2**63 and every existing command,
URL and file keeps using them unchanged, so X owns the positive half. Every other platform maps
into the negative half::

    bit 63      sign = 1                      (never an X id)
    bits 62-60  platform code, 1..6           (0 and 7 reserved: 7 would make -1, a sentinel)
    bits 59-0   keyed BLAKE2b of the post's native key, 60 bits

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

Still to do outside this package to complete the namespace (the lead wires it):

- ``Post.normalized()`` and ``posts.parse_id`` reject ids <= 0: they should accept
  ``is_post_id`` ids (X or namespaced), so the API's ``/v1/posts/{id}``, ``townsquare delete``
  and the JSONL export read back namespaced ids. Until then ``normalize`` here validates a
  namespaced post the same way (see its docstring).
- Store columns ``platform`` (or derive it: ``platform_of``), ``native_id`` and ``url`` with a
  unique index on ``native_id``, so a hash collision is refused instead of overwriting, and the
  original URL of a non-X post (which the id cannot give back) is kept; until then
  ``native_labels`` puts both in the post's labels (metadata only).
- PostgreSQL partitions ``posts`` by Snowflake year: negative ids all land in ``posts_legacy``;
  a partition ``FROM (MINVALUE) TO (0)`` of their own keeps them apart.
- ``from:`` takes handles of any platform: Bluesky handles are domain names (``alice.bsky.social``)
  and Mastodon handles here are always ``user@host``, so the query language's ``from:`` operand
  must accept ``.`` and ``@`` (and ``posts_by_author`` already matches ``lower(author_handle)``).
- Web pages and summaries cite a post by URL: ``post_url`` for X ids, the stored URL otherwise.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from townsquare.posts import Post, PostError

# Platform codes (bits 62-60 of a namespaced id). Append only: a code, once used, is forever.
PLATFORMS: dict[str, int] = {"bluesky": 1, "mastodon": 2}
_NAMES = {code: name for name, code in PLATFORMS.items()}
_SIGN = 1 << 63
_HASH_BITS = 60
_HASH_MASK = (1 << _HASH_BITS) - 1
DEFAULT_KEY = b"townsquare/ids/v1"


def platform_of(post_id: int) -> str:
    """The platform an id belongs to: ``"x"`` for positive ids, else the namespace's platform.

    >>> platform_of(-(1 << 63) + (2 << 60) + 12345)
    'mastodon'
    """
    if post_id > 0:
        return "x"
    code = (post_id + _SIGN) >> _HASH_BITS
    if post_id < -_SIGN or code not in _NAMES:
        raise ValueError(f"not a townsquare post id: {post_id}")
    return _NAMES[code]


def is_post_id(value: object) -> bool:
    """Whether ``value`` is a valid id: a positive X id below 2**63, or a namespaced id.

    >>> is_post_id(1212092628029698048), is_post_id(0), is_post_id(-1)
    (True, False, False)
    """
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if 0 < value < _SIGN:
        return True
    return -_SIGN <= value < 0 and ((value + _SIGN) >> _HASH_BITS) in _NAMES


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


def post_url(post_id: int, handle: str | None = None) -> str | None:
    """The original URL of an X post from its id; None for other platforms (their URL is not in
    the id: see ``native_labels``).

    >>> post_url(1212092628029698048, "cityops")
    'https://x.com/cityops/status/1212092628029698048'
    """
    if platform_of(post_id) != "x":
        return None
    return f"https://x.com/{handle or 'i/web'}/status/{post_id}"


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
        h = int.from_bytes(digest, "big") & _HASH_MASK
        return -_SIGN + (PLATFORMS[ref.platform] << _HASH_BITS) + h

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


def normalize(post: Post) -> Post:
    """``post.normalized()`` for a post of any platform; raises ``PostError`` like it.

    ``Post.normalized`` accepts only positive ids today. A namespaced post is validated by the
    same method under a stand-in positive id, after the two things that method derives from the
    id are settled here: ``created_at`` must come from the source (a namespaced id encodes no
    time) and a post that replies to nothing starts its own conversation. Once ``Post.normalized``
    accepts ``is_post_id`` ids, this becomes ``post.normalized()``.

    >>> p = normalize(Post(id=IdSpace().post_id(NativeRef("mastodon", "m.example/7")),
    ...                    text="Levee #RivertonFlood", source="m", created_at=1700000000000))
    >>> p.hashtags, p.conversation_id == p.id
    (['RivertonFlood'], True)
    """
    if isinstance(post.id, int) and post.id > 0:
        return post.normalized()
    if not is_post_id(post.id):
        raise PostError(f"not an X id or a namespaced id: {post.id!r}", "id")
    if post.created_at is None:
        raise PostError("no created_at (required for posts that are not on X)", "created_at")
    if post.conversation_id is None and post.reply_to_id is None:
        post.conversation_id = post.id
    real = post.id
    post.id = 1
    try:
        return post.normalized()
    finally:
        post.id = real
