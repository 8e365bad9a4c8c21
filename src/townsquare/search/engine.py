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
4. **feedback** (``top``, semantic on): pseudo-relevance feedback in embedding space (Rocchio).
   The first round's fused top posts (``feedback_docs``, one per near-duplicate group) are
   taken as relevant; the query vector is moved towards their centroid and searched again, and
   that list joins the fusion. A short query ("Hurricane Sandy") names an event; its best posts
   describe it (places, damage, rescues), and their centroid finds the event's posts that share
   no word with the query. ``eval/search.py`` measures what it adds.
5. **fuse and rank**: reciprocal rank fusion, plus recency and engagement (``search.rank``).
6. **collapse** near-duplicates (the ingest late stage's links) into one result with a count.

Depth: ``top`` ranks every post that any list retrieves, not a fixed top 200: the every-word and
any-word BM25 lists to ``lexical_depth`` (1,000) posts each, the semantic and feedback lists down
to a similarity floor (``min_similarity``: calibrated per model on the tuning half of
``eval/search.py``'s events, ``SIMILARITY_FLOORS``; at most ``semantic_depth`` neighbours). The
fusion runs once over that whole candidate set, and a page is a slice of it, so scores on page 5
compare with those on page 1 and a page chain lists each candidate once. Only the page's posts
are read whole; the candidates' ranking fields come from one light read (``Store.rank_fields``).

Pagination: a cursor fixes a snapshot (the store's ``seq`` when page 1 was served, its "now" and
the newest post's time that recency counts from) so posts that arrive later neither appear nor
shift pages; ``top`` pages slice the ranking of that snapshot, ``latest`` pages continue after
the last ``(created_at, id)`` seen. One thing moves with new posts: BM25's statistics (word
frequencies, mean length), so a post whose BM25 rank changes meanwhile can move across a page
boundary; a single-word query keeps its order.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from townsquare import query as q
from townsquare.embed.stage import from_blobs
from townsquare.posts import Post, format_time
from townsquare.protocols import Embedder, LexicalIndex, VectorIndex
from townsquare.search.rank import RankFields, RankWeights, final_scores, order, rrf
from townsquare.store.base import Store
from townsquare.timing import Laps

log = logging.getLogger(__name__)

MODES = ("top", "latest")
OVERFETCH = 2              # tantivy candidates per needed result, before the SQL filter
MAX_INLINE_LAG = 20_000    # the tantivy index catches up inline when at most this far behind
MAX_LIMIT = 1000           # results per page

# The cosine below which a semantic neighbour is almost never relevant, per embedding model:
# calibrated by ``eval/search.py`` on the tuning half of its events (the highest cosine under
# which fewer than one neighbour in ten is relevant; see ``calibrate_floor`` there). A model
# not listed keeps its nearest ``UNCALIBRATED_DEPTH`` neighbours instead, as before floors.
SIMILARITY_FLOORS: dict[str, float] = {"e5-small-int8": 0.785}
UNCALIBRATED_DEPTH = 200
# ``semantic_depth`` is 500, not 1,000: the faiss HNSW index asked for 1,000 neighbours often
# returns fewer and then searches again with a doubled beam (``embed.index``), ~80 ms a query
# on the eval store; 500 stays near 1 ms.


class SearchError(ValueError):
    """A request that cannot be served as asked (bad mode, limit or cursor)."""


@dataclass(frozen=True, slots=True)
class SearchConfig:
    lexical_depth: int = 1000       # BM25 candidates per lexical list (every word, any word)
    semantic_depth: int = 500       # at most this many neighbours per semantic list (see below)
    # semantic candidates below this cosine are dropped; None: the model's calibrated floor
    # (``SIMILARITY_FLOORS``), or its nearest ``UNCALIBRATED_DEPTH`` for a model without one
    min_similarity: float | None = None
    common_share: float = 0.05      # words in more of the posts stay out of the any-word list
    feedback_docs: int = 10         # first-round posts whose vectors move the query (0: off)
    feedback_query_weight: float = 0.5   # share of the query's own vector in the moved query
    weights: RankWeights = field(default_factory=RankWeights)

    def __post_init__(self):
        if self.lexical_depth < 1 or self.semantic_depth < 0:
            raise ValueError("lexical_depth must be >= 1 and semantic_depth >= 0")
        if self.feedback_docs < 0:
            raise ValueError(f"feedback_docs must be >= 0, got {self.feedback_docs}")
        if not 0.0 <= self.feedback_query_weight <= 1.0:
            raise ValueError(f"feedback_query_weight must be in [0, 1], got "
                             f"{self.feedback_query_weight}")
        if self.min_similarity is not None and not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1], got {self.min_similarity}")


@dataclass(slots=True)
class SearchHit:
    id: int
    text: str
    created_at: int
    author: str | None
    author_id: int | None
    lang: str | None
    score: float
    parts: dict[str, float]
    matched: list[str]                 # "lexical", "semantic"
    near_duplicates: int               # other posts of its near-duplicate group in the store

    def to_dict(self) -> dict[str, Any]:
        return {"id": str(self.id), "text": self.text, "created_at": format_time(self.created_at),
                "author": self.author, "author_id": str(self.author_id) if self.author_id else None,
                "lang": self.lang, "score": round(self.score, 6),
                "parts": {k: round(v, 6) for k, v in self.parts.items()},
                "matched": self.matched, "near_duplicates": self.near_duplicates,
                "url": f"https://x.com/i/status/{self.id}"}


@dataclass(slots=True)
class SearchResponse:
    query: str
    mode: str
    results: list[SearchHit]
    next_cursor: str | None
    timings_ms: dict[str, float]
    semantic: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "mode": self.mode,
                "results": [h.to_dict() for h in self.results],
                "next_cursor": self.next_cursor, "timings_ms": self.timings_ms,
                "semantic": self.semantic}


