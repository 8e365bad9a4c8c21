"""The indexer: a thread that catches the search indexes up with the store, every ``refresh_s``.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from townsquare.posts import Post
    >>> from townsquare.store import open_store
    >>> from townsquare.store.base import Stored
    >>> home = Path(tempfile.mkdtemp())
    >>> with open_store(home / "townsquare.db") as w:
    ...     w.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St",
    ...                                source="api").normalized())], []).inserted
    1
    >>> ix = Indexer(open_store(home / "townsquare.db"), home, None, StepErrors(), refresh_s=0.2)
    >>> ix.lag(1), ix.refresh(), ix.lag(1)
    (1, {'lexical': 1, 'vectors': 0}, 0)
    >>> ix.close()

Search reads two derived indexes beside an embedded store: tantivy (``top`` search; ``latest``
search reads SQLite's FTS5, current at commit) and the faiss vector index. Both are caught up
here, in a thread of their own, so that no slow background step (``api.background``) can delay
them: ``refresh_s`` bounds ingest-to-searchable freshness. Queries never write an index
(``SearchEngine(refresh_indexes=False)``); the indexer reads through its own connection (posts
since a watermark) and flushes SQLite's write-ahead log every ``checkpoint_s`` (the writer's
connection leaves that to it, so a commit never waits for a checkpoint).

A store that indexes itself (PostgreSQL: its GIN full-text and pgvector's HNSW indexes, current
at commit) needs neither index: the indexer then has nothing to catch up.

With a fast embedding tier (``embedder`` a ``TieredEmbedder``, ``embed.tiers``), the indexer
keeps ``tiers`` too, refreshed by a thread of its own (``FastTierLoop``, with its own
connection) every ``refresh_s``: it fast-embeds the posts that landed since, so that they are
found semantically within a refresh or two, long before the background's e5 stage reaches them,
and drops from the fast tier whatever the e5 index holds since. Its own thread, because under a
heavy stream the tantivy refresh takes seconds, and the fast tier must not wait for it (nor it
for the fast tier). The fast model loads on yet another thread when they start (a first
distillation takes minutes: search uses e5 alone meanwhile). The fitted model (``fit-e5``)
runs in a child process of its own (``embed.fastproc``, started by ``api.runtime``): the
thread sends each page's texts and waits on the pipe, so the model's tokenizing never holds
this process's GIL; the indexer's ``close`` ends the child. A test that steps the indexer
without its threads (``refresh``) refreshes the fast tier in the same call, loading the model
first.

Deletions reach search at the next refresh (each index reads the store's deletions log). Their
bytes go at the maintenance step (``services.maintenance``), which the indexer runs by itself:
once posts were deleted since its last run and no post was written or deleted for
``compact_idle_s`` (30 s), or, on a server that is never that idle, ``compact_max_wait_s``
(1 hour) after the first such deletion. Searches do not count as activity: they go on during
the step, on the indexes as they were. Refreshes wait for it (the step rewrites the tantivy
index: about as long as indexing every post again). The stories are the background's
(``api.background``): its next step removes the deleted posts and saves them.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from townsquare.api.loops import Loop, StepErrors
from townsquare.embed.sync import StoreVectors
from townsquare.embed.tiers import TieredEmbedder, TieredVectors
from townsquare.protocols import Embedder, Nearest, VectorIndex
from townsquare.services.freshness import publish_indexes, unpublish_indexes
from townsquare.services.indexes import lexical_index, vector_index
from townsquare.services.maintenance import compact_lexical, compact_vectors
from townsquare.settings import DB_FILE
from townsquare.store import open_store
from townsquare.store.base import Store


class _LockedVectors:
    """The vector index shared by request threads: faiss must not be searched while it grows."""

    def __init__(self, vectors: VectorIndex, lock: threading.Lock):
        self._v, self._lock = vectors, lock

    @property
    def model(self) -> str | None:
        return self._v.model

    @property
    def watermark(self) -> int | None:
        """The index file's watermark (what the fast tier reads to drop what e5 holds)."""
        return getattr(self._v, "watermark", None)

    def __len__(self) -> int:
        return len(self._v)

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            return self._v.search(q, k)

    def vectors_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._v.vectors_of(ids)

    def nearest(self, q: np.ndarray, k: int, max_seq: int | None = None, *,
                ef: int | None = None) -> Nearest:
        with self._lock:
            return self._v.nearest(q, k, max_seq, ef=ef)

    def refresh(self) -> int:
        with self._lock:
            return self._v.refresh()


