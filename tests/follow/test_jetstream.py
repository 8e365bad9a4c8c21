"""Bluesky's Jetstream against a local websocket fake: events to posts, deletes, the cursor
saved and resumed (rewound), duplicates after the rewind stored once."""
from __future__ import annotations

import asyncio

from tests.follow.conftest import run_until, stored_ids
from tests.follow.fakes import (
    Deliver,
    JetstreamFake,
    Reject,
    jetstream_delete,
    jetstream_events,
    jetstream_post,
)
from townsquare.follow import Collector, IdSpace, JetstreamStream, NativeRef
from townsquare.follow.jetstream import JetstreamDecoder, post_ref

T0 = 1_700_000_000_000_000


def ref(did: str, rkey: str) -> NativeRef:
    return NativeRef("bluesky", f"at://{did}/app.bsky.feed.post/{rkey}")


def test_a_post_with_facets_reply_and_quote():
    text = "Über die Fähre: @ana.bsky.example sagt https://ferry.example … #Riverton"
    b = text.encode()

    def span(s: str) -> dict:
        start = b.index(s.encode())
        return {"byteStart": start, "byteEnd": start + len(s.encode())}

    record = {
        "$type": "app.bsky.feed.post", "text": text, "langs": ["de", "en"],
        "createdAt": "2023-11-14T22:13:20.000Z",
        "facets": [
            {"index": span("@ana.bsky.example"),
             "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ana"}]},
            {"index": span("https://ferry.example …"),
             "features": [{"$type": "app.bsky.richtext.facet#link",
                           "uri": "https://ferry.example/timetable/winter"}]},
            {"index": span("#Riverton"),
             "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Riverton"}]}],
        "reply": {"root": {"uri": "at://did:plc:root/app.bsky.feed.post/r1", "cid": "c"},
                  "parent": {"uri": "at://did:plc:par/app.bsky.feed.post/p1", "cid": "c"}},
        "embed": {"$type": "app.bsky.embed.recordWithMedia",
                  "record": {"record": {"uri": "at://did:plc:q/app.bsky.feed.post/q1"}},
                  "media": {"$type": "app.bsky.embed.images", "images": []}},
    }
    dec = JetstreamDecoder()
    dec.decode({"did": "did:plc:me", "time_us": T0, "kind": "identity",
                "identity": {"did": "did:plc:me", "handle": "me.bsky.example"}}, "bsky")
    d = dec.decode(jetstream_post(1, T0 + 5, did="did:plc:me", record=record), "bsky")
    (p,) = d.posts
    ids = IdSpace()
    assert p.id == ids.post_id(ref("did:plc:me", "3kpost00000001"))
    assert p.mentions == ["ana.bsky.example"]
    assert p.urls == ["https://ferry.example/timetable/winter"]
    assert p.hashtags == ["Riverton"] and p.lang == "de" and p.has_media
    assert p.author_handle == "me.bsky.example"
    assert p.author_id == ids.author_id(NativeRef("bluesky", "did:plc:me"))
    assert p.reply_to_id == ids.post_id(ref("did:plc:par", "p1"))
    assert p.reply_to_user_id == ids.author_id(NativeRef("bluesky", "did:plc:par"))
    assert p.conversation_id == ids.post_id(ref("did:plc:root", "r1"))
    assert p.quote_of_id == ids.post_id(ref("did:plc:q", "q1"))
    assert p.labels["native_id"] == "at://did:plc:me/app.bsky.feed.post/3kpost00000001"
    assert d.position == T0 + 5 and d.source_ms == (T0 + 5) // 1000


def test_other_events():
    dec = JetstreamDecoder()
    post = jetstream_post(2, T0, did="did:plc:me")
    assert dec.decode(jetstream_delete(post, T0 + 1), "b").deletes == [
        IdSpace().post_id(ref("did:plc:me", "3kpost00000002"))]
    update = dict(post, commit=dict(post["commit"], operation="update"))
    assert len(dec.decode(update, "b").posts) == 1
    like = dict(post, commit=dict(post["commit"], collection="app.bsky.feed.like"))
    assert dec.decode(like, "b").posts == [] and dec.decode(like, "b").position == T0
    images_only = jetstream_post(3, T0, did="did:plc:me", record={
        "text": "", "createdAt": "2023-11-14T22:13:20.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": []}})
    assert dec.decode(images_only, "b").skipped == 1
    broken = jetstream_post(4, T0, did="did:plc:me", record={"text": "no time"})
    assert "createdAt" in dec.decode(broken, "b").error
    assert dec.decode({"kind": "account", "time_us": T0, "did": "d"}, "b").posts == []
    assert post_ref("at://did:plc:x/app.bsky.graph.list/1") is None


