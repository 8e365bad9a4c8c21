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
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from townsquare.api.loops import Loop, StepErrors
from townsquare.protocols import Embedder, VectorIndex
from townsquare.services.indexes import lexical_index, vector_index
from townsquare.store.base import Store


class _LockedVectors:
    """The vector index shared by request threads: faiss must not be searched while it grows."""

    def __init__(self, vectors: VectorIndex, lock: threading.Lock):
        self._v, self._lock = vectors, lock

    @property
    def model(self) -> str | None:
        return self._v.model

    def __len__(self) -> int:
        return len(self._v)

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            return self._v.search(q, k)

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
        self.refresh_ms: deque[float] = deque(maxlen=1000)   # recent tantivy refreshes

    def shared_vectors(self) -> VectorIndex | None:
        """The vector index for request threads to search (None: none beside the store)."""
        return _LockedVectors(self.vectors, self.vectors_lock) if self.vectors else None

    def refresh(self) -> dict[str, int]:
        """What search reads: new posts into the tantivy index, new vectors into faiss."""
        did = {"lexical": 0, "vectors": 0}
        if self.lexical is not None:
            t0 = time.perf_counter()
            did["lexical"] = self.lexical.refresh()
            if did["lexical"]:
                self.refresh_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        if self.vectors is not None:
            with self.vectors_lock:
                did["vectors"] = self.vectors.refresh()
        return did

    def lag(self, newest: int) -> int:
        """Posts up to ``newest`` (a store sequence number) the tantivy index lacks."""
        return self.lexical.lag(newest) if self.lexical else 0

    def refresh_stats(self) -> dict[str, float]:
        """Duration of recent lexical index refreshes (what bounds search freshness)."""
        v = sorted(self.refresh_ms)
        if not v:
            return {"count": 0}
        return {"count": len(v), "p50_ms": v[len(v) // 2], "p99_ms": v[int(0.99 * (len(v) - 1))],
                "max_ms": v[-1]}

    def run(self) -> None:
        last_checkpoint = time.monotonic()
        while not self.stopping:
            t0 = time.monotonic()
            self.errors.guarded(self.refresh)
            if time.monotonic() - last_checkpoint > self.checkpoint_s:
                self.errors.guarded(self.store.checkpoint)    # flush the write-ahead log
                last_checkpoint = time.monotonic()
            self.sleep(self.refresh_s - (time.monotonic() - t0))

    def close(self) -> None:
        """After ``join`` (and after the writer closed): the tantivy writer finishes, then the
        connection closes."""
        if self.lexical is not None:
            self.lexical.close()
        self.store.close()