def relax_text(node: q.Node) -> q.Node | None:
    """The query without its positive words, phrases and hashtags (None: no condition left);
    operators, mentions, cashtags and every exclusion stay. Semantic candidates must satisfy it."""
    if isinstance(node, (q.Term, q.Phrase, q.Hashtag)):
        return None
    if isinstance(node, q.And):
        kept = [c for c in (relax_text(ch) for ch in node.children) if c is not None]
        return None if not kept else kept[0] if len(kept) == 1 else q.And(tuple(kept))
    if isinstance(node, q.Or):
        kept = [relax_text(ch) for ch in node.children]
        return None if any(c is None for c in kept) else q.Or(tuple(kept))
    return node            # Not (exclusions stay whole), Mention, Cashtag, Op


def _time_bounds(node: q.Node, now_ms: int) -> tuple[int | None, int | None]:
    """The ``[since, until)`` window (ms) that the query's top-level operators impose on every
    result, for the tantivy pushdown (the SQL check applies them exactly anyway)."""
    ops = node.children if isinstance(node, q.And) else (node,)
    since = until = None
    for c in ops:
        if isinstance(c, q.Op):
            if c.name == "since_ms":
                since = max(since or c.value, c.value)
            elif c.name == "within_time":
                lo = now_ms - int(c.value) * 1000
                since = max(since or lo, lo)
            elif c.name == "until_ms":
                until = min(until or c.value, c.value)
    return since, until


def _pure_text(node: q.Node) -> bool:
    return isinstance(node, (q.Term, q.Phrase)) or (
        isinstance(node, q.Or) and all(_pure_text(c) for c in node.children))


