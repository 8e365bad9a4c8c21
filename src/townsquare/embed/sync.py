"""The vector index beside the store: loaded from its file, caught up from the ``vectors`` table.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> vs = StoreVectors(SQLiteStore(":memory:"), path=None, dim=384)
    >>> vs.refresh(), len(vs)
    (0, 0)

The store's ``vectors`` table is the source of truth; the index (``townsquare.embed.index``) is a
derived file, ``vectors.index`` in the store's folder, with a small JSON sidecar saying which
model and up to which ``seq`` it holds. ``refresh()`` adds what was embedded since (an upsert, so
a re-embedded post replaces its old vector), and removes the posts deleted since (the store's
deletions log, behind a watermark of its own). A removed vector is a tombstone in the HNSW graph
until the index is rebuilt by itself (past 20% of tombstones); ``compact()`` (the maintenance
step, ``services.maintenance``) zeroes the tombstones' vectors and ids in place and writes the
file again (``VectorIndex.scrub``: a rebuild would cost as much as indexing every vector anew,
minutes at 10^5 posts). When the model changed, the index is rebuilt from the table.

Ranking fields: each vector carries its post's ``created_at``, counts and ``seq`` as index
columns (``FIELDS``). ``nearest`` returns a search's neighbours with them, read by the search's
own rows: the hybrid query's two SQL reads of ~1,000 neighbours' fields become two gathers
(bench/search.py at 1.1M posts, the semantic filter: 3.9 ms a query with SQL, 1.9 ms with a
dictionary look-up per id, 0.4 ms read with the search). Like the tantivy index's fast fields,
the counts are those of when the post was embedded: a later record of the same post with the
same text (the store bumps ``seq`` only for a new text) updates them in the store, not here,
until the index is rebuilt. An index file from before the columns gets them from the store once,
on its first refresh.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from townsquare.embed.index import VectorIndex
from townsquare.embed.stage import from_blobs
from townsquare.protocols import Nearest
from townsquare.store.base import Store

_PAGE = 20_000
# The index's columns: ``Store.rank_fields``' (created_at, likes, reposts, replies, quotes),
# then the post's seq when it was embedded (the snapshot check). A missing count is 0.
FIELDS = ("created_at", "likes", "reposts", "replies", "quotes", "seq")
_SEQ = FIELDS.index("seq")       # the columns before it are ``rank_fields``' order
REBUILD_RATIO = 1.25     # rebuild when the index holds 25% more entries than the table


class StoreVectors:
    """A ``VectorIndex`` kept in step with a store's vectors."""

    def __init__(self, store: Store, path: Path | None, dim: int):
        self.store = store
        self.path = path
        self.dim = dim
        self.model: str | None = None
        self.watermark = 0
        self.deleted_through = 0          # the deletions log's watermark
        self.index = VectorIndex(dim, columns=FIELDS)
        if path is not None and path.exists() and self._meta_path().exists():
            meta = json.loads(self._meta_path().read_text())
            if meta.get("model") == store.embed_model() and meta.get("dim") == dim:
                self.index = VectorIndex.load(path, columns=FIELDS)
                self.model = meta["model"]
                self.watermark = int(meta["watermark"])
                # A file from before the log: 0, so the whole log is applied once.
                self.deleted_through = int(meta.get("deleted_through", 0))

    def _meta_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.path.name + ".json")

    def __len__(self) -> int:
        return len(self.index)

    def refresh(self) -> int:
        """Remove the vectors of posts deleted since the last refresh and add those embedded
        since; returns how many changes. Saves the file when anything changed."""
        model = self.store.embed_model()
        added = 0
        if model != self.model:                       # first use, or the model changed
            self.index = VectorIndex(self.dim, columns=FIELDS)
            self.model, self.watermark = model, 0
            # A new index reads only the vectors left: it skips the log (read first, so that a
            # deletion committed meanwhile is applied after the vectors are read).
            while gone := self.store.deletions_since(self.deleted_through, _PAGE):
                self.deleted_through = gone[-1][0]
                added += 1                            # the watermark moved: save it
        while gone := self.store.deletions_since(self.deleted_through, _PAGE):
            self.index.remove([pid for _seq, pid in gone])
            self.deleted_through = gone[-1][0]
            added += len(gone)
        while True:
            rows = self.store.vectors_after(self.watermark, _PAGE)
            if not rows:
                break
            self._add(rows)
            self.watermark = rows[-1][1]
            added += len(rows)
        if added and len(self.index) > REBUILD_RATIO * max(1, len(self.store.vector_ids())):
            added += self._rebuild()
        if self.index.unknown_columns:
            added += self._backfill()
        if added:
            self.save()
        return added

    def _columns(self, ids: list[int], seqs: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids still in the store, their (n, len(FIELDS)) columns): the store's ranking fields
        of ``ids``, then ``seqs``; a post deleted meanwhile has none (and is left out)."""
        got = self.store.rank_fields(ids)
        keep = [i for i, pid in enumerate(ids) if pid in got]
        cols = np.zeros((len(keep), len(FIELDS)), dtype=np.int64)                 # (n, 6)
        if keep:
            rows = np.array([got[ids[i]] for i in keep], dtype=np.float64)          # (n, 5)
            cols[:, :_SEQ] = np.nan_to_num(rows).astype(np.int64)                 # None: 0
            cols[:, _SEQ] = [seqs[i] for i in keep]
        return np.array([ids[i] for i in keep], dtype=np.int64), cols

    def _add(self, rows: list[tuple[int, int, bytes]]) -> None:
        """Add ``(post id, seq, vector)`` rows with their ranking fields."""
        ids = np.array([r[0] for r in rows], dtype=np.int64)                      # (n,)
        vecs = from_blobs([r[2] for r in rows], self.dim)                         # (n, dim)
        have, cols = self._columns(ids.tolist(), [r[1] for r in rows])
        if len(have) == len(ids):
            self.index.add(ids, vecs, columns=cols)
            return
        # A post deleted since its vector was read: its row is added without columns (the
        # deletions log removes it on the next refresh, as before).
        self.index.add(ids, vecs)
        self.index.set_columns(have, cols)

    def _backfill(self) -> int:
        """Give the rows without columns (an index file from before them) their ranking fields,
        a page of ids at a time; their seq is the index's watermark, an upper bound (``nearest``
        then vouches for them in snapshots from the watermark on, SQL for older ones)."""
        todo = self.index.ids_without_columns().tolist()
        done = 0
        for i in range(0, len(todo), _PAGE):
            page = todo[i:i + _PAGE]
            have, cols = self._columns(page, [self.watermark] * len(page))
            done += self.index.set_columns(have, cols)
        return done

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids found, (m, dim) float32)``: the vectors the index holds (``VectorIndex.vectors_of``),
        as ``from_blobs`` gives the store's."""
        return self.index.vectors_of(ids)

    def nearest(self, q: np.ndarray, k: int, max_seq: int | None = None, *,
                ef: int | None = None) -> Nearest:
        """``search`` as arrays, with the ranking fields the index keeps beside each neighbour
        (``VectorIndex.nearest``: read with the search, no look-up by id): ``has_fields`` for
        the posts with their columns embedded at or before ``max_seq`` (a snapshot). The others'
        are for the store to read."""
        if not len(self.index):
            return Nearest.of_pairs([])
        ids, scores, known, cols = self.index.nearest(q, k, ef=ef)   # cols: (n, len(FIELDS))
        if max_seq is not None:
            known &= cols[:, _SEQ] <= max_seq
        return Nearest(ids, scores.astype(np.float64), known, cols[:, :_SEQ])

    def compact(self) -> dict:
        """Catch up, then zero the vectors and ids of the tombstones that still hold them, and
        save the file when it did. What it did, as a dict."""
        self.refresh()
        scrubbed = self.index.scrub()
        if scrubbed:
            self.save()
        return {"tombstones_scrubbed": scrubbed, "tombstones": self.index.rows - len(self.index),
                "vectors": len(self.index)}

    def _rebuild(self) -> int:
        keep = self.store.vector_ids()
        self.index = VectorIndex(self.dim, columns=FIELDS)
        self.watermark = 0
        n = 0
        while True:
            rows = [r for r in self.store.vectors_after(self.watermark, _PAGE)]
            if not rows:
                return n
            rows_kept = [r for r in rows if r[0] in keep]
            if rows_kept:
                self._add(rows_kept)
            self.watermark = rows[-1][1]
            n += len(rows_kept)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.index.save(self.path)
        tmp = self._meta_path().with_suffix(".tmp")
        tmp.write_text(json.dumps({"model": self.model, "dim": self.dim,
                                   "watermark": self.watermark,
                                   "deleted_through": self.deleted_through}))
        os.replace(tmp, self._meta_path())

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.index.search(q, k) if len(self.index) else []


