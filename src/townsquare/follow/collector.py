"""The collector loop: read a source, batch its posts, write them through the store.

    >>> import asyncio
    >>> from townsquare.follow.ndjson import NDJSONStream
    >>> from townsquare.store.sqlite import SQLiteStore
    >>> import io
    >>> lines = io.BytesIO(b'{"id": "1212092628029698048", "text": "Levee holding", '
    ...                    b'"created_at": "2019-12-31T18:30:00.000Z"}\\nnot json\\n')
    >>> store = SQLiteStore(":memory:")
    >>> stats = asyncio.run(Collector(NDJSONStream.from_file(lines, name="demo"), store).run())
    >>> stats.posts, stats.quarantined, store.count()
    (1, 1, 1)

Two tasks share a bounded queue: the reader takes frames off the network (decoding and
normalizing them), the writer gathers them into batches (``batch_size`` posts, or whatever
arrived within ``max_delay_s`` of a batch's first frame) and commits each batch in a worker
thread, so the network is read while the store writes.

- Writes: posts through ``write_batch`` (the same upsert as ``townsquare ingest``: a post
  delivered twice is stored once, a deleted id is never brought back), frames that cannot be
  read into the quarantine with the source, a position (Jetstream's ``time_us``, else the frame's
  number in this run) and the reason, then the batch's deletes through ``delete``. Posts first,
  deletes second: a post and its deletion in one batch end deleted.
- Backpressure: the queue holds at most ``queue_frames`` frames, so memory stays bounded when
  the store is slower than the stream. ``overflow="block"`` (the default) never drops: the
  reader stops reading, TCP pushes back on the server, and a server that gives up on a slow
  client disconnects it (the source then resumes from its cursor, or X's backfill).
  ``overflow="drop-oldest"`` keeps reading and drops the oldest queued frame instead, counted in
  ``stats.dropped``: for live dashboards that prefer fresh posts over complete ones.
- Stop: set the ``stop`` event (the CLI does on SIGTERM and SIGINT). The reader is cancelled at
  once (a frame half received is lost and comes again after a restart where the source resumes),
  everything already received is written, the last position is committed, and ``run`` returns.
- The source's resume position (``Source.committed``) advances only after a batch committed, so
  a crash re-reads frames instead of skipping them.
- Health: ``stats`` (``SourceStats``), published to ``stats_path`` every ``stats_every_s`` and
  at the stop, for ``townsquare stats`` and ``/v1/stats`` (``townsquare.follow.stats``). Logs go
  to the ``townsquare.follow`` logger with ``event``, ``source`` and ``kind`` (and figures) as
  record attributes, for a JSON formatter to emit as fields.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from townsquare.follow.backoff import Clock, SystemClock
from townsquare.follow.source import Decoded, Link, Source
from townsquare.follow.stats import SourceStats, write_stats
from townsquare.posts import PostError, format_time
from townsquare.store.base import Quarantined, Stored, WriteResult

log = logging.getLogger("townsquare.follow")

OVERFLOW = ("block", "drop-oldest")


class PostSink(Protocol):
    """Where posts go: a ``Store`` is one (``serve`` adapts its write queue to it)."""

    def write_batch(self, posts: Sequence[Stored],
                    quarantined: Sequence[Quarantined]) -> WriteResult: ...

    def delete(self, ids: Iterable[int]) -> int: ...


@dataclass(slots=True)
class Committed:
    """What one batch wrote, for ``on_commit`` hooks (a late-stage trigger, the benchmark)."""

    ids: list[int]
    deleted: list[int]
    result: WriteResult
    at_s: float


@dataclass(slots=True)
class _Frame:
    """A frame on the queue: its posts normalized, its bad parts as quarantine records."""

    posts: list[Stored]
    bad: list[Quarantined]
    deletes: list[int]
    position: int | None


_END = object()


@dataclass(slots=True)
class _Batch:
    posts: list[Stored] = field(default_factory=list)
    bad: list[Quarantined] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)
    position: int | None = None


class Collector:
    """Follows one source into one sink until stopped (or until a finite source ends)."""

    def __init__(self, source: Source, sink: PostSink, *, batch_size: int = 1000,
                 max_delay_s: float = 0.2, queue_frames: int = 10_000,
                 overflow: str = "block", clock: Clock | None = None,
                 logger: logging.Logger | None = None,
                 on_commit: Callable[[Committed], None] | None = None,
                 stats_path: str | Path | None = None, stats_every_s: float = 5.0):
        if batch_size < 1 or queue_frames < 1:
            raise ValueError("batch_size and queue_frames must be >= 1")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {max_delay_s}")
        if overflow not in OVERFLOW:
            raise ValueError(f"unknown overflow {overflow!r}; one of {', '.join(OVERFLOW)}")
        self.source = source
        self.sink = sink
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.queue_frames = queue_frames
        self.overflow = overflow
        self.clock = clock or SystemClock()
        self.on_commit = on_commit
        self.stats_path = Path(stats_path) if stats_path is not None else None
        self.stats_every_s = stats_every_s
        self.stats = SourceStats(source=source.name, kind=source.kind, locator=source.locator)
        self.link = Link(self.clock, self.stats, logger or log)
        self._frame_no = 0
        self._run_file = source.locator

    def snapshot(self) -> dict:
        """The stats as ``townsquare stats`` and ``/v1/stats`` show them."""
        return self.stats.to_dict(self.clock.time())

    async def run(self, stop: asyncio.Event | None = None) -> SourceStats:
        """Follow until ``stop`` is set or the source ends; everything received is written
        before this returns. Raises what stopped the source (``FollowError``) after the flush."""
        stop = stop or asyncio.Event()
        started = self.clock.time()
        # Frames without a position of their own are numbered per run: the run's start time
        # in the quarantine's file column keeps two runs' frame numbers apart.
        self._run_file = f"{self.source.locator}@{format_time(int(started * 1000))}"
        queue: asyncio.Queue = asyncio.Queue(self.queue_frames)
        reader = asyncio.create_task(self._read(queue), name=f"follow-read-{self.source.name}")
        writer = asyncio.create_task(self._write(queue), name=f"follow-write-{self.source.name}")
        stopper = asyncio.create_task(stop.wait())
        publisher = asyncio.create_task(self._publish())
        try:
            await asyncio.wait({reader, writer, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done():                  # only a failed write ends the writer early
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                writer.result()
            if not reader.done():
                reader.cancel()
            (failure,) = await asyncio.gather(reader, return_exceptions=True)
            if self.stats.connected:         # a stop cancels the session: it is over all the same
                self.stats.on_disconnect(None)
            await queue.put(_END)
            await writer
        finally:
            for t in (stopper, publisher, reader, writer):
                t.cancel()
        self._write_stats()
        self.link.event(logging.INFO, "stopped", f"{self.source.name}: stopped after "
                        f"{self.stats.posts} posts, {self.stats.deletes} deletes",
                        **{k: v for k, v in self.snapshot().items()
                           if k in ("posts", "deletes", "quarantined", "dropped", "reconnects")})
        if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
            raise failure
        return self.stats

    async def _publish(self) -> None:
        while self.stats_path is not None:
            self._write_stats()
            await asyncio.sleep(self.stats_every_s)

    def _write_stats(self) -> None:
        if self.stats_path is None:
            return
        try:
            write_stats(self.stats_path, self.snapshot(), self.clock.time())
        except OSError as e:
            self.link.event(logging.WARNING, "stats-unwritten",
                            f"{self.source.name}: cannot write {self.stats_path}: {e}")

    # --- reader -----------------------------------------------------------------------------------
    async def _read(self, queue: asyncio.Queue) -> None:
        stats = self.stats
        async for decoded in self.source.frames(self.link):
            stats.on_event(self.clock.time(), decoded.source_ms)
            if decoded.notice:
                self.link.event(logging.WARNING, "notice", f"{self.source.name}: {decoded.notice}")
            frame = self._prepare(decoded)
            if self.overflow == "drop-oldest":
                while queue.full():
                    queue.get_nowait()
                    stats.dropped += 1
                queue.put_nowait(frame)
            else:
                await queue.put(frame)
            stats.queue_depth = queue.qsize()

    def _prepare(self, d: Decoded) -> _Frame:
        self._frame_no += 1
        if d.position is not None:
            file, line = self.source.locator, d.position
        else:
            file, line = self._run_file, self._frame_no
        posts: list[Stored] = []
        errors = [d.error] if d.error else []
        for p in d.posts:
            try:
                p.normalized()
            except PostError as e:
                errors.append(f"post {p.id}: {e}" if len(d.posts) > 1 else str(e))
                continue
            posts.append(Stored(p, file, line))
        self.stats.skipped += d.skipped
        bad = ([Quarantined(self.source.name, file, line, "; ".join(errors), d.raw)]
               if errors else [])
        return _Frame(posts, bad, d.deletes, d.position)

    # --- writer -----------------------------------------------------------------------------------
    async def _write(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        ended = False
        while not ended:
            item = await queue.get()
            if item is _END:
                return
            batch = _Batch()
            self._add(batch, item)
            deadline = loop.time() + self.max_delay_s
            while len(batch.posts) < self.batch_size:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    wait = deadline - loop.time()
                    if wait <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), wait)
                    except TimeoutError:
                        break
                if item is _END:
                    ended = True
                    break
                self._add(batch, item)
            self.stats.queue_depth = queue.qsize()
            await self._commit(batch)

    @staticmethod
    def _add(batch: _Batch, frame: _Frame) -> None:
        batch.posts.extend(frame.posts)
        batch.bad.extend(frame.bad)
        batch.deletes.extend(frame.deletes)
        if frame.position is not None:
            batch.position = frame.position

    async def _commit(self, batch: _Batch) -> None:
        result, deleted = await asyncio.to_thread(self._write_sync, batch)
        now = self.clock.time()
        stats = self.stats
        stats.on_written(result.inserted + result.updated + result.unchanged, now)
        stats.inserted += result.inserted
        stats.quarantined += result.quarantined
        stats.deletes += len(batch.deletes)
        self.link.event(logging.DEBUG, "batch", f"{self.source.name}: wrote {len(batch.posts)} "
                        f"posts, {len(batch.deletes)} deletes",
                        inserted=result.inserted, unchanged=result.unchanged,
                        quarantined=result.quarantined, deleted=deleted)
        if self.on_commit is not None:
            self.on_commit(Committed([s.post.id for s in batch.posts], batch.deletes, result, now))

    def _write_sync(self, batch: _Batch) -> tuple[WriteResult, int]:
        result = (self.sink.write_batch(batch.posts, batch.bad) if batch.posts or batch.bad
                  else WriteResult())
        deleted = self.sink.delete(batch.deletes) if batch.deletes else 0
        if batch.position is not None:
            self.source.committed(batch.position)
        return result, deleted