def _drop_top_text(node: q.Node) -> q.Node | None:
    """``node`` without what the tantivy query already enforced exactly: the top-level AND's
    words and phrases, ORs of words and phrases, and exclusions of words and phrases (or the
    node itself when it is one of these). The candidates are checked in SQL for the rest."""
    if _pure_text(node):
        return None
    if isinstance(node, q.And):
        kept = [c for c in node.children if not _pure_text(c)
                and not (isinstance(c, q.Not) and isinstance(c.child, (q.Term, q.Phrase)))]
        return None if not kept else kept[0] if len(kept) == 1 else q.And(tuple(kept))
    return node


def _fingerprint(query: str, mode: str) -> str:
    return hashlib.sha1(f"{mode}\x00{query}".encode()).hexdigest()[:12]


def _encode_cursor(d: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(d)).decode().rstrip("=")


# A cursor comes back from the client, so every field is checked before it reaches the store:
# a missing key, a string for a number or an integer past SQLite's 64 bits would otherwise fail
# deep in a query (and answer 500). Ranges: seq and offset >= 0, "now" a ms time up to year 9999,
# ``top``'s recency reference "r" like "now", the (created_at, id) of ``latest``'s last post any
# 64-bit pair.
_I64 = (-(2**63), 2**63 - 1)
_CURSOR_INTS = {"v": (1, 1), "s": (0, _I64[1]), "n": (0, 253_402_300_799_999),
                "o": (0, _I64[1]), "r": (0, 253_402_300_799_999)}
_CURSOR_KEYS = {"top": {"v", "f", "s", "n", "o", "r"}, "latest": {"v", "f", "s", "n", "b"}}


def _int_in(x: Any, lo: int, hi: int) -> bool:
    return type(x) is int and lo <= x <= hi          # bool is an int: refused by ``type``


def _cursor_ok(d: Any, mode: str) -> bool:
    """Whether ``d`` has the shape of a cursor this server issues for ``mode``."""
    if not isinstance(d, dict) or not {"v", "f", "s", "n"} <= d.keys() <= _CURSOR_KEYS[mode]:
        return False
    if not all(_int_in(d[k], *bounds) for k, bounds in _CURSOR_INTS.items() if k in d):
        return False
    b = d.get("b", [0, 0])
    return isinstance(b, list) and len(b) == 2 and all(_int_in(x, *_I64) for x in b)


