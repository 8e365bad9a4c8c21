"""Two embedding tiers: a fast static model embeds every post as it arrives; e5 replaces it.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.embed.sync import StoreVectors
    >>> from townsquare.embed.models import get_embedder
    >>> from townsquare.search.engine import SearchEngine     # as services.indexes would
    >>> store = SQLiteStore(":memory:")
    >>> e5, fast = get_embedder("e5-small-int8"), get_embedder("m2v-e5")    # doctest: +SKIP
    >>> vectors = TieredVectors(store, StoreVectors(store, None, e5.dim), fast)  # doctest: +SKIP
    >>> engine = SearchEngine(store, embedder=TieredEmbedder(e5, fast), vectors=vectors)  # doctest: +SKIP

The e5 tier is what it always was: ``EmbedStage`` writes e5 vectors into the store behind its
watermark (~350 posts/s on 2 cores) and ``StoreVectors`` (or ``InStoreVectors``) indexes them.
The fast tier (``m2v-e5``, >= 5,700 posts/s) sits in front of it, in memory: each
:meth:`TieredVectors.refresh` (the engine's inline refresh, or the server's indexer thread)

1. catches the e5 index up and applies the store's deletions log to the fast index;
2. drops from the fast index every post whose e5 vector is now in the e5 index (its seq is at or
   below the e5 index's watermark): a post lives in exactly one tier;
3. fast-embeds the posts ingested since (``Store.posts_since`` behind the fast watermark).

A query is embedded in both spaces (:class:`TieredEmbedder` returns the e5 vector, carrying the
fast one as ``.fast``: the engine's ``embedder.query`` -> ``vectors.search`` path is unchanged),
and :meth:`TieredVectors.search` asks both indexes and merges them. Cosines of the two models
are not on one scale (static cosines run lower), so a fast hit's score is mapped onto e5's scale
first (:func:`to_e5_scale`, a monotone map fit on real posts, see ``CALIBRATION``); the merged
list is then ordered by that score, and a similarity floor tuned on e5 applies to both.

The fast index is never written to disk: a process starts it from the e5 tier's watermark
(re-embedding the e5 backlog takes backlog / 5,700 s), and a deletion removes the post's vector
and zeroes its row (``VectorIndex.scrub``) at the next refresh, so no byte of it stays in memory.
"""
from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from townsquare.embed.index import VectorIndex
from townsquare.protocols import Embedder
from townsquare.protocols import VectorIndex as VectorIndexLike
from townsquare.store.base import Store

__all__ = ["CALIBRATION", "QueryVector", "TieredEmbedder", "TieredVectors", "to_e5_scale"]

_PAGE = 20_000
# Knots of the monotone map from an m2v-e5 query->post cosine to the e5 cosine of the same rank:
# quantiles (min, 5%, 25%, 50%, 75%, 90%, 99%, max) of the top-100 neighbour cosines of 200
# held-out posts' first 8 words over 1,800 HumAID posts, in each space (bench/embed.py prints
# them, bench/results/embed.md; refit when the recipe changes), and two end points.
CALIBRATION = ((0.0, 0.60), (0.623, 0.773), (0.695, 0.805), (0.743, 0.824), (0.771, 0.837),
               (0.799, 0.852), (0.82, 0.864), (0.854, 0.888), (0.894, 0.924), (1.0, 1.0))


def to_e5_scale(cos: np.ndarray | float) -> np.ndarray:
    """An m2v-e5 cosine as the e5 cosine of the same rank (piecewise linear through
    ``CALIBRATION``, flat below its first knot).

        >>> float(to_e5_scale(1.0))
        1.0
    """
    xs, ys = zip(*CALIBRATION)
    return np.interp(np.asarray(cos, dtype=np.float64), xs, ys)


class QueryVector(np.ndarray):
    """An e5 query vector (dim,) that also carries the fast model's vector of the same text
    as ``.fast``; anything that reads it as an array sees the e5 vector alone."""

    fast: np.ndarray | None

    def __new__(cls, e5: np.ndarray, fast: np.ndarray | None) -> "QueryVector":
        obj = np.asarray(e5, dtype=np.float32).view(cls)
        obj.fast = fast
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        # Arithmetic (the engine's feedback step moves the vector) gives a new array: the moved
        # vector is e5's alone, so it searches the e5 tier only.
        self.fast = None


class TieredEmbedder:
    """``e5`` for passages and queries, plus ``fast``'s query vector on every query (``name``
    and ``dim`` are e5's: the store's vectors are e5's)."""

    def __init__(self, e5: Embedder, fast: Embedder):
        self.e5, self.fast = e5, fast
        self.name, self.dim = e5.name, e5.dim

    def query(self, text: str) -> np.ndarray:
        return QueryVector(self.e5.query(text), self.fast.query(text))

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.e5.passages(texts)


