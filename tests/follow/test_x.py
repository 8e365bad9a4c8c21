"""X's filtered stream against a local fake: frames, rules, reconnects, back-off, backfill, and
the bearer token kept out of logs and errors."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest

from tests.follow.conftest import run_until, stored_ids
from tests.follow.fakes import (
    FIXTURES,
    HttpFake,
    Status,
    Stream,
    line,
    x_delete_frame,
    x_fixture_frames,
    x_synthetic_frame,
)
from townsquare.follow import Collector, Credential, FollowError, Rule, XRules, XStream
from townsquare.follow.x import RULES_PATH, STREAM_PATH, decode_x_frame

TOKEN = "test-bearer-s3cret"


def token() -> Credential:
    return Credential.from_env("X_BEARER_TOKEN", {"X_BEARER_TOKEN": TOKEN})


def test_fixture_frames_read_like_ingest_reads_v2_pages():
    page = json.loads((FIXTURES / "v2_sample.json").read_text())
    frames = x_fixture_frames()
    posts = [p for f in frames for p in decode_x_frame(json.dumps(f).encode(), "x").posts]
    data_ids = {int(t["id"]) for t in page["data"]}
    assert data_ids <= {p.id for p in posts}
    first = decode_x_frame(json.dumps(frames[0]).encode(), "x")
    assert first.error is None and first.posts[0].author_handle
    assert first.posts[0].labels == {"rules": ["riverton"]}
    assert first.source_ms == first.posts[0].created_at


def test_error_objects_are_notices_and_bad_lines_are_errors():
    notice = decode_x_frame(b'{"errors": [{"title": "operational-disconnect", '
                            b'"detail": "This stream has been disconnected"}]}', "x")
    assert notice.notice and "operational-disconnect" in notice.notice and not notice.error
    assert decode_x_frame(b'{"data": {"id": "12"', "x").error.startswith("json:")
    bad = decode_x_frame(b'{"data": {"id": "abc", "text": "x"}}', "x")
    assert bad.error and not bad.posts
    assert decode_x_frame(json.dumps(x_delete_frame(1212092628029698048)).encode(),
                          "x").deletes == [1212092628029698048]


def test_stream_reconnects_as_x_documents_and_stores_what_was_sent(store, clock, caplog):
    frames = [x_synthetic_frame(i) for i in range(40)]
    ids = [int(f["data"]["id"]) for f in frames]
    deleted = {ids[3], ids[30]}
    cut = line(frames[10])[:25]
    acts = [
        Status(429, b'{"title": "Too Many Requests"}',
               {"x-rate-limit-reset": str(int(clock.now) + 100)}),
        Stream([line(f) for f in frames[:10]] + [b"\r\n"], end="cut", tail=cut),
        Status(503, b'{"title": "Service Unavailable"}'),
        Status(503),
        # After the reconnect: backfill re-delivers 8 and 9 (duplicates) and the cut frame 10.
        Stream([line(f) for f in frames[8:25]] + [line(x_delete_frame(ids[3])),
               b'{"errors": [{"title": "operational-disconnect"}]}\r\n'], end="close"),
        Stream([line(f) for f in frames[25:]] + [line(x_delete_frame(ids[30]))], end="hold"),
    ]
    caplog.set_level(logging.DEBUG, logger="townsquare.follow")

    async def main():
        async with HttpFake(STREAM_PATH, acts) as fake:
            source = XStream(token(), base_url=fake.url, backfill_minutes=3)
            c = Collector(source, store, clock=clock, batch_size=7)
            stats = await run_until(c, lambda s: s.deletes == 2)
            return fake, stats

    fake, stats = asyncio.run(main())
    assert stored_ids(store) == sorted(set(ids) - deleted)
    # 429 waits past its minute when X's reset time says so; an established stream that drops
    # is retried at once; 5xx doubles from 5 s.
    assert clock.sleeps == [100.0, 0.0, 5.0, 10.0, 0.0]
    assert stats.reconnects == 5 and stats.partial_frames == 1 and stats.keepalives == 1
    # 40 posts (8 and 9 twice, 10 only after its cut), 2 deletes and X's error object
    assert stats.frames == 10 + 17 + 1 + 1 + 15 + 1 and stats.deletes == 2
    reqs = fake.stream_requests()
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in reqs)
    assert "author_id" in reqs[0].query["expansions"][0]
    assert "created_at" in reqs[0].query["tweet.fields"][0]
    # Backfill only on a reconnect after data arrived, for the minutes missed (at least 1).
    assert [r.query.get("backfill_minutes") for r in reqs] == [None, None, ["1"], ["1"], ["1"],
                                                                ["1"]]
    assert TOKEN not in caplog.text
    assert any(getattr(r, "event", None) == "disconnected" and r.failure == "rate"
               for r in caplog.records)


def test_backfill_asks_for_the_minutes_missed_up_to_the_limit(clock):
    from townsquare.follow.source import Link
    from townsquare.follow.stats import SourceStats
    s = XStream(token(), backfill_minutes=2)
    link = Link(clock, SourceStats("x", "x", s.locator), logging.getLogger("t"))
    assert "backfill_minutes" not in s._params(link)
    s._last_frame_s = clock.mono - 61
    assert s._params(link)["backfill_minutes"] == "2"
    with pytest.raises(ValueError):
        XStream(token(), backfill_minutes=6)


def test_unauthorized_stops_with_an_error_that_names_no_secret(store, clock):
    async def main():
        async with HttpFake(STREAM_PATH, [Status(401, b'{"title": "Unauthorized"}')]) as fake:
            await Collector(XStream(token(), base_url=fake.url), store, clock=clock).run()

    with pytest.raises(FollowError) as e:
        asyncio.run(main())
    assert "401" in str(e.value) and TOKEN not in str(e.value)
    assert clock.sleeps == []


def test_missing_token_is_an_error_before_connecting(store, clock):
    async def main():
        async with HttpFake(STREAM_PATH, []) as fake:
            src = XStream(Credential.from_env("X_BEARER_TOKEN", {}), base_url=fake.url)
            await Collector(src, store, clock=clock).run()

    with pytest.raises(FollowError, match=r"\$X_BEARER_TOKEN is not set"):
        asyncio.run(main())
    assert "s3cret" not in repr(token())


def test_token_from_a_file(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert Credential.from_file(f).value() == TOKEN
    assert TOKEN not in repr(Credential.from_file(f))


def test_rules_add_list_delete():
    rules: dict[str, dict] = {}

    def handler(req):
        assert req.headers["authorization"] == f"Bearer {TOKEN}"
        if req.method == "GET":
            return Status(200, json.dumps({"data": list(rules.values()),
                                           "meta": {"result_count": len(rules)}}).encode())
        body = req.json()
        if "add" in body:
            created, errors = [], []
            for r in body["add"]:
                if any(x["value"] == r["value"] for x in rules.values()):
                    errors.append({"value": r["value"], "title": "DuplicateRule"})
                    continue
                rule = {"id": str(1000 + len(rules)), **r}
                created.append(rule)
                if req.query.get("dry_run") != ["true"]:
                    rules[rule["id"]] = rule
            return Status(201, json.dumps({"data": created, "errors": errors}).encode())
        gone = [i for i in body["delete"]["ids"] if rules.pop(i, None)]
        return Status(200, json.dumps({"meta": {"summary": {"deleted": len(gone)}}}).encode())

    async def main():
        async with HttpFake(STREAM_PATH, [], {RULES_PATH: handler}) as fake:
            api = XRules(token(), base_url=fake.url)
            created, errors = await api.add([Rule("flood lang:en", "flood"), Rule("levee")])
            assert [r.value for r in created] == ["flood lang:en", "levee"] and not errors
            _, errors = await api.add([Rule("levee")])
            assert errors == ["DuplicateRule: levee"]
            created, _ = await api.add([Rule("dry")], dry_run=True)
            assert created and "dry" not in {r.value for r in await api.list()}
            listed = await api.list()
            assert {(r.value, r.tag) for r in listed} == {("flood lang:en", "flood"),
                                                          ("levee", None)}
            assert await api.delete([listed[0].id]) == 1
            assert len(await api.list()) == 1

    asyncio.run(main())


def test_rules_errors_are_follow_errors():
    async def main():
        async with HttpFake(STREAM_PATH, [], {RULES_PATH: lambda r: Status(
                403, b'{"title": "Client Forbidden", "detail": "wrong access level"}')}) as fake:
            await XRules(token(), base_url=fake.url).list()

    with pytest.raises(FollowError, match="403: Client Forbidden: wrong access level"):
        asyncio.run(main())
