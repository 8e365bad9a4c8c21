"""The ``Store`` interface: everything townsquare persists goes through it.

The embedded SQLite store (``townsquare.store.sqlite``) is the default; a PostgreSQL backend will
implement the same interface, so no SQL lives outside ``townsquare.store``.

    >>> from townsquare.store import open_store
    >>> import numpy as np

from townsquare.posts import Post
from townsquare.query import Node
    >>> from townsquare.store.base import Stored
    >>> with open_store(":memory:") as store:
    ...     r = store.write_batch([Stored(Post(id=1212092628029698048, text="hi", source="demo").normalized())], [])
    ...     (r.inserted, store.count())
    (1, 1)
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from townsquare.posts import Post
from townsquare.query import Node


@dataclass(slots=True)
class Stored:
    """A normalized post plus where it came from (file and line, for provenance)."""

    post: Post
    file: str | None = None
    line: int | None = None


@dataclass(slots=True)
class Quarantined:
    """A record that could not become a post, kept with the reason so a person can fix it."""

    source: str
    file: str
    line: int
    reason: str
    raw: str = ""


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_deleted: int = 0   # ids deleted earlier: a deletion is never undone by re-ingesting
    quarantined: int = 0
    # Per post id: "inserted" | "updated" | "unchanged" | "deleted" (a deleted id, not stored).
    # Filled only when asked (``write_batch(..., statuses=True)``): the HTTP API reports each item.
    statuses: dict[int, str] | None = None

    def add(self, other: "WriteResult") -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped_deleted += other.skipped_deleted
        self.quarantined += other.quarantined


@dataclass(slots=True)
class Prepared:
    """A batch turned into plain rows, without touching the database (``prepare_batch``), so
    that the CPU work can run in another process than the writes (``write_prepared``). Records are
    ``(id, source, posts row, content hash, file, line, labels JSON)``."""

    records: list[tuple]
    quarantined: list[tuple]
    now: int


@dataclass(slots=True)
class PendingEnrichment:
    """A post the late stage (language id, near-duplicate linking) has not processed yet."""

    id: int
    seq: int
    text: str
    lang: str | None
    repost_of_id: int | None


@dataclass(slots=True)
class IndexRow:
    """What an index beside the store (``search.lexindex``) keeps of a post: its text, the fields
    its operators filter by, and the fields search ranks by (``Store.index_rows_since``).
    ``flags`` are the ``filter:`` names true of the post, as the store's SQL decides them."""

    id: int
    seq: int
    text: str
    created_at: int
    lang: str | None
    author_handle: str | None
    hashtags: list[str]
    mentions: list[str]
    cashtags: list[str]
    flags: tuple[str, ...]
    like_count: int | None
    retweet_count: int | None
    reply_count: int | None
    quote_count: int | None

    @classmethod
    def of(cls, p: Post, seq: int) -> "IndexRow":
        flags = tuple(name for name, on in (
            ("replies", p.reply_to_id is not None), ("retweets", p.repost_of_id is not None),
            ("quote", p.quote_of_id is not None), ("links", bool(p.urls)),
            ("media", bool(p.has_media)), ("hashtags", bool(p.hashtags)),
            ("mentions", bool(p.mentions))) if on)
        return cls(p.id, seq, p.text, p.created_at, p.lang, p.author_handle, list(p.hashtags),
                   list(p.mentions), list(p.cashtags), flags, p.like_count, p.retweet_count,
                   p.reply_count, p.quote_count)


class Shown(NamedTuple):
    """What a search result shows of a post (``Store.shown``): a page's 20 posts without reading
    them whole (their 24 columns and four JSON lists). Named as ``Post``'s fields, so either
    makes a ``SearchHit``."""

    id: int
    created_at: int
    author_id: int | None
    author_handle: str | None
    text: str
    lang: str | None


SHOWN_COLUMNS = Shown._fields       # the posts columns, in ``Shown``'s order


@dataclass(slots=True)
class Enrichment:
    """What the late stage computed for a batch of posts, written in one transaction."""

    langs: dict[int, str] = field(default_factory=dict)
    signatures: dict[int, bytes] = field(default_factory=dict)
    buckets: dict[int, list[int]] = field(default_factory=dict)   # post id -> one bucket per band
    links: dict[int, int] = field(default_factory=dict)           # post id -> original post id
    watermark: int = 0                                            # highest seq processed


@dataclass(frozen=True, slots=True)
class AnyWords:
    """What ``Store.match_any`` made, for ``lexical_search``: the backend's own full-text
    expression for "any of these texts" (FTS5 syntax, or a ``tsquery`` over stemmed words)."""

    expr: str


