"""Ids across platforms: X ids unchanged, the others in the negative half with their platform
recoverable, stable, and without collisions on realistic id sets."""
from __future__ import annotations

import random

import pytest

from townsquare.follow.ids import IdSpace, NativeRef, native_labels
from townsquare.platforms import is_post_id, platform_of, post_url
from townsquare.posts import Post, PostError
from townsquare.store.base import Stored

_B32 = "234567abcdefghijklmnopqrstuvwxyz"       # AT Protocol's base32-sortable alphabet


def tid(micros: int, clock_id: int) -> str:
    """A Bluesky record key (TID): 53 bits of microseconds, 10 bits of clock id."""
    v = (micros << 10) | clock_id
    return "".join(_B32[(v >> (5 * i)) & 31] for i in reversed(range(13)))


def bluesky_refs(n: int, rng: random.Random) -> list[NativeRef]:
    # Many accounts, several posts each, record keys from nearby microseconds so that two
    # accounts often share a key: only the DID tells those posts apart.
    dids = ["did:plc:" + "".join(rng.choice(_B32) for _ in range(24)) for _ in range(n // 4)]
    t0 = 1_700_000_000_000_000
    return [NativeRef("bluesky", f"at://{rng.choice(dids)}/app.bsky.feed.post/"
                                 f"{tid(t0 + rng.randrange(n), rng.randrange(4))}")
            for _ in range(n)]


def mastodon_refs(n: int) -> list[NativeRef]:
    # Five instances issuing the same local ids (Mastodon ids are per instance).
    hosts = [f"social{k}.example" for k in range(5)]
    base = 110_000_000_000_000_000
    return [NativeRef("mastodon", f"{hosts[i % 5]}/{base + (i // 5) * 65536}") for i in range(n)]


def test_x_ids_stay_as_they_are():
    for x in (1, 1212092628029698048, (1 << 63) - 1):
        assert platform_of(x) == "x" and is_post_id(x)
    assert post_url(1212092628029698048) == "https://x.com/i/web/status/1212092628029698048"
    assert not is_post_id(0) and not is_post_id(1 << 63) and not is_post_id(True)


def test_no_collisions_on_realistic_id_sets():
    rng = random.Random(20)
    refs = list(dict.fromkeys(bluesky_refs(150_000, rng) + mastodon_refs(150_000)))
    space = IdSpace()
    ids = [space.post_id(r) for r in refs]
    assert len(set(ids)) == len(refs)
    assert all(i < 0 and is_post_id(i) for i in ids)
    assert [platform_of(i) for i in ids] == [r.platform for r in refs]
    authors = {space.author_id(NativeRef("mastodon", f"social{k}.example/1")) for k in range(5)}
    assert len(authors) == 5 and not authors & set(ids)


def test_ids_are_stable_and_keyed():
    ref = NativeRef("mastodon", "social0.example/110000000000000000")
    assert IdSpace().post_id(ref) == IdSpace().post_id(ref)
    assert IdSpace(b"private").post_id(ref) != IdSpace().post_id(ref)
    assert IdSpace().author_id(ref) != IdSpace().post_id(ref)
    with pytest.raises(ValueError):
        IdSpace(b"")
    with pytest.raises(ValueError):
        NativeRef("threads", "1")
    with pytest.raises(ValueError):
        platform_of(-1)


def test_original_urls():
    b = NativeRef("bluesky", "at://did:plc:ana/app.bsky.feed.post/3kq2")
    assert b.url() == "https://bsky.app/profile/did:plc:ana/post/3kq2"
    m = NativeRef("mastodon", "social0.example/42")
    assert m.url("ana@social0.example") == "https://social0.example/@ana/42"
    assert m.url("bob@other.example") == "https://social0.example/@bob@other.example/42"
    assert m.url() == "https://social0.example/statuses/42"
    assert post_url(IdSpace().post_id(m)) is None
    assert native_labels(b)["url"] == b.url()


def test_namespaced_posts_normalize_and_round_trip_through_the_store(store):
    space = IdSpace()
    pid = space.post_id(NativeRef("bluesky", "at://did:plc:ana/app.bsky.feed.post/3kq2"))
    p = Post(id=pid, text="Levee &amp; dam #Riverton", source="bluesky",
             created_at=1_700_000_000_000).normalized()
    assert p.id == pid and p.conversation_id == pid and p.text == "Levee & dam #Riverton"
    assert p.hashtags == ["Riverton"]
    reply = Post(id=space.post_id(NativeRef("bluesky", "at://d/app.bsky.feed.post/r")),
                 text="yes", source="b", created_at=1, reply_to_id=pid).normalized()
    assert reply.conversation_id is None
    store.write_batch([Stored(p), Stored(reply)], [])
    assert store.get(pid).text == "Levee & dam #Riverton"
    assert store.lexical_ids("levee") == [pid]
    assert store.delete([pid]) == 1 and store.get(pid) is None
    with pytest.raises(PostError, match="created_at"):
        Post(id=pid, text="x", source="b").normalized()
    with pytest.raises(PostError, match="id"):
        Post(id=-1, text="x", source="b", created_at=1).normalized()
    assert Post(id=1212092628029698048, text="x", source="b").normalized().created_at
