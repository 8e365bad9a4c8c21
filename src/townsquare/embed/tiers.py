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
The fast tier (a static model, >= 5,700 posts/s: ``fit-e5`` or ``m2v-e5``) sits in front of it,
in memory: each
:meth:`TieredVectors.refresh` (the engine's inline refresh, or the server's indexer thread)

1. catches the e5 index up and applies the store's deletions log to the fast index;
2. drops from the fast index every post whose e5 vector is now in the e5 index (its seq is at or
   below the e5 index's watermark): a post lives in exactly one tier;
3. fast-embeds the posts ingested since (``Store.posts_since`` behind the fast watermark);
4. with ``fit-e5`` and ``e5_embedder`` given (the product does): gives the few of them whose
   pieces the fitted table mostly never saw e5's own vector too (``novel``, at most
   ``novel_budget`` a refresh, the most unseen first): a post in new words or another language
   is then found across languages at once, not when e5's backlog reaches it.

``fit-e5`` (``embed.fitted``) lives in e5's space: e5's query vector searches both indexes, and
a fast hit's cosine, less the model's ``cosine_shift``, is on e5's scale. ``m2v-e5``
(``embed.static``) has a space of its own: a query is embedded in both spaces
(:class:`TieredEmbedder` returns the e5 vector, carrying the fast one as ``.fast``: the engine's
``embedder.query`` -> ``vectors.search`` path is unchanged), and its cosines, which run lower, are
mapped onto e5's scale (:func:`to_e5_scale`, a monotone map fit on real posts, see
``CALIBRATION``). Either way :meth:`TieredVectors.search` merges both indexes' hits by that
score, and a similarity floor tuned on e5 applies to both.

