"""Server mode: the ``Store`` on PostgreSQL (with pgvector), for several processes and machines.

    townsquare ingest ../shared/data --store postgresql://user@db.example/townsquare
    TOWNSQUARE_STORE=postgresql://... townsquare serve --workers 4

    >>> is_postgres_url("postgresql://app:secret@db.example/townsquare")   # open_store's choice
    True

Behaviour is the embedded store's (``townsquare.store.sqlite``); the store tests run against both.
What differs, and why:

- **Full text** lives in the table (``townsquare.store.pgschema``): exact words in a GIN-indexed
  ``tsvector`` for matching, a per-language stemmed ``tsvector`` for ranking. So every process
  sees a post the moment its transaction commits: there is no derived index file to catch up,
  which is what lets several API workers share one store.
- **One writer at a time.** ``write_batch``, ``write_enrichment`` and ``write_vectors`` take a
  transaction-level advisory lock first. ``seq`` (the ingest counter that the late stage,
  embeddings and indexes follow behind a watermark) must grow in commit order, or a reader could
  move its watermark past a batch that commits later with a smaller seq and never see it.
  Serializing writers gives that for free; a batch's write is short (the parsing and hashing of
  ``prepare`` run outside the lock, in the caller's process), so writers queue only for the
  inserts themselves. ``bench/scale.py`` measures what this costs.
- **Partitions by year of the Snowflake id** (``pgschema``), created as posts of a new year
  arrive, under the same lock.
- NUL characters, which PostgreSQL text cannot hold, are stored as U+FFFD.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from townsquare.posts import Post
from townsquare.query import parse
from townsquare.settings import redact_url
from townsquare.store import pgschema
from townsquare.store.base import (
    Enrichment,
    Prepared,
    Quarantined,
    Store,
    Stored,
    WriteResult,
    author_key,
)
from townsquare.store.batch import plan_batch, prepare_batch
from townsquare.store.pgtext import tsvector_literal
from townsquare.store.postgres_search import PostgresSearchReads
from townsquare.store.sqlreads import (
    LIST_COLUMNS,
    POST_COLUMNS,
    SharedReads,
    post_from_array_row,
)

WRITE_LOCK = 0x746F776E   # "town": the advisory lock every writer of a store takes
_ALL_COLS = POST_COLUMNS + ("content_hash", "seq", "ingested_at", "words")
_TEXT = POST_COLUMNS.index("text")
_PLACES = ", ".join(["%s"] * (len(_ALL_COLS) - 1) + ["%s::tsvector"])
_INSERT = f"INSERT INTO posts ({', '.join(_ALL_COLS)}) VALUES ({_PLACES})"
_COPY = f"COPY posts ({', '.join(_ALL_COLS)}) FROM STDIN"
_MERGE = ",\n".join(f"{c} = COALESCE(excluded.{c}, posts.{c})"
                    for c in POST_COLUMNS if c not in ("id", "source", "text", "lang", "has_media"))
_UPSERT = f"""{_INSERT}
ON CONFLICT (id) DO UPDATE SET
{_MERGE},
text = excluded.text,
words = excluded.words,
has_media = excluded.has_media OR posts.has_media,
lang = CASE WHEN excluded.lang IS NOT NULL THEN excluded.lang
            WHEN excluded.text IS DISTINCT FROM posts.text THEN NULL ELSE posts.lang END,
dup_of = CASE WHEN excluded.text IS DISTINCT FROM posts.text THEN NULL ELSE posts.dup_of END,
seq = CASE WHEN excluded.text IS DISTINCT FROM posts.text THEN excluded.seq ELSE posts.seq END,
content_hash = excluded.content_hash
"""
_UPSERT_SOURCE = """
INSERT INTO post_sources (post_id, source, file, line, labels, content_hash)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (post_id, source) DO UPDATE SET file = excluded.file, line = excluded.line,
    labels = excluded.labels, content_hash = excluded.content_hash
