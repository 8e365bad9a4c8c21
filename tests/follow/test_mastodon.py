"""Mastodon's streaming API against a local SSE fake: statuses to posts (HTML to text,
reblogs as reposts), deletes, Last-Event-ID on reconnect."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.follow.conftest import run_until, stored_ids
from tests.follow.fakes import HttpFake, Status, Stream, mastodon_status, sse
from townsquare.follow import Collector, Credential, IdSpace, MastodonStream, NativeRef
from townsquare.follow.mastodon import MastodonDecoder, SSEvent, html_to_text

HOST = "mastodon.example"


def mid(local: str | int) -> int:
    return IdSpace().post_id(NativeRef("mastodon", f"{HOST}/{local}"))


def test_html_to_text():
    html = ('<p>Water at <a href="https://gauge.example/x">https://gauge.example/x</a><br>'
            '<span class="h-card"><a href="https://m.example/@bob" class="u-url mention">'
            '@<span>bob</span></a></span> 5 &lt; 6 &amp; rising</p><p>more</p>')
    assert html_to_text(html) == ("Water at https://gauge.example/x\n@bob 5 < 6 & rising\n\nmore",
                                  ["https://gauge.example/x"])
    assert html_to_text("") == ("", [])


def test_status_reply_mentions_and_content_warning():
    s = mastodon_status(7)
    s.update(in_reply_to_id="109", in_reply_to_account_id="501", spoiler_text="flood photos",
             mentions=[{"acct": "bob@other.example"}, {"acct": "carol"}],
             media_attachments=[{"type": "image"}])
    (p,) = MastodonDecoder(HOST).posts(s, "m")
    ids = IdSpace()
    assert p.id == mid(s["id"]) and p.id < 0
    assert p.text.startswith("flood photos\n\nShelter open at school 7 #riverton")
    assert p.mentions == ["bob@other.example", "carol@mastodon.example"]
    assert p.author_handle == "reporter1@mastodon.example" and p.author_name == "Reporter 1"
    assert p.author_id == ids.author_id(NativeRef("mastodon", f"{HOST}/501"))
    assert p.reply_to_id == mid("109")
    assert p.reply_to_user_id == ids.author_id(NativeRef("mastodon", f"{HOST}/501"))
    assert p.has_media and p.lang == "en" and p.like_count == 2 and p.retweet_count == 3
    assert p.labels["url"] == s["url"]


def test_reblog_is_a_repost_and_the_original_is_stored_too():
    original = mastodon_status(1)
    boost = mastodon_status(2, reblog=original)
    orig, repost = MastodonDecoder(HOST).posts(boost, "m")
    assert orig.id == mid(original["id"])
    assert repost.repost_of_id == orig.id
    assert repost.text == f"RT @{orig.author_handle}: {orig.text}"


def test_events():
    dec = MastodonDecoder(HOST)
    assert dec.decode(SSEvent("delete", "110000000000000005"), "m").deletes == [
        mid("110000000000000005")]
    assert len(dec.decode(SSEvent("status.update", json.dumps(mastodon_status(3))), "m").posts) == 1
    assert dec.decode(SSEvent("notification", "{}"), "m").posts == []
    assert dec.decode(SSEvent("update", "{nope"), "m").error.startswith("json:")
    empty = dict(mastodon_status(4), content="<p></p>", media_attachments=[{"type": "image"}])
    assert dec.decode(SSEvent("update", json.dumps(empty)), "m").skipped == 1
    assert "created_at" in dec.decode(SSEvent("update", json.dumps(
        dict(mastodon_status(5), created_at=None))), "m").error


def test_stream_paths_need_the_right_arguments():
    assert MastodonStream("https://m.example", stream="hashtag:local", tag="#flood").url \
        == "https://m.example/api/v1/streaming/hashtag/local"
    with pytest.raises(ValueError):
        MastodonStream("https://m.example", stream="hashtag")
    with pytest.raises(ValueError):
        MastodonStream("https://m.example", tag="flood")


def test_stream_reconnects_with_last_event_id_and_stores_what_was_sent(store, clock):
    statuses = [mastodon_status(i) for i in range(30)]
    boost = mastodon_status(30, reblog=statuses[4])
    ev = [sse("update", json.dumps(s), str(n)) for n, s in enumerate(statuses)]
    acts = [
        Status(502, b'{"error": "bad gateway"}'),
        Stream([sse(None)] + ev[:12], end="cut", tail=b"id: 12\nevent: upd",
               content_type="text/event-stream"),
        # The server resumes after the last id it was told (and repeats one event).
        Stream(ev[11:20] + [sse("delete", statuses[3]["id"], "d1"), sse("update", json.dumps(boost),
               "30")], end="close", content_type="text/event-stream"),
        Stream(ev[20:] + [sse("delete", statuses[25]["id"], "d2")], end="hold",
               content_type="text/event-stream"),
    ]

    async def main():
        async with HttpFake("/api/v1/streaming/hashtag", acts) as fake:
            # The instance is mastodon.example (its ids); its streaming API is the fake.
            src = MastodonStream(f"https://{HOST}", streaming_url=fake.url, stream="hashtag",
                                 tag="riverton", name="mastodon",
                                 token=Credential.from_env("M", {"M": "tok"}))
            stats = await run_until(Collector(src, store, clock=clock), lambda s: s.deletes == 2)
            return fake, stats

    fake, stats = asyncio.run(main())
    want = {mid(s["id"]) for s in statuses} | {mid(boost["id"])}
    assert stored_ids(store) == sorted(want - {mid(statuses[3]["id"]), mid(statuses[25]["id"])})
    reqs = fake.stream_requests()
    assert [r.headers.get("last-event-id") for r in reqs] == [None, None, "11", "30"]
    assert all(r.query == {"tag": ["riverton"]} and r.headers["authorization"] == "Bearer tok"
               for r in reqs)
    assert clock.sleeps == [5.0, 0.0, 0.0]
    assert stats.keepalives == 1 and stats.partial_frames == 1
    assert store.get(mid(boost["id"])).repost_of_id == mid(statuses[4]["id"])
