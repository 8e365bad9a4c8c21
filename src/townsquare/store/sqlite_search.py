"""The embedded store's reads for search, and its embeddings table (mixed into ``SQLiteStore``).

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St", source="t").normalized())], [])
    >>> [pid for pid, _ in s.lexical_search('"flood"', "1", ())]
    [1212092628029698048]
    >>> s.embedding_lag()["pending_posts"]
    1

Search runs two kinds of SQL here: ``lexical_search`` (FTS5 MATCH ranked by BM25, or any filter
ordered by time, with a keyset cursor) and ``filter_ids`` (which of some candidate ids satisfy a
filter: how semantic candidates get the query's operators applied). The ``where`` clauses come from
``townsquare.search.sqlfilter`` (over the alias ``p`` for ``posts``); they are SQL text with ``?``
parameters, never user text spliced in.

Embeddings live in the ``vectors`` table (float16, the source of truth); the vector index is a
derived file that catches up from it. The embedding step runs behind ingest with its own watermark
(``embedded_seq``), so lexical search never waits for it; its lag is in ``stats()["embeddings"]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from townsquare.posts import Post
from townsquare.store.base import author_queries, newest_rows

_CHUNK = 900


class SQLiteSearchReads:
    """Mixin for ``SQLiteStore``: uses its ``_db`` connection and its ``_meta``, ``_set_meta``
    and ``_tx`` helpers."""

    _db: Any

    # --- lexical ---------------------------------------------------------------------------------
    def lexical_search(self, fts: str | None, where: str, params: Sequence[Any], *,
                       limit: int = 100, order: str = "rank",
                       before: tuple[int, int] | None = None,
                       max_seq: int | None = None) -> list[tuple[int, float | None]]:
        """``(id, bm25)`` of posts matching ``fts`` (when given) and ``where``; ``order="rank"``
        sorts by BM25 (best first; needs ``fts``), ``order="time"`` newest first, continuing after
        the ``before=(created_at, id)`` cursor. ``max_seq`` hides posts ingested after a snapshot.
        BM25 is SQLite's (lower is better); it is returned negated, so higher is better."""
        if order not in ("rank", "time"):
            raise ValueError(f"order must be 'rank' or 'time', got {order!r}")
        if order == "rank" and fts is None:
            raise ValueError("order='rank' needs an fts expression")
        conds, args = [f"({where})"], list(params)
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

    def filter_ids(self, ids: Sequence[int], where: str, params: Sequence[Any], *,
                   max_seq: int | None = None) -> set[int]:
        """The ids among ``ids`` that exist and satisfy ``where``."""
        out: set[int] = set()
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            sql = (f"SELECT p.id FROM posts p WHERE p.id IN ({','.join('?' * len(chunk))}) "
                   f"AND ({where})")
            args = list(chunk) + list(params)
            if max_seq is not None:
                sql += " AND p.seq <= ?"
                args.append(max_seq)
            out.update(r[0] for r in self._db.execute(sql, args))
        return out

    def posts_by_id(self, ids: Sequence[int]) -> dict[int, Post]:
        from townsquare.store.sqlite import _COLS, _post
        out: dict[int, Post] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for r in self._db.execute(f"SELECT {', '.join(_COLS)} FROM posts WHERE id IN "
                                      f"({','.join('?' * len(chunk))})", chunk):
                out[r[0]] = _post(r)
        return out

    def posts_by_author(self, author: str | int, *, limit: int = 500,
                        before_ms: int | None = None) -> list[Post]:
        from townsquare.store.sqlite import _COLS, _post
        queries = author_queries(author, ", ".join(_COLS), limit, before_ms)
        return [_post(r) for r in newest_rows(
            (r for sql, args in queries for r in self._db.execute(sql, args)), limit)]

    def dup_info(self, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """For each id: ``(root, near-duplicates of the root in the store)``; root is the post's
        near-duplicate original (itself for an original)."""
        roots: dict[int, int] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            for pid, dup in self._db.execute(
                    f"SELECT id, dup_of FROM posts WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk):
                roots[pid] = dup if dup is not None else pid
        counts: dict[int, int] = {}
        rs = sorted(set(roots.values()))
        for i in range(0, len(rs), _CHUNK):
            chunk = rs[i:i + _CHUNK]
            counts.update(self._db.execute(
                f"SELECT dup_of, count(*) FROM posts WHERE dup_of IN ({','.join('?' * len(chunk))}) "
                f"GROUP BY dup_of", chunk))
        return {pid: (root, counts.get(root, 0)) for pid, root in roots.items()}

    def _pairs_by_id(self, select: str, ids: Sequence[int]) -> dict[int, Any]:
        """``{key: value}`` rows of ``select`` (ending in ``IN``) over ``ids``, chunked under
        SQLite's parameter limit."""
        out: dict[int, Any] = {}
        ids = list(ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            out.update(self._db.execute(f"{select} ({','.join('?' * len(chunk))})", chunk))
        return out

    def created_at_of(self, ids: Sequence[int]) -> dict[int, int]:
        return self._pairs_by_id("SELECT id, created_at FROM posts WHERE id IN", ids)

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