class Indexer(Loop):
    """Keeps the tantivy index (``lexical``) and the vector index of ``embedder``'s vectors
    (``vectors``; none without an embedder) beside the store in ``home`` current. ``store`` is
    the indexer's own connection; ``close`` closes it."""

    name = "townsquare-indexer"

    def __init__(self, store: Store, home: Path, embedder: Embedder | None, errors: StepErrors,
                 *, refresh_s: float, checkpoint_s: float = 2.0):
        super().__init__()
        self.store = store
        self.home = Path(home)
        self.errors = errors
        self.refresh_s = refresh_s
        self.checkpoint_s = checkpoint_s
        self.lexical = lexical_index(store, home, keep_writer=True)
        # In the store (pgvector): nothing to catch up, and each request thread searches it
        # through its own connection (``perrequest``); a faiss file is shared, behind a lock.
        self.vectors: VectorIndex | None = (
            vector_index(store, home, embedder)
            if embedder is not None and not store.indexes_in_store else None)
        self.vectors_lock = threading.Lock()
        # The fast tier in front of it: searched by request threads (the e5 part behind the
        # lock, the fast index behind its own), refreshed by its own thread and connection.
        self.tiers: TieredVectors | None = None
        self.fast_loop: FastTierLoop | None = None
        if self.vectors is not None and isinstance(embedder, TieredEmbedder):
            self.tiers = TieredVectors(open_store(self.home / DB_FILE),
                                       _LockedVectors(self.vectors, self.vectors_lock),
                                       embedder.fast, e5_embedder=embedder.e5)
            self.fast_loop = FastTierLoop(self.tiers, errors, refresh_s=refresh_s)
        self.refresh_ms: deque[float] = deque(maxlen=1000)   # recent tantivy refreshes
        self.compact_idle_s = 30.0
        self.compact_max_wait_s = 3600.0
        self.compactions = 0                     # maintenance steps run, and the last one's report
        self.last_compaction: dict | None = None
        # Activity (the newest post seq, the deletions log's end) and when it last changed; None:
        # not compacted since start, so a first idle moment runs the step (cheap without work).
        self._activity = (-1, 0)
        self._active_at = time.monotonic()
        self._compacted: int | None = None       # the log's end at the last step
        self._due_since: float | None = None

    def shared_vectors(self) -> VectorIndex | None:
        """The vector index for request threads to search (None: none beside the store): both
        tiers when there is a fast one."""
        if self.tiers is not None:
            return self.tiers
        return _LockedVectors(self.vectors, self.vectors_lock) if self.vectors else None

    def refresh(self) -> dict[str, int]:
        """What search reads: new posts into the tantivy index, new vectors into faiss; and, when
        the fast tier's thread does not run (a test stepping the indexer), new posts into the
        fast tier (``vectors`` then counts both tiers' changes)."""
        did = {"lexical": 0, "vectors": 0}
        if self.lexical is not None:
            t0 = time.perf_counter()
            did["lexical"] = self.lexical.refresh(settle=False)
            if did["lexical"]:
                self.refresh_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        if self.vectors is not None:
            with self.vectors_lock:
                did["vectors"] = self.vectors.refresh()
        if self.tiers is not None and not (self.fast_loop and self.fast_loop.running):
            did["vectors"] += self.tiers.refresh_fast()
        return did

    def compaction_due(self, now: float | None = None) -> bool:
        """Whether the maintenance step should run now (see the module's docstring)."""
        now = time.monotonic() if now is None else now
        log_end = self._activity[1]
        while gone := self.store.deletions_since(log_end, 10_000):
            log_end = gone[-1][0]
        activity = (self.store.max_seq(), log_end)
        if activity != self._activity:
            self._activity, self._active_at = activity, now
        if self._compacted == log_end:
            self._due_since = None
            return False
        self._due_since = now if self._due_since is None else self._due_since
        return (now - self._active_at >= self.compact_idle_s
                or now - self._due_since >= self.compact_max_wait_s)

    def maintain(self) -> None:
        """Run the maintenance step when it is due."""
        if self.compaction_due():
            self.compact()

    def compact(self) -> dict:
        """The maintenance step for what this process keeps: the store, the tantivy index and
        the vector index (``services.maintenance``)."""
        t0 = time.perf_counter()
        log_end = self._activity[1]
        did: dict = {"store": self.store.compact(), "lexical_index": compact_lexical(self.lexical)}
        with self.vectors_lock:
            did["vectors"] = compact_vectors(self.vectors if isinstance(self.vectors, StoreVectors)
                                             else None)
        did["seconds"] = round(time.perf_counter() - t0, 3)
        self._compacted, self._due_since = log_end, None
        self.compactions += 1
        self.last_compaction = did
        return did

    def lag(self, newest: int, store: Store | None = None) -> int:
        """Posts up to ``newest`` (a store sequence number) the tantivy index lacks, read
        through ``store`` (a request thread's own connection; default the indexer's)."""
        return self.lexical.lag(newest, store) if self.lexical else 0

    def refresh_stats(self) -> dict[str, float]:
        """Duration of recent lexical index refreshes (what bounds search freshness)."""
        v = sorted(self.refresh_ms)
        if not v:
            return {"count": 0}
        return {"count": len(v), "p50_ms": v[len(v) // 2], "p99_ms": v[int(0.99 * (len(v) - 1))],
                "max_ms": v[-1]}

    def start(self) -> None:
        """The fast tier's thread, then the indexer's (whose refresh leaves the fast tier to
        it from then on)."""
        if self.fast_loop is not None:
            self.fast_loop.start()
        super().start()

    def signal_stop(self) -> None:
        super().signal_stop()
        if self.fast_loop is not None:
            self.fast_loop.signal_stop()

    def join(self, timeout: float = 30) -> None:
        super().join(timeout)
        if self.fast_loop is not None:
            self.fast_loop.join(timeout)

    def run(self) -> None:
        last_checkpoint, last_published = time.monotonic(), 0.0
        while not self.stopping:
            t0 = time.monotonic()
            self.errors.guarded(self.refresh)
            self.errors.guarded(self.maintain)
            if time.monotonic() - last_checkpoint > self.checkpoint_s:
                self.errors.guarded(self.store.checkpoint)    # flush the write-ahead log
                last_checkpoint = time.monotonic()
            if t0 - last_published >= 1.0:
                # for `townsquare stats`, which must not open this server's indexes
                self.errors.guarded(lambda: publish_indexes(self.home, self.lexical, self.tiers))
                last_published = t0
            self.sleep(self.refresh_s - (time.monotonic() - t0))
        self.errors.guarded(lambda: unpublish_indexes(self.home))

    def close(self) -> None:
        """After ``join`` (and after the writer closed): the tantivy writer finishes, then the
        connection closes."""
        if self.lexical is not None:
            self.lexical.close()
        if self.tiers is not None:
            self.tiers.fast_model.close()          # its process, when it has one
            self.tiers.store.close()
        self.store.close()


class FastTierLoop(Loop):
    """The fast tier's thread: loads the fast model beside it, then every ``refresh_s``
    fast-embeds what landed and lets go of what e5 holds (``TieredVectors.refresh_fast``)."""

    name = "townsquare-fast-tier"

    def __init__(self, tiers: TieredVectors, errors: StepErrors, *, refresh_s: float):
        super().__init__()
        self.tiers, self.errors, self.refresh_s = tiers, errors, refresh_s
        self.running = False          # set before the thread starts: the tier has one refresher

    def start(self) -> None:
        if not self.running:
            self.running = True
            self.tiers.wait_for_model = False      # the model loads beside this loop
            self.tiers.fast_model.start()
        super().start()

    def run(self) -> None:
        while not self.stopping:
            t0 = time.monotonic()
            self.errors.guarded(self.tiers.refresh_fast)
            self.sleep(self.refresh_s - (time.monotonic() - t0))