"""
_UPSERT_QUARANTINE = """
INSERT INTO quarantine (file, line, source, reason, raw, at) VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (file, line) DO UPDATE SET source = excluded.source, reason = excluded.reason,
    raw = excluded.raw
"""


@dataclass(slots=True)
class PgPrepared(Prepared):
    """``Prepared`` plus each record's ``words`` (a ``tsvector`` literal), in record order."""

    words: list[str] = field(default_factory=list)


def _words_of(batch: Prepared) -> dict[int, str]:
    """Record (by identity) -> its words; computed now for a batch prepared by another store."""
    words = getattr(batch, "words", None) or [tsvector_literal(_clean(r[2][_TEXT]))
                                              for r in batch.records]
    return {id(r): w for r, w in zip(batch.records, words)}


def _clean(v: Any) -> Any:
    return v.replace("\x00", "\ufffd") if isinstance(v, str) else v


def _pg_row(row: tuple) -> tuple:
    """An embedded-store row (``batch._row``: lists as JSON) in PostgreSQL's types."""
    out = []
    for c, v in zip(POST_COLUMNS, row):
        if c in LIST_COLUMNS:
            v = [_clean(x) for x in orjson.loads(v)] if v else None
        elif c == "has_media":
            v = bool(v)
        out.append(_clean(v))
    return tuple(out)


