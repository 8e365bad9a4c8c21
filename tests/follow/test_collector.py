"""The collector loop with an in-memory source: batching, backpressure and its drop policy,
the clean stop, the committed position, stats and structured logs."""
from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from tests.follow.conftest import run_until, stored_ids
from tests.follow.fakes import snowflake
from townsquare.follow import Collector, Committed, Decoded, FollowError, Link
from townsquare.posts import Post
from townsquare.store.sqlite import SQLiteStore

T0 = 1_700_000_000_000


def post(i: int) -> Post:
    return Post(id=snowflake(T0 + i, i), text=f"Levee report {i}", source="mem",
                created_at=T0 + i)


class MemorySource:
    """Yields ``frames`` (then waits forever unless ``finite``); records committed positions."""

    kind = "memory"
    name = "mem"
    locator = "memory:test"

    def __init__(self, frames: list[Decoded], *, finite: bool = False, gap_s: float = 0.0):
        self._frames = frames
        self.finite = finite
        self.gap_s = gap_s
        self.positions: list[int] = []
        self.sent = 0

    def committed(self, position: int) -> None:
        self.positions.append(position)

    async def frames(self, link: Link):
        for f in self._frames:
            self.sent += 1
            yield f
            if self.gap_s:
                await asyncio.sleep(self.gap_s)
        if not self.finite:
            await asyncio.Event().wait()


class SlowStore:
    """A sink that takes ``delay_s`` per write (a store slower than the stream)."""

    def __init__(self, store: SQLiteStore, delay_s: float):
        self.store = store
        self.delay_s = delay_s

    def write_batch(self, posts, quarantined):
        time.sleep(self.delay_s)
        return self.store.write_batch(posts, quarantined)

    def delete(self, ids):
        return self.store.delete(ids)


def test_batches_by_count_and_commits_positions(store):
    frames = [Decoded(posts=[post(i)], position=1000 + i) for i in range(250)]
    commits: list[Committed] = []
    src = MemorySource(frames, finite=True)
    stats = asyncio.run(Collector(src, store, batch_size=100, max_delay_s=5,
                                  on_commit=commits.append).run())
    assert [len(c.ids) for c in commits] == [100, 100, 50]
    assert src.positions == [1099, 1199, 1249]
    assert stats.posts == stats.inserted == 250 and store.count() == 250
    assert stats.batches == 3


def test_batches_by_time(store):
    frames = [Decoded(posts=[post(i)]) for i in range(4)]
    commits: list[Committed] = []
    src = MemorySource(frames, finite=True, gap_s=0.1)
    asyncio.run(Collector(src, store, batch_size=1000, max_delay_s=0.01,
                          on_commit=commits.append).run())
    # A frame waits at most 10 ms for company, not for a batch of 1,000 (a busy machine may
    # still delay the writer enough to let two frames meet).
    assert len(commits) >= 3


def test_block_policy_bounds_the_queue_and_drops_nothing(store):
    frames = [Decoded(posts=[post(i)]) for i in range(60)]
    src = MemorySource(frames, finite=True)
    depths = []
    c = Collector(src, SlowStore(store, 0.02), batch_size=5, queue_frames=4, max_delay_s=0,
                  on_commit=lambda _: depths.append(c.stats.queue_depth))
    stats = asyncio.run(c.run())
    assert max(depths) <= 4 and stats.dropped == 0 and store.count() == 60


def test_drop_oldest_policy_counts_what_it_drops(store):
    frames = [Decoded(posts=[post(i)]) for i in range(200)]
    src = MemorySource(frames, finite=True)
    stats = asyncio.run(Collector(src, SlowStore(store, 0.02), batch_size=5, queue_frames=4,
                                  max_delay_s=0, overflow="drop-oldest").run())
    assert stats.dropped > 0
    assert store.count() + stats.dropped == 200          # every frame stored or counted
    assert stats.frames == 200


def test_clean_stop_writes_everything_received(store):
    frames = [Decoded(posts=[post(i)], position=i) for i in range(30)]
    src = MemorySource(frames)                         # then silence, as a quiet stream

    async def main():
        c = Collector(src, SlowStore(store, 0.01), batch_size=4, max_delay_s=1)
        return await run_until(c, lambda s: s.frames == 30)

    stats = asyncio.run(main())
    assert store.count() == 30 and stats.posts == 30
    assert src.positions[-1] == 29


