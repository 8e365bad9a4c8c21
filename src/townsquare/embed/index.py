"""Vector index over post embeddings: external int64 post ids, cosine scores, upsert and delete.

    >>> import numpy as np
    >>> from townsquare.embed.index import VectorIndex
    >>> ix = VectorIndex(4)
    >>> ids = np.array([1212092628029698048, 1212092628029698049], dtype=np.int64)
    >>> vecs = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)    # (n, dim), unit rows
    >>> ix.add(ids, vecs)
    >>> ix.search(np.array([0.8, 0.6, 0, 0], dtype=np.float32), k=5)       # k > size is fine
    [(1212092628029698048, 0.8...), (1212092628029698049, 0.6...)]
    >>> ix.remove([1212092628029698048]), len(ix)
    (1, 1)

Backends, same API and same file format header:

``faiss`` (when ``faiss`` imports)
    ``IndexHNSWFlat`` with inner product: approximate, sub-linear search. HNSW cannot delete, so
    a removed or replaced row becomes a tombstone: searches over-fetch and drop tombstones, and
    the index is rebuilt from its live rows (:meth:`VectorIndex.compact`) once tombstones pass
    20% of its rows. The vectors themselves live in the HNSW's flat storage (float32), from which
    a rebuild reconstructs them: no second copy is kept in memory. Below that share,
    :meth:`VectorIndex.scrub` zeroes the tombstones' vectors and ids in place (the graph keeps
    its links): what a deletion must not leave in the file, without the cost of a rebuild.
``numpy`` (fallback)
    an exact scan: one (n, dim) @ (dim,) product per query. Fine to about 10^5 posts.

Scores are inner products; the embedders return unit vectors, so they are cosines in [-1, 1].
With ``metric="cosine"`` the index normalizes what it is given itself. All methods take one lock,
so a search may run beside an ``add`` from another thread.

Columns: an index made with ``columns=("a", "b")`` keeps, beside each vector, one int64 per name
(a payload, as vector databases call it), given with the vectors (``add(..., columns=)``) or
later (``set_columns``), read by id (``columns_of``) or with a search's neighbours (``nearest``),
saved with the file and zeroed with a tombstone. The store's index keeps each post's ranking
fields there, so that a search's neighbours need no SQL read for them (``embed.sync``).

    >>> ix = VectorIndex(2, columns=("created_at", "likes"))
    >>> ix.add(np.array([7, 8]), np.eye(2, dtype=np.float32), columns=np.array([[5, 1], [6, 0]]))
    >>> known, values = ix.columns_of([8, 9])
    >>> known.tolist(), values[known].tolist()
    ([True, False], [[6, 0]])
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["COMPACT_AT", "VectorIndex", "faiss_available"]

COMPACT_AT = 0.20                 # rebuild when tombstones exceed this share of the index's rows
SORTED_TAIL = 20_000              # rows looked up by dict before they join the sorted ids
FORMAT = "townsquare-vector-index"
FORMAT_VERSION = 1
METRICS = ("ip", "cosine")
BACKENDS = ("auto", "faiss", "numpy")

try:                              # optional accelerator: without it the exact numpy scan serves
    import faiss as _faiss
except ImportError:               # pragma: no cover - faiss-cpu is a dependency
    _faiss = None


def faiss_available() -> bool:
    """True when faiss imports here (the HNSW backend is used by default)."""
    return _faiss is not None


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)            # (n, 1)
    return x / np.maximum(n, 1e-12)


class VectorIndex:
    """Nearest-neighbour index from external int64 ids to ``dim``-dimensional vectors.

    ``m``, ``ef_construction`` and ``ef_search`` are the HNSW parameters (ignored by the numpy
    backend): neighbours per node, candidate list size while building, and while searching
    (raised to ``k`` plus the over-fetch when a search asks for more). ``backend`` is ``"auto"``
    (faiss when it imports, else numpy), ``"faiss"`` or ``"numpy"``.
    """

    def __init__(self, dim: int, *, metric: str = "ip", m: int = 32, ef_construction: int = 80,
                 ef_search: int = 64, backend: str = "auto", columns: tuple[str, ...] = ()):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "faiss" and _faiss is None:
            raise ImportError("backend='faiss' needs faiss: pip install faiss-cpu")
        self.dim, self.metric = int(dim), metric
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.backend = "faiss" if backend == "faiss" or (backend == "auto" and _faiss) else "numpy"
        if len(set(columns)) != len(columns) or not all(isinstance(c, str) and c for c in columns):
            raise ValueError(f"columns must be distinct non-empty names, got {columns!r}")
        self.column_names = tuple(columns)
        self._lock = threading.RLock()
        self._reset()

    # --- storage -----------------------------------------------------------------------------
    def _reset(self) -> None:
        """Empty rows. Row r of the backend holds external id ``_row_ids[r]``; ``_dead[r]`` marks
        a tombstone; ``_row_of`` maps each live id to its row."""
        self._row_ids = np.empty(0, dtype=np.int64)              # (rows,)
        self._dead = np.empty(0, dtype=bool)                      # (rows,)
        self._n_dead = 0
        self._row_of: dict[int, int] = {}
        # the live ids of rows below ``_sorted_upto``, ascending, and their rows (``_sorted``)
        self._sorted_ids = np.empty(0, dtype=np.int64)
        self._sorted_rows = np.empty(0, dtype=np.int64)
        self._sorted_upto = 0
        self._cols = np.zeros((0, len(self.column_names)), dtype=np.int64)   # (rows, columns)
        self._known = np.zeros(0, dtype=bool)     # (rows,): the row's columns were given
        self._n_unknown = 0                        # live rows whose columns were not given
        self._vecs = np.empty((0, self.dim), dtype=np.float32)    # (capacity, dim); numpy backend
        self._hnsw = self._new_hnsw() if self.backend == "faiss" else None

    def _new_hnsw(self):
        ix = _faiss.IndexHNSWFlat(self.dim, self.m, _faiss.METRIC_INNER_PRODUCT)
        ix.hnsw.efConstruction = self.ef_construction
        ix.hnsw.efSearch = self.ef_search
        return ix

    @property
    def rows(self) -> int:
        """Rows in the backend, tombstones included."""
        return len(self._row_ids)

    def _append(self, vecs: np.ndarray) -> None:
        """Store (n, dim) float32 rows after the existing ones."""
        if self._hnsw is not None:
            self._hnsw.add(vecs)
            return
        need = self.rows + len(vecs)
        if need > len(self._vecs):                  # grow by doubling: amortized O(1) per row
            grown = np.empty((max(need, 2 * len(self._vecs), 1024), self.dim), dtype=np.float32)
            grown[:self.rows] = self._vecs[:self.rows]
            self._vecs = grown
        self._vecs[self.rows:need] = vecs

    def _put_columns(self, start: int, cols: np.ndarray, known: bool) -> None:
        """Columns of the rows from ``start``: the arrays grow by doubling, as the numpy
        backend's vectors do (an index of 10^6 rows holds ~50 MB of columns: a copy per
        refresh would cost more than the refresh)."""
        need = start + len(cols)
        if need > len(self._cols):
            cap = max(need, 2 * len(self._cols), 1024)
            grown = np.zeros((cap, len(self.column_names)), dtype=np.int64)
            grown[:start] = self._cols[:start]
            seen = np.zeros(cap, dtype=bool)
            seen[:start] = self._known[:start]
            self._cols, self._known = grown, seen
        self._cols[start:need] = cols
        self._known[start:need] = known

    def _row_vectors(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), dim) float32 vectors of the given rows (for a rebuild or a save)."""
        if self._hnsw is None:
            return self._vecs[rows]
        out = np.empty((len(rows), self.dim), dtype=np.float32)     # (len(rows), dim)
        step, done = 1 << 16, 0     # chunks: never a second copy of the whole index in memory
        for start in range(0, self.rows, step):
            n = min(step, self.rows - start)
            sel = rows[(rows >= start) & (rows < start + n)] - start
            if len(sel):
                out[done:done + len(sel)] = self._hnsw.reconstruct_n(start, n)[sel]
                done += len(sel)
        return out

    def _check(self, ids, vecs) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"ids must be integers (int64 post ids), got {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        vecs = np.asarray(vecs, dtype=np.float32)
        if vecs.ndim == 1 and len(ids) == 1:
            vecs = vecs[None, :]
        if vecs.ndim != 2 or vecs.shape[1] != self.dim or len(vecs) != len(ids):
            raise ValueError(f"expected vecs of shape ({len(ids)}, {self.dim}), got {vecs.shape}")
        if not np.isfinite(vecs).all():
            raise ValueError("vectors contain NaN or inf")
        if self.metric == "cosine":
            vecs = _unit_rows(vecs)
        return ids, np.ascontiguousarray(vecs, dtype=np.float32)

    # --- public API --------------------------------------------------------------------------
    def _check_columns(self, columns, n: int) -> np.ndarray:
        cols = np.asarray(columns)
        if cols.size and not np.issubdtype(cols.dtype, np.integer):
            raise TypeError(f"columns must be integers, got {cols.dtype}")
        if cols.shape != (n, len(self.column_names)):
            raise ValueError(f"expected columns of shape ({n}, {len(self.column_names)}) for "
                             f"{self.column_names}, got {cols.shape}")
        return cols.astype(np.int64, copy=False)

    def add(self, ids: np.ndarray, vecs: np.ndarray, columns: np.ndarray | None = None) -> None:
        """Insert or replace: an id already present gets the new vector (its old row becomes a
        tombstone). Within one call the last occurrence of a repeated id wins. ``columns``:
        (n, len(column_names)) int64 values of the rows (None: not known)."""
        ids, vecs = self._check(ids, vecs)
        if not len(ids):
            return
        known = columns is not None
        cols = (self._check_columns(columns, len(ids)) if known
                else np.zeros((len(ids), len(self.column_names)), dtype=np.int64))
        # Keep only each id's last occurrence: reversed unique gives first-in-reverse = last.
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        if len(keep) < len(ids):
            ids, vecs, cols = ids[keep], vecs[keep], cols[keep]
        with self._lock:
            self._kill([self._row_of[i] for i in ids.tolist() if i in self._row_of])
            start = self.rows
            self._append(vecs)
            self._row_ids = np.concatenate([self._row_ids, ids])
            self._put_columns(start, cols, known)
            self._n_unknown += 0 if known or not self.column_names else len(ids)
            self._dead = np.concatenate([self._dead, np.zeros(len(ids), dtype=bool)])
            self._row_of.update(zip(ids.tolist(), range(start, start + len(ids))))
            self._maybe_compact()

    def set_columns(self, ids, columns: np.ndarray) -> int:
        """Give the live rows of ``ids`` these (n, len(column_names)) values; ids not in the
        index are skipped. Returns how many rows were set."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        cols = self._check_columns(columns, len(ids))
        with self._lock:
            rows = self._rows_of(ids)
            here = rows >= 0
            if self.column_names:
                self._n_unknown -= int((~self._known[np.unique(rows[here])]).sum())
            self._cols[rows[here]] = cols[here]
            self._known[rows[here]] = True
            return int(here.sum())

    def columns_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """``(known, values)`` for ``ids``: (n,) bool, True where the id is in the index with its
        columns given, and (n, len(column_names)) int64 (zeros where not known). Rows found by
        ``_rows_of``: 750 neighbours at 1.1M rows cost 0.2 ms with a dict look-up each (0.9 ms
        inside a query, its caches cold), against 1.1 ms for the SQL read of their fields with
        every page cached, more without."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            rows = self._rows_of(ids)
            here = rows >= 0
            known = np.zeros(len(ids), dtype=bool)
            known[here] = self._known[rows[here]]
            values = np.zeros((len(ids), len(self.column_names)), dtype=np.int64)
            values[known] = self._cols[rows[known]]
            return known, values

    def vectors_of(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """``(ids found (m,), their vectors (m, dim) float32)``, in the order of ``ids``, from
        the index's own storage (the HNSW's flat rows): no read of the store's table, whose
        pages a query's random ids would mostly find cold (~12 ms for 20 of them at 1.1M
        posts, against microseconds here)."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            rows = self._rows_of(ids)
            here = rows >= 0
            rows = rows[here]
            if self._hnsw is None:
                out = self._vecs[rows]                              # (m, dim), a copy
            elif len(rows):
                # The HNSW's flat storage read as a numpy view, its rows taken in one call:
                # ~2,400 rows in ~0.2 ms, against 7.9 ms for a ``reconstruct`` per row.
                # Not ``reconstruct_batch`` (0.1 ms): its OpenMP threads spin on after it,
                # taking a core from the query's next stages (bench/search.py at 1.1M posts,
                # the re-ranking reading them for every first page: hybrid p50 19.8 ms with
                # it, the lexical stage 0.5 -> 1.5 ms).
                out = np.take(self._flat(), rows, axis=0)                       # (m, dim)
            else:
                out = np.zeros((0, self.dim), dtype=np.float32)
            return ids[here], out

    def _flat(self) -> np.ndarray:
        """The HNSW's stored vectors, (rows, dim) float32, as a view of faiss's memory: valid
        until the index changes, so call under the lock and copy what is kept."""
        xb = _faiss.downcast_index(self._hnsw.storage).get_xb()
        return _faiss.rev_swig_ptr(xb, self._hnsw.ntotal * self.dim).reshape(-1, self.dim)

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Each id's live row (-1: not in the index), (n,) int64; call under the lock. Rows in
        the sorted copy of the ids (``_sorted``) are found by one vectorized binary search; the
        rest (rows added since, and ids whose row there has died: replaced or removed) by a
        dict look-up each. For a hybrid query's ~2,400 candidates at 1.1M rows: ~0.2 ms,
        against 1.3 ms for the dict alone (its slots are cold: one cache miss per id)."""
        out = np.full(len(ids), -1, dtype=np.int64)
        sorted_ids, sorted_rows = self._sorted()
        if len(sorted_ids):
            at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
            rows = sorted_rows[at]
            ok = (sorted_ids[at] == ids) & ~self._dead[rows]
            out[ok] = rows[ok]
        rest = np.flatnonzero(out < 0)
        if len(rest):
            get = self._row_of.get
            out[rest] = [get(i, -1) for i in ids[rest].tolist()]
        return out

    def _sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids ascending, their rows)`` of the live rows below ``_sorted_upto``; the rows
        added since join it once there are more than ``SORTED_TAIL`` of them (and an eighth of
        the sorted ones): a merge, O(rows), ~10 ms at 1.1M rows, in the thread that looks up
        next. Rows that died since stay until then; ``_rows_of`` checks each hit is live."""
        tail = self.rows - self._sorted_upto
        if tail > max(SORTED_TAIL, self._sorted_upto // 8):
            new = np.arange(self._sorted_upto, self.rows)
            new = new[~self._dead[new]]
            new = new[np.argsort(self._row_ids[new], kind="stable")]               # (t,)
            keep = ~self._dead[self._sorted_rows]
            ids, rows = self._sorted_ids[keep], self._sorted_rows[keep]
            at = np.searchsorted(ids, self._row_ids[new])
            self._sorted_ids = np.insert(ids, at, self._row_ids[new])
            self._sorted_rows = np.insert(rows, at, new)
            self._sorted_upto = self.rows
        return self._sorted_ids, self._sorted_rows

    def ids_without_columns(self) -> np.ndarray:
        """Live ids whose columns were never given, in row order (what a backfill fills)."""
        with self._lock:
            rows = self.rows
            return self._row_ids[~self._known[:rows] & ~self._dead].copy()

    @property
    def unknown_columns(self) -> int:
        """Live rows whose columns were never given (rows added without them, or an index file
        from before columns)."""
        return self._n_unknown

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Delete ids; returns how many were present. Deleted ids never come back from search."""
        if isinstance(ids, (int, np.integer)):
            ids = [ids]
        arr = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids)).reshape(-1)
        with self._lock:
            rows = [r for r in (self._row_of.pop(int(i), None) for i in arr.tolist()) if r is not None]
            self._kill(rows)
            self._maybe_compact()
            return len(rows)

    def _kill(self, rows: list[int]) -> None:
        if rows:
            if self.column_names:
                self._n_unknown -= int((~self._known[rows]).sum())
            self._dead[rows] = True
            self._n_dead += len(rows)

    def _maybe_compact(self) -> None:
        if self._n_dead and self._n_dead > COMPACT_AT * self.rows:
            self.compact()

    def compact(self) -> None:
        """Rebuild the backend from live rows only, dropping every tombstone (runs by itself
        when tombstones pass 20%; an HNSW rebuild costs about as much as adding the rows anew)."""
        with self._lock:
            live = np.flatnonzero(~self._dead)
            ids, vecs = self._row_ids[live], self._row_vectors(live)      # (n,), (n, dim)
            cols, known = self._cols[live], self._known[live]
            self._reset()
            if len(ids):
                self._append(vecs)
                self._row_ids = ids
                self._cols, self._known = cols, known
                self._n_unknown = int((~known).sum()) if self.column_names else 0
                self._dead = np.zeros(len(ids), dtype=bool)
                self._row_of = dict(zip(ids.tolist(), range(len(ids))))

    def scrub(self) -> int:
        """Overwrite each tombstone's vector with zeros and its id with -1, in place; returns how
        many tombstones still held them. A zero vector scores 0 against every query, and search
        drops tombstones anyway: results do not change, and a saved file no longer holds a
        removed post's embedding or id. O(new tombstones x dim), against a rebuild's O(rows)."""
        with self._lock:
            dead = np.flatnonzero(self._dead)          # row numbers: below the columns' capacity
            # Only the tombstones not scrubbed yet are written: a caller that removes a few
            # rows at a time (the fast tier, each refresh) pays for those, not for all of them.
            dead = dead[self._row_ids[dead] != -1]
            fresh = len(dead)
            if not fresh:
                return 0
            self._row_ids[dead] = -1
            live = ~self._dead[self._sorted_rows]          # the sorted copy forgets them too
            self._sorted_ids, self._sorted_rows = self._sorted_ids[live], self._sorted_rows[live]
            self._cols[dead] = 0
            self._known[dead] = False
            if self._hnsw is None:
                self._vecs[dead] = 0.0
            else:
                storage = _faiss.downcast_index(self._hnsw.storage)     # the flat float32 rows
                xb = _faiss.rev_swig_ptr(storage.get_xb(), self.rows * self.dim)
                xb.reshape(self.rows, self.dim)[dead] = 0.0             # a view: in place
            return fresh

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest ids to ``q`` (dim,) as (id, score) pairs, best first; fewer when
        the index holds fewer, or (HNSW) when the search beam reaches fewer rows from ``q``:
        on clustered vectors and a large ``k``, the far end of the list may come back short.
        Scores are inner products (cosines for unit vectors)."""
        q = self._query(q)
        with self._lock:
            rows, scores = self._search_rows(q, k)
            return list(zip(self._row_ids[rows].tolist(), scores.tolist()))

    def nearest(self, q: np.ndarray, k: int, *, ef: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``search`` as arrays, with each neighbour's columns read in the same look-up:
        ``(ids (n,) int64, scores (n,) float32, known (n,) bool, values (n, len(column_names))
        int64)``, ``known`` as ``columns_of`` gives it. The search yields rows, so the columns
        cost one gather (0.05 ms for 1,000 neighbours at 1.1M rows) where ``columns_of`` looks
        each id up (~1 ms inside a query, the look-up table's memory cold).

        >>> ix = VectorIndex(2, columns=("likes",))
        >>> ix.add(np.array([7, 8]), np.eye(2, dtype=np.float32), columns=np.array([[3], [4]]))
        >>> ids, scores, known, values = ix.nearest(np.array([1, 0], dtype=np.float32), 2)
        >>> ids.tolist(), known.tolist(), values[:, 0].tolist()
        ([7, 8], [True, True], [3, 4])
        """
        q = self._query(q)
        with self._lock:
            rows, scores = self._search_rows(q, k, ef)
            known = self._known[rows]
            values = np.where(known[:, None], self._cols[rows], 0)
            return self._row_ids[rows].copy(), scores, known, values

    def _query(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float32).reshape(-1)
        if q.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), got {q.shape}")
        return _unit_rows(q[None, :])[0] if self.metric == "cosine" else q

    def _search_rows(self, q: np.ndarray, k: int,
                     ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(rows (n,) int64, scores (n,) float32)`` of the ``k`` nearest live rows, best
        first; call under the lock. ``ef``: see ``_search_hnsw`` (the exact scan ignores it)."""
        k = min(int(k), len(self))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self._hnsw is None:
            return self._search_exact(q, k)
        return self._search_hnsw(q, k, ef)

    def _search_exact(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = self._vecs[:self.rows] @ q                              # (rows,)
        if self._n_dead:
            scores = np.where(self._dead, -np.inf, scores)
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        # Best first; ties broken by row (insertion order), so results are deterministic.
        top = top[np.lexsort((top, -scores[top]))]
        return top.astype(np.int64), scores[top].astype(np.float32)

    def _search_hnsw(self, q: np.ndarray, k: int,
                     ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The walk. ``ef`` None: a beam as wide as the rows asked for, widened until ``k``
        live rows come back (below). ``ef`` given: one walk with that beam (at least the index's
        ``ef_search``), what it finds, live, up to ``k``: a narrower beam stays nearer the
        query's own region and costs less (the search engine's feedback walk, ``SearchConfig.
        feedback_ef``)."""
        # Tried, not kept: the rows dealt to two HNSW graphs, each walked for k/2 on its own
        # thread and merged. On the eval store (184,551 e5 vectors) k = 1,000 took 2.15 ms
        # against 3.61 (recall of the exact top 1,000: 93.3% against 93.5%), and the hybrid
        # query's first walk at 1.1M posts went from 3.7 to 2.8 ms. But its second walk (the
        # feedback round's) runs beside the query's own thread, and a third thread on two cores
        # slowed it by 1.6 ms: bench/search.py's hybrid p50 went from 15.95 to 17.1 ms.
        # Over-fetch so that k live rows survive the tombstone filter: expected live share is
        # 1 - dead/rows (<= 20% dead between compactions); double until enough, or all rows.
        live_share = 1.0 - self._n_dead / self.rows
        fetch = min(self.rows, k if not self._n_dead else int(k / live_share * 1.25) + 8)
        if ef is not None:
            rows, scores, _found = self._walk(q, fetch, ef)
            return rows[:k].astype(np.int64), scores[:k]
        while True:
            # efSearch = fetch for this search. faiss sizes its candidate heap max(efSearch, k)
            # but stops once efSearch processed candidates beat the next one: with the index's
            # efSearch (64) a search for 1,000 neighbours stopped early and found 40% of the
            # exact top 1,000 on the eval store (e5 vectors), against 94% with efSearch = k
            # (2.5 ms instead of 0.3 ms a query).
            rows, scores, found = self._walk(q, fetch, fetch)
            # A short result with no tombstone dropped: the beam ran out of graph near the
            # query (clustered embeddings: a k of 1,000 often reaches fewer), not of live rows.
            # Doubling would rerun the search up to every row for the few far neighbours that a
            # wider beam adds (~80 ms at 1.8e5 rows, against ~1 ms): the short result stands.
            exhausted = found < fetch and len(rows) == found
            if len(rows) >= k or exhausted or fetch >= self.rows:
                return rows[:k].astype(np.int64), scores[:k]
            fetch = min(self.rows, fetch * 2)

    def _walk(self, q: np.ndarray, fetch: int, ef: int) -> tuple[np.ndarray, np.ndarray, int]:
        """One HNSW search for ``fetch`` rows with beam ``ef`` (at least the index's
        ``ef_search``): ``(live rows, their scores, rows found before the tombstones went)``."""
        params = _faiss.SearchParametersHNSW(efSearch=max(self.ef_search, int(ef)))
        D, I = self._hnsw.search(q[None, :], fetch, params=params)       # (1, fetch) each
        rows, scores = I[0], D[0]                                        # (fetch,) each
        real = rows >= 0                       # faiss pads a short result with -1
        rows, scores = rows[real], scores[real]
        live = ~self._dead[rows]               # numpy, not a loop: 1,000 rows cost ~1 ms in Python
        return rows[live], scores[live], int(real.sum())

    def __len__(self) -> int:
        return self.rows - self._n_dead

    def __contains__(self, post_id: int) -> bool:
        return int(post_id) in self._row_of

    def ids(self) -> np.ndarray:
        """Live ids, int64, in row order."""
        with self._lock:
            return self._row_ids[~self._dead].copy()

    def __repr__(self) -> str:
        return (f"VectorIndex(dim={self.dim}, backend={self.backend!r}, size={len(self)}, "
                f"tombstones={self._n_dead})")

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the index to ``path`` (one .npz file), atomically: a temporary file in the same
        folder, fsynced, then renamed over ``path``. The faiss backend stores its serialized HNSW
        (graph + float32 vectors), so loading gives the same graph and the same results; the
        numpy backend stores its float32 vectors."""
        path = Path(path)
        with self._lock:
            meta = {"format": FORMAT, "version": FORMAT_VERSION, "dim": self.dim,
                    "metric": self.metric, "m": self.m, "ef_construction": self.ef_construction,
                    "ef_search": self.ef_search, "backend": self.backend,
                    "columns": list(self.column_names)}
            arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                      "row_ids": self._row_ids, "dead": self._dead}
            if self.column_names:
                arrays["columns"] = self._cols[:self.rows]
                arrays["known"] = self._known[:self.rows]
            if self._hnsw is not None:
                arrays["faiss"] = _faiss.serialize_index(self._hnsw)     # uint8 (bytes,)
            else:
                arrays["vecs"] = self._vecs[:self.rows]
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)       # a file object: numpy adds no ".npz" suffix
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    @classmethod
    def load(cls, path: str | Path, columns: tuple[str, ...] | None = None) -> VectorIndex:
        """Read an index written by :meth:`save`, on the backend it was saved with.
        ``columns``: the column names wanted (default: the file's); a file saved without them
        (or with others) gives rows whose columns are not known (``unknown_columns``)."""
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} file")
            if meta["backend"] == "faiss" and _faiss is None:
                raise ImportError(f"{path} holds a faiss HNSW index: pip install faiss-cpu")
            saved = tuple(meta.get("columns", ()))
            names = saved if columns is None else tuple(columns)
            ix = cls(meta["dim"], metric=meta["metric"], m=meta["m"],
                     ef_construction=meta["ef_construction"], ef_search=meta["ef_search"],
                     backend=meta["backend"], columns=names)
            ix._row_ids = z["row_ids"].astype(np.int64)
            ix._dead = z["dead"].astype(bool)
            if names and names == saved:
                ix._cols = z["columns"].astype(np.int64)
                ix._known = z["known"].astype(bool)
            else:
                ix._cols = np.zeros((len(ix._row_ids), len(names)), dtype=np.int64)
                ix._known = np.zeros(len(ix._row_ids), dtype=bool)
            if ix.backend == "faiss":
                ix._hnsw = _faiss.deserialize_index(z["faiss"])
                ix._hnsw.hnsw.efSearch = ix.ef_search
            else:
                ix._vecs = np.ascontiguousarray(z["vecs"], dtype=np.float32)
        if ix.backend == "faiss" and ix._hnsw.ntotal != ix.rows:
            raise ValueError(f"{path}: {ix._hnsw.ntotal} vectors for {ix.rows} ids")
        ix._n_dead = int(ix._dead.sum())
        ix._n_unknown = int((~ix._known[:ix.rows] & ~ix._dead).sum()) if names else 0
        live = np.flatnonzero(~ix._dead)
        ix._row_of = dict(zip(ix._row_ids[live].tolist(), live.tolist()))
        return ix

