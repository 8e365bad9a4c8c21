"""The PostgreSQL store's reads for search, its embeddings (pgvector), and state shared by workers.

    >>> from townsquare.store.postgres_search import _LEXEME
    >>> _LEXEME.findall("'flood' & 'warn'")
    ['flood', 'warn']

Search hands this store a parsed query, compiled here by ``townsquare.store.postgres_query``
into a ``where`` over ``posts p`` with ``%s`` parameters, and ``fts``, a ``tsquery`` over the
exact words. ``lexical_search`` finds matches through the GIN index on ``words`` and ranks them
with ``ts_rank_cd`` (cover density: how many of the query's words, how close together) plus the
rank of the post's stemmed, per-language ``tsv`` against the query's words in every
configuration. "Any of the words" (``match_any``) matches on the stemmed ``tsv``: a long query's
words in English, French, Spanish or as written (``pgschema.ANY_WORD_CONFIGS``), one constant
``tsquery`` so the GIN index answers it.

Vectors: ``vec`` (float16 bytes) stays the source of truth, as in the embedded store, and the
same vector is kept in ``emb``, a pgvector ``halfvec`` column with an HNSW index (cosine). The
column takes its dimension from the first model written, so ``reset_vectors`` to a model of
another size recreates it. ``vector_search`` is what ``embed.sync.InStoreVectors`` (the search
engine's vector index in server mode) calls: every API worker queries the one shared index,
always up to date.

``shared_state`` holds small documents that every worker must agree on (the story clusters):
one process writes a new version, the others read it when its version moves.
"""
from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from townsquare.posts import Post
from townsquare.query import Node
from townsquare.store import pgschema
from townsquare.store.base import SHOWN_COLUMNS, AnyWords, Shown, author_queries, newest_rows
from townsquare.store.postgres_query import SqlQuery, compile_postgres, tsquery_of
from townsquare.store.sqlite_query import has_fts_token
from townsquare.store.sqlreads import POST_COLUMNS, post_from_array_row

_STATS_TTL_S = 60.0
_LEXEME = re.compile(r"'((?:[^']|'')*)'")
_NO_CONDITION = SqlQuery(where="TRUE", params=(), fts=None)


# Compiled once per (query, now, mode), as in the embedded store (``sqlite_search._compiled``).
@functools.lru_cache(maxsize=512)
def _compiled(query: Node, now_ms: int, candidates: bool) -> SqlQuery:
    return compile_postgres(query, now_ms, candidates=candidates)


def _sql(query: Node | None, now_ms: int | None, candidates: bool = False) -> SqlQuery:
    """``query`` as this store's SQL (``now_ms`` None: now); "no condition" for None."""
    if query is None:
        return _NO_CONDITION
    return _compiled(query, int(time.time() * 1000) if now_ms is None else now_ms, candidates)


