"""NDJSON feeds: stdin (a pipe) until it ends, and HTTP with a cut line and an error answer."""
from __future__ import annotations

import asyncio
import json
import os
import threading

from tests.follow.conftest import run_until, stored_ids
from tests.follow.fakes import FIXTURES, HttpFake, Status, Stream, line, x_synthetic_frame
from townsquare.follow import Collector, NDJSONStream
from townsquare.follow.ndjson import decode_ndjson_line


def test_any_format_ingest_reads():
    v1 = json.loads((FIXTURES / "v1_sample.json").read_text())
    v2 = json.loads((FIXTURES / "v2_sample.json").read_text())
    assert len(decode_ndjson_line(json.dumps(v1[0]).encode(), "f").posts) >= 1
    page = decode_ndjson_line(json.dumps(v2).encode(), "f")
    assert {int(t["id"]) for t in v2["data"]} <= {p.id for p in page.posts}
    export = decode_ndjson_line(json.dumps(page.posts[0].to_dict()).encode(), "f")
    assert export.posts[0].id == page.posts[0].id
    assert decode_ndjson_line(b'{"hello": 1}', "f").error.startswith("format:")
    assert decode_ndjson_line(b'{"delete": {"status": {"id_str": "x"}}}', "f").error


def test_stdin_pipe_until_it_ends(store):
    v1 = json.loads((FIXTURES / "v1_sample.json").read_text())
    frames = [x_synthetic_frame(i) for i in range(20)]
    gone = int(frames[5]["data"]["id"])
    body = b"".join(line(f) for f in frames) + b"\n" + b"this is not json\n" + \
        b"".join(json.dumps(t).encode() + b"\n" for t in v1) + \
        json.dumps({"delete": {"status": {"id_str": str(gone)}}}).encode() + b"\n"
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as f:
            for i in range(0, len(body), 1000):         # arrives in pieces, lines split across
                f.write(body[i:i + 1000])
                f.flush()

    threading.Thread(target=feed).start()
    with os.fdopen(r, "rb") as f:
        stats = asyncio.run(Collector(NDJSONStream.from_file(f, name="pipe"), store).run())
    ids = stored_ids(store)
    assert {int(fr["data"]["id"]) for fr in frames} - {gone} <= set(ids)
    assert gone not in ids and stats.deletes == 1
    assert stats.quarantined == 1 and stats.keepalives == 1
    (q,) = store.quarantine_items()
    assert q.reason.startswith("json:") and q.raw == "this is not json"
    assert q.file.startswith("ndjson:stdin@") and q.line == 21
    assert {p.source for p in store.iter_posts()} == {"pipe"}


def test_http_feed_with_a_cut_line_and_an_error(store, clock):
    frames = [x_synthetic_frame(i) for i in range(30)]
    acts = [Stream([line(f) for f in frames[:10]], end="cut", tail=line(frames[10])[:30],
                   content_type="application/x-ndjson"),
            Status(500, b"oops"),
            Stream([line(f) for f in frames[10:]], end="hold")]

    async def main():
        async with HttpFake("/feed", acts) as fake:
            src = NDJSONStream.from_url(fake.url + "/feed?since=0", name="feed")
            return await run_until(Collector(src, store, clock=clock),
                                   lambda s: s.posts == 30)

    stats = asyncio.run(main())
    assert stored_ids(store) == sorted(int(f["data"]["id"]) for f in frames)
    assert stats.partial_frames == 1 and clock.sleeps == [0.0, 5.0]
    assert stats.locator.startswith("ndjson:http://") and stats.locator.endswith("/feed")