def test_posts_and_deletes_in_one_batch_end_deleted(store):
    p = post(1)
    frames = [Decoded(posts=[p]), Decoded(deletes=[p.id]), Decoded(posts=[post(1)])]
    stats = asyncio.run(Collector(MemorySource(frames, finite=True), store).run())
    assert store.count() == 0 and stats.deletes == 1
    assert p.id in store.deleted_ids()


def test_bad_frames_and_posts_are_quarantined(store):
    frames = [Decoded(error="json: unexpected end", raw="{"),
              Decoded(posts=[post(1), Post(id=snowflake(T0, 2), text="  ", source="mem")],
                      position=77),
              Decoded(skipped=2)]
    stats = asyncio.run(Collector(MemorySource(frames, finite=True), store).run())
    assert stats.quarantined == 2 and stats.skipped == 2 and store.count() == 1
    items = sorted(store.quarantine_items(), key=lambda q: q.line)
    assert [(q.line, q.reason) for q in items] == [
        (1, "json: unexpected end"), (77, f"post {snowflake(T0, 2)}: text: empty text")]
    assert items[0].file.startswith("memory:test@") and items[1].file == "memory:test"


def test_a_failed_write_stops_the_collector(store):
    class Broken:
        def write_batch(self, posts, quarantined):
            raise OSError("disk full")

        def delete(self, ids):
            return 0

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(Collector(MemorySource([Decoded(posts=[post(1)])]), Broken()).run())


def test_a_source_error_is_raised_after_the_flush(store):
    class Failing(MemorySource):
        async def frames(self, link):
            yield Decoded(posts=[post(1)])
            raise FollowError("mem: HTTP 401")

    with pytest.raises(FollowError):
        asyncio.run(Collector(Failing([]), store).run())
    assert stored_ids(store) == [post(1).id]


def test_stats_and_structured_logs(store, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="townsquare.follow")
    frames = [Decoded(posts=[post(i)], source_ms=T0 - 1000 + i) for i in range(3)]
    during: list[dict] = []

    class Watched(MemorySource):                # what stats said while the session was open
        async def frames(self, link):
            async for f in super().frames(link):
                yield f
            during.append(link.stats.to_dict(clock.time()))

    c = Collector(Watched(frames, finite=True), store, clock=clock)
    c.stats.on_connect(clock.time())
    asyncio.run(c.run())
    assert during[0]["connected"] and during[0]["connected_since"] == "2023-11-14T22:13:20.000Z"
    d = c.snapshot()
    json.dumps(d)
    assert d["posts"] == 3 and d["lag_ms"] == 998   # the last event was 998 ms old
    # the run is over: the session ended with it (serve's and follow's stats say "not connected")
    assert not d["connected"] and d["connected_since"] is None
    assert d["posts_per_s"] == 0.3
    assert set(d) >= {"connected_since", "posts_per_s", "last_event", "lag_ms", "reconnects",
                      "quarantined", "dropped"}
    (done,) = [r for r in caplog.records if getattr(r, "event", None) == "stopped"]
    assert done.source == "mem" and done.kind == "memory" and done.posts == 3


def test_arguments_are_checked(store):
    src = MemorySource([])
    for kw in ({"batch_size": 0}, {"queue_frames": 0}, {"max_delay_s": -1},
               {"overflow": "drop-newest"}):
        with pytest.raises(ValueError):
            Collector(src, store, **kw)


def test_stats_are_published_for_other_processes(store, clock, tmp_path):
    from townsquare.follow.stats import read_stats
    path = tmp_path / "follow" / "mem.stats.json"
    frames = [Decoded(posts=[post(i)]) for i in range(5)]
    asyncio.run(Collector(MemorySource(frames, finite=True), store, clock=clock,
                          stats_path=path).run())
    (snap,) = read_stats(path.parent, clock.time())
    assert snap["source"] == "mem" and snap["posts"] == 5 and not snap["stale"]
    assert snap["connected"] is False
    assert read_stats(path.parent, clock.time() + 60)[0]["stale"]