def author_key(author: str | int) -> str:
    """How an opted-out author is stored and matched: a handle without ``@``, lowercased (handles
    are case-insensitive on the platform), or a numeric author id as a string.

    >>> author_key(" @CityOps"), author_key(1212092628029698048)
    ('cityops', '1212092628029698048')

    A post matches when its lowercased handle or ``str(author_id)`` is opted out, so an all-digit
    handle also matches the author whose id it is: over-excluding is the safe side of consent.
    """
    key = str(author).strip().lstrip("@").strip().lower()
    if not key:
        raise ValueError(f"not an author (a handle or a numeric author id): {author!r}")
    return key


def author_queries(author: str | int, cols: str, limit: int, before_ms: int | None,
                   mark: str = "?") -> list[tuple[str, tuple]]:
    """The SQL of an indexed ``posts_by_author``: one query per way of naming the author (the
    handle; the numeric id when the key is all digits), each served by its own index and cut at
    ``limit``, for the caller to merge. ``mark`` is the backend's parameter placeholder."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    key = author_key(author)
    before = (1 << 62) if before_ms is None else int(before_ms)
    tail = f"AND created_at < {mark} ORDER BY created_at DESC, id DESC LIMIT {mark}"
    queries = [(f"SELECT {cols} FROM posts WHERE author_handle IS NOT NULL AND "
                f"lower(author_handle) = {mark} {tail}", (key, before, limit))]
    if key.isascii() and key.isdigit() and int(key) < (1 << 63):   # "²" is a digit too
        queries.append((f"SELECT {cols} FROM posts WHERE author_id = {mark} {tail}",
                        (int(key), before, limit)))
    return queries


def newest_rows(rows: Iterable[Sequence[Any]], limit: int) -> list[Sequence[Any]]:
    """Rows of ``posts`` (id, created_at first) merged without repeats, newest first."""
    unique = {r[0]: r for r in rows}
    return sorted(unique.values(), key=lambda r: (r[1], r[0]), reverse=True)[:limit]


class Store(abc.ABC):
    """Persistence for posts, their provenance, quarantine, and derived indexes."""

    # True when the store's own indexes answer full-text and vector search, current at commit
    # (PostgreSQL: GIN and pgvector HNSW): search then keeps no tantivy or faiss file beside it,
    # which is what lets several processes and machines share one store.
    indexes_in_store: bool = False

    # --- lifecycle -------------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writes ----------------------------------------------------------------------------------
    def write_batch(self, posts: Sequence[Stored], quarantined: Sequence[Quarantined], *,
                    statuses: bool = False) -> WriteResult:
        """Idempotent upsert of normalized posts (``Post.normalized()``) plus quarantine records,
        atomically (all or nothing). ``statuses=True`` fills ``WriteResult.statuses``."""
        return self.write_prepared(self.prepare(posts, quarantined), statuses=statuses)

    # A batch can be prepared (CPU work, no database access) in one process and written in another:
    # the ingest pipeline parses and prepares while a writer process holding its own connection
    # (``opener()``) writes. Backends that cannot be reopened elsewhere return None from opener().
    @abc.abstractmethod
    def prepare(self, posts: Sequence[Stored], quarantined: Sequence[Quarantined]) -> Prepared:
        """A picklable form of the batch for ``write_prepared`` (``store.batch.prepare_batch``)."""

    @abc.abstractmethod
    def write_prepared(self, batch: Prepared, *, statuses: bool = False) -> WriteResult:
        """Write what ``prepare`` made (of this store, or of another backend), as ``write_batch``."""

    # A server writes all the time: its writer leaves the log flush (checkpoint) to a background
    # thread instead of paying for it inside a commit now and then. No-ops for backends without
    # a write-ahead log of their own.
    def set_autocheckpoint(self, enabled: bool) -> None:
        """Whether commits on this connection flush the write-ahead log when it grows."""

    def checkpoint(self) -> None:
        """Flush the write-ahead log into the database without blocking writers or readers."""

    def hold_writer_lock(self) -> None:
        """Wait for the right to write now rather than at the first write (the embedded store:
        its home's writer lock, kept until ``close``; raises ``store.lock.WriterLockTimeout``, a
        ``ConnectionError``). A no-op for stores that serialize writers themselves."""

    def opener(self) -> "Callable[[], Store] | None":
        """A picklable callable that opens this same store in another process, or None."""
        return None

    @abc.abstractmethod
    def delete(self, ids: Iterable[int]) -> int:
        """Delete posts by id from every table and index; returns how many existed. Deleted ids are
        remembered so that re-ingesting a source does not bring them back."""

    @abc.abstractmethod
    def deletions_since(self, seq: int, limit: int) -> list[tuple[int, int]]:
        """``(deletion seq, post id)`` of stored posts deleted after ``seq``, in commit order: the
        deletions log, which derived indexes beside the store follow behind a watermark of their
        own (its seq is not ``posts.seq``) to purge what was deleted."""

    @abc.abstractmethod
    def compact(self) -> dict[str, Any]:
        """Rewrite what still holds deleted posts' bytes inside the store's files (the embedded
        store: its FTS5 b-trees and its write-ahead log), cheaply when nothing was deleted since
        the last compaction. Returns what it did, ``deletions`` (since the last compaction) and
        ``seconds`` at least. ``services.maintenance`` runs it after the derived indexes'."""

    # --- governance: deletions and training opt-outs --------------------------------------------
    @abc.abstractmethod
    def deleted_ids(self) -> set[int]:
        """Every deleted id (the tombstones ``delete`` leaves)."""

    @abc.abstractmethod
    def opt_out(self, authors: Iterable[str]) -> int:
        """Record that these authors' posts must not be trained on (``author_key`` says how an
        author is written); returns how many were not opted out already. The posts stay stored and
        searchable: an opt-out governs training, a deletion removes the post."""

    @abc.abstractmethod
    def opt_in(self, authors: Iterable[str]) -> int:
        """Withdraw opt-outs; returns how many there were."""

    @abc.abstractmethod
    def opted_out(self) -> set[str]:
        """The opted-out authors, as ``author_key`` writes them."""

    def is_opted_out(self, author: str | int) -> bool:
        """Whether one author opted out (a point lookup for per-request checks such as ad
        serving; backends override the default, which reads the whole set)."""
        return author_key(author) in self.opted_out()

    @abc.abstractmethod
    def opted_out_at(self, author: str | int) -> int | None:
        """When one author opted out (unix ms, the first request's time), or None when they have
        not: what a user's opt-out and export show (``services.privacy``)."""

    # --- reads -----------------------------------------------------------------------------------
    @abc.abstractmethod
    def get(self, post_id: int) -> Post | None: ...

    @abc.abstractmethod
    def iter_posts(self, batch_size: int = 5000, *, by_time: bool = False) -> Iterator[Post]:
        """All posts in id order (``by_time``: in ``(created_at, id)`` order), streaming."""

    def posts_between(self, since_ms: int | None = None, until_ms: int | None = None, *,
                      batch_size: int = 5000) -> Iterator[Post]:
        """Posts with ``since_ms <= created_at < until_ms`` (either bound may be None) in
        ``(created_at, id)`` order, streaming. This default pages ``iter_posts(by_time=True)``
        from the start; backends override it with an index range read."""
        for p in self.iter_posts(batch_size, by_time=True):
            if since_ms is not None and (p.created_at or 0) < since_ms:
                continue
            if until_ms is not None and (p.created_at or 0) >= until_ms:
                return
            yield p

    @abc.abstractmethod
    def count(self) -> int: ...

    def posts_by_author(self, author: str | int, *, limit: int = 500,
                        before_ms: int | None = None) -> list[Post]:
        """An author's posts, newest first (``(created_at, id)`` descending), at most ``limit``,
        only those created before ``before_ms`` when given. ``author`` matches as opt-outs do
        (``author_key``): a post's lowercased handle or ``str(author_id)``. This default scans
        every post; backends override it with an indexed lookup."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        key = author_key(author)
        hits = [p for p in self.iter_posts()
                if ((p.author_handle or "").lower() == key or str(p.author_id) == key)
                and (before_ms is None or (p.created_at or 0) < before_ms)]
        hits.sort(key=lambda p: (p.created_at or 0, p.id), reverse=True)
        return hits[:limit]

    @abc.abstractmethod
    def lexical_ids(self, match: str, limit: int = 100) -> list[int]:
        """Ids whose text matches a full-text query in the backend's syntax (for tests and tools;
        the search package builds the real query language on top)."""

    @abc.abstractmethod
    def sources_of(self, post_id: int) -> dict[str, dict[str, Any]]:
        """Per source dataset: its labels for the post and where it was read (file, line)."""

    @abc.abstractmethod
    def quarantine_items(self, limit: int = 100) -> list[Quarantined]: ...

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts per source, language and day; quarantine per reason; late-stage lag."""

    @abc.abstractmethod
    def stats_counts(self) -> dict[str, Any]:
        """The aggregate counts of ``stats`` alone (per source, language, day; quarantine;
        deletions; near-duplicates): full scans, for a caller that keeps a copy."""

    @abc.abstractmethod
    def late_stage_lag(self) -> dict[str, Any]:
        """``stats()["late_stage"]`` alone, without the scans of the counts."""

    @abc.abstractmethod
    def integrity_check(self) -> list[str]:
        """Problems found (empty when the store is consistent)."""

    # --- late stage (language id, near-duplicate linking) ----------------------------------------
    @abc.abstractmethod
    def pending_enrichment(self, limit: int) -> list[PendingEnrichment]: ...

    @abc.abstractmethod
    def bucket_members(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
        """For (band, bucket) keys, the posts already in each bucket."""

    @abc.abstractmethod
    def signatures(self, ids: Sequence[int]) -> dict[int, bytes]: ...

    @abc.abstractmethod
    def roots(self, ids: Sequence[int]) -> dict[int, int]:
        """Each id's near-duplicate original (itself when it is an original)."""

    @abc.abstractmethod
    def write_enrichment(self, e: Enrichment) -> None: ...

    # --- search reads (townsquare.store.sqlite_search, townsquare.store.postgres_search) ----------
    # Search hands the store a parsed query (``townsquare.query``); each backend compiles it into
    # its own SQL (``store.sqlite_query``, ``store.postgres_query``), so no SQL leaves the store.
    # ``query=None`` is "no condition". ``now_ms`` (ms since the epoch) resolves ``within_time:``
    # (default: the current time); a paginated search passes its first page's.
    @abc.abstractmethod
    def has_words(self, text: str) -> bool:
        """Whether ``text`` holds something the full-text index can match (not only emoji or
        punctuation): which of a query's texts can join an any-word search."""

    @abc.abstractmethod
    def rankable(self, query: Node) -> bool:
        """Whether the query implies text that ``lexical_search`` can rank by (BM25 or cover
        density); a query of operators only is not, and is listed newest first instead."""

    @abc.abstractmethod
    def match_any(self, texts: Sequence[str], *,
                  common_share: float | None = None) -> AnyWords | None:
        """Posts holding any of these texts, for ``lexical_search(any_words=...)``; None when
        nothing is left to match. ``common_share``: a backend that knows its words'
        frequencies may leave out texts in more than that share of the posts."""

    @abc.abstractmethod
    def lexical_search(self, query: Node | None, *, now_ms: int | None = None,
                       any_words: AnyWords | None = None, limit: int = 100,
                       order: str = "rank", before: tuple[int, int] | None = None,
                       max_seq: int | None = None) -> list[tuple[int, float | None]]:
        """``(id, score)`` of posts that satisfy ``query`` (and hold ``any_words`` when given),
        by text relevance (``order="rank"``: of ``any_words`` when given, else of the query's
        own text, which must be ``rankable``) or newest first (``order="time"``), continuing
        after the ``before=(created_at, id)`` cursor. ``max_seq`` hides posts ingested after a
        snapshot. Higher scores are better; None in time order without text."""

    @abc.abstractmethod
    def filter_ids(self, ids: Sequence[int], query: Node | None, *, now_ms: int | None = None,
                   candidates: bool = False, max_seq: int | None = None) -> set[int]:
        """The ids among ``ids`` that exist (up to ``max_seq``) and satisfy ``query``.
        ``candidates=True`` checks text per row and tags in their column only: the plan for a
        few hundred candidates from an index beside the store (see the compilers)."""

    @abc.abstractmethod
    def posts_by_id(self, ids: Sequence[int]) -> dict[int, Post]: ...

    @abc.abstractmethod
    def shown(self, ids: Sequence[int]) -> dict[int, Shown]:
        """``{id: Shown}`` of the ids that exist: what a search result shows, without reading
        the posts whole (a page of 20 at 1.1M posts: ~25 us instead of ~100)."""

    def dup_info(self, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """For each id: (near-duplicate root, how many near-duplicates the root has)."""
        ids = list(ids)
        members = self.dup_roots(ids)
        roots = {pid: members.get(pid, pid) for pid in ids}
        counts = self.dup_counts(set(roots.values()))
        return {pid: (root, counts.get(root, 0)) for pid, root in roots.items()}

    @abc.abstractmethod
    def dup_roots(self, ids: Sequence[int]) -> dict[int, int]:
        """The near-duplicates among ``ids``, each with its root (the group's original); an id
        left out is its own root (an original, or no post stored). One look-up per id: what
        collapsing a ranking needs, without ``dup_counts``' count."""

    @abc.abstractmethod
    def dup_counts(self, roots: Iterable[int]) -> dict[int, int]:
        """For each root with near-duplicates: how many the store holds (a count over each
        group: a retweeted root's costs more than its look-up)."""

    @abc.abstractmethod
    def texts_of(self, ids: Sequence[int]) -> dict[int, str]:
        """``{id: text}`` of the ids that exist: a post's words without reading it whole."""

    @abc.abstractmethod
    def posts_since(self, seq: int, limit: int) -> list[tuple[int, int, str]]:
        """``(id, seq, text)`` after ``seq`` in ingest order (derived indexes catch up on it)."""

    @abc.abstractmethod
    def created_at_of(self, ids: Sequence[int]) -> dict[int, int]: ...

    def index_rows_since(self, seq: int, limit: int) -> list[IndexRow]:
        """``posts_since`` with the fields an index beside the store filters and ranks by."""
        rows = self.posts_since(seq, limit)
        posts = self.posts_by_id([r[0] for r in rows])
        return [IndexRow.of(posts[pid], s) for pid, s, _ in rows if pid in posts]

    def embedded_through(self) -> int:
        """The embedding stage's watermark: every post with ``seq`` at or below it has a vector
        (``embedding_lag()``, without its count of the posts behind it)."""
        return int(self.embedding_lag()["processed_through_seq"])

    def enriched_through(self) -> int:
        """The late stage's watermark: every post with ``seq`` at or below it has its language
        and near-duplicate link (``late_stage_lag()``; stores read it directly)."""
        return int(self.late_stage_lag()["processed_through_seq"])

    def rank_fields(self, ids: Sequence[int]) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        """``{id: (created_at, like_count, retweet_count, reply_count, quote_count)}``: what
        search ranks a candidate by, without reading the post whole (``search.rank``)."""
        return {pid: (p.created_at, p.like_count, p.retweet_count, p.reply_count, p.quote_count)
                for pid, p in self.posts_by_id(ids).items()}

    def filter_rank_fields(self, ids: Sequence[int], query: Node | None, *,
                           now_ms: int | None = None, max_seq: int | None = None
                           ) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        """``filter_ids`` and ``rank_fields`` together: the ranking fields of the ids among
        ``ids`` that exist (up to ``max_seq``) and satisfy ``query``. Search checks its
        semantic candidates this way; a store answers it in one read."""
        ok = self.filter_ids(ids, query, now_ms=now_ms, max_seq=max_seq)
        return self.rank_fields([pid for pid in ids if pid in ok])

    @abc.abstractmethod
    def max_seq(self) -> int: ...

    @abc.abstractmethod
    def ingested_at_after(self, seq: int) -> int | None:
        """Ingest time (ms) of the first post after ``seq`` in ingest order (None: none): the
        age of a derived index's oldest pending post."""

    @abc.abstractmethod
    def newest_created_at(self) -> int | None: ...

    # --- embeddings ------------------------------------------------------------------------------
    @abc.abstractmethod
    def embed_model(self) -> str | None: ...

    @abc.abstractmethod
    def reset_vectors(self, model: str) -> None: ...

    @abc.abstractmethod
    def pending_embedding(self, limit: int) -> list[tuple[int, int, str]]: ...

    @abc.abstractmethod
    def write_vectors(self, model: str, rows: Sequence[tuple[int, int, bytes]],
                      watermark: int) -> None: ...

    @abc.abstractmethod
    def vectors_after(self, seq: int, limit: int) -> list[tuple[int, int, bytes]]: ...

    @abc.abstractmethod
    def vector_ids(self) -> set[int]: ...

    @abc.abstractmethod
    def vector_count(self) -> int: ...

    def vector_search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """``(post id, cosine)`` of the ``k`` nearest stored vectors by the store's own index:
        only a store whose ``indexes_in_store`` is True has one (the others keep a derived index
        file beside them, ``embed.sync.StoreVectors``)."""
        raise TypeError(f"{type(self).__name__} keeps no vector index of its own: search the "
                        "index beside it (embed.sync.StoreVectors)")

    @abc.abstractmethod
    def vectors_of(self, ids: Sequence[int]) -> dict[int, bytes]:
        """Stored vector bytes of those of ``ids`` that have one."""

    @abc.abstractmethod
    def embedding_pending(self, at_most: int | None = None) -> int:
        """Posts not embedded yet, counted up to ``at_most`` when given."""

    @abc.abstractmethod
    def embedding_lag(self) -> dict[str, Any]: ...
