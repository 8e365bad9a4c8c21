"""The embedded store's reads for search, and its embeddings table (mixed into ``SQLiteStore``).

    >>> from townsquare.query import parse
    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St", source="t").normalized())], [])
    >>> [pid for pid, _ in s.lexical_search(parse("flood -warning"))]
    [1212092628029698048]
    >>> s.filter_ids([1212092628029698048], parse("lang:fr")), s.embedding_lag()["pending_posts"]
    (set(), 1)

Search runs two kinds of SQL here: ``lexical_search`` (FTS5 MATCH ranked by BM25, or any filter
ordered by time, with a keyset cursor) and ``filter_ids`` (which of some candidate ids satisfy a
query: how semantic and tantivy candidates get the query's operators applied). Both take a parsed
query and compile it with ``townsquare.store.sqlite_query`` (SQL over the alias ``p`` for
``posts``, with ``?`` parameters: user text is never spliced in).

Embeddings live in the ``vectors`` table (float16, the source of truth); the vector index is a
derived file that catches up from it. The embedding step runs behind ingest with its own watermark
(``embedded_seq``), so lexical search never waits for it; its lag is in ``stats()["embeddings"]``.
"""
from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from townsquare.posts import Post
from townsquare.query import Node
from townsquare.store.base import (SHOWN_COLUMNS, AnyWords, IndexRow, Shown, author_queries,
                                   newest_rows)
from townsquare.store.sqlite_query import (
    SqlQuery,
    compile_sqlite,
    fts_of,
    fts_string,
    has_fts_token,
)
from townsquare.store.sqlreads import POST_COLUMNS, post_from_json_row

_CHUNK = 900
# Reads of posts by id (``_rows_in`` appends the ids): whole posts, and what a result shows.
_POSTS_IN = f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE id IN"
_SHOWN_IN = f"SELECT {', '.join(SHOWN_COLUMNS)} FROM posts WHERE id IN"
_NO_CONDITION = SqlQuery(where="1", params=(), fts=None)


# One search compiles the same (sub)query for several reads (the tantivy candidates' check
# twice, the semantic list and its feedback round): compiled once, kept for the next ones and
# the next pages (a cursor pins now_ms). Queries are frozen dataclasses, so they are the key.
@functools.lru_cache(maxsize=512)
def _compiled(query: Node, now_ms: int, candidates: bool) -> SqlQuery:
    return compile_sqlite(query, now_ms, candidates=candidates)


def _sql(query: Node | None, now_ms: int | None, candidates: bool = False) -> SqlQuery:
    """``query`` as this store's SQL (``now_ms`` None: now); "no condition" for None."""
    if query is None:
        return _NO_CONDITION
    return _compiled(query, int(time.time() * 1000) if now_ms is None else now_ms, candidates)


