"""The server's single writer: one thread owns the write connection and commits in groups.

    >>> from townsquare.store import open_store
    >>> from townsquare.posts import Post
    >>> from townsquare.store.base import Stored
    >>> q = WriteQueue(open_store(":memory:"))
    >>> q.write([Stored(Post(id=1212092628029698048, text="hi", source="api").normalized())]).result().statuses
    {1212092628029698048: 'inserted'}
    >>> q.delete([1212092628029698048]).result()
    1
    >>> q.close()

Why a queue: SQLite takes one writer at a time, and a transaction's fixed cost (the commit, the
FTS5 segment flush) dominates small batches. Requests that arrive while a transaction runs are
written together in the next one (group commit, as databases do for their logs), each request
still getting its own per-post statuses. Measured in ``bench/serve.py``.

The write-ahead log: once no request came for ``idle_s``, the writer asks the store for a
checkpoint, which truncates the log then (``SQLiteStore.checkpoint``); a commit that leaves the log
past its limit truncates it at once, and ``close`` truncates it last.
"""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Sequence

from townsquare.store.base import Quarantined, Store, Stored, WriteResult

log = logging.getLogger("townsquare.api")


class WriteQueue:
    """Serializes every write of a server process through one thread and one connection.

    ``max_group``: posts per transaction at most (several requests are merged up to it);
    ``idle_s``: how long without a write before the store checkpoints its log (the embedded store
    truncates it when no commit touched it for ``store.sqlite.WAL_IDLE_S``, 1 s).
    """

    def __init__(self, store: Store, *, max_group: int = 20_000, idle_s: float = 1.0):
        if max_group < 1:
            raise ValueError(f"max_group must be >= 1, got {max_group}")
        if idle_s <= 0:
            raise ValueError(f"idle_s must be > 0, got {idle_s}")
        self.store = store
        self.max_group = max_group
        self.idle_s = idle_s
        self._wrote = False                 # since the last idle checkpoint
        self._q: queue.Queue = queue.Queue()
        self._closed = False
        self.transactions = 0
        self._thread = threading.Thread(target=self._loop, name="townsquare-writer", daemon=True)
        self._thread.start()

    # --- public ------------------------------------------------------------------------------------
    def write(self, posts: Sequence[Stored],
              quarantined: Sequence[Quarantined] = ()) -> "Future[WriteResult]":
        """Queue posts (normalized) and quarantine records; the future gives this request's
        ``WriteResult`` with per-post ``statuses`` once committed."""
        return self._submit("write", (list(posts), list(quarantined)))

    def delete(self, ids: Sequence[int]) -> "Future[int]":
        """Delete posts everywhere; the future gives how many were stored."""
        return self._submit("delete", list(ids))

    def call(self, fn) -> Future:
        """Run ``fn(store)`` on the writer thread (opt-outs and other rare writes)."""
        return self._submit("call", fn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(None)
            self._thread.join(timeout=60)
            self.store.close()

    # --- the writer thread ---------------------------------------------------------------------------
    def _submit(self, kind: str, payload) -> Future:
        if self._closed:
            raise RuntimeError("the write queue is closed")
        fut: Future = Future()
        self._q.put((kind, payload, fut))
        return fut

    def _idle(self) -> None:
        """No write for ``idle_s``: a checkpoint now costs no request anything."""
        self._wrote = False
        try:
            self.store.checkpoint()
        except Exception:                   # the next idle moment tries again
            log.exception("checkpoint after idle failed")

    def _loop(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=self.idle_s if self._wrote else None)
            except queue.Empty:
                self._idle()
                continue
            if item is None:
                return
            self._wrote = True
            group = [item]
            size = len(item[1][0]) if item[0] == "write" else 0
            # Take whatever else is waiting, up to the group size: one transaction for all.
            while item[0] == "write" and size < self.max_group:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None or nxt[0] != "write":
                    self._run_one(group)
                    group, size = [], 0
                    if nxt is None:
                        return
                    self._run_other(nxt)
                    break
                group.append(nxt)
                size += len(nxt[1][0])
            if group:
                if group[0][0] == "write":
                    self._run_one(group)
                else:
                    self._run_other(group[0])

    def _run_other(self, item) -> None:
        kind, payload, fut = item
        try:
            fut.set_result(self.store.delete(payload) if kind == "delete" else payload(self.store))
        except Exception as e:
            fut.set_exception(e)
        self.transactions += 1

    def _run_one(self, group: list) -> None:
        posts = [p for _, (ps, _q), _f in group for p in ps]
        bad = [b for _, (_p, bs), _f in group for b in bs]
        try:
            total = self.store.write_batch(posts, bad, statuses=True)
        except Exception as e:              # the whole transaction rolled back: tell everyone
            for _, _, fut in group:
                fut.set_exception(e)
            return
        finally:
            self.transactions += 1
        statuses = total.statuses or {}
        for _, (ps, bs), fut in group:
            mine = WriteResult(statuses={}, quarantined=len(bs))
            for s in ps:
                st = statuses.get(s.post.id, "unchanged")
                mine.statuses[s.post.id] = st
            for st in mine.statuses.values():
                if st == "inserted":
                    mine.inserted += 1
                elif st == "updated":
                    mine.updated += 1
                elif st == "deleted":
                    mine.skipped_deleted += 1
                else:
                    mine.unchanged += 1
            fut.set_result(mine)
