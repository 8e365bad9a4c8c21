"""Search: Twitter's query language over the store, lexical + semantic, fused and ranked.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048 + i, text=t, source="t").normalized())
    ...                    for i, t in enumerate(["Flood on Main St", "Sunny day", "flood warning"])], [])
    >>> r = SearchEngine(s).run("flood -warning")
    >>> [h.text for h in r.results]
    ['Flood on Main St']

Stages (each timed; ``SearchResponse.timings_ms``):

1. **parse** the query (``townsquare.query``); the store compiles it into its own SQL.
2. **lexical**: BM25 (FTS5, or the tantivy index beside the store) over the posts that satisfy
   the whole query (``top``), or every exact match newest first (``latest``).
3. **semantic** (``top`` only, when the store has vectors): embed the query's positive text, take
   the nearest posts from the vector index, and keep those that satisfy the query's operators and
   exclusions (its positive words are relaxed: that is what lets ``inondation`` find ``flood``).
   Lexical never waits for embeddings: posts not embedded yet are still found lexically.
   The query's embedding and its neighbour search run on a worker thread (``search.worker``)
   while the lexical lists are read; ``semantic_wait`` is the time the query then waits.
4. **feedback** (``top``, semantic on): pseudo-relevance feedback in embedding space (Rocchio).
   The first round's fused top posts (``feedback_docs``, one per near-duplicate group) are
   taken as relevant; the query vector is moved towards their centroid and searched again, and
   that list joins the fusion. A short query ("Hurricane Sandy") names an event; its best posts
   describe it (places, damage, rescues), and their centroid finds the event's posts that share
   no word with the query. With the tantivy index, the **expansion** list joins it too: BM25 of
   the posts holding any of the words that the fused top posts (``expansion_docs``) share,
   rarest first (``expansion_terms``; the lexical evidence of a query in another language than
   the stream's). ``eval/search.py`` measures what each adds.
5. **fuse and rank**: reciprocal rank fusion, plus recency and engagement (``search.rank``);
   with vectors, the learned **rerank** of the candidates below the head (``search.rerank``).
6. **collapse** near-duplicates (the ingest late stage's links) into one result with a count.

Depth: ``top`` ranks every post that any list retrieves, not a fixed top 200: the every-word and
any-word BM25 lists to ``lexical_depth`` (1,000) posts each, the semantic and feedback lists down
to a similarity floor (``min_similarity``: calibrated per model on the tuning half of
``eval/search.py``'s events, ``SIMILARITY_FLOORS``; at most ``semantic_depth`` neighbours). The
fusion runs once over that whole candidate set, and a page is a slice of it, so scores on page 5
compare with those on page 1 and a page chain lists each candidate once. Only the page's posts
are read, as a result shows them (``Store.shown``); ranking fields (``rank.RankColumns``) come
from tantivy's columns with its hits, the vector index's for the neighbours of a query with no
operator (``VectorIndex.nearest``: counts as of embedding, tantivy's as of indexing), the read
that checks operators (``Store.filter_rank_fields``), or one light read (``Store.rank_fields``);
near-duplicate roots are read for the ranking's head, as far as the page needs (``_collapse``).

Early termination: without a semantic stage (no embedder, or ``semantic=False``), the lexical
lists are first read ``lexical_first_depth`` deep (50), then four times deeper, until no post
further down any list can reach the page (``_top_early``, ``rank.proven_prefix``): the page is
exactly the one the whole depth gives (a test compares them page by page), for a fraction of the
reading (``bench/search.py``: lexical queries at 1.1M posts). With the semantic stage, the
fusion and the feedback round need every list whole.

Pagination: a cursor (``search.cursor``) fixes a snapshot (the store's ``seq`` at page 1, its
"now", the newest post's time that recency counts from): later posts neither appear nor shift
pages; ``top`` pages slice the ranking of that snapshot, ``latest`` pages continue after the
last ``(created_at, id)`` seen. BM25's statistics (word frequencies, mean length) do move with
new posts: a post whose BM25 rank changes can cross a page boundary (not for one word).
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future

import numpy as np

from townsquare import query as q
from townsquare.protocols import Embedder, LexicalIndex, Nearest, VectorIndex
from townsquare.search import rerank
from townsquare.search.config import (SIMILARITY_FLOORS, UNCALIBRATED_DEPTH, SearchConfig,
                                      SearchError)
from townsquare.search.cursor import MAX_TIME_MS, decode_cursor, encode_cursor, fingerprint
from townsquare.search.lexquery import relax_text
from townsquare.search.rank import (Fused, RankColumns, Scores, expansion_terms, final_scores,
                                   heads, order, proven_prefix, rrf)
from townsquare.search.results import SearchHit, SearchResponse, hit_of
from townsquare.search.worker import worker
from townsquare.store.base import Store
from townsquare.timing import Laps

__all__ = ["MAX_LIMIT", "MODES", "SIMILARITY_FLOORS", "SearchConfig", "SearchEngine", "SearchError",
           "SearchHit", "SearchResponse", "heads", "relax_text"]

log = logging.getLogger(__name__)

MODES = ("top", "latest")
MAX_INLINE_LAG = 20_000    # the tantivy index catches up inline when at most this far behind
MAX_LIMIT = 1000           # results per page
EARLY_SPAN = 2             # a shallow read: at least this many times the posts a page needs
_MATCHED = ("lexical", "any_terms", "semantic", "feedback", "expansion")  # hit order
_FEEDBACK_HEAD = 200       # near-duplicate groups read for the feedback round's top posts
PENDING_COUNTED = 10_000   # a response's semantic.pending_posts: counted up to this (e5's whole
                           # backlog took ~28 ms to count at 1.1M posts, on every query)


class SearchEngine:
    """Search a store. ``embedder`` and ``vectors`` (``embed.sync.StoreVectors`` or
    ``InStoreVectors``) enable the semantic stage; without them search is lexical only, and says
    so in ``response.semantic``. ``lexical_index`` (``search.lexindex.LexicalIndex``, tantivy)
    answers ``top`` text queries faster than the store's own full-text index."""

    def __init__(self, store: Store, *, embedder: Embedder | None = None,
                 vectors: VectorIndex | None = None, lexical_index: LexicalIndex | None = None,
                 config: SearchConfig | None = None, refresh_indexes: bool = True):
        if (embedder is None) != (vectors is None):
            raise ValueError("give both embedder and vectors, or neither")
        self.store = store
        # True: a query catches the derived indexes (tantivy, vectors) up with the store first.
        # The HTTP service passes False: one background thread refreshes them for every request
        # thread (``api.indexer``), so queries only read them and never write.
        self.refresh_indexes = refresh_indexes
        self.lexical_index = lexical_index
        self.embedder = embedder
        self.vectors = vectors
        self.config = config or SearchConfig()
        # the learned re-ranking below the head, for a model with fitted weights (search.rerank)
        self.reranker = (rerank.model_for(embedder.name)
                         if embedder is not None and self.config.rerank else None)

    def run(self, query: str, *, mode: str = "top", limit: int = 20, cursor: str | None = None,
            semantic: bool = True, now_ms: int | None = None) -> SearchResponse:
        """Parse, retrieve, rank. Raises ``QueryError`` for a bad query, ``SearchError`` for a bad
        mode, limit or cursor."""
        if mode not in MODES:
            raise SearchError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not 1 <= limit <= MAX_LIMIT:
            raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        clock = Laps()
        node = q.parse(query)
        state = self._state(query, mode, cursor, now_ms)
        clock.lap("parse")
        if mode == "latest":
            hits, nxt = self._latest(node, limit, state, clock)
            sem = {"used": False, "reason": "latest mode lists exact matches by time"}
            depth = None
        else:
            hits, nxt, sem, depth = self._top(node, limit, state, semantic, clock)
        return SearchResponse(query=query, mode=mode, results=hits, next_cursor=nxt,
                              timings_ms=clock.total(), semantic=sem,
                              lexical_depth=depth)

    def rerank_features(self, query: str, *, now_ms: int | None = None
                        ) -> tuple[list[int], np.ndarray] | None:
        """``(candidates best first, their rerank.FEATURES rows (n, 12))`` of ``query``'s fused
        ``top`` ranking, as the re-ranking sees them (``eval/fit_rerank.py`` fits on them);
        None when the query has no semantic stage or no candidate has a vector."""
        out: list = []
        self._top(q.parse(query), 1, self._state(query, "top", None, now_ms), True, Laps(),
                  features_out=out)
        return out[0] if out else None

    def _state(self, query: str, mode: str, cursor: str | None, now_ms: int | None) -> dict:
        """A request's pinned state: a cursor's (the snapshot ``seq``, "now" for within_time:,
        the time recency counts from, the page's offset), or a first page's."""
        state = decode_cursor(cursor, query, mode) if cursor else {
            "v": 1, "f": fingerprint(query, mode), "s": self.store.max_seq(),
            "n": int(time.time() * 1000) if now_ms is None else now_ms}
        if mode == "top" and "r" not in state:
            # recency counts from the newest post of the snapshot: pinned, so that posts
            # arriving between pages do not age every candidate and reorder the ranking
            state["r"] = min(max(self.store.newest_created_at() or 0, 0), MAX_TIME_MS)
        return state

    # --- latest ----------------------------------------------------------------------------------
    def _latest(self, node: q.Node, limit: int, state: dict, clock: Laps):
        before = tuple(state["b"]) if "b" in state else None
        fetch = limit * 2 + 1              # room for near-duplicates collapsed away
        # Newest first from the tantivy index (created_at is one of its columns) when it answers
        # the query exactly and holds every post of the snapshot, else the store's own order:
        # an index the server's indexer has not caught up would miss the newest posts.
        got = self._from_index(self._index(state, clock, complete=True), node, fetch, state, [],
                               "time", before=before)
        rows = [(pid, None) for pid in got[0]] if got is not None else self.store.lexical_search(
            node, now_ms=state["n"], limit=fetch, order="time", before=before, max_seq=state["s"])
        clock.lap("lexical")
        posts = self.store.shown([pid for pid, _ in rows])
        rows = [r for r in rows if r[0] in posts]     # deleted since the index was refreshed
        dups = self.store.dup_info([pid for pid, _ in rows])
        clock.lap("hydrate")
        hits, roots, used = [], set(), 0
        for pid, _ in rows:
            if len(hits) == limit:
                break
            used += 1
            root, count = dups.get(pid, (pid, 0))
            if root in roots:              # a near-duplicate of a post already on this page
                continue
            roots.add(root)
            hits.append(hit_of(posts[pid], 0.0, {}, ["lexical"], count))
        clock.lap("collapse")
        nxt = None
        if used and (used < len(rows) or len(rows) == fetch):   # more rows after the last used
            last = posts[rows[used - 1][0]]
            nxt = encode_cursor({**state, "b": [last.created_at, last.id]})
        return hits, nxt

    # --- top -------------------------------------------------------------------------------------
    def _top(self, node: q.Node, limit: int, state: dict, semantic: bool, clock: Laps,
             features_out: list | None = None):
        cfg = self.config
        offset = int(state.get("o", 0))
        want = offset + limit + 1          # the page, and one more to know a next page exists
        rankable = self.store.rankable(node)
        lx = self._index(state, clock)
        # The query's embedding and its neighbours (``_nearest``: onnxruntime and faiss, which
        # release the GIL) run on the engine's worker thread beside the lexical lists.
        pending = self._start_semantic(node, semantic, state, clock)
        no_semantic = self.embedder is None or not semantic
        if isinstance(pending, dict) and lx is not None:
            # Lexical lists only: read them shallow first, as deep as the page is proven to be.
            early = self._top_early(lx, node, want, rankable, no_semantic, state, clock)
            if early is not None:
                scores, collapsed, lists, lex_scores, roots, depth = early
                hits = self._page(scores, collapsed, lists, lex_scores, {}, roots, offset, limit,
                                  clock)
                return hits, self._next(state, offset, limit, collapsed), pending, depth
        # Ranking fields read with the candidates (the tantivy index's columns, the semantic
        # filter's rows): only the other candidates' are read from the store.
        fields: list[RankColumns] = []
        lists, lex_scores = self._lexical_lists(lx, node, cfg.lexical_depth, rankable,
                                                no_semantic, state, fields, clock,
                                                parallel=isinstance(pending, dict))
        # Posts of the lexical lists satisfy the whole query, so its operators and exclusions
        # too (``relax_text`` only drops conditions), and their ranking fields are read: a
        # semantic or feedback neighbour among them needs no check in the store.
        known = ({pid: True for name in ("lexical", "any_terms") for pid in lists.get(name, ())}
                 if semantic and self.embedder is not None else {})
        # Near-duplicate roots are read for the posts that can matter: the feedback round's
        # top posts, the ranking's head as far as the page needs (``_collapse``); the groups'
        # sizes for the page's posts only (a count over each group).
        roots: dict[int, int] = {}
        texts: dict[int, str] = {}
        wants_feedback = cfg.feedback_docs and cfg.weights.feedback > 0
        if wants_feedback and not isinstance(pending, dict) and lists["lexical"]:
            # While the worker embeds the query and walks the graph (~9 ms at 1.1M posts, the
            # lexical lists ~3): the roots and texts the feedback round will read are mostly
            # those of the lexical lists' head. A cache: what the fused head adds is read then.
            head = rrf(lists, cfg.weights).best(_FEEDBACK_HEAD)
            self._read_roots(roots, head)
            if cfg.expansion_docs:
                texts.update(self.store.texts_of(heads(head, roots, cfg.expansion_docs)))
            clock.lap("prefetch")
        sem_info, cos, qv, sem_filter = self._semantic(node, pending, state, lists, fields,
                                                       known, clock, lx)
        relevance = rrf(lists, cfg.weights)
        if qv is not None and wants_feedback:
            self._read_roots(roots, relevance.best(_FEEDBACK_HEAD))
            more = self._feedback(lx, node, qv, lists, relevance, roots, texts, sem_filter,
                                  state, fields, known)
            if more:
                lists.update(more)
                relevance = rrf(lists, cfg.weights)
            clock.lap("feedback")
        scores, ranked = self._ranked(relevance, fields, state, clock)
        collapsed = self._collapse(ranked, roots, want)
        # The re-ranking moves only candidates below its kept head: a page (and the post after
        # it) all inside that head is the same without it (most first pages of 20).
        if qv is not None and (features_out is not None or self.reranker is not None and not
                               set(collapsed) <= set(ranked[:self.reranker.keep_top])):
            ranked = self._rerank(scores, ranked, qv, roots, lists, clock, features_out)
            collapsed = self._collapse(ranked, roots, want)
        hits = self._page(scores, collapsed, lists, lex_scores, cos, roots, offset, limit, clock)
        return hits, self._next(state, offset, limit, collapsed), sem_info, cfg.lexical_depth

    def _top_early(self, lx: LexicalIndex, node: q.Node, want: int, rankable: bool,
                   no_semantic: bool, state: dict, clock: Laps):
        """The lexical-only ranking's first ``want`` posts from lists read only as deep as they
        must be: from ``lexical_first_depth`` (or 2 x ``want``), four times deeper each round,
        until ``rank.proven_prefix`` shows that no post further down any list can reach the
        page (early termination, as in Fagin's threshold algorithm, on RRF's ranks: a post
        not read yet from a list is at least one rank below its last read one). The page is
        the one that lists ``lexical_depth`` deep give, exactly. ``(scores, collapsed, lists,
        BM25 scores, roots, depth)``, or None to read them ``lexical_depth`` deep (no shallow
        read configured or possible, or the page needs that depth)."""
        cfg = self.config
        depth = max(cfg.lexical_first_depth, EARLY_SPAN * want)
        roots: dict[int, int] = {}         # a post's near-duplicate root: read once, any round
        while 0 < cfg.lexical_first_depth and depth < cfg.lexical_depth:
            fields: list[RankColumns] = []
            got = self._lexical_lists(lx, node, depth, rankable, no_semantic, state, fields,
                                      clock, exact=False, parallel=True)
            if got is None:                # the index cannot answer this query at this depth
                return None
            lists, lex_scores = got
            scores, ranked = self._ranked(rrf(lists, cfg.weights), fields, state, clock)
            collapsed = self._collapse(ranked, roots, want)
            cut = [name for name, ids in lists.items() if len(ids) >= depth]   # more may follow
            read = ranked.index(collapsed[-1]) + 1 if len(collapsed) == want else len(ranked)
            if proven_prefix(scores, ranked, read, lists, cut, cfg.weights, depth,
                             complete=len(collapsed) == want):
                clock.lap("prove")
                return scores, collapsed, lists, lex_scores, roots, depth
            clock.lap("deeper")
            depth *= 4
        return None

    def _lexical_lists(self, lx: LexicalIndex | None, node: q.Node, depth: int, rankable: bool,
                       no_semantic: bool, state: dict, fields: list[RankColumns], clock: Laps,
                       *, exact: bool = True, parallel: bool = False):
        """``(lists, BM25 per id)``: the every-word list (by BM25, or newest first for a query
        of operators only: nothing to score by text) and, for two or more words or phrases,
        the any-word list, each ``depth`` deep, their ranking fields into ``fields``. From the
        tantivy index, else FTS5; with ``exact`` False, None where the index cannot answer
        (FTS5 would rank by its own BM25, not the index's). ``parallel``: the any-word list's
        tantivy search runs on the worker thread beside the every-word one (tantivy releases
        the GIL, so the two use both cores), for a query the index answers exactly (the
        store's connection stays on this thread); for requests whose worker is not busy
        embedding the query."""
        cfg = self.config
        lists: dict[str, list[int]] = {}
        parts = [t for t in q.positive_text(node) if self.store.has_words(t)]
        wants_any = len(parts) >= 2 and cfg.weights.any_terms > 0
        started = None
        if parallel and wants_any and lx is not None:
            c = lx.any_query(self._uncommon(lx, parts), relax_text(node), now_ms=state["n"],
                             max_seq=state["s"])
            if c is not None and c.residual is None:
                started = worker().submit(lx.search, c.query, depth, max_seq=state["s"])
        got = self._from_index(lx, node, depth, state, fields, "rank" if rankable else "time")
        if got is None:                    # the store's own index
            if not exact:
                return None
            rows = self.store.lexical_search(node, now_ms=state["n"], limit=depth,
                                             order="rank" if rankable else "time",
                                             max_seq=state["s"])
            got = [pid for pid, _ in rows], [s for _, s in rows] if rankable else None
        lists["lexical"] = got[0]
        # BM25 per id, for the page's parts (a Python dict built in C: 1,000 ids a query)
        lex_scores = dict(zip(*got)) if got[1] is not None else {}
        clock.lap("lexical")
        # The any-word list only when some post holds every word: evidence that the query is in
        # the stream's language. A query in another language shares only its small words with
        # unrelated posts ("en", "dans"), so there the semantic list alone speaks (when there is
        # one; without embeddings, any-word matches are better than nothing).
        if wants_any and (lists["lexical"] or no_semantic):
            any_ids = self._any_terms(lx, node, parts, state, fields, depth, exact=exact,
                                      started=started)
            if any_ids is None:
                return None
            lists["any_terms"] = any_ids
            clock.lap("any_terms")
        return lists, lex_scores

    def _ranked(self, relevance: Fused, fields: list[RankColumns], state: dict,
                clock: Laps) -> tuple[Scores, list[int]]:
        """Final scores of the fused candidates and their order. Ranking fields: those read with
        the lists, one light read for the rest (FTS5's candidates); whole posts for the page
        only."""
        cols = RankColumns.join(fields)
        missing = cols.missing(relevance.ids)
        if len(missing):
            rest = RankColumns.of(self.store.rank_fields(missing.tolist()))
            cols = RankColumns.join([cols, rest])
        scores = final_scores(relevance, cols, state["r"], self.config.weights)
        ranked = order(scores)
        clock.lap("rank")
        return scores, ranked

    def _page(self, scores: Scores, collapsed: list[int], lists: dict[str, list[int]],
              lex_scores: dict[int, float], cos: dict[int, float], roots: dict[int, int],
              offset: int, limit: int, clock: Laps) -> list[SearchHit]:
        """The page's hits (``Store.shown``), each with its score's parts and the lists that
        found it."""
        page = collapsed[offset:offset + limit]
        posts = self.store.shown(page)
        counts = self.store.dup_counts({roots.get(pid, pid) for pid in page})
        clock.lap("hydrate")
        hits = []
        on_page = set(page)
        members = [(n, on_page.intersection(lists[n])) for n in _MATCHED if n in lists]
        rows = scores.rows(page)
        for pid in page:
            if pid not in posts:           # deleted since the ranking fields were read
                continue
            parts = rows[pid]
            score = parts.pop("score")
            if pid in lex_scores:
                parts["bm25"] = lex_scores[pid]
            if pid in cos:
                parts["cosine"] = cos[pid]
            matched = [name for name, found in members if pid in found]
            hits.append(hit_of(posts[pid], score, parts, matched,
                               counts.get(roots.get(pid, pid), 0)))
        clock.lap("collapse")
        return hits

    @staticmethod
    def _next(state: dict, offset: int, limit: int, collapsed: list[int]) -> str | None:
        return (encode_cursor({**state, "o": offset + limit})
                if offset + limit < len(collapsed) else None)

    def _collapse(self, ranked: list[int], roots: dict[int, int], want: int) -> list[int]:
        """The first ``want`` posts of ``ranked`` that are not near-duplicates of a post before
        them: roots are read from the store (into ``roots``) a slice of the ranking at a time,
        as far as ``want`` needs."""
        read, step = 0, 2 * want
        while True:
            chunk = ranked[read:read + step]
            self._read_roots(roots, chunk)
            read, step = read + step, step * 2
            collapsed = heads(ranked[:read], roots, want)
            if len(collapsed) == want or read >= len(ranked):
                return collapsed

    def _read_roots(self, roots: dict[int, int], ids: list[int]) -> None:
        """``ids``' near-duplicate roots not read yet, into ``roots`` (an original: itself)."""
        if fresh := [pid for pid in ids if pid not in roots]:
            roots.update(zip(fresh, fresh))
            roots.update(self.store.dup_roots(fresh))

    def _any_terms(self, lx: LexicalIndex | None, node: q.Node, parts: list[str], state: dict,
                   fields: list[RankColumns], depth: int | None = None, *,
                   exact: bool = True, started: Future | None = None) -> list[int] | None:
        """BM25 over posts holding any of the query's words or phrases (operators and exclusions
        still apply), its first ``depth`` (default ``lexical_depth``): the relevance signal for
        posts that match most, not all, of a long query. With ``exact`` False, None where the
        tantivy index cannot answer (as ``_lexical_lists``). ``started``: that search already
        running (the any-word query, exact in the index, ``depth`` deep)."""
        if started is not None:
            hits = started.result()
            fields.append(hits.fields)
            return hits.ids
        depth = self.config.lexical_depth if depth is None else depth
        relaxed = relax_text(node)
        if lx is not None:
            parts = self._uncommon(lx, parts)
            c = lx.any_query(parts, relaxed, now_ms=state["n"], max_seq=state["s"])
            if c is None:
                return []
            hits = lx.checked(c, depth, self.store, now_ms=state["n"], max_seq=state["s"])
            if hits is not None:
                fields.append(hits.fields)
                return hits.ids
            if not exact:
                return None
        match = self.store.match_any(parts, common_share=self.config.common_share)
        if match is None:                  # every word too common to be a signal
            return []
        rows = self.store.lexical_search(relaxed, now_ms=state["n"], any_words=match,
                                         limit=depth, order="rank", max_seq=state["s"])
        return [pid for pid, _ in rows]

    def _uncommon(self, lx: LexicalIndex, parts: list[str]) -> list[str]:
        """``parts`` less the words in more than ``common_share`` of all posts ("en", "de",
        "the"): in an any-word list they match everything (Lucene's common-terms idea), and
        they are what a query in another language shares with unrelated posts."""
        return [p for p in parts if lx.share(p) <= self.config.common_share]

    def _index(self, state: dict, clock: Laps, *, complete: bool = False) -> LexicalIndex | None:
        """The tantivy index, caught up with the snapshot; None when there is none or it is too
        far behind (a bulk load not indexed yet) or another process writes it: FTS5 answers.
        ``complete``: None too when it lags at all and this engine does not refresh it (the
        server's indexer does, in the background)."""
        lx = self.lexical_index
        if lx is None:
            return None
        lag = lx.lag(state["s"], self.store)
        if lag > MAX_INLINE_LAG or (complete and lag and not self.refresh_indexes):
            return None
        # Posts whose language arrived since they were indexed are indexed again too, so that
        # ``lang:`` is answered by the index (a SQL check on its candidates meanwhile).
        if self.refresh_indexes and (lag or 0 < lx.unsettled() <= MAX_INLINE_LAG):
            if not _refreshed(lx):
                return None
            clock.lap("lexical_index_refresh")
        return lx

    def _from_index(self, lx: LexicalIndex | None, node: q.Node, depth: int, state: dict,
                    fields: list[RankColumns], order: str,
                    before: tuple[int, int] | None = None
                    ) -> tuple[list[int], list[float] | None] | None:
        """``(ids, their BM25 scores or None)`` of the query's first ``depth`` matches in the
        tantivy index, by BM25 (``rank``, scores) or newest first (``time``, after ``before``),
        their ranking fields into ``fields``; None when there is no usable index or it cannot
        answer exactly."""
        if lx is None:
            return None
        if before is not None:             # (created_at, id) < before, as the store pages
            b_at, b_id = before
            node = q.And((node, q.Or((q.Op("until_ms", b_at), q.And((
                q.Op("since_ms", b_at), q.Op("until_ms", b_at + 1), q.Op("max_id", b_id - 1)))))))
        c = lx.compile(node, now_ms=state["n"], max_seq=state["s"])
        # Words with common keyword conditions: the words ranked alone, the conditions checked
        # on their candidates (``LexicalIndex.candidate_plan``); else the query as compiled.
        plan = order == "rank" and not c.residual and lx.candidate_plan(
            node, depth, now_ms=state["n"], min_share=self.config.filter_min_share)
        hits = plan and lx.checked(plan[0], depth, self.store, now_ms=state["n"],
                                   max_seq=state["s"], reads=(plan[1],))
        if (hits := hits or lx.checked(c, depth, self.store, order=order, now_ms=state["n"],
                                       max_seq=state["s"])) is None:
            return None
        fields.append(hits.fields)
        return hits.ids, hits.keys if order == "rank" else None

    def _start_semantic(self, node: q.Node, wanted: bool, state: dict, clock: Laps):
        """The semantic stage's first half, started: a ``Future`` of (query vector, nearest
        neighbours, {stage: ms}), or the reason it does not run (a dict)."""
        if not wanted:
            return {"used": False, "reason": "turned off for this request"}
        if self.embedder is None:
            return {"used": False, "reason": "no embedding model configured"}
        text = " ".join(q.positive_text(node)).strip()
        if not text:
            return {"used": False, "reason": "the query has no words to embed"}
        if self.refresh_indexes:
            self.vectors.refresh()
            clock.lap("index_refresh")
        if not len(self.vectors):
            return {"used": False, "reason": "no post is embedded yet (run `townsquare embed`)"}
        return worker().submit(self._nearest, text, state["s"])

    def _nearest(self, text: str, max_seq: int) -> tuple[np.ndarray, Nearest, dict]:
        """Embed ``text`` as a query and find its neighbours in the snapshot ``max_seq`` (the
        worker thread's part)."""
        t0 = time.perf_counter()
        qv = self.embedder.query(text)                                   # (dim,)
        t1 = time.perf_counter()
        near = self.vectors.nearest(qv, self._neighbours(), max_seq, ef=self.config.semantic_ef)
        t2 = time.perf_counter()
        return qv, near, {"embed_query": round((t1 - t0) * 1000, 3),
                          "semantic": round((t2 - t1) * 1000, 3)}

    def _semantic(self, node: q.Node, pending, state: dict, lists: dict,
                  fields: list[RankColumns], known: dict[int, bool], clock: Laps,
                  lx: LexicalIndex | None = None):
        """The semantic list (into ``lists``, its ranking fields into ``fields``; ``known``:
        see ``_kept``) from ``pending`` (``_start_semantic``); returns (info, cosines, query
        vector or None, the relaxed query its candidates passed). Timings: ``embed_query`` and
        ``semantic`` as the worker measured them (they ran beside the lexical stages, so the
        stages add up to more than ``total``), ``semantic_wait`` the time this thread waited
        for them."""
        cos: dict[int, float] = {}
        if isinstance(pending, dict):
            return pending, cos, None, None
        qv, near, ms = pending.result()
        clock.lap("semantic_wait")
        for stage, v in ms.items():
            clock.ms[stage] = round(clock.ms.get(stage, 0.0) + v, 3)
        relaxed = relax_text(node)
        ids, scores = self._kept(near, relaxed, state, fields, known, lx)
        lists["semantic"] = ids
        cos.update(zip(ids, scores))
        clock.lap("semantic_filter")
        # len(index) instead of counting the vectors table: this runs on every query
        return ({"used": True, "candidates": len(ids), "floor": self._floor(),
                 "embedded": len(self.vectors),
                 "pending_posts": self.store.embedding_pending(at_most=PENDING_COUNTED),
                 "model": self.vectors.model},
                cos, qv, relaxed)

    def _floor(self) -> float | None:
        """The cosine under which neighbours are dropped: the configured one, else the model's
        calibrated floor; None for a model without one (its nearest ``UNCALIBRATED_DEPTH``)."""
        if self.config.min_similarity is not None:
            return self.config.min_similarity
        return SIMILARITY_FLOORS.get(self.embedder.name) if self.embedder is not None else None

    def _neighbours(self, depth: int | None = None) -> int:
        """How many neighbours to ask the vector index for (``depth``, default the semantic
        depth): the floor then cuts the list."""
        depth = self.config.semantic_depth if depth is None else depth
        if self._floor() is None:
            return min(depth, UNCALIBRATED_DEPTH)
        return depth

    def _kept(self, near: Nearest, relaxed: q.Node | None, state: dict,
              fields: list[RankColumns], known: dict[int, bool],
              lx: LexicalIndex | None = None) -> tuple[list[int], list[float]]:
        """``(ids, cosines)`` of the nearest neighbours above the floor that satisfy the query's
        operators and exclusions (``relaxed``), best first. ``known``: ids already checked
        (whether they pass), their ranking fields in ``fields``; the others are checked in one
        read that brings their ranking fields too (into ``fields``; by the tantivy index ``lx``
        for a common word, ``LexicalIndex.among``), and join ``known``. With nothing to check,
        the fields the vector index returned with the neighbours vouch for the posts embedded
        within the snapshot (``has_fields``) and the read covers only the rest (at 1.1M posts
        ~2 ms less per list than SQL, ~1 ms less than looking each id up)."""
        floor = self._floor()
        if floor is not None:                  # before SQL: fewer ids to check
            near = Nearest(*(a[near.scores >= floor] for a in near))
        keep = np.zeros(len(near.ids), dtype=bool)
        ask = np.ones(len(near.ids), dtype=bool)     # the neighbours the store vouches for
        if relaxed is None:
            # No condition to check: the fields the index keeps give the ranking fields of the
            # posts embedded within the snapshot; SQL reads only the rest.
            have = near.has_fields
            if have.any():
                fields.append(RankColumns.of_counts(near.ids[have], near.fields[have]))
            keep |= have
            ask = ~have
        asked = near.ids[ask].tolist()
        fresh = [pid for pid in asked if pid not in known]
        got = (lx.among(fresh, relaxed, now_ms=state["n"], max_seq=state["s"])
               if lx is not None and relaxed is not None else None)
        if got is not None:                # a common word to check: the index does it
            fields.append(got[0].fields)
            known.update(dict.fromkeys(fresh, False) | dict.fromkeys(got[0].ids, True))
            fresh = got[1]                 # not indexed yet: the store checks them
        ok = self.store.filter_rank_fields(fresh, relaxed, now_ms=state["n"],
                                           max_seq=state["s"]) if fresh else {}
        fields.append(RankColumns.of(ok))
        known.update((pid, pid in ok) for pid in fresh)
        keep[ask] = np.fromiter((known[pid] for pid in asked), bool, len(asked))
        return near.ids[keep].tolist(), near.scores[keep].tolist()

    def _feedback(self, lx: LexicalIndex | None, node: q.Node, qv: np.ndarray,
                  lists: dict[str, list[int]], relevance: Fused, roots: dict[int, int],
                  texts: dict[int, str], relaxed: q.Node | None, state: dict,
                  fields: list[RankColumns], known: dict[int, bool]) -> dict[str, list[int]]:
        """Pseudo-relevance feedback: the fused top posts (one per near-duplicate group, so a
        flood of copies does not weigh more) are taken as relevant. Two lists, to join the
        fusion (``feedback`` only when some of the top posts have an e5 vector):

        - ``feedback``: Rocchio in embedding space, the query vector moved towards the centroid
          of the first round's ``feedback_docs`` top posts, searched again;
        - ``expansion`` (with the tantivy index): BM25 of the posts holding any of the
          ``expansion_terms`` words that the ``expansion_docs`` top posts of the first round
          share, rarest in the stream first (``rank.expansion_terms``). A query in another
          language than the stream's gets its lexical evidence there: "séisme au Népal" has no
          post with every word, its best posts say "nepal", "nepalearthquake".

        The two are independent, so the moved query's neighbours are searched on the worker
        thread while this one builds the expansion list (hybrid first page at 1.1M posts:
        feedback 11.6 -> ~7 ms). Taking the expansion words from the first round rather than
        from its fusion with ``feedback`` (as before) also measured better on the tuning half
        of ``eval/search.py`` (objective 0.626 -> 0.632, mean nDCG@10 0.874 -> 0.883).

        ``roots`` (near-duplicate roots of the first round's head) gains the expansion's;
        ``texts``: posts' texts already read (the lexical head's), gains the others it reads."""
        cfg = self.config
        ranked = relevance.best()
        top = heads(ranked, roots, cfg.feedback_docs)
        # From the vector index's memory, not the store's table: its pages are cold for a
        # query's random posts (~12 ms for 20 of them at 1.1M posts). None of them there (the
        # fast tier's posts, before e5 reaches them): no moved query, the expansion list still.
        found, V = self.vectors.vectors_of(top)                                  # (m, dim)
        pending = None
        if len(found):
            a = cfg.feedback_query_weight
            moved = a * qv + (1.0 - a) * V.mean(axis=0)                          # (dim,)
            moved = (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)
            # The moved query's neighbours on the worker thread (faiss releases the GIL) ...
            pending = worker().submit(self.vectors.nearest, moved,
                                       self._neighbours(cfg.feedback_depth), state["s"],
                                       ef=cfg.feedback_ef)
        out: dict[str, list[int]] = {}
        if (lx is not None and cfg.expansion_docs and cfg.expansion_terms
                and cfg.weights.expansion > 0):
            # ... beside the expansion list, from the first round's top posts (their roots
            # were read for the first ``_FEEDBACK_HEAD``)
            best = heads(ranked, roots, cfg.expansion_docs)
            texts.update(self.store.texts_of([pid for pid in best if pid not in texts]))
            words = expansion_terms([texts[pid] for pid in best if pid in texts], lx.share,
                                    cfg.expansion_terms, cfg.common_share)
            if words:
                out["expansion"] = self._any_terms(lx, node, words, state, fields,
                                                   cfg.expansion_depth)
        if pending is not None:
            out["feedback"] = self._kept(pending.result(), relaxed, state, fields, known, lx)[0]
        return out

    def _rerank(self, scores: Scores, ranked: list[int], qv: np.ndarray, roots: dict[int, int],
                lists: dict[str, list[int]], clock: Laps,
                features_out: list | None = None) -> list[int]:
        """``ranked`` re-ordered below its head by the learned re-ranking (``search.rerank``),
        each candidate's probability into ``scores`` (the hits' ``rerank`` part). Vectors from
        the vector index's memory (one read); none there (fast-tier posts): unchanged.
        ``features_out`` (``rerank_features``) gets ``(ranked, features)``; no re-ranking."""
        ids = np.asarray(ranked, dtype=np.int64)                                 # (n,)
        found, V = self.vectors.vectors_of(ids)                                  # (m, dim)
        if not len(found):
            return ranked
        at = np.searchsorted(scores.ids, ids)         # ``ranked`` holds every scored id
        times = None if scores.created_at is None else scores.created_at[at]      # (n,) ms
        X, here = rerank.vector_features(ranked, found, V, qv, heads(ranked, roots, rerank.HEAD),
                                         self.config.feedback_query_weight, lists,
                                         times)                                    # (n, 12)
        if features_out is not None:
            features_out.append((ranked, X))
            return ranked
        reordered, p = self.reranker.order(ranked, X, movable=here)
        col = np.zeros(len(scores.ids))
        col[at] = p
        scores.columns["rerank"] = col
        clock.lap("rerank")
        return reordered


def _refreshed(lx: LexicalIndex) -> bool:
    """Catch the tantivy index up inline; False when another process holds its writer (a running
    server keeps one, ``Failed to acquire Lockfile``) or is rewriting its segments (``Failed to
    open file``): the query is then answered from FTS5, the source of truth, a little slower."""
    try:
        lx.refresh()
    except ValueError as e:            # tantivy reports its I/O and lock errors as ValueError
        log.info("tantivy index not refreshed inline (%s): FTS5 answers this query", e)
        return False
    return True
