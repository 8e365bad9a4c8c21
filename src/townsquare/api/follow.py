"""Live streams followed by the server (``townsquare serve --follow SOURCE``, several allowed).

    townsquare serve --follow bluesky --follow "mastodon https://mastodon.example --tag riverton"

Each source runs as a ``townsquare.follow.Collector`` in one event loop on a thread of its own
(the request threads never wait for a stream), and writes through the runtime's ``WriteQueue``
(``QueueSink``): the server's one writing connection, whose group commit merges the streams'
batches with the API's ingest requests. Posts are then searchable as the indexer catches up, as
for ``POST /v1/posts``; the late stage, embeddings and stories run in the runtime's background
work as for any other post.

Each collector publishes its health to ``HOME/follow/NAME.stats.json`` (``/v1/stats`` reads
them, with those of any ``townsquare follow`` process on the same home). A source that cannot go
on (HTTP 401) stops alone, with its error in its stats and in the log; the server goes on. On
shutdown every collector is stopped first and what it received is committed before the writer
closes (``Runtime.close``).

    >>> import io, tempfile
    >>> from townsquare.follow import NDJSONStream
    >>> from townsquare.store import open_store
    >>> from townsquare.api.writequeue import WriteQueue
    >>> home = tempfile.mkdtemp()
    >>> feed = io.BytesIO(b'{"id": "1212092628029698048", "text": "Levee holding", '
    ...                   b'"created_at": "2019-12-31T18:30:00.000Z"}\\n')
    >>> writer = WriteQueue(open_store(":memory:"))
    >>> f = Followers([(NDJSONStream.from_file(feed, name="demo"), {})], writer, home)
    >>> f.start(); f.join(); f.close()
    >>> writer.store.count(), [s["posts"] for s in f.snapshots()]
    (1, [1])
    >>> writer.close()
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from townsquare.api.writequeue import WriteQueue
from townsquare.follow import Collector, FollowError, Source
from townsquare.follow.stats import state_folder, stats_path
from townsquare.store.base import Quarantined, Stored, WriteResult

log = logging.getLogger("townsquare.follow")


class QueueSink:
    """A collector's ``PostSink`` over the server's write queue: each call waits for its commit
    (the collector calls from a worker thread, so its event loop keeps reading meanwhile)."""

    def __init__(self, writer: WriteQueue):
        self.writer = writer

    def write_batch(self, posts: Sequence[Stored],
                    quarantined: Sequence[Quarantined]) -> WriteResult:
        return self.writer.write(posts, quarantined).result()

    def delete(self, ids: Iterable[int]) -> int:
        return self.writer.delete(list(ids)).result()


class Followers:
    """The server's collectors: ``sources`` are (source, ``Collector`` keyword options) pairs;
    ``home`` is where their stats go (``HOME/follow``)."""

    def __init__(self, sources: Sequence[tuple[Source, Mapping[str, Any]]], writer: WriteQueue,
                 home: str | Path, *, stats_every_s: float = 2.0):
        names = [s.name for s, _ in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"two followed sources have the same name: {sorted(names)} "
                             "(give each its own --name)")
        folder = state_folder(home)
        sink = QueueSink(writer)
        self.collectors = [Collector(s, sink, stats_path=stats_path(folder, s.name),
                                     stats_every_s=stats_every_s, **dict(kw))
                           for s, kw in sources]
        self.errors: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start following (nothing to do without sources); returns once the loop runs."""
        if not self.collectors or self._thread is not None:
            return
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),),
                                        name="townsquare-follow", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def join(self, timeout_s: float | None = None) -> None:
        """Wait until every collector ended (finite sources; tests)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop every collector; returns once what they received is committed (or after
        ``timeout_s``)."""
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:                     # the loop ended meanwhile
                pass
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("followed sources did not stop within %g s", timeout_s,
                      extra={"event": "stop-timeout"})

    def snapshots(self) -> list[dict[str, Any]]:
        """Each collector's stats, as ``/v1/stats`` shows them."""
        return [c.snapshot() for c in self.collectors]

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await asyncio.gather(*(self._run(c) for c in self.collectors))

    async def _run(self, collector: Collector) -> None:
        name = collector.source.name
        try:
            await collector.run(self._stop)
        except FollowError as e:
            self.errors[name] = str(e)
            log.error("%s: stopped: %s", name, e, extra={"event": "source-stopped",
                                                         "source": name})
        except Exception as e:                    # noqa: BLE001 - one source, not the server
            self.errors[name] = f"{type(e).__name__}: {e}"
            log.exception("%s: failed", name, extra={"event": "source-failed", "source": name})