class PostgresStore(PostgresSearchReads, SharedReads, Store):
    """The server-mode store. ``url``: a ``postgresql://`` URL (libpq syntax)."""

    indexes_in_store = True

    def __init__(self, url: str, *, connect_timeout_s: int = 10, upgrade: bool = True,
                 create: bool = True):
        """``upgrade``: bring an older schema up to date on open; ``create``: create the schema
        in an empty database (``townsquare migrate`` opens with neither, to report first)."""
        import psycopg    # optional (server mode only): the embedded store must not need it
        self.url = url
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.OperationalError as e:
            raise ConnectionError(f"cannot connect to PostgreSQL at {redact_url(url)}: "
                                  f"{str(e).strip()}") from None
        self._partitions: set[str] = set()
        version = self.schema_version()
        if (version is None and create) or (
                version is not None and upgrade and version < pgschema.SCHEMA_VERSION):
            self.migrate()
        elif version is not None and version > pgschema.SCHEMA_VERSION:
            raise RuntimeError(f"{redact_url(url)}: schema version {version} is newer than this "
                               f"townsquare ({pgschema.SCHEMA_VERSION}); upgrade townsquare")

    # --- schema ----------------------------------------------------------------------------------
    def schema_version(self) -> int | None:
        """The schema version in the database, None when it holds no townsquare store yet."""
        exists = self._db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        v = self._meta("schema_version")
        return int(v) if v is not None else None

    def migrate(self) -> tuple[int | None, int]:
        """Create the schema or upgrade it to this version, in one transaction under the write
        lock (concurrent starters wait, then find it done). Returns (before, after)."""
        db = self._db
        with self._tx():
            self._lock()
            db.execute("CREATE EXTENSION IF NOT EXISTS vector")
            before = self.schema_version()
            for stmt in _statements(pgschema.SCHEMA):
                db.execute(stmt)
            db.execute(pgschema.partition_ddl(None))
            for v in range((before or pgschema.SCHEMA_VERSION) + 1, pgschema.SCHEMA_VERSION + 1):
                for stmt in pgschema.UPGRADES.get(v, []):
                    db.execute(stmt)
            self._set_meta("schema_version", str(pgschema.SCHEMA_VERSION))
        return before, pgschema.SCHEMA_VERSION

    def _ensure_partitions(self, ids: Iterable[int]) -> None:
        """Create the year partitions these ids need (call inside the write lock)."""
        if not self._partitions:
            self._partitions = {r[0] for r in self._db.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'posts'::regclass")}
        for year in sorted({pgschema.year_of_id(i) for i in ids}, key=lambda y: y or 0):
            name = pgschema.partition_name(year)
            if name not in self._partitions:
                self._db.execute(pgschema.partition_ddl(year))
                self._partitions.add(name)

    # --- plumbing --------------------------------------------------------------------------------
    _DAY_SQL = "to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    _REASON_KIND_SQL = "split_part(reason, ':', 1)"

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list:
        return self._db.execute(sql.replace("?", "%s"), args).fetchall()

    def _to_post(self, row: Sequence[Any]) -> Post:
        return post_from_array_row(row)

    def _tx(self):
        return self._db.transaction()

    def _meta(self, key: str) -> str | None:
        r = self._db.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return r[0] if r else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (key, value))

    def _lock(self) -> None:
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))

    def close(self) -> None:
        self._db.close()

    def opener(self) -> Callable[[], "PostgresStore"] | None:
        return functools.partial(PostgresStore, self.url)

    # --- writes ----------------------------------------------------------------------------------
    def prepare(self, posts: Sequence[Stored], quarantined: Sequence[Quarantined]) -> Prepared:
        # The embedded store's records (so the same content hashes: a store copied between
        # backends re-ingests as unchanged), plus each record's words: CPU work done here,
        # before the write lock (and, in the ingest pipeline, in another process).
        b = prepare_batch(posts, quarantined)
        return PgPrepared(b.records, b.quarantined, b.now,
                          [tsvector_literal(_clean(r[2][_TEXT])) for r in b.records])

    def write_prepared(self, batch: Prepared, *, statuses: bool = False) -> WriteResult:
        result = WriteResult(statuses={} if statuses else None)
        ids = sorted({r[0] for r in batch.records})
        with self._tx():
            db = self._db
            self._lock()
            existing = {r[0] for r in db.execute("SELECT id FROM posts WHERE id = ANY(%s)", (ids,))}
            seen = {(pid, src): (h, lb) for pid, src, h, lb in db.execute(
                "SELECT post_id, source, content_hash, labels FROM post_sources "
                "WHERE post_id = ANY(%s)", (ids,))}
            gone = {r[0] for r in db.execute("SELECT id FROM deleted WHERE id = ANY(%s)", (ids,))}
            changed, source_rows, order = plan_batch(batch.records, ids, existing, seen, gone,
                                                     result)
            source_rows = [tuple(_clean(v) for v in r) for r in source_rows]
            next_seq = int(self._meta("next_seq") or 1)
            to_write = []
            words = _words_of(batch)
            for rec in order:
                to_write.append(_pg_row(rec[2]) + (rec[3], next_seq, batch.now, words[id(rec)]))
                next_seq += 1
            if to_write:
                self._ensure_partitions(r[0] for r in to_write)
                with db.cursor() as cur:
                    new = [r for r in to_write if r[0] not in existing]
                    if new:    # COPY: several times faster than row-by-row INSERTs
                        with cur.copy(_COPY) as copy:
                            for r in new:
                                copy.write_row(r)
                    old = [r for r in to_write if r[0] in existing]
                    if old:
                        cur.executemany(_UPSERT, old)
                self._set_meta("next_seq", str(next_seq))
            with db.cursor() as cur:
                if source_rows:
                    cur.executemany(_UPSERT_SOURCE, source_rows)
                if batch.quarantined:
                    cur.executemany(_UPSERT_QUARANTINE,
                                    [tuple(_clean(v) for v in q) for q in batch.quarantined])
                    result.quarantined = len(batch.quarantined)
        return result

    def delete(self, ids: Iterable[int]) -> int:
        ids = sorted(set(int(i) for i in ids))
        now = int(time.time() * 1000)
        with self._tx():
            db = self._db
            self._lock()
            for table, col in (("lsh", "post_id"), ("minhash", "post_id"), ("vectors", "post_id"),
                               ("post_sources", "post_id")):
                db.execute(f"DELETE FROM {table} WHERE {col} = ANY(%s)", (ids,))
            stored = sorted(r[0] for r in db.execute(
                "DELETE FROM posts WHERE id = ANY(%s) RETURNING id", (ids,)))
            existed = len(stored)
            with db.cursor() as cur:
                cur.executemany("INSERT INTO deleted (id, deleted_at) VALUES (%s, %s) "
                                "ON CONFLICT (id) DO NOTHING", [(i, now) for i in ids])
                # The deletions log (see SQLiteStore.delete); its seq grows in commit order
                # because every writer holds the write lock.
                cur.executemany("INSERT INTO deletions (post_id) VALUES (%s)",
                                [(i,) for i in stored])
            # Near-duplicates of a deleted original now point at the earliest survivor.
            for orig in ids:
                first = db.execute("SELECT id FROM posts WHERE dup_of = %s "
                                   "ORDER BY created_at, id LIMIT 1", (orig,)).fetchone()
                if first:
                    db.execute("UPDATE posts SET dup_of = NULL WHERE id = %s", (first[0],))
                    db.execute("UPDATE posts SET dup_of = %s WHERE dup_of = %s", (first[0], orig))
        return existed

    def deletions_since(self, seq: int, limit: int) -> list[tuple[int, int]]:
        return [tuple(r) for r in self._db.execute(
            "SELECT seq, post_id FROM deletions WHERE seq > %s ORDER BY seq LIMIT %s",
            (seq, limit))]

    # Tables whose rows a deletion removes (and the shared stories state, which the leader
    # rewrites without them).
    _VACUUMED = ("posts", "post_sources", "vectors", "minhash", "lsh", "shared_state")

    def compact(self) -> dict[str, Any]:
        """After deletions: VACUUM the tables they touched, so that no table or index page keeps
        a reachable version of a deleted row (the freed space is reused, not zeroed: VACUUM FULL
        would rewrite the files, under a lock that stops every writer, and is left to an
        operator). Without new deletions, nothing."""
        t0 = time.perf_counter()
        through = self._db.execute("SELECT coalesce(max(seq), 0) FROM deletions").fetchone()[0]
        done = int(self._meta("compacted_deletion_seq") or 0)
        deletions = self._db.execute("SELECT count(*) FROM deletions WHERE seq > %s",
                                     (done,)).fetchone()[0]
        if through > done:
            for table in self._VACUUMED:      # autocommit: VACUUM runs outside a transaction
                self._db.execute(f"VACUUM {table}")
            with self._tx():
                self._set_meta("compacted_deletion_seq", str(through))
        return {"deletions": deletions, "vacuumed": list(self._VACUUMED) if through > done else [],
                "seconds": round(time.perf_counter() - t0, 3)}

    # --- reads -----------------------------------------------------------------------------------
    # --- governance ------------------------------------------------------------------------------
    def opt_out(self, authors: Iterable[str]) -> int:
        keys = sorted({author_key(a) for a in authors})
        now = int(time.time() * 1000)
        with self._tx():
            with self._db.cursor() as cur:
                n = 0
                for k in keys:   # DO NOTHING: a second request keeps the first one's time
                    cur.execute("INSERT INTO opt_outs (author, opted_out_at) VALUES (%s, %s) "
                                "ON CONFLICT (author) DO NOTHING", (k, now))
                    n += cur.rowcount
        return n

    def opt_in(self, authors: Iterable[str]) -> int:
        keys = sorted({author_key(a) for a in authors})
        return self._db.execute("DELETE FROM opt_outs WHERE author = ANY(%s)", (keys,)).rowcount

    def lexical_ids(self, match: str, limit: int = 100) -> list[int]:
        """Ids matching ``match`` in the search query language (words, "phrases", OR, -word)."""
        query = parse(match)
        return [pid for pid, _ in self.lexical_search(
            query, limit=limit, order="rank" if self.rankable(query) else "time")]

    def stats_counts(self) -> dict[str, Any]:
        s = SharedReads.stats_counts(self)
        s["partitions"] = sorted(r[0] for r in self._db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'posts'::regclass"))
        return s

    def integrity_check(self) -> list[str]:
        problems = []
        orphans = self._db.execute(
            "SELECT count(*) FROM post_sources s WHERE NOT EXISTS "
            "(SELECT 1 FROM posts p WHERE p.id = s.post_id)").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} provenance rows without a post")
        unsourced = self._db.execute(
            "SELECT count(*) FROM posts p WHERE NOT EXISTS "
            "(SELECT 1 FROM post_sources s WHERE s.post_id = p.id)").fetchone()[0]
        if unsourced:
            problems.append(f"{unsourced} posts without provenance")
        ahead = self._db.execute("SELECT count(*) FROM posts WHERE seq >= %s",
                                 (int(self._meta("next_seq") or 1),)).fetchone()[0]
        if ahead:
            problems.append(f"{ahead} posts with a seq at or past next_seq")
        return problems

    # --- late stage ------------------------------------------------------------------------------
    def bucket_members(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
        if not keys:
            return {}
        out: dict[tuple[int, int], list[int]] = {}
        for band, bucket, pid in self._db.execute(
                "SELECT l.band, l.bucket, l.post_id FROM lsh l JOIN unnest(%s::int[], %s::bigint[]) "
                "AS k(band, bucket) ON l.band = k.band AND l.bucket = k.bucket "
                "ORDER BY l.band, l.bucket, l.post_id",
                ([b for b, _ in keys], [k for _, k in keys])):
            out.setdefault((band, bucket), []).append(pid)
        return out

    def signatures(self, ids: Sequence[int]) -> dict[int, bytes]:
        return {pid: bytes(sig) for pid, sig in self._db.execute(
            "SELECT post_id, sig FROM minhash WHERE post_id = ANY(%s)", (list(ids),))}

    def roots(self, ids: Sequence[int]) -> dict[int, int]:
        return {pid: (dup if dup is not None else pid) for pid, dup in self._db.execute(
            "SELECT id, dup_of FROM posts WHERE id = ANY(%s)", (list(ids),))}

    def write_enrichment(self, e: Enrichment) -> None:
        with self._tx():
            db = self._db
            self._lock()
            with db.cursor() as cur:
                if e.langs:
                    cur.executemany("UPDATE posts SET lang = %s WHERE id = %s AND lang IS NULL",
                                    [(lang, pid) for pid, lang in e.langs.items()])
                if e.signatures:
                    # A post whose text changed has old buckets: drop them before the new ones.
                    cur.execute("DELETE FROM lsh WHERE post_id = ANY(%s)", (list(e.signatures),))
                    cur.executemany("INSERT INTO minhash (post_id, sig) VALUES (%s, %s) ON "
                                    "CONFLICT (post_id) DO UPDATE SET sig = excluded.sig",
                                    list(e.signatures.items()))
                    cur.executemany("INSERT INTO lsh (band, bucket, post_id) VALUES (%s, %s, %s) "
                                    "ON CONFLICT DO NOTHING",
                                    [(b, k, pid) for pid, bks in e.buckets.items()
                                     for b, k in enumerate(bks)])
                if e.links:
                    cur.executemany("UPDATE posts SET dup_of = %s WHERE id = %s AND id <> %s",
                                    [(orig, pid, orig) for pid, orig in e.links.items()])
            if e.watermark > int(self._meta("enriched_seq") or 0):
                self._set_meta("enriched_seq", str(e.watermark))


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (``$$`` bodies kept whole)."""
    out, buf, in_body = [], [], False
    for line in script.splitlines():
        if line.strip().startswith("--") and not in_body:
            continue
        buf.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            out.append("\n".join(buf).strip().rstrip(";"))
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf).strip())
    return out


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


__all__ = ["PostgresStore", "is_postgres_url"]