def test_handles_are_remembered_within_a_bound():
    dec = JetstreamDecoder(handles=2)
    for n in range(3):
        dec.decode({"did": f"did:plc:{n}", "time_us": T0 + n, "kind": "identity",
                    "identity": {"handle": f"h{n}.example"}}, "b")
    assert list(dec.handles) == ["did:plc:1", "did:plc:2"]


def test_stream_resumes_from_its_cursor_and_stores_each_post_once(store, clock, tmp_path):
    events = jetstream_events(60, start_us=T0, step_us=1000)   # 5 identity events, then 60 posts
    posts = [e for e in events if e["kind"] == "commit"]
    events.insert(30, jetstream_delete(posts[2], events[29]["time_us"] + 1))
    events.append(jetstream_delete(posts[50], events[-1]["time_us"] + 1000))
    ids = IdSpace()
    pid = [ids.post_id(ref(e["did"], e["commit"]["rkey"])) for e in posts]
    deleted = {pid[2], pid[50]}
    want = sorted(set(pid) - deleted)

    def source() -> JetstreamStream:
        return JetstreamStream(fake.url, state_dir=tmp_path, rewind_s=0.005, dids=())

    async def first_run():
        nonlocal fake
        acts = [Deliver(upto=25, end="mid-frame"), Reject(503), Deliver(upto=45, end="cut"),
                Deliver(end="hold")]
        async with JetstreamFake(events, acts) as fake:
            src = source()
            stats = await run_until(Collector(src, store, clock=clock, batch_size=8),
                                    lambda s: s.deletes == 2)
            return src, stats

    fake = None
    src, stats = asyncio.run(first_run())
    assert stored_ids(store) == want
    assert clock.sleeps == [0.0, 5.0, 0.0]            # dropped: at once; 503: 5 s; dropped: at once
    q = fake.requests
    assert all(r["wantedCollections"] == ["app.bsky.feed.post"] for r in q)
    assert "cursor" not in q[0]
    # Each reconnect resumes 5 ms (5 events) before the last event received...
    assert int(q[1]["cursor"][0]) == events[24]["time_us"] - 5000
    assert int(q[3]["cursor"][0]) == events[44]["time_us"] - 5000
    # ... so the server sent those events twice, and the store holds them once.
    assert len(fake.sent) > len(set(fake.sent))
    saved = src.saved_cursor()
    assert saved == events[-1]["time_us"]                 # the last event committed

    async def restart():
        nonlocal fake
        async with JetstreamFake(events, [Deliver(end="hold")]) as fake:
            r = await run_until(Collector(source(), store, clock=clock),
                                lambda s: s.frames >= 5)
            return r

    stats = asyncio.run(restart())
    assert int(fake.requests[0]["cursor"][0]) == saved - 5000
    assert stats.inserted == 0 and stored_ids(store) == want   # the rewound events: unchanged
    assert store.deleted_ids() == deleted


def test_wanted_dids_and_a_rate_limited_handshake(store, clock):
    events = jetstream_events(10, start_us=T0, dids=2)

    async def main():
        async with JetstreamFake(events, [Reject(429, {"Retry-After": "90"}), Deliver(end="hold")]
                                 ) as fake:
            src = JetstreamStream(fake.url, dids=["did:plc:author1"])
            await run_until(Collector(src, store, clock=clock), lambda s: s.posts >= 5)
            return fake

    fake = asyncio.run(main())
    assert fake.requests[0]["wantedDids"] == ["did:plc:author1"]
    assert clock.sleeps == [90.0]
    assert {p.author_handle for p in store.iter_posts()} == {"author1.bsky.example"}
