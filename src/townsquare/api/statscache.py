"""The store's aggregate counts for ``/v1/stats``, served from a copy whose age is bounded.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> counts = StoreCounts(lambda: SQLiteStore(":memory:"))
    >>> got, about = counts.get(SQLiteStore(":memory:"))
    >>> got["by_lang"], about["refreshing"], about["age_s"]
    ({}, False, 0.0)

Why: ``Store.stats_counts`` scans every post three times (per source, language and day): ~1.3 s
at 1.1M posts on 2 cores, and it grows with the store. A monitor polling ``/v1/stats`` once a
second would spend most of a core on it. Under ``bench/serve.py --findability`` (5,700 posts/s,
``/v1/stats`` read once a second, ~250,000 posts), py-spy put ~9% of the server's samples in
that endpoint's reads (2026-12-07). So:

- while the counts are cheap (the last read took under ``inline_s``, 50 ms: a store of a few
  tens of thousands of posts), every request reads them anew, as before;
- beyond that, a request gets the last copy at once, and when the copy is older than
  ``max(min_age_s, took / duty)`` one refresh starts on a thread of its own (its own store
  connection): the scans then take at most ``duty`` (5%) of one core, however large the store;
- the reply says how old its counts are (``as_of``, ``age_s``) and what a read costs
  (``took_ms``). The post count and every lag in ``/v1/stats`` stay live: they are index reads.

The server starts one refresh as it starts (``refresh``), so that the first request finds a
copy; a request that comes before it is done waits for it (a store that has never been counted
has nothing older to show), and reads the counts itself only when that refresh failed.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from townsquare.api.loops import spaced
from townsquare.store.base import Store

__all__ = ["StoreCounts"]

log = logging.getLogger("townsquare.api")


class StoreCounts:
    """A copy of ``Store.stats_counts`` (see the module docstring). ``open_store``: a new
    connection to the same store, for the refresh thread (closed after each read)."""

    def __init__(self, open_store: Callable[[], Store], *, inline_s: float = 0.05,
                 min_age_s: float = 10.0, duty: float = 0.05,
                 clock: Callable[[], float] = time.time):
        if inline_s < 0:
            raise ValueError(f"inline_s must be >= 0, got {inline_s}")
        if min_age_s < 0:
            raise ValueError(f"min_age_s must be >= 0, got {min_age_s}")
        if not 0 < duty <= 1:
            raise ValueError(f"duty must be in (0, 1], got {duty}")
        self.open_store = open_store
        self.inline_s, self.min_age_s, self.duty = inline_s, min_age_s, duty
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, Any] | None = None
        self._at = 0.0                   # when the copy's read started (clock time)
        self._took = 0.0                 # how long it took (s)
        self._failed_at = 0.0            # when a refresh last failed (no retry before max age)
        self._thread: threading.Thread | None = None
        self.failures = 0                # refreshes that raised (logged; the copy is kept)

    def max_age_s(self) -> float:
        """How old the copy may grow before a request starts a refresh."""
        return spaced(self.min_age_s, self._took, self.duty)

    def get(self, reader: Store) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(counts, about)``: the counts, read now through ``reader`` (the request's own
        connection) while cheap or when there is no copy yet, else the copy (a refresh started
        when it is too old); ``about``: ``as_of`` (ISO 8601, UTC), ``age_s``, ``took_ms``,
        ``refreshing``."""
        with self._lock:
            have, took, running = self._counts, self._took, self._thread
        if have is None and running is not None:
            running.join()                 # the first copy is on its way: no second scan
            with self._lock:
                have, took = self._counts, self._took
        if have is None or took < self.inline_s:
            self._store(*self._read(reader))
        else:
            with self._lock:
                stale = self.clock() - max(self._at, self._failed_at) > self.max_age_s()
            if stale:
                self.refresh()
        with self._lock:
            counts, at, took = self._counts, self._at, self._took
            refreshing = self._thread is not None
        assert counts is not None
        about = {"as_of": datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "age_s": round(max(0.0, self.clock() - at), 1),
                 "took_ms": round(took * 1000, 1), "refreshing": refreshing}
        return counts, about

    def refresh(self) -> bool:
        """Start one refresh on a thread of its own, unless one runs; whether it started."""
        with self._lock:
            if self._thread is not None:
                return False
            self._thread = threading.Thread(target=self._refresh, name="townsquare-counts",
                                            daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Until the running refresh (if any) ends: tests, and a clean shutdown."""
        with self._lock:
            t = self._thread
        if t is not None:
            t.join(timeout)

    def _refresh(self) -> None:
        try:
            store = self.open_store()
            try:
                self._store(*self._read(store))
            finally:
                store.close()
        except Exception as e:          # a failed refresh keeps the copy; the next one retries
            self.failures += 1
            log.warning("counts for /v1/stats: refresh failed: %s", e)
            with self._lock:
                self._failed_at = self.clock()  # not at once again: wait the copy's max age
        finally:
            with self._lock:
                self._thread = None

    def _read(self, store: Store) -> tuple[dict[str, Any], float, float]:
        at, t0 = self.clock(), time.perf_counter()
        counts = store.stats_counts()
        return counts, at, time.perf_counter() - t0

    def _store(self, counts: dict[str, Any], at: float, took: float) -> None:
        with self._lock:
            if at >= self._at or self._counts is None:      # never replace a newer copy
                self._counts, self._at, self._took = counts, at, took
