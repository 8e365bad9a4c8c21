"""What one server process shares between its request threads: one writer, readers, and derived
indexes kept fresh in the background.

    >>> import tempfile
    >>> from townsquare.posts import Post
    >>> from townsquare.settings import LLMSettings, Settings
    >>> from townsquare.store.base import Stored
    >>> settings = Settings(home=tempfile.mkdtemp(), llm=LLMSettings(backend="extractive"))
    >>> with Runtime(settings) as rt:
    ...     r = rt.writer.write([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                      source="api").normalized())]).result()
    ...     (r.inserted, rt.services.engine().run("flood", mode="latest").results[0].id)
    (1, 1212092628029698048)

Threads and connections (SQLite in WAL mode: one writer, any number of readers), each part in a
module of its own:

- **Writer** (``writer``, ``api.writequeue``): the only connection that writes. Request threads
  hand it parsed posts and wait for their commit; whatever arrived meanwhile is written in the
  same transaction (group commit), so many small ingest requests cost about as much as one.
  The process holds the home's writer lock (``store.lock``) from start to close: no other process
  writes an embedded home while it serves it.
- **Readers** (``services``, ``api.perrequest``): one connection per request thread, each with
  its own search engine over the shared derived indexes; the generation backends, cached
  summaries and ad servers.
- **Indexer** (``indexer``, ``api.indexer``): a thread that catches the tantivy index and the
  vector index up every ``refresh_s``; this bounds ingest-to-searchable freshness.
- **Followers** (``followers``, ``api.follow``): live streams (``serve --follow``), each a
  collector in one event loop on a thread of its own, writing through the writer.
- **Background** (``background``, ``api.background``): a thread that runs, in small steps and
  within ``background_share`` of the wall clock while behind, the late stage (language id,
  near-duplicate links), embeddings and stories; in server mode only in the leader process,
  which shares its stories with the others through the store.

**Server mode** (``settings.server_mode``: a PostgreSQL store): several processes, on one machine
or several, serve one store. Search needs no derived index there: full text and the HNSW vector
index live in PostgreSQL, current at commit, so every process sees every post at once; API keys'
rate limits are kept in the store too (``api.auth.SharedRateLimiter``).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from townsquare.api.background import Background
from townsquare.api.follow import Followers
from townsquare.api.indexer import Indexer
from townsquare.api.loops import StepErrors
from townsquare.api.perrequest import RequestServices
from townsquare.api.statscache import StoreCounts
from townsquare.api.writequeue import WriteQueue
from townsquare.follow import Source
from townsquare.services.indexes import embedder_for
from townsquare.settings import Settings
from townsquare.store import open_store
from townsquare.store.lock import LOCK_FILE, WriterLock


class Runtime:
    """Shared state of a server process over the store in ``settings``.

    ``embed``: embed new posts in the background (default: when the store already holds
    vectors); ``refresh_s``: the indexer's period (search freshness); ``story_step`` and
    ``embed_step``: posts clustered (and language-identified), and embedded, per background step;
    ``background_share``: the most of the wall clock the background work takes while behind;
    ``save_every_s``: how often the stories are saved; ``start=False``: no threads (tests step
    the indexer and the background work themselves with ``step``); ``follow``: live streams to
    follow into the writer, (source, ``Collector`` options) pairs (``api.follow``).
    """

    def __init__(self, settings: Settings, *, embed: bool | None = None, refresh_s: float = 0.2,
                 story_step: int = 200, embed_step: int = 256, background_share: float = 0.15,
                 save_every_s: float = 60.0, start: bool = True,
                 follow: Sequence[tuple[Source, Mapping[str, Any]]] = ()):
        if refresh_s <= 0:
            raise ValueError(f"refresh_s must be > 0, got {refresh_s}")
        if story_step < 1 or embed_step < 1:
            raise ValueError("story_step and embed_step must be >= 1")
        if not 0 < background_share <= 1:
            raise ValueError(f"background_share must be in (0, 1], got {background_share}")
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        # One process writes an embedded home (``store.lock``): the server holds its writer lock
        # for its whole life, so a CLI writer started meanwhile is told so at once, instead of
        # relinking near-duplicates or refreshing the tantivy index under it.
        self._lock = (None if settings.server_mode
                      else WriterLock(settings.home / LOCK_FILE, session=True))
        if self._lock is not None:
            self._lock.acquire()
        self._closed = False
        self.started_at = time.time()
        self.errors = StepErrors()                 # failed indexer and background steps
        wstore = open_store(settings.db_target)
        # Commits never wait for a log flush: the indexer copies the log back (PASSIVE) on a
        # timer; the writer truncates it after ~1 s without writes, or at once past its limit.
        wstore.set_autocheckpoint(False)
        self.writer = WriteQueue(wstore, max_group=5_000)
        index_store = open_store(settings.db_target)
        # The fast tier's model (fit-e5) tokenizes in a process of its own, off this one's GIL
        # (``embed.fastproc``)
        embedder = (embedder_for(index_store, settings, fast_process=True)
                    if index_store.embed_model() is not None else None)
        self.indexer = Indexer(index_store, settings.home, embedder, self.errors,
                               refresh_s=refresh_s)
        self.background = Background(settings, embedder, self.errors, embed=embed,
                                     story_step=story_step, embed_step=embed_step,
                                     background_share=background_share,
                                     save_every_s=save_every_s, idle_wait_s=refresh_s)
        self.services = RequestServices(settings, self.indexer, embedder)
        # /v1/stats's per-source, language and day counts (full scans): a copy of bounded age
        self.counts = StoreCounts(lambda: open_store(settings.db_target))
        self.followers = Followers(follow, self.writer, settings.home)
        if start:
            self.start()

    @property
    def server_mode(self) -> bool:
        return self.settings.server_mode

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the indexer and background threads, and the followed streams (once)."""
        self.indexer.start()
        self.background.start()
        self.followers.start()
        self.counts.refresh()          # a first copy of the counts, before /v1/stats asks

    def close(self) -> None:
        """Stop the threads, then commit what is queued, publish and save the stories, and close
        every connection (once: later calls do nothing, so a server's shutdown hook and its
        ``finally`` may both call it)."""
        if self._closed:
            return
        self._closed = True
        self.followers.close()         # first: what the streams received goes to the writer
        self.indexer.signal_stop()
        self.background.signal_stop()
        self.indexer.join()
        self.background.join()
        self.counts.wait(timeout=5.0)  # a refresh under way reads through its own connection
        self.writer.close()            # truncates the write-ahead log
        self.indexer.close()           # the indexer has stopped: its tantivy writer can finish
        self.background.close()
        self.services.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- across the parts -----------------------------------------------------------------------
    def touch(self) -> None:
        """A request arrived (the app calls this): background work keeps to its share."""
        self.background.touch()

    def lags(self, *, embedding_pending: int | None = None) -> dict[str, int]:
        """Posts each derived index has not caught up with yet (``embedding_pending``: the count
        when the caller has it)."""
        reader = self.services.reader()
        newest = reader.max_seq()
        if not self.background.embed:
            embedding_pending = 0
        return {"lexical_index": self.indexer.lag(newest, reader),
                "stories": self.background.lag(newest),
                "embedding": (reader.embedding_pending() if embedding_pending is None
                              else embedding_pending)}

    def stories_lag(self) -> int:
        """Posts the stories have not read yet (``lags()["stories"]`` alone)."""
        return self.background.lag(self.services.reader().max_seq())

    def step(self) -> dict[str, int]:
        """One full pass of the indexer, then of the background work; tests call it to make the
        derived state current."""
        return {**self.indexer.refresh(), **self.background.step()}