class TieredVectors:
    """The e5 index (``e5``: ``StoreVectors`` or ``InStoreVectors``) plus an in-memory index of
    the posts only ``fast`` has embedded yet; the ``VectorIndex`` protocol over both."""

    def __init__(self, store: Store, e5: VectorIndexLike, fast: Embedder, *,
                 backend: str = "auto"):
        self.store, self.e5, self.fast_embedder = store, e5, fast
        self.fast = VectorIndex(fast.dim, backend=backend)
        self.fast_seq = 0                       # newest seq fast-embedded
        self.deleted_through = 0                # the deletions log's watermark
        self._order: collections.deque[tuple[int, int]] = collections.deque()   # (seq, id)
        self._seq_of: dict[int, int] = {}       # id -> seq of its fast vector (a changed post
        # comes back with a new seq: only its newest entry in _order counts)
        self.caught_up_at: float | None = None  # wall time the fast tier last had nothing left

    @property
    def model(self) -> str | None:
        return self.e5.model

    def __len__(self) -> int:
        return len(self.e5) + len(self.fast)

    def e5_watermark(self) -> int:
        """Newest seq the e5 index holds: the ``StoreVectors`` file's watermark, or the store's
        own for an index inside the store."""
        wm = getattr(self.e5, "watermark", None)
        return int(wm) if wm is not None else int(self.store.embedding_lag()["processed_through_seq"])

    def refresh(self) -> int:
        """Catch both tiers up (see the module docstring); returns how many changes."""
        changed = self.e5.refresh()
        gone_ids: list[int] = []
        if self.deleted_through == 0 and self.fast_seq == 0:
            # A new fast tier reads only the posts left: skip the log, as StoreVectors does.
            while gone := self.store.deletions_since(self.deleted_through, _PAGE):
                self.deleted_through = gone[-1][0]
        while gone := self.store.deletions_since(self.deleted_through, _PAGE):
            gone_ids.extend(pid for _seq, pid in gone if self._seq_of.pop(pid, None) is not None)
            self.deleted_through = gone[-1][0]
        # Replaced by e5: every post at or below the e5 index's watermark.
        e5_wm = self.e5_watermark()
        while self._order and self._order[0][0] <= e5_wm:
            seq, pid = self._order.popleft()
            if self._seq_of.get(pid) == seq:
                del self._seq_of[pid]
                gone_ids.append(pid)
        if gone_ids:
            changed += self.fast.remove(gone_ids)
            self.fast.scrub()                   # no byte of a removed vector stays in memory
        start = max(self.fast_seq, e5_wm)
        while rows := self.store.posts_since(start, _PAGE):
            ids = np.array([r[0] for r in rows], dtype=np.int64)                  # (n,)
            self.fast.add(ids, self.fast_embedder.passages([r[2] for r in rows]))  # (n, dim)
            self._order.extend((seq, pid) for pid, seq, _ in rows)
            self._seq_of.update((pid, seq) for pid, seq, _ in rows)
            start = self.fast_seq = rows[-1][1]
            changed += len(rows)
        self.caught_up_at = time.time()
        return changed

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest posts in both tiers, best first, fast cosines mapped onto e5's scale."""
        hits = self.e5.search(q, k) if len(self.e5) else []
        fq = getattr(q, "fast", None)
        if fq is None or not len(self.fast):
            return hits
        seen = {pid for pid, _ in hits}
        near = self.fast.search(fq, k)
        scaled = to_e5_scale(np.array([s for _, s in near], dtype=np.float64))
        hits += [(pid, float(s)) for (pid, _), s in zip(near, scaled) if pid not in seen]
        hits.sort(key=lambda h: (-h[1], -h[0]))
        return hits[:k]

    def compact(self) -> dict:
        return self.e5.compact()

    def save(self) -> None:
        self.e5.save()

    def freshness(self) -> dict[str, Any]:
        """The fast tier's lag right now: posts ingested it has not embedded, and seconds since
        it last caught up (0 when nothing is pending; None before its first refresh)."""
        pending = max(0, self.store.max_seq() - max(self.fast_seq, self.e5_watermark()))
        age = (0.0 if not pending else None if self.caught_up_at is None
               else round(time.time() - self.caught_up_at, 1))
        return {"model": self.fast_embedder.name, "posts": pending, "seconds": age,
                "indexed": len(self.fast)}