class InStoreVectors:
    """The vector index of a store that keeps its own (``Store.indexes_in_store``: pgvector's
    HNSW in PostgreSQL): the same interface as ``StoreVectors``, nothing to refresh or save."""

    def __init__(self, store: Store):
        self.store = store
        self._count, self._counted = 0, 0.0

    @property
    def model(self) -> str | None:
        return self.store.embed_model()

    def __len__(self) -> int:
        if time.monotonic() - self._counted > 1.0:     # every query asks: count once a second
            self._count, self._counted = self.store.vector_count(), time.monotonic()
        return self._count

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self.store.vector_search(q, k)

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The store's vectors of ``ids`` (the index inside it keeps no other copy)."""
        blobs = self.store.vectors_of(list(ids))
        found = [pid for pid in ids if pid in blobs]
        dim = len(blobs[found[0]]) // 2 if found else 0            # float16 blobs (``to_blob``)
        return np.array(found, dtype=np.int64), from_blobs([blobs[pid] for pid in found], dim)

    def nearest(self, q: np.ndarray, k: int, max_seq: int | None = None, *,
                ef: int | None = None) -> Nearest:
        """The store's neighbours, no fields: the store reads them with its own check. ``ef``
        is ignored: pgvector's HNSW returns at most its beam width, which ``vector_search``
        raises to ``k``."""
        return Nearest.of_pairs(self.search(q, k))

    def refresh(self) -> int:
        return 0

    def compact(self) -> dict:
        """Nothing beside the store: its own ``compact`` covers the HNSW index."""
        return {"tombstones_scrubbed": 0, "tombstones": 0, "vectors": len(self)}

    def save(self) -> None:
        return None