def _decode_cursor(cursor: str, query: str, mode: str) -> dict:
    """The state a cursor carries; ``SearchError`` for anything this server did not issue for
    ``query`` and ``mode``.

    >>> _decode_cursor(_encode_cursor({"v": 1, "f": _fingerprint("a", "top"), "s": "9", "n": 0}),
    ...                "a", "top")
    Traceback (most recent call last):
    ...
    townsquare.search.engine.SearchError: cursor 'eyJ2IjoxLCJmIjoiMmFk': not a cursor this server issued
    """
    try:
        d = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        d = None
    if not _cursor_ok(d, mode):
        raise SearchError(f"cursor {cursor[:20]!r}: not a cursor this server issued")
    if d["f"] != _fingerprint(query, mode):
        raise SearchError("cursor belongs to another query or mode; start again without it")
    return d


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
        # A cursor pins the snapshot (seq) and "now" (for within_time:) of its first page.
        state = _decode_cursor(cursor, query, mode) if cursor else {
            "v": 1, "f": _fingerprint(query, mode), "s": self.store.max_seq(),
            "n": int(time.time() * 1000) if now_ms is None else now_ms}
        if mode == "top" and "r" not in state:
            # recency counts from the newest post of the snapshot: pinned, so that posts
            # arriving between pages do not age every candidate and reorder the ranking
            state["r"] = min(max(self.store.newest_created_at() or 0, 0), _CURSOR_INTS["r"][1])
        clock.lap("parse")
        if mode == "latest":
            hits, nxt = self._latest(node, limit, state, clock)
            sem = {"used": False, "reason": "latest mode lists exact matches by time"}
        else:
            hits, nxt, sem = self._top(node, limit, state, semantic, clock)
        return SearchResponse(query=query, mode=mode, results=hits, next_cursor=nxt,
                              timings_ms=clock.total(), semantic=sem)

    # --- latest ----------------------------------------------------------------------------------
    def _latest(self, node: q.Node, limit: int, state: dict, clock: Laps):
        before = tuple(state["b"]) if "b" in state else None
        fetch = limit * 2 + 1              # room for near-duplicates collapsed away
        rows = self.store.lexical_search(node, now_ms=state["n"], limit=fetch, order="time",
                                         before=before, max_seq=state["s"])
        clock.lap("lexical")
        posts = self.store.posts_by_id([pid for pid, _ in rows])
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
            hits.append(_hit(posts[pid], 0.0, {}, ["lexical"], count))
        clock.lap("collapse")
        nxt = None
        if used and (used < len(rows) or len(rows) == fetch):   # more rows after the last used
            last = posts[rows[used - 1][0]]
            nxt = _encode_cursor({**state, "b": [last.created_at, last.id]})
        return hits, nxt

    # --- top -------------------------------------------------------------------------------------
    def _top(self, node: q.Node, limit: int, state: dict, semantic: bool, clock: Laps):
        cfg = self.config
        offset = int(state.get("o", 0))
        lists: dict[str, list[int]] = {}
        lex_scores: dict[int, float] = {}
        rankable = self.store.rankable(node)
        rows = self._accelerated(node, state, clock) if rankable else None
        if rows is None:
            # The store's own index: by BM25, or newest first for a query of operators only
            # (nothing to score by text).
            rows = self.store.lexical_search(node, now_ms=state["n"], limit=cfg.lexical_depth,
                                             order="rank" if rankable else "time",
                                             max_seq=state["s"])
        lists["lexical"] = [pid for pid, _ in rows]
        lex_scores = {pid: s for pid, s in rows if s is not None}
        clock.lap("lexical")

        parts = [t for t in q.positive_text(node) if self.store.has_words(t)]
        # The any-word list only when some post holds every word: evidence that the query is in
        # the stream's language. A query in another language shares only its small words with
        # unrelated posts ("en", "dans"), so there the semantic list alone speaks (when there is
        # one; without embeddings, any-word matches are better than nothing).
        no_semantic = self.embedder is None or not semantic
        if len(parts) >= 2 and cfg.weights.any_terms > 0 and (lists["lexical"] or no_semantic):
            lists["any_terms"] = self._any_terms(node, parts, state)
            clock.lap("any_terms")
        sem_info, cos, qv, sem_filter = self._semantic(node, semantic, state, lists, clock)
        relevance = rrf(lists, cfg.weights)
        ids = list(relevance)
        dups = self.store.dup_info(ids)
        if qv is not None and cfg.feedback_docs and cfg.weights.feedback > 0:
            fb = self._feedback(qv, relevance, dups, sem_filter, state)
            if fb:
                lists["feedback"] = fb
                relevance = rrf(lists, cfg.weights)
                new = [pid for pid in relevance if pid not in dups]
                dups.update(self.store.dup_info(new))
                ids = list(relevance)
            clock.lap("feedback")
        # Ranking fields for every candidate (one light read); whole posts for the page only.
        fields = {pid: RankFields(*f) for pid, f in self.store.rank_fields(ids).items()}
        scores = final_scores(relevance, fields, state["r"], cfg.weights)
        ranked = order(scores)
        clock.lap("rank")
        collapsed: list[tuple[int, int]] = []
        roots: set[int] = set()
        for pid in ranked:
            root, count = dups.get(pid, (pid, 0))
            if root not in roots:
                roots.add(root)
                collapsed.append((pid, count))
        page = collapsed[offset:offset + limit]
        posts = self.store.posts_by_id([pid for pid, _ in page])
        clock.lap("hydrate")
        hits = []
        members = {name: set(ids) for name, ids in lists.items()}
        for pid, count in page:
            if pid not in posts:           # deleted since the ranking fields were read
                continue
            parts = dict(scores[pid])
            score = parts.pop("score")
            if pid in lex_scores:
                parts["bm25"] = lex_scores[pid]
            if pid in cos:
                parts["cosine"] = cos[pid]
            matched = [name for name in ("lexical", "any_terms", "semantic", "feedback")
                       if pid in members.get(name, ())]
            hits.append(_hit(posts[pid], score, parts, matched, count))
        clock.lap("collapse")
        nxt = (_encode_cursor({**state, "o": offset + limit})
               if offset + limit < len(collapsed) else None)
        return hits, nxt, sem_info

    def _any_terms(self, node: q.Node, parts: list[str], state: dict) -> list[int]:
        """BM25 over posts holding any of the query's words or phrases (operators and exclusions
        still apply): the relevance signal for posts that match most, not all, of a long query."""
        depth = self.config.lexical_depth
        relaxed = relax_text(node)
        lx = self.lexical_index
        if (lx is not None and lx.lag(state["s"]) <= MAX_INLINE_LAG
                and (not self.refresh_indexes or not lx.lag(state["s"]) or _refreshed(lx))):
            # Words in more than ``common_share`` of all posts ("en", "de", "the") are left out:
            # in an any-word list they match everything (Lucene's common-terms idea), and they
            # are what a query in another language shares with unrelated posts.
            parts = [p for p in parts if lx.share(p) <= self.config.common_share]
            if not parts:
                return []
            hits = lx.top_any(parts, depth * OVERFETCH)
            ok = self.store.filter_ids([pid for pid, _ in hits], relaxed, now_ms=state["n"],
                                       candidates=True, max_seq=state["s"])
            return [pid for pid, _ in hits if pid in ok][:depth]
        match = self.store.match_any(parts, common_share=self.config.common_share)
        if match is None:                  # every word too common to be a signal
            return []
        rows = self.store.lexical_search(relaxed, now_ms=state["n"], any_words=match,
                                         limit=depth, order="rank", max_seq=state["s"])
        return [pid for pid, _ in rows]

    def _accelerated(self, node: q.Node, state: dict, clock: Laps):
        """BM25 top-k from the tantivy index, filtered by the whole query in SQL; None when the
        index is absent, too far behind, or the filter is too selective for its candidates."""
        lx = self.lexical_index
        if lx is None:
            return None
        lag = lx.lag(state["s"])
        if lag > MAX_INLINE_LAG:           # a bulk load not indexed yet: FTS5 answers meanwhile
            return None
        if lag and self.refresh_indexes:
            if not _refreshed(lx):         # another process writes the index: FTS5 answers
                return None
            clock.lap("lexical_index_refresh")
        depth = self.config.lexical_depth
        rest = _drop_top_text(node)
        since, until = _time_bounds(node, state["n"])
        for k in (depth * OVERFETCH, depth * OVERFETCH * 8):
            got = lx.top(node, k, since_ms=since, until_ms=until)
            if got is None:
                return None
            hits, total = got
            # tantivy enforced the query's words; the rest is checked per candidate row.
            ok = self.store.filter_ids([pid for pid, _ in hits], rest, now_ms=state["n"],
                                       candidates=True, max_seq=state["s"])
            rows = [(pid, score) for pid, score in hits if pid in ok][:depth]
            if len(rows) == depth or total <= len(hits):
                return rows
        return None                        # a selective filter: FTS5 + SQL find them all

    def _semantic(self, node: q.Node, wanted: bool, state: dict, lists: dict, clock: Laps):
        """The semantic list (into ``lists``); returns (info, cosines, query vector or None,
        the relaxed query its candidates passed)."""
        cos: dict[int, float] = {}
        off = None, None
        if not wanted:
            return {"used": False, "reason": "turned off for this request"}, cos, *off
        if self.embedder is None:
            return {"used": False, "reason": "no embedding model configured"}, cos, *off
        text = " ".join(q.positive_text(node)).strip()
        if not text:
            return {"used": False, "reason": "the query has no words to embed"}, cos, *off
        if self.refresh_indexes:
            self.vectors.refresh()
            clock.lap("index_refresh")
        if not len(self.vectors):
            return ({"used": False, "reason": "no post is embedded yet (run `townsquare embed`)"},
                    cos, *off)
        qv = self.embedder.query(text)                                   # (dim,)
        clock.lap("embed_query")
        near = self.vectors.search(qv, self._neighbours())
        clock.lap("semantic")
        relaxed = relax_text(node)
        kept = self._kept(near, relaxed, state)
        lists["semantic"] = [pid for pid, _ in kept]
        cos.update(kept)
        clock.lap("semantic_filter")
        # len(index) instead of counting the vectors table: this runs on every query
        return ({"used": True, "candidates": len(kept), "floor": self._floor(),
                 "embedded": len(self.vectors),
                 "pending_posts": self.store.embedding_pending(), "model": self.vectors.model},
                cos, qv, relaxed)

    def _floor(self) -> float | None:
        """The cosine under which neighbours are dropped: the configured one, else the model's
        calibrated floor; None for a model without one (its nearest ``UNCALIBRATED_DEPTH``)."""
        if self.config.min_similarity is not None:
            return self.config.min_similarity
        return SIMILARITY_FLOORS.get(self.embedder.name) if self.embedder is not None else None

    def _neighbours(self) -> int:
        """How many neighbours to ask the vector index for: the floor then cuts the list."""
        if self._floor() is None:
            return min(self.config.semantic_depth, UNCALIBRATED_DEPTH)
        return self.config.semantic_depth

    def _kept(self, near: list[tuple[int, float]], relaxed: q.Node | None, state: dict):
        """Nearest neighbours above the floor that satisfy the query's operators and
        exclusions."""
        floor = self._floor()
        if floor is not None:
            near = [(pid, s) for pid, s in near if s >= floor]   # before SQL: fewer ids to check
        ok = self.store.filter_ids([pid for pid, _ in near], relaxed, now_ms=state["n"],
                                   max_seq=state["s"])
        return [(pid, s) for pid, s in near if pid in ok]

    def _feedback(self, qv: np.ndarray, relevance: dict[int, float], dups: dict,
                  relaxed: q.Node | None, state: dict) -> list[int]:
        """Rocchio in embedding space: the query vector moved towards the centroid of the first
        round's top posts (one per near-duplicate group, so a flood of copies does not pull the
        centroid), searched again. Empty when none of the top posts has a vector yet."""
        cfg = self.config
        top: list[int] = []
        roots: set[int] = set()
        for pid in sorted(relevance, key=lambda p: (-relevance[p], -p)):
            root = dups.get(pid, (pid, 0))[0]
            if root not in roots:
                roots.add(root)
                top.append(pid)
                if len(top) == cfg.feedback_docs:
                    break
        blobs = self.store.vectors_of(top)
        if not blobs:
            return []
        V = from_blobs([blobs[pid] for pid in top if pid in blobs], qv.shape[0])   # (m, dim)
        a = cfg.feedback_query_weight
        moved = a * qv + (1.0 - a) * V.mean(axis=0)                              # (dim,)
        moved = (moved / max(float(np.linalg.norm(moved)), 1e-12)).astype(np.float32)
        near = self.vectors.search(moved, self._neighbours())
        return [pid for pid, _ in self._kept(near, relaxed, state)]


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


def _hit(p: Post, score: float, parts: dict, matched: list[str], dup_count: int) -> SearchHit:
    return SearchHit(id=p.id, text=p.text, created_at=p.created_at, author=p.author_handle,
                     author_id=p.author_id, lang=p.lang, score=score, parts=parts,
                     matched=matched, near_duplicates=dup_count)