class PostgresSearchReads:
    """Mixin for ``PostgresStore``: uses its ``_db`` connection, ``_meta``, ``_set_meta``,
    ``_tx`` and ``_lock``."""

    _db: Any      # a psycopg Connection (psycopg is imported only when a store opens)

    # --- the query language ----------------------------------------------------------------------
    def has_words(self, text: str) -> bool:
        # The embedded store's rule (FTS5's tokenizer), on purpose: the engine builds its
        # any-word list from it, and both stores must build the same list for a query;
        # ``match_any`` drops a text that has no word by PostgreSQL's rule.
        return has_fts_token(text)

    def rankable(self, query: Node) -> bool:
        return tsquery_of(query) is not None

    def match_any(self, texts: Sequence[str], *,
                  common_share: float | None = None) -> AnyWords | None:
        """Posts whose stemmed words hold any of ``texts`` (each text's words in any of the
        any-word configurations). Texts whose every stemmed form is in more than
        ``common_share`` of the posts are left out, as the tantivy path does ("de", "the": in
        an any-word list they match everything); the shares come from PostgreSQL's own
        statistics of the column (``most_common_elems``), so this costs no query. The result is
        one constant ``tsquery``, duplicates removed, so the planner estimates it and the GIN
        index on ``tsv`` answers it."""
        rows = self._db.execute(
            "SELECT t.i, plainto_tsquery(c.cfg::regconfig, t.txt)::text FROM "
            "unnest(%s::text[]) WITH ORDINALITY AS t(txt, i), unnest(%s::text[]) AS c(cfg) "
            "ORDER BY t.i, c.cfg", (list(texts), list(pgschema.ANY_WORD_CONFIGS))).fetchall()
        forms: dict[int, list[str]] = {}
        for i, q in rows:
            if q and q not in forms.setdefault(i, []):
                forms[i].append(q)
        common = self._common_lexemes(common_share) if common_share is not None else set()
        kept: list[str] = []
        for qs in forms.values():
            if common and all(set(_LEXEME.findall(q)) <= common for q in qs):
                continue
            kept += [q for q in qs if q not in kept]
        return AnyWords(" | ".join(f"({q})" for q in kept)) if kept else None

    def _common_lexemes(self, share: float) -> set[str]:
        """Lexemes of ``tsv`` in more than ``share`` of the posts, by the statistics of each
        partition (weighted by its size); empty before the first ANALYZE."""
        cached = getattr(self, "_common_cache", None)
        if cached and cached[0] == share and time.monotonic() - cached[1] < _STATS_TTL_S:
            return cached[2]
        rows = self._db.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
            "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
            "JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = 'posts'::regclass "
            "WHERE s.attname = 'tsv' AND s.most_common_elems IS NOT NULL").fetchall()
        total = sum(max(0.0, r[2]) for r in rows)
        counts: dict[str, float] = {}
        for elems, freqs, n in rows:
            for e, f in zip(elems or [], freqs or []):
                counts[e] = counts.get(e, 0.0) + f * max(0.0, n)
        common = {e for e, c in counts.items() if total and c / total > share}
        self._common_cache = (share, time.monotonic(), common)
        return common

    # --- lexical ---------------------------------------------------------------------------------
    def lexical_search(self, query: Node | None, *, now_ms: int | None = None,
                       any_words: AnyWords | None = None, limit: int = 100,
                       order: str = "rank", before: tuple[int, int] | None = None,
                       max_seq: int | None = None) -> list[tuple[int, float | None]]:
        if order not in ("rank", "time"):
            raise ValueError(f"order must be 'rank' or 'time', got {order!r}")
        c = _sql(query, now_ms)
        if order == "rank" and any_words is None and c.fts is None:
            raise ValueError("order='rank' needs text to rank by (a rankable query or any_words)")
        conds, args = [f"({c.where})"], list(c.params)
        score, score_args = "NULL::float8", []
        if any_words is not None:     # match_any's tsquery is over the stemmed words
            conds.insert(0, "p.tsv @@ %s::tsquery")
            args = [any_words.expr] + args
            score, score_args = "ts_rank(p.tsv, %s::tsquery)", [any_words.expr]
        elif c.fts is not None:
            conds.insert(0, "p.words @@ %s::tsquery")
            args = [c.fts] + args
            score, score_args = "ts_rank_cd(p.words, %s::tsquery)", [c.fts]
        if max_seq is not None:
            conds.append("p.seq <= %s")
            args.append(max_seq)
        if before is not None:
            conds.append("(p.created_at, p.id) < (%s, %s)")
            args += [before[0], before[1]]
        sql = f"SELECT p.id, {score} AS s FROM posts p WHERE " + " AND ".join(conds)
        sql += (" ORDER BY s DESC, p.id DESC" if order == "rank"
                else " ORDER BY p.created_at DESC, p.id DESC") + " LIMIT %s"
        return [(r[0], r[1]) for r in self._db.execute(sql, score_args + args + [limit])]

    def filter_ids(self, ids: Sequence[int], query: Node | None, *, now_ms: int | None = None,
                   candidates: bool = False, max_seq: int | None = None) -> set[int]:
        return {r[0] for r in self._where_ids("p.id", ids, query, now_ms, candidates, max_seq)}

    def filter_rank_fields(self, ids: Sequence[int], query: Node | None, *,
                           now_ms: int | None = None, max_seq: int | None = None
                           ) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        return {r[0]: tuple(r[1:]) for r in self._where_ids(
            "p.id, p.created_at, p.like_count, p.retweet_count, p.reply_count, p.quote_count",
            ids, query, now_ms, False, max_seq)}

    def _where_ids(self, columns: str, ids: Sequence[int], query: Node | None,
                   now_ms: int | None, candidates: bool, max_seq: int | None):
        """``columns`` of the posts among ``ids`` that satisfy ``query`` (up to ``max_seq``)."""
        c = _sql(query, now_ms, candidates)
        sql = f"SELECT {columns} FROM posts p WHERE p.id = ANY(%s) AND ({c.where})"
        args = [list(ids)] + list(c.params)
        if max_seq is not None:
            sql += " AND p.seq <= %s"
            args.append(max_seq)
        return self._db.execute(sql, args)

    def posts_by_id(self, ids: Sequence[int]) -> dict[int, Post]:
        return {r[0]: post_from_array_row(r) for r in self._db.execute(
            f"SELECT {', '.join(POST_COLUMNS)} FROM posts WHERE id = ANY(%s)", (list(ids),))}

    def posts_by_author(self, author: str | int, *, limit: int = 500,
                        before_ms: int | None = None) -> list[Post]:
        queries = author_queries(author, ", ".join(POST_COLUMNS), limit, before_ms, mark="%s")
        return [post_from_array_row(r) for r in newest_rows(
            (r for sql, args in queries for r in self._db.execute(sql, args)), limit)]

    def shown(self, ids: Sequence[int]) -> dict[int, Shown]:
        return {r[0]: Shown._make(r) for r in self._db.execute(
            f"SELECT {', '.join(SHOWN_COLUMNS)} FROM posts WHERE id = ANY(%s)", (list(ids),))}

    def dup_roots(self, ids: Sequence[int]) -> dict[int, int]:
        return dict(self._db.execute(
            "SELECT id, dup_of FROM posts WHERE id = ANY(%s) AND dup_of IS NOT NULL",
            (list(ids),)
        ).fetchall())

    def dup_counts(self, roots: Iterable[int]) -> dict[int, int]:
        return dict(self._db.execute(
            "SELECT dup_of, count(*) FROM posts WHERE dup_of = ANY(%s) GROUP BY dup_of",
            (sorted(set(roots)),)).fetchall())

    def texts_of(self, ids: Sequence[int]) -> dict[int, str]:
        return dict(self._db.execute("SELECT id, text FROM posts WHERE id = ANY(%s)",
                                     (list(ids),)).fetchall())

    def created_at_of(self, ids: Sequence[int]) -> dict[int, int]:
        return dict(self._db.execute("SELECT id, created_at FROM posts WHERE id = ANY(%s)",
                                     (list(ids),)).fetchall())

    def enriched_through(self) -> int:
        return int(self._meta("enriched_seq") or 0)

    def rank_fields(self, ids: Sequence[int]) -> dict[int, tuple[int, Any, Any, Any, Any]]:
        return {r[0]: tuple(r[1:]) for r in self._db.execute(
            "SELECT id, created_at, like_count, retweet_count, reply_count, quote_count "
            "FROM posts WHERE id = ANY(%s)", (list(ids),))}

    # --- embeddings ------------------------------------------------------------------------------
    def _emb_dim(self) -> int | None:
        r = self._db.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'vectors'::regclass "
            "AND attname = 'emb' AND NOT attisdropped").fetchone()
        return int(r[0]) if r else None

    def _ensure_emb(self, dim: int) -> None:
        """The ``emb`` halfvec column and its HNSW index, for vectors of ``dim`` (in a tx)."""
        have = self._emb_dim()
        if have == dim:
            return
        if have is not None:
            self._db.execute("ALTER TABLE vectors DROP COLUMN emb")
        self._db.execute(f"ALTER TABLE vectors ADD COLUMN emb halfvec({int(dim)})")
        self._db.execute("CREATE INDEX IF NOT EXISTS vectors_emb ON vectors "
                         "USING hnsw (emb halfvec_cosine_ops)")

    def reset_vectors(self, model: str) -> None:
        with self._tx():
            self._lock()
            self._db.execute("DELETE FROM vectors")
            self._set_meta("embed_model", model)
            self._set_meta("embedded_seq", "0")

    def write_vectors(self, model: str, rows: Sequence[tuple[int, int, bytes]],
                      watermark: int) -> None:
        with self._tx():
            self._lock()
            current = self._meta("embed_model")
            if current is not None and current != model:
                raise ValueError(f"store holds {current} vectors; reset_vectors({model!r}) first")
            if current is None:
                self._set_meta("embed_model", model)
            if rows:
                dim = len(rows[0][2]) // 2
                self._ensure_emb(dim)
                mats = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16)
                mats = mats.reshape(len(rows), dim).astype(np.float32)            # (n, dim)
                with self._db.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO vectors (post_id, seq, vec, emb) SELECT %s, %s, %s, "
                        "%s::halfvec WHERE EXISTS (SELECT 1 FROM posts WHERE id = %s) "
                        "ON CONFLICT (post_id) DO UPDATE SET seq = excluded.seq, "
                        "vec = excluded.vec, emb = excluded.emb",
                        [(pid, seq, vec, "[" + ",".join(map(repr, m.tolist())) + "]", pid)
                         for (pid, seq, vec), m in zip(rows, mats)])
            if watermark > int(self._meta("embedded_seq") or 0):
                self._set_meta("embedded_seq", str(watermark))

    def vectors_after(self, seq: int, limit: int) -> list[tuple[int, int, bytes]]:
        return [(pid, s, bytes(v)) for pid, s, v in self._db.execute(
            "SELECT post_id, seq, vec FROM vectors WHERE seq > %s ORDER BY seq LIMIT %s",
            (seq, limit))]

    def vectors_of(self, ids: Sequence[int]) -> dict[int, bytes]:
        return {pid: bytes(v) for pid, v in self._db.execute(
            "SELECT post_id, vec FROM vectors WHERE post_id = ANY(%s)", (list(ids),))}

    def vector_search(self, q: np.ndarray, k: int) -> list[tuple[int, float]]:
        """``(post id, cosine)`` of the ``k`` nearest vectors by the HNSW index (approximate,
        as faiss's HNSW is in the embedded store). ``ef_search`` is raised to ``k`` so the
        index can return that many."""
        if self._emb_dim() is None:
            return []
        lit = "[" + ",".join(map(repr, np.asarray(q, dtype=np.float32).tolist())) + "]"
        with self._tx():
            self._db.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(int(k), 1000))}")
            rows = self._db.execute(
                "SELECT post_id, 1 - (emb <=> %s::halfvec) FROM vectors WHERE emb IS NOT NULL "
                "ORDER BY emb <=> %s::halfvec LIMIT %s", (lit, lit, int(k))).fetchall()
        return [(pid, float(s)) for pid, s in rows]

    # --- state shared by workers -------------------------------------------------------------------
    def shared_version(self, name: str) -> int:
        r = self._db.execute("SELECT version FROM shared_state WHERE name = %s", (name,)).fetchone()
        return r[0] if r else 0

    def get_shared(self, name: str) -> tuple[int, bytes | None]:
        r = self._db.execute("SELECT version, body FROM shared_state WHERE name = %s",
                             (name,)).fetchone()
        return (r[0], bytes(r[1])) if r else (0, None)

    def put_shared(self, name: str, body: bytes) -> int:
        """Store a new version of a shared document; returns its version."""
        return self._db.execute(
            "INSERT INTO shared_state (name, version, body, updated_at) VALUES (%s, 1, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET version = shared_state.version + 1, "
            "body = excluded.body, updated_at = excluded.updated_at RETURNING version",
            (name, body, int(time.time() * 1000))).fetchone()[0]

    def take_token(self, key_id: str, rate_per_minute: int) -> int:
        """One request of an API key against its token bucket shared by all workers (capacity
        ``rate_per_minute``, refilled continuously, on the database server's clock so that
        machines' clocks need not agree); 0 when allowed, else the seconds to wait. One atomic
        statement: concurrent workers cannot both spend the last token."""
        rate, cap = rate_per_minute / 60.0, float(rate_per_minute)
        now = "extract(epoch FROM clock_timestamp())"
        avail = f"least(%(cap)s, r.tokens + ({now} - r.at) * %(rate)s)"
        tokens, granted = self._db.execute(
            f"INSERT INTO rate_buckets AS r (key_id, tokens, at, granted) "
            f"VALUES (%(k)s, %(cap)s - 1, {now}, true) ON CONFLICT (key_id) DO UPDATE SET "
            f"tokens = CASE WHEN {avail} >= 1 THEN {avail} - 1 ELSE {avail} END, "
            f"granted = {avail} >= 1, at = {now} RETURNING tokens, granted",
            {"k": key_id, "cap": cap, "rate": rate}).fetchone()
        if granted:
            return 0
        return max(1, math.ceil((1.0 - tokens) / rate))

    def try_leader(self, role: str) -> bool:
        """Whether this connection holds (or now takes) the session lock of ``role``: one
        process among the workers runs each background job (the late stage, embeddings,
        stories); the lock goes when its connection does, and another worker takes over."""
        key = int.from_bytes(role.encode()[:8].ljust(8, b"\0"), "big") & ((1 << 63) - 1)
        return bool(self._db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0])