class SQLiteSearchReads:
    """Mixin for ``SQLiteStore``: uses its ``_db`` connection and its ``_meta``, ``_set_meta``
    and ``_tx`` helpers."""

    _db: sqlite3.Connection

    # --- the query language ----------------------------------------------------------------------
    def has_words(self, text: str) -> bool:
        return has_fts_token(text)

    def rankable(self, query: Node) -> bool:
        return fts_of(query) is not None

    def match_any(self, texts: Sequence[str], *,
                  common_share: float | None = None) -> AnyWords | None:
        """Posts holding any of ``texts``; FTS5 knows no word frequencies, so ``common_share``
        leaves nothing out here (the tantivy index beside this store does that)."""
        return AnyWords(" OR ".join(fts_string(t) for t in texts)) if texts else None

    # --- lexical ---------------------------------------------------------------------------------
    def lexical_search(self, query: Node | None, *, now_ms: int | None = None,
                       any_words: AnyWords | None = None, limit: int = 100,
                       order: str = "rank", before: tuple[int, int] | None = None,
                       max_seq: int | None = None) -> list[tuple[int, float | None]]:
        """``(id, bm25)`` of posts matching ``query``, and ``any_words`` when given (see
        ``Store.lexical_search``). BM25 is SQLite's (lower is better); it is returned negated,
        so higher is better."""
        if order not in ("rank", "time"):
            raise ValueError(f"order must be 'rank' or 'time', got {order!r}")
        c = _sql(query, now_ms)
        fts = any_words.expr if any_words is not None else c.fts
        if order == "rank" and fts is None:
            raise ValueError("order='rank' needs text to rank by (a rankable query or any_words)")
        conds, args = [f"({c.where})"], list(c.params)
        if max_seq is not None:
            conds.append("p.seq <= ?")
            args.append(max_seq)
        if before is not None:
            conds.append("(p.created_at < ? OR (p.created_at = ? AND p.id < ?))")
            args += [before[0], before[0], before[1]]
        if fts is not None:
            sql = ("SELECT p.id, -bm25(posts_fts) AS s FROM posts_fts "
                   "JOIN posts p ON p.id = posts_fts.rowid WHERE posts_fts MATCH ? AND "
                   + " AND ".join(conds))
            args = [fts] + args
        else:
            sql = "SELECT p.id, NULL FROM posts p WHERE " + " AND ".join(conds)
        sql += (" ORDER BY s DESC, p.id DESC" if order == "rank"
                else " ORDER BY p.created_at DESC, p.id DESC") + " LIMIT ?"
        args.append(limit)
        return [(r[0], r[1]) for r in self._db.execute(sql, args)]

    def filter_ids(self, ids: Sequence[int], query: Node | None, *, now_ms: int | None = None,
                   candidates: bool = False, max_seq: int | None = None) -> set[int]:
        """The ids among ``ids`` that exist and satisfy ``query``."""
        return {r[0] for r in self._where_ids("p.id", ids, query, now_ms, candidates, max_seq)}

    def filter_rank_fields(self, ids: Sequence[int], query: Node | None, *,
                           now_ms: int | None = None, max_seq: int | None = None
                           ) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        return {r[0]: r[1:] for r in self._where_ids(
            "p.id, p.created_at, p.like_count, p.retweet_count, p.reply_count, p.quote_count",
            ids, query, now_ms, False, max_seq)}

    def _where_ids(self, columns: str, ids: Sequence[int], query: Node | None,
                   now_ms: int | None, candidates: bool, max_seq: int | None):
        """``columns`` of the posts among ``ids`` that satisfy ``query`` (up to ``max_seq``),
        a chunk of ids per statement."""
        c = _sql(query, now_ms, candidates)
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            sql = (f"SELECT {columns} FROM posts p WHERE p.id IN ({','.join('?' * len(chunk))}) "
                   f"AND ({c.where})")
            args = list(chunk) + list(c.params)
            if max_seq is not None:
                sql += " AND p.seq <= ?"
                args.append(max_seq)
            yield from self._db.execute(sql, args)

    def posts_by_id(self, ids: Sequence[int]) -> dict[int, Post]:
        return {r[0]: post_from_json_row(r) for r in self._rows_in(_POSTS_IN, ids)}

    def posts_by_author(self, author: str | int, *, limit: int = 500,
                        before_ms: int | None = None) -> list[Post]:
        queries = author_queries(author, ", ".join(POST_COLUMNS), limit, before_ms)
        return [post_from_json_row(r) for r in newest_rows(
            (r for sql, args in queries for r in self._db.execute(sql, args)), limit)]

    def shown(self, ids: Sequence[int]) -> dict[int, Shown]:
        return {r[0]: Shown._make(r) for r in self._rows_in(_SHOWN_IN, ids)}

    def dup_roots(self, ids: Sequence[int]) -> dict[int, int]:
        # The members' index (``posts_members``) by name: for ``id IN (...)`` the planner
        # takes the rowid look-up into the posts' rows, ~3x slower for random ids.
        return self._pairs_by_id("SELECT id, dup_of FROM posts INDEXED BY posts_members "
                                 "WHERE dup_of IS NOT NULL AND id IN", ids)

    def dup_counts(self, roots: Iterable[int]) -> dict[int, int]:
        counts: dict[int, int] = {}
        rs = sorted(set(roots))
        for i in range(0, len(rs), _CHUNK):
            chunk = rs[i:i + _CHUNK]
            counts.update(self._db.execute(
                f"SELECT dup_of, count(*) FROM posts WHERE dup_of IN ({','.join('?' * len(chunk))}) "
                f"GROUP BY dup_of", chunk))
        return counts

    def texts_of(self, ids: Sequence[int]) -> dict[int, str]:
        return self._pairs_by_id("SELECT id, text FROM posts WHERE id IN", ids)

    def _pairs_by_id(self, select: str, ids: Sequence[int]) -> dict[int, Any]:
        """``{key: value}`` rows of ``select`` (ending in ``IN``) over ``ids``."""
        return dict(self._rows_in(select, ids))

    def _rows_in(self, select: str, ids: Sequence[int]) -> Iterator[tuple]:
        """The rows of ``select`` (ending in ``IN``) over ``ids``, a chunk of ids per statement
        (under SQLite's parameter limit)."""
        ids = list(ids)
        chunks = [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
        if len(chunks) == 1:           # a page's ids: the cursor itself, no generator per row
            return self._db.execute(f"{select} ({','.join('?' * len(ids))})", ids)
        return (row for chunk in chunks
                for row in self._db.execute(f"{select} ({','.join('?' * len(chunk))})", chunk))

    def created_at_of(self, ids: Sequence[int]) -> dict[int, int]:
        return self._pairs_by_id("SELECT id, created_at FROM posts WHERE id IN", ids)

    def index_rows_since(self, seq: int, limit: int) -> list[IndexRow]:
        # The index's columns only, each row straight to an ``IndexRow`` (what ``IndexRow.of``
        # gives for the same post: a test checks it): no ``Post`` in between. This runs for
        # every post the tantivy index takes (a stream's worth each second in the server, all
        # of them at a rebuild), and the ``Post`` in between cost ~4 of the ~10 us a row took
        # (bench/lexindex.py: the store's rows 1.62x faster, a fresh index 1.23x).
        return [_index_row(r) for r in self._db.execute(_INDEX_ROWS_SQL, (seq, limit))]

    def enriched_through(self) -> int:
        return int(self._meta("enriched_seq") or 0)

    def rank_fields(self, ids: Sequence[int]) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        out: dict[int, tuple[int, Any, Any, Any, Any]] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for r in self._db.execute(
                    "SELECT id, created_at, like_count, retweet_count, reply_count, quote_count "
                    f"FROM posts WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                out[r[0]] = r[1:]
        return out

    # --- embeddings ------------------------------------------------------------------------------
    def reset_vectors(self, model: str) -> None:
        """Start over with another embedding model: drop every vector, reset the watermark."""
        with self._tx() as db:
            db.execute("DELETE FROM vectors")
            self._set_meta("embed_model", model)
            self._set_meta("embedded_seq", "0")

    def write_vectors(self, model: str, rows: Sequence[tuple[int, int, bytes]],
                      watermark: int) -> None:
        """Store ``(post id, seq, float16 vector bytes)`` rows and advance the watermark, in one
        transaction. Rows of posts deleted meanwhile are dropped."""
        with self._tx() as db:
            current = self._meta("embed_model")
            if current is not None and current != model:
                raise ValueError(f"store holds {current} vectors; reset_vectors({model!r}) first")
            if current is None:
                self._set_meta("embed_model", model)
            db.executemany(
                "INSERT INTO vectors(post_id, seq, vec) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM posts WHERE id = ?) "
                "ON CONFLICT(post_id) DO UPDATE SET seq = excluded.seq, vec = excluded.vec",
                [(pid, seq, vec, pid) for pid, seq, vec in rows])
            if watermark > int(self._meta("embedded_seq") or 0):
                self._set_meta("embedded_seq", str(watermark))

    def vectors_after(self, seq: int, limit: int) -> list[tuple[int, int, bytes]]:
        """``(post id, seq, vector bytes)`` of vectors written for posts with seq > ``seq``."""
        return [tuple(r) for r in self._db.execute(
            "SELECT post_id, seq, vec FROM vectors WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit))]

    def vectors_of(self, ids: Sequence[int]) -> dict[int, bytes]:
        return self._pairs_by_id("SELECT post_id, vec FROM vectors WHERE post_id IN", ids)


# ``index_rows_since``: the columns ``IndexRow`` needs, and the ``filter:`` flags as SQL decides
# them for ``IndexRow.of`` (urls and the tag lists are JSON text, NULL or "[]" when empty) as one
# bit mask, whose names come from a table: a row costs no Python loop over its flags.
_FLAG_NAMES = ("replies", "retweets", "quote", "links", "media", "hashtags", "mentions")
_FLAGS_OF = tuple(tuple(name for bit, name in enumerate(_FLAG_NAMES) if mask >> bit & 1)
                  for mask in range(1 << len(_FLAG_NAMES)))
_INDEX_ROWS_SQL = (
    "SELECT id, seq, text, created_at, lang, author_handle, hashtags, mentions, cashtags, "
    # SQLite's | and << share one precedence, left to right: each shift in parentheses
    "(reply_to_id IS NOT NULL) | ((repost_of_id IS NOT NULL) << 1) "
    "| ((quote_of_id IS NOT NULL) << 2) | ((coalesce(urls, '[]') NOT IN ('[]', '')) << 3) "
    "| ((coalesce(has_media, 0) != 0) << 4) "
    "| ((coalesce(hashtags, '[]') NOT IN ('[]', '')) << 5) "
    "| ((coalesce(mentions, '[]') NOT IN ('[]', '')) << 6), "
    "like_count, retweet_count, reply_count, quote_count "
    "FROM posts WHERE seq > ? ORDER BY seq LIMIT ?")


def _json_list(v: str | None) -> list:
    return orjson.loads(v) if v and v != "[]" else []


def _index_row(r: Sequence[Any]) -> IndexRow:
    """An ``IndexRow`` from a row of ``_INDEX_ROWS_SQL``."""
    (pid, seq, text, created_at, lang, handle, hashtags, mentions, cashtags, mask,
     likes, retweets, replies, quotes) = r
    return IndexRow(pid, seq, text, created_at, lang, handle, _json_list(hashtags),
                    _json_list(mentions), _json_list(cashtags), _FLAGS_OF[mask], likes, retweets,
                    replies, quotes)