The fast index is never written to disk: a process starts it from the e5 tier's watermark
(re-embedding the e5 backlog takes backlog / 5,700 s), and a deletion removes the post's vector
and zeroes its row (``VectorIndex.scrub``) at the next refresh, so no byte of it stays in memory.
It is an exact scan (``VectorIndex(backend="numpy")``): faiss's HNSW inserts ~1,000 vectors/s
on 2 cores, far below the stream, while a scan of the fast tier's backlog costs ~2 ms per
10,000 posts. The fast tier holds only what e5 has not reached, so it stays small while e5
keeps up; under a stream faster than e5 it grows by (ingest - e5) posts/s, 1.5 KiB each, up to
``max_fast_posts`` (``MAX_FAST_POSTS``, 200,000): past it its oldest posts leave (zeroed, as a
deleted post's row), and wait for e5 in neither tier, which ``freshness`` says (``evicted``).

The fast model is a :class:`FastModel`: loaded on the caller's thread when first needed
(``wait_for_model=True``, a command), or on a thread of its own (:meth:`FastModel.start`, the
server's indexer), so that a first distillation (~4 minutes, progress logged) never holds up
the lexical index or a request; until it is ready, the fast tier embeds nothing and queries
search e5 alone. In the server, ``fit-e5`` is loaded in a child process (``embed.fastproc``):
the same vectors, without its tokenizing holding the server's GIL.
"""
from __future__ import annotations

import collections
import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from townsquare.embed.index import VectorIndex
from townsquare.protocols import Embedder, Nearest
from townsquare.protocols import VectorIndex as VectorIndexLike
from townsquare.store.base import Store

__all__ = ["CALIBRATION", "FastModel", "QueryVector", "TieredEmbedder", "TieredVectors",
           "to_e5_scale"]

log = logging.getLogger(__name__)

_PAGE = 20_000
# A fresh post gets e5's own vector in the fast tier (``TieredVectors._novel``) when at least this
# share of its pieces has no row in the fitted table: 0.6% of the posts that followed the 20,000
# a table was fitted on in the eval store (their median: 2.6%, 99th percentile: 17.5%), so ~34
# posts/s at 5,700 posts/s, about 0.3 of a core of e5 (~9 ms a post); ``novel_budget`` caps it.
# The share grows as the stream moves away from the fit: 4.05% of the 100,000 posts after those
# 20,000 (median 4.7%, 99th percentile 31.6%), 231 posts/s at 5,700 (measured 2026-12-07; see
# bench/findability.py).
NOVEL_MIN_UNSEEN = 0.2
# The most posts the fast tier holds (``TieredVectors.max_fast_posts``). It holds e5's backlog,
# which grows by (ingest - e5) posts/s under a stream faster than e5 (~350 posts/s on 2 cores):
# 5,350/s at 5,700, 19M posts (~29 GB) an hour. Every query scans it (an exact scan): 17 ms with
# its top 1,000 at 228,000 posts of real e5 vectors on 2 cores (2026-12-07), 75 us per 1,000
# posts. At this cap a query's scan stays under ~15 ms and the tier under ~300 MB; past it the
# oldest posts leave (their e5 vectors come when e5's backlog reaches them), and the freshest,
# which need the fast tier most, stay.
MAX_FAST_POSTS = 200_000
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


class FastModel:
    """The fast tier's embedder, loaded once by ``load(progress)``: on the first :meth:`get`,
    or on a daemon thread (:meth:`start`); ``embedder`` never waits.

        >>> class Ones:
        ...     name, dim = "ones", 2
        ...     def query(self, text): return np.ones(2, np.float32) / 2 ** 0.5
        ...     def passages(self, texts): return np.ones((len(texts), 2), np.float32) / 2 ** 0.5
        >>> m = FastModel("ones", 2, lambda progress: Ones())
        >>> m.embedder is None, m.state()["state"], m.get().name, m.state()["state"]
        (True, 'not loaded', 'ones', 'ready')
    """

    def __init__(self, name: str, dim: int,
                 load: Callable[[Callable[[int, int], None]], Embedder], *,
                 space: str | None = None, cosine_shift: float = 0.0):
        self.name, self.dim = name, dim
        # The e5 model whose space the fast vectors live in (``fit-e5``), or None for a space of
        # their own (``m2v-e5``): then queries are embedded twice and cosines mapped. In e5's
        # space, ``cosine_shift`` is taken off a fast cosine to put it on e5's scale.
        self.space, self.cosine_shift = space, float(cosine_shift)
        self._load = load
        self._emb: Embedder | None = None
        self._lock = threading.Lock()          # held while loading: get() waits for a load
        self._start_lock = threading.Lock()    # never held long: start() must not wait a load
        self._thread: threading.Thread | None = None
        self.error: str | None = None
        self.progress: tuple[int, int] | None = None     # (done, total) while distilling
        self._logged = -1

    @classmethod
    def of(cls, emb: "Embedder | FastModel") -> "FastModel":
        """``emb`` itself when it is a ``FastModel``, else one already loaded with it."""
        if isinstance(emb, FastModel):
            return emb
        m = cls(emb.name, emb.dim, lambda progress: emb, space=getattr(emb, "space", None),
                cosine_shift=getattr(emb, "cosine_shift", 0.0))
        m._emb = emb
        return m

    @property
    def embedder(self) -> Embedder | None:
        """The loaded embedder; None while it is not (yet) loaded."""
        return self._emb

    def get(self) -> Embedder | None:
        """The embedder, loaded now on this thread (or after the thread loading it); None when
        loading failed (``error`` says why; it is not tried again)."""
        with self._lock:
            if self._emb is None and self.error is None:
                t0 = time.perf_counter()
                try:
                    self._emb = self._load(self._progress)
                except Exception as e:           # noqa: BLE001 - the e5 tier serves without it
                    self.error = f"{type(e).__name__}: {e}"
                    log.warning("fast tier %s off: %s", self.name, self.error)
                else:
                    if self.progress is not None:
                        log.warning("fast tier %s: distilled in %.0f s", self.name,
                                    time.perf_counter() - t0)
        return self._emb

    def start(self) -> None:
        """Load on a daemon thread of its own (once); ``embedder`` is None until done."""
        with self._start_lock:
            if self._emb is not None or self.error is not None or self._thread is not None:
                return
            self._thread = threading.Thread(target=self.get, name="townsquare-fast-model",
                                            daemon=True)
            self._thread.start()

    def _progress(self, done: int, total: int) -> None:
        self.progress = (done, total)
        tenth = 10 * done // max(total, 1)
        if tenth > self._logged:               # one line per 10%: visible, never a flood
            self._logged = tenth
            log.warning("fast tier %s: distilling from e5, %d%% (%d/%d pieces)", self.name,
                        10 * tenth, done, total)

    def close(self) -> None:
        """End what the loaded embedder holds outside this process (the child of a
        ``fastproc.ProcessEmbedder``, the server's); an in-process model has nothing to end."""
        close = getattr(self._emb, "close", None)
        if callable(close):
            close()

    def state(self) -> dict[str, Any]:
        """``{"state": "ready" | "loading" | "distilling" | "failed" | "not loaded", ...}``."""
        if self._emb is not None:
            return {"state": "ready"}
        if self.error is not None:
            return {"state": "failed", "error": self.error}
        if self.progress is not None:
            done, total = self.progress
            return {"state": "distilling", "done": done, "total": total}
        return {"state": "loading" if self._thread is not None else "not loaded"}


class QueryVector(np.ndarray):
    """An e5 query vector (dim,) that also carries the fast model's vector of the same text
    as ``.fast``; anything that reads it as an array sees the e5 vector alone, and any
    arithmetic on it gives a plain array (the engine's feedback step moves the vector: the
    moved vector is e5's alone, so it searches the e5 tier only)."""

    fast: np.ndarray | None

    def __new__(cls, e5: np.ndarray, fast: np.ndarray | None) -> "QueryVector":
        obj = np.asarray(e5, dtype=np.float32).view(cls)
        obj.fast = fast
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.fast = None

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = lambda xs: tuple(np.asarray(x) if isinstance(x, QueryVector) else x  # noqa: E731
                                 for x in xs)
        if "out" in kwargs:
            kwargs["out"] = plain(kwargs["out"])
        return getattr(ufunc, method)(*plain(inputs), **kwargs)


class TieredEmbedder:
    """``e5`` for passages and queries, plus ``fast``'s query vector on every query once the
    fast model is loaded (``name`` and ``dim`` are e5's: the store's vectors are e5's), unless
    the fast model lives in e5's space: then e5's vector searches both tiers, embedded once.
    ``fast``: an embedder, or a :class:`FastModel` still to load."""

    def __init__(self, e5: Embedder, fast: "Embedder | FastModel"):
        self.e5, self.fast = e5, FastModel.of(fast)
        self.name, self.dim = e5.name, e5.dim

    def query(self, text: str) -> np.ndarray:
        f = self.fast.embedder
        if f is None or self.fast.space is not None:       # in e5's space: e5's vector serves
            return QueryVector(self.e5.query(text), None)
        return QueryVector(self.e5.query(text), f.query(text))

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.e5.passages(texts)


@runtime_checkable
class CountsUnseen(Protocol):
    """A fast model that says how much of each text its table never saw (``fit-e5``)."""

    def passages_and_unseen(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


class TieredVectors:
    """The e5 index (``e5``: ``StoreVectors`` or ``InStoreVectors``) plus an in-memory index of
    the posts only ``fast`` has embedded yet; the ``VectorIndex`` protocol over both.

    ``wait_for_model``: load the fast model on the refreshing thread when it is first needed
    (a command); False: only use it once loaded (the server starts it on a thread)."""

    def __init__(self, store: Store, e5: VectorIndexLike, fast: "Embedder | FastModel", *,
                 backend: str = "numpy", wait_for_model: bool = True,
                 e5_embedder: Embedder | None = None, novel_budget: int = 16,
                 novel_min_unseen: float = NOVEL_MIN_UNSEEN,
                 max_fast_posts: int = MAX_FAST_POSTS):
        if novel_budget < 0:
            raise ValueError(f"novel_budget must be >= 0, got {novel_budget}")
        if max_fast_posts < 1:
            raise ValueError(f"max_fast_posts must be >= 1, got {max_fast_posts}")
        if not 0.0 < novel_min_unseen <= 1.0:
            raise ValueError(f"novel_min_unseen must be in (0, 1], got {novel_min_unseen}")
        self.store, self.e5 = store, e5
        self.fast_model = FastModel.of(fast)
        self.fast = VectorIndex(self.fast_model.dim, backend=backend)
        self.wait_for_model = wait_for_model
        # Novel posts (see ``_novel``): e5's own vectors of the fresh posts the fitted table
        # represents worst, in the fast tier (they leave with it), searched with e5's query
        # vector and scored by e5's cosine. At most ``novel_budget`` a refresh: under a stream
        # that saturates the cores the refreshes come further apart and e5's share stays
        # bounded. (32 posts a second instead was tried once, bench/serve.py --findability at
        # 5,700 posts/s: 2 markers of 15 found by their own text, ingest acked at 8 s p50; this
        # budget: 4 and 2 in two runs; runs at that rate vary widely, e5 alone 0.15 to 3.3 s.
        # Also tried, not kept: handing them to a thread of their own, 16 at a time for up to a
        # quarter of the wall clock, so that refreshes never wait for e5. At 5,700 posts/s it
        # served ~7 posts/s, as this budget does (~8/s: refreshes ~2 s apart), while ~3% of that
        # stream's posts are novel (40/s in a median second, 500/s at the 90th percentile): on
        # two saturated cores, e5's time is the limit, not where it runs. The background's e5
        # share was worse: its steps took seconds under that load, ~1 post/s.)
        self.e5_embedder, self.novel_budget = e5_embedder, int(novel_budget)
        self.novel_min_unseen = float(novel_min_unseen)
        self.novel = VectorIndex(e5_embedder.dim if e5_embedder is not None
                                 else self.fast_model.dim, backend="numpy")
        self.fast_seq = 0                       # newest seq fast-embedded
        # The fast tier holds at most ``max_fast_posts`` (``MAX_FAST_POSTS``), the newest: every
        # post at or below ``evicted_through`` has left it (or was never embedded: a backlog
        # larger than the cap is skipped to its newest posts), and those e5 has not reached yet
        # are in neither tier.
        self.max_fast_posts = int(max_fast_posts)
        self.evicted_through = 0
        self.deleted_through = 0                # the deletions log's watermark
        self._order: collections.deque[tuple[int, int]] = collections.deque()   # (seq, id)
        self._seq_of: dict[int, int] = {}       # id -> seq of its fast vector (a changed post
        # comes back with a new seq: only its newest entry in _order counts)

    @property
    def model(self) -> str | None:
        return self.e5.model

    def __len__(self) -> int:
        return len(self.e5) + len(self.fast)

    def e5_watermark(self, store: Store | None = None) -> int:
        """Newest seq the e5 index holds: the ``StoreVectors`` file's watermark, or the store's
        own (read through ``store``, default the tier's) for an index inside the store."""
        wm = getattr(self.e5, "watermark", None)
        return (int(wm) if wm is not None
                else (store or self.store).embedded_through())

    def through_seq(self, store: Store | None = None) -> int:
        """Every post up to this seq is in one of the tiers: e5's watermark while posts the fast
        tier let go (``evicted_through``) wait for e5."""
        return self._through(self.e5_watermark(store))

    def _through(self, e5_wm: int) -> int:
        return e5_wm if self.evicted_through > e5_wm else max(self.fast_seq, e5_wm)

    def refresh(self) -> int:
        """Catch both tiers up (see the module docstring); returns how many changes."""
        return self.e5.refresh() + self.refresh_fast()

    def refresh_fast(self) -> int:
        """The fast tier's part of :meth:`refresh`, for a process that refreshes the e5 index
        on another thread (the server): it only reads the e5 index's watermark, which moves
        once the e5 index holds the posts below it, so a post is never in neither tier."""
        changed = 0
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
            if len(self.novel) and self.novel.remove(gone_ids):
                self.novel.scrub()
        start = max(self.fast_seq, e5_wm)
        newest = self.store.max_seq()
        if newest <= start:
            return changed
        emb = self.fast_model.get() if self.wait_for_model else self.fast_model.embedder
        if emb is None:
            if not self.wait_for_model:
                self.fast_model.start()
            return changed
        if newest - start > self.max_fast_posts:
            # More new posts than the tier holds (a backlog when a server starts, a burst): only
            # the newest ``max_fast_posts`` seqs are embedded, the rest wait for e5.
            changed += self._evict(newest - self.max_fast_posts)
            start = self.evicted_through
        novel = (self.e5_embedder is not None and self.novel_budget > 0
                 and isinstance(emb, CountsUnseen))
        worst: list[tuple[float, int, int, str]] = []       # (unseen share, seq, id, text)
        while rows := self.store.posts_since(start, _PAGE):
            ids = np.array([r[0] for r in rows], dtype=np.int64)                  # (n,)
            texts = [r[2] for r in rows]
            if novel:
                vecs, unseen = emb.passages_and_unseen(texts)          # (n, dim), (n,)
                worst = heapq.nlargest(self.novel_budget, worst + [
                    (float(unseen[i]), rows[i][1], rows[i][0], texts[i])
                    for i in np.flatnonzero(unseen >= self.novel_min_unseen)])
            else:
                vecs = emb.passages(texts)                                       # (n, dim)
            if len(self.novel) and self.novel.remove(ids):     # a changed post: its old text
                self.novel.scrub()
            self.fast.add(ids, vecs)
            self._order.extend((seq, pid) for pid, seq, _ in rows)
            self._seq_of.update((pid, seq) for pid, seq, _ in rows)
            start = self.fast_seq = rows[-1][1]
            changed += len(rows)
            if len(self.fast) > self.max_fast_posts:
                changed += self._evict(self._oldest_to_keep())
        if worst:
            self._novel([w for w in worst if w[1] > self.evicted_through])
        return changed

    def _oldest_to_keep(self) -> int:
        """The seq below which posts leave so that ``max_fast_posts`` stay (``_order`` is in
        seq order; stale entries, of posts changed since, do not count)."""
        over = len(self.fast) - self.max_fast_posts
        for seq, pid in self._order:
            if self._seq_of.get(pid) == seq:
                over -= 1
                if over == 0:
                    return seq
        return self.fast_seq

    def _evict(self, through: int) -> int:
        """Let every post at or below ``through`` leave the fast tier (``max_fast_posts``);
        their rows are zeroed, as a deleted post's are (``VectorIndex.scrub``). How many."""
        gone: list[int] = []
        while self._order and self._order[0][0] <= through:
            seq, pid = self._order.popleft()
            if self._seq_of.get(pid) == seq:
                del self._seq_of[pid]
                gone.append(pid)
        self.evicted_through = max(self.evicted_through, through)
        if not gone:
            return 0
        n = self.fast.remove(gone)
        self.fast.scrub()
        if len(self.novel) and self.novel.remove(gone):
            self.novel.scrub()
        log.info("fast tier: %d posts left it (at most %d; the rest wait for e5)", n,
                 self.max_fast_posts)
        return n

    def _novel(self, worst: list[tuple[float, int, int, str]]) -> None:
        """Give e5's own vector to the fresh posts whose pieces the fitted table mostly never
        saw (``worst``: share unseen, seq, id, text; the most unseen first, then the newest).

        Why: a static table is as good as the words it was fitted on. A post in words the
        stream never used (a new event, another language) gets a vector from its few known
        pieces, and a query in another language does not find it, while e5 would. e5 cannot
        keep up with the stream (~350 posts/s on 2 cores against 5,700), but these posts are
        few: spending e5 on them first, at most ``novel_budget`` a refresh, makes exactly the
        posts the fast tier cannot represent findable across languages within a refresh,
        instead of when e5's backlog reaches them."""
        ids = np.array([pid for _u, _s, pid, _t in worst], dtype=np.int64)         # (m,)
        self.novel.add(ids, self.e5_embedder.passages([t for *_x, t in worst]))    # (m, 384)

    def search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest posts in both tiers, best first; a fast model in its own space is searched
        with its own query vector (``q.fast``) and its cosines mapped onto e5's scale, one in
        e5's space with ``q`` itself, its cosines less the model's ``cosine_shift``. Only a
        query's own vector (a ``QueryVector``) searches the fast tier: a vector the engine's
        feedback step moved (a plain array) searches e5's index alone, as with ``m2v-e5``,
        because the fast tier is an exact scan whose cost grows with e5's backlog."""
        near = self.nearest(q, k)
        return list(zip(near.ids.tolist(), near.scores.tolist()))

    def nearest(self, q: np.ndarray, k: int, max_seq: int | None = None, *,
                ef: int | None = None) -> Nearest:
        """``search`` as arrays, with the ranking fields of e5's neighbours
        (``StoreVectors.nearest``); the fast tier's posts are few, the store reads theirs.
        ``ef`` goes to the e5 index's walk (the fast tier is an exact scan)."""
        near = self.e5.nearest(q, k, max_seq, ef=ef) if len(self.e5) else Nearest.of_pairs([])
        if not isinstance(q, QueryVector):
            return near
        seen = set(near.ids.tolist())
        more: list[tuple[int, float]] = []
        if len(self.novel):                  # e5's own vectors of novel posts: e5's cosines
            more += [h for h in self.novel.search(np.asarray(q), k) if h[0] not in seen]
            seen.update(pid for pid, _ in more)
        shared = self.fast_model.space is not None
        fq = np.asarray(q) if shared else q.fast
        if fq is not None and len(self.fast):
            hits = [h for h in self.fast.search(fq, k) if h[0] not in seen]
            cos = np.array([s for _, s in hits], dtype=np.float64)
            scaled = cos - self.fast_model.cosine_shift if shared else to_e5_scale(cos)
            more += [(pid, float(s)) for (pid, _), s in zip(hits, scaled)]
        if not more:
            return near
        both = [np.concatenate(pair) for pair in zip(near, Nearest.of_pairs(more))]
        best = np.lexsort((-both[0], -both[1]))[:k]       # by cosine, ties by the larger id
        return Nearest(*(a[best] for a in both))

    def vectors_of(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """e5's vectors of ``ids`` (the fast tier's are in another space, or a fitted copy)."""
        return self.e5.vectors_of(ids)

    def compact(self) -> dict:
        return self.e5.compact()

    def save(self) -> None:
        self.e5.save()

    def freshness(self, store: Store | None = None) -> dict[str, Any]:
        """The fast tier's lag right now: ``posts`` ingested (or changed) that neither tier
        holds, ``seconds`` since the oldest of them was ingested (0.0 when none), ``indexed``
        (posts only the fast tier holds), ``evicted`` (those of ``posts`` that the fast tier let
        go at ``max_posts``) and the model's ``state``. ``store``: the connection to read
        through (a request thread's own; default the tier's)."""
        store = store or self.store
        e5_wm = self.e5_watermark(store)
        through = self._through(e5_wm)
        # In neither tier: the posts the fast tier let go that e5 has not reached, and the posts
        # after the newest the fast tier embedded (seq ranges, as the other arms count).
        evicted = max(0, self.evicted_through - e5_wm)
        pending = evicted + max(0, store.max_seq() - max(self.fast_seq, e5_wm))
        oldest = store.ingested_at_after(through) if pending else None
        age = 0.0 if oldest is None else round(max(0.0, time.time() - oldest / 1000), 1)
        return {"model": self.fast_model.name, **self.fast_model.state(), "posts": pending,
                "seconds": age, "indexed": len(self.fast), "novel": len(self.novel),
                "through_seq": through, "evicted": evicted, "max_posts": self.max_fast_posts}
