"""Embedded store: one SQLite file in WAL mode, with an FTS5 lexical index kept by triggers.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St", source="t").normalized())], [])
    >>> s.lexical_ids("flood")
    [1212092628029698048]

Why this shape:
- ``posts.id`` is the platform id and the table's rowid, so the FTS5 index (external content,
  ``content_rowid='id'``) and every lookup by id use the B-tree key directly.
- The FTS5 index is maintained by ``write_batch``/``delete`` themselves, not by triggers: measured
  on HumAID, inserting through an AFTER INSERT trigger runs at ~38k posts/s against ~139k posts/s
  for the same rows inserted directly (a trigger runs FTS5's insert one row at a time).
- Each ``write_batch`` is one ``BEGIN IMMEDIATE`` transaction: a process killed mid-file leaves
  whole batches or nothing, and the rerun upserts over them (SIGKILL-safe with
  ``synchronous=NORMAL`` in WAL mode; only a power loss can drop the last commits).
- Unchanged records are detected by a content hash before writing, so re-ingesting a file writes
  nothing but the lookups: idempotent and cheap.
- One process writes a home at a time: the store takes the home's writer lock
  (``townsquare.store.lock``, ``HOME/write.lock``) before its first write, and before the late
  stage's first read of pending posts (it links near-duplicates to what it read: another process
  linking at the same time would form chains), and keeps it until ``close``.
- The write-ahead log stays small: ``journal_size_limit`` trims it when it restarts;
  ``checkpoint()`` (the server's indexer calls it every 2 s) truncates it (TRUNCATE) once it is
  over ``wal_limit_bytes`` or no commit touched it for ``WAL_IDLE_S``, and so does ``close()``
  after writing; a connection that flushes at commit (the CLI's) also bounds it after a commit.
  A server's writer never checkpoints in its commits: with it there, a mixed load's ingest p50
  went from 94 ms to 1.9 s (``bench/serve.py``). Without a bound a server under constant reads
  never restarts its log (it grew to 2.35 GB beside a 150 MB database).
- ``seq`` is a per-store ingest counter (kept in ``meta``, never reused after deletes); the late stage
  (language id, near-duplicate linking) processes posts in ``seq`` order behind a watermark, and
  its lag is ``next_seq - watermark``.
"""
from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from townsquare.posts import Post
from townsquare.store.base import (
    Enrichment,
    PendingEnrichment,
    Prepared,
    Quarantined,
    Store,
    Stored,
    WriteResult,
    author_key,
)
from townsquare.store.batch import plan_batch, prepare_batch
from townsquare.store.lock import LOCK_FILE, WAIT_S, WriterLock
from townsquare.store.sqlite_search import SQLiteSearchReads
from townsquare.store.sqlreads import POST_COLUMNS, SharedReads, post_from_json_row
from townsquare.text.shingles import band_buckets

SCHEMA_VERSION = 5
# Upgrades from each older version, applied in order inside the opening transaction (tables that
# are new in a version come from the CREATE ... IF NOT EXISTS statements of the schema).
_UPGRADES = {
    2: ["ALTER TABLE post_sources ADD COLUMN content_hash INTEGER"],
    3: [],   # vectors table
    4: [],   # opt_outs table
    # deletions log: the tombstones so far, for the derived indexes to purge at their next refresh
    5: ["INSERT INTO deletions(post_id) SELECT id FROM deleted ORDER BY deleted_at, id"],
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posts (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,          -- ms since epoch, UTC
    author_id       INTEGER,
    author_handle   TEXT,
    author_name     TEXT,
    text            TEXT NOT NULL,
    lang            TEXT,                      -- NULL until the late stage identified it
    hashtags        TEXT,                      -- JSON arrays, NULL when empty
    mentions        TEXT,
    urls            TEXT,
    cashtags        TEXT,
    has_media       INTEGER NOT NULL DEFAULT 0,
    reply_to_id     INTEGER,
    reply_to_user_id INTEGER,
    repost_of_id    INTEGER,
    quote_of_id     INTEGER,
    conversation_id INTEGER,
    retweet_count   INTEGER,
    like_count      INTEGER,
    reply_count     INTEGER,
    quote_count     INTEGER,
    lon             REAL,
    lat             REAL,
    source          TEXT NOT NULL,             -- the dataset it was first read from
    dup_of          INTEGER,                   -- near-duplicate original; NULL for originals
    content_hash    INTEGER NOT NULL,
    seq             INTEGER NOT NULL,          -- ingest order, for the late stage's watermark
    ingested_at     INTEGER NOT NULL           -- ms since epoch
);
CREATE INDEX IF NOT EXISTS posts_created_at ON posts(created_at);
CREATE INDEX IF NOT EXISTS posts_seq ON posts(seq);
CREATE INDEX IF NOT EXISTS posts_author ON posts(author_id) WHERE author_id IS NOT NULL;
-- An author's posts by handle, newest first (posts_by_author). lower() is SQLite's, ASCII-only:
-- the platform's handles are ASCII. Created by this statement on every open, so stores written
-- before it gain it without an upgrade step (older versions maintain it unchanged).
CREATE INDEX IF NOT EXISTS posts_handle ON posts(lower(author_handle), created_at)
    WHERE author_handle IS NOT NULL;
CREATE INDEX IF NOT EXISTS posts_dup_of ON posts(dup_of) WHERE dup_of IS NOT NULL;
-- The near-duplicates' roots by id (dup_roots: collapsing a ranking). Only members, ~8% of the
-- posts: a small tree whose pages stay in memory, where the posts' own rows are scattered over
-- the whole file (a search's 44 ids: ~0.8 us an id against ~3 at 1.1M posts).
CREATE INDEX IF NOT EXISTS posts_members ON posts(id, dup_of) WHERE dup_of IS NOT NULL;
CREATE TABLE IF NOT EXISTS post_sources (
    post_id INTEGER NOT NULL,
    source  TEXT NOT NULL,
    file    TEXT,
    line    INTEGER,
    labels  TEXT,                              -- the source's own labels (JSON), metadata only
    content_hash INTEGER,                      -- of what this source last gave: re-reads are no-ops
    PRIMARY KEY (post_id, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deleted (id INTEGER PRIMARY KEY, deleted_at INTEGER NOT NULL);
-- The deletions log: each stored post that was deleted, in commit order (seq is its own counter,
-- apart from posts.seq). The derived indexes beside the store (tantivy, the vector index, the
-- stories) purge what is logged after their own watermark in it (``deletions_since``).
CREATE TABLE IF NOT EXISTS deletions (seq INTEGER PRIMARY KEY, post_id INTEGER NOT NULL);
-- Authors who asked that their posts not be trained on: a lowercased handle or a numeric author id
-- (as text). Their posts stay searchable; the training corpus (townsquare.train.corpus) skips them.
CREATE TABLE IF NOT EXISTS opt_outs (author TEXT PRIMARY KEY, opted_out_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    file   TEXT NOT NULL,
    line   INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw    TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (file, line)
);
CREATE TABLE IF NOT EXISTS minhash (post_id INTEGER PRIMARY KEY, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lsh (
    band INTEGER NOT NULL, bucket INTEGER NOT NULL, post_id INTEGER NOT NULL,
    PRIMARY KEY (band, bucket, post_id)
) WITHOUT ROWID;
-- Embeddings, the source of truth for the vector index (a derived file rebuilt from this table).
-- seq is the post's seq when it was embedded: the index catches up on seq > its watermark.
CREATE TABLE IF NOT EXISTS vectors (post_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
                                    vec BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS vectors_seq ON vectors(seq);
CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(
    text, content='posts', content_rowid='id', tokenize="unicode61 remove_diacritics 2"
);
"""

#: The write-ahead log's size that makes a commit checkpoint it (TRUNCATE), and the size SQLite
#: trims it to when it restarts (``journal_size_limit``).
WAL_LIMIT_BYTES = 64 << 20
#: No commit for this long: ``checkpoint()`` truncates the log instead of only copying it back.
WAL_IDLE_S = 1.0
#: Bytes of the database file read through memory-mapped I/O (``PRAGMA mmap_size``; SQLite caps
#: it at its build's limit, 2 GiB here). Reads of scattered rows by id then copy no page into
#: SQLite's cache through a system call each: ``filter_rank_fields`` on 1,000 semantic
#: neighbours at 1.1M posts took 4.5 -> 2.1 ms p50 (the bench store, 2 cores). Writes still go
#: through ``write()`` (SQLite's default), so a stray write cannot reach the file through the map.
MMAP_BYTES = 2 << 30
# How long a truncating checkpoint waits for readers to leave the log before it gives up (and
# is tried again later): short, because it holds up the writer meanwhile.
_CHECKPOINT_WAIT_MS = 250

_ALL_COLS = POST_COLUMNS + ("content_hash", "seq", "ingested_at")
_TEXT = POST_COLUMNS.index("text")


# On conflict, a field the new record lacks (NULL) never erases what the store knows: two datasets
# holding the same post (one with authors, one with labels) merge instead of overwriting.
_MERGE = ",\n".join(
    f"{c} = COALESCE(excluded.{c}, posts.{c})"
    for c in POST_COLUMNS if c not in ("id", "source", "text", "lang", "has_media")
)
_INSERT = f"INSERT INTO posts ({', '.join(_ALL_COLS)}) VALUES ({', '.join('?' * len(_ALL_COLS))})"
_UPSERT = f"""
INSERT INTO posts ({", ".join(_ALL_COLS)}) VALUES ({", ".join("?" * len(_ALL_COLS))})
ON CONFLICT(id) DO UPDATE SET
{_MERGE},
text = excluded.text,
has_media = MAX(excluded.has_media, posts.has_media),
-- new text must go through the late stage again: new seq, language and near-duplicate link
lang = CASE WHEN excluded.lang IS NOT NULL THEN excluded.lang
            WHEN excluded.text IS NOT posts.text THEN NULL ELSE posts.lang END,
dup_of = CASE WHEN excluded.text IS NOT posts.text THEN NULL ELSE posts.dup_of END,
seq = CASE WHEN excluded.text IS NOT posts.text THEN excluded.seq ELSE posts.seq END,
content_hash = excluded.content_hash
"""
_UPSERT_SOURCE = """
INSERT INTO post_sources (post_id, source, file, line, labels, content_hash) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(post_id, source) DO UPDATE SET file = excluded.file, line = excluded.line,
    labels = excluded.labels, content_hash = excluded.content_hash
"""
_UPSERT_QUARANTINE = """
INSERT INTO quarantine (file, line, source, reason, raw, at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(file, line) DO UPDATE SET source = excluded.source, reason = excluded.reason,
    raw = excluded.raw
"""
_FTS_INSERT = "INSERT INTO posts_fts(rowid, text) VALUES (?, ?)"
_FTS_DELETE = "INSERT INTO posts_fts(posts_fts, rowid, text) VALUES ('delete', ?, ?)"
_CHUNK = 900  # stay under SQLite's default limit of 999 host parameters per statement


def _chunks(seq: Sequence, n: int = _CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


class SQLiteStore(SQLiteSearchReads, SharedReads, Store):
    """The embedded default store. ``path`` is a file, or ``":memory:"`` for tests.

    ``lock_wait_s``: how long the first write waits for another process's writer lock;
    ``wal_limit_bytes``: the write-ahead log's bound; ``lock_parent``: the PID of the process that
    holds the writer lock and hands this store its writes (``opener``: ingest's writer process);
    ``mmap_bytes``: how much of the file is read through a memory map (0: none).
    """

    def __init__(self, path: str | Path, *, timeout_s: float = 30.0, lock_wait_s: float = WAIT_S,
                 wal_limit_bytes: int = WAL_LIMIT_BYTES, lock_parent: int | None = None,
                 mmap_bytes: int = MMAP_BYTES):
        if mmap_bytes < 0:
            raise ValueError(f"mmap_bytes must be >= 0, got {mmap_bytes}")
        self.path = str(path)
        self._busy_ms = int(timeout_s * 1000)
        self.lock_wait_s = lock_wait_s
        self.wal_limit_bytes = wal_limit_bytes
        self._wal_retry_at = wal_limit_bytes   # log size that tries a truncation again
        self._autocheckpoint = True            # commits flush the log (``set_autocheckpoint``)
        self._lock: WriterLock | None = None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(Path(self.path).parent / LOCK_FILE, parent=lock_parent)
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None,
                                   check_same_thread=False)
        # 16 KiB pages (set before anything is written; a no-op on an existing file): measured on
        # the shared datasets, ingest ran ~7% faster than with the 4 KiB default (fewer B-tree
        # and FTS5 segment pages per batch), with no change to a point read's cost in practice.
        self._db.execute("PRAGMA page_size=16384")
        # Two processes that create one file at once (two ``ingest`` runs on a new home) both
        # read it as a rollback-journal file and both need its lock to write the WAL header:
        # SQLite answers one "database is locked" at once instead of calling the busy handler
        # (that would deadlock them; 3 of 15 simultaneous pairs failed so). The other one is
        # done within milliseconds: try again, within the busy timeout.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        self._db.execute(f"PRAGMA journal_size_limit={wal_limit_bytes}")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        if self.path != ":memory:":
            self._db.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
        self._db.execute("PRAGMA foreign_keys=OFF")
        # Zero deleted rows and freed pages as they go, so that a deletion reaches the file's
        # bytes (FTS5 merges free the pages of old b-trees: those held the deleted words).
        self._db.execute("PRAGMA secure_delete=ON")
        # The schema is idempotent and one transaction: no writer lock for it (readers open too).
        with SQLiteStore._Tx(self._db):
            self._exec_script(_SCHEMA)
            version = self._meta("schema_version")
            if version is None:
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                # Merge FTS segments 16 at a time instead of 4: +18% insert rate, same queries.
                self._db.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('automerge', 16)")
            elif int(version) < SCHEMA_VERSION:
                for v in range(int(version) + 1, SCHEMA_VERSION + 1):
                    for sql in _UPGRADES.get(v, []):
                        self._db.execute(sql)
                self._set_meta("schema_version", str(SCHEMA_VERSION))
            elif int(version) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: schema version {version} is newer than this townsquare "
                    f"({SCHEMA_VERSION}); upgrade townsquare")

    # --- plumbing --------------------------------------------------------------------------------
    _DAY_SQL = "strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')"
    _REASON_KIND_SQL = ("CASE WHEN instr(reason, ':') > 0 THEN substr(reason, 1, "
                        "instr(reason, ':') - 1) ELSE reason END")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list:
        return self._db.execute(sql, args).fetchall()

    def _to_post(self, row: Sequence[Any]) -> Post:
        return post_from_json_row(row)

    def _exec_script(self, script: str) -> None:
        # executescript() would COMMIT our transaction; run statement by statement instead.
        buf = ""
        for line in script.splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                self._db.execute(buf)
                buf = ""

    class _Tx:
        def __init__(self, db: sqlite3.Connection, after_commit: Callable[[], None] | None = None):
            self.db = db
            self.after_commit = after_commit

        def __enter__(self):
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, *_):
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            if not exc_type and self.after_commit is not None:
                self.after_commit()

    def _tx(self) -> "_Tx":
        """A write transaction, under the home's writer lock. A connection that flushes its log
        at commit (the CLI's) also bounds it there; a server's writer never does (its commits
        must stay short: a TRUNCATE checkpoint copies the whole log and waits for readers), and
        its indexer's ``checkpoint`` timer bounds the log instead."""
        self.hold_writer_lock()
        return SQLiteStore._Tx(self._db, self._bound_wal if self._autocheckpoint else None)

    def hold_writer_lock(self) -> None:
        """Take the home's writer lock now (a no-op when held, or in memory); it is kept until
        ``close``. Writes take it by themselves: call this to wait for it before other work."""
        if self._lock is not None:
            self._lock.acquire(self.lock_wait_s)

    def _meta(self, key: str) -> str | None:
        r = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def close(self) -> None:
        """Close the connection; after writing, truncate the log first (and let go of the writer
        lock after it)."""
        try:
            if self._lock is not None and self._lock.held:
                self.truncate_wal()
            self._db.close()
        except sqlite3.ProgrammingError:
            pass
        finally:
            if self._lock is not None:
                self._lock.release()

    def set_autocheckpoint(self, enabled: bool) -> None:
        self._db.execute(f"PRAGMA wal_autocheckpoint={1000 if enabled else 0}")
        self._autocheckpoint = enabled

    def checkpoint(self) -> None:
        """Copy the log back into the database (PASSIVE: never waits); truncate it instead
        (``truncate_wal``) when no commit touched it for ``WAL_IDLE_S`` or it passed its limit."""
        size, mtime = self._wal_stat()
        if size and (size > self.wal_limit_bytes or time.time() - mtime >= WAL_IDLE_S):
            self.truncate_wal()
        else:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def wal_bytes(self) -> int:
        """The write-ahead log's file size now (0 when there is none)."""
        return self._wal_stat()[0]

    def truncate_wal(self) -> bool:
        """Checkpoint the whole log and truncate its file to zero bytes (TRUNCATE); waits up to
        ``_CHECKPOINT_WAIT_MS`` for readers still in the log, holding up writers meanwhile.
        Returns whether it completed (False: readers kept it busy; a later call tries again)."""
        if self.path == ":memory:":
            return True
        deadline = time.monotonic() + _CHECKPOINT_WAIT_MS / 1000
        self._db.execute(f"PRAGMA busy_timeout={_CHECKPOINT_WAIT_MS}")
        try:
            while True:
                try:
                    busy, frames, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                except sqlite3.OperationalError:      # "database is locked": a writer's turn
                    busy, frames = 1, 0
                # frames == -1: another connection's checkpoint (the server's PASSIVE one) ran;
                # SQLite does not wait for that one: try again shortly, within the same budget.
                if not busy or frames != -1 or time.monotonic() >= deadline:
                    return not busy
                time.sleep(0.005)
        finally:
            self._db.execute(f"PRAGMA busy_timeout={self._busy_ms}")

    def _wal_stat(self) -> tuple[int, float]:
        try:
            st = os.stat(self.path + "-wal")
        except OSError:
            return 0, 0.0
        return st.st_size, st.st_mtime

    def _bound_wal(self) -> None:
        """After a commit: a log past its limit is truncated now, even under load (readers that
        never all leave at once would keep SQLite from ever restarting it). After a failed try,
        the next one waits until the log grew by another quarter of the limit."""
        size = self._wal_stat()[0]
        if size <= self._wal_retry_at:
            return
        if self.truncate_wal():
            self._wal_retry_at = self.wal_limit_bytes
        else:
            self._wal_retry_at = size + self.wal_limit_bytes // 4

    # --- writes ----------------------------------------------------------------------------------
    def opener(self) -> Callable[[], "SQLiteStore"] | None:
        if self.path == ":memory:":
            return None
        # The other process writes under this one's writer lock (taken by ``prepare``), when it
        # is this process's child.
        return functools.partial(SQLiteStore, self.path, lock_parent=os.getpid())

    def prepare(self, posts: Sequence[Stored], quarantined: Sequence[Quarantined]) -> Prepared:
        # Rows are prepared to be written, here or by a writer child (``opener``): take the
        # writer lock first, so that a wait for another process happens (and shows) here.
        self.hold_writer_lock()
        return prepare_batch(posts, quarantined)

    def write_prepared(self, batch: Prepared, *, statuses: bool = False) -> WriteResult:
        result = WriteResult(statuses={} if statuses else None)
        # Ascending ids: FTS5 flushes its in-memory segment whenever a rowid is lower than the last
        # one in the transaction, so unsorted batches index ~3x slower (and B-tree pages split less).
        ids = sorted({r[0] for r in batch.records})
        with self._tx() as db:
            existing: set[int] = set()
            seen: dict[tuple[int, str], tuple[int, str | None]] = {}  # (id, source) -> (hash, labels)
            gone: set[int] = set()
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                existing.update(r[0] for r in db.execute(
                    f"SELECT id FROM posts WHERE id IN ({marks})", chunk))
                seen.update(((pid, src), (h, lb)) for pid, src, h, lb in
                            db.execute(f"SELECT post_id, source, content_hash, labels FROM "
                                       f"post_sources WHERE post_id IN ({marks})", chunk))
                gone.update(r[0] for r in db.execute(
                    f"SELECT id FROM deleted WHERE id IN ({marks})", chunk))
            changed, source_rows, order = plan_batch(batch.records, ids, existing, seen, gone,
                                                     result)
            next_seq = int(self._meta("next_seq") or 1)
            to_write = []
            for rec in order:
                to_write.append(rec[2] + (rec[3], next_seq, batch.now))
                next_seq += 1
            old_text: dict[int, str] = {}
            rewritten = [r[0] for r in to_write if r[0] in existing]
            for chunk in _chunks(rewritten):
                old_text.update(db.execute(
                    f"SELECT id, text FROM posts WHERE id IN ({','.join('?' * len(chunk))})", chunk))
            if to_write:
                # New posts take a plain INSERT (no conflict clause to evaluate); known ones upsert.
                db.executemany(_INSERT, [r for r in to_write if r[0] not in existing])
                if existing:
                    db.executemany(_UPSERT, [r for r in to_write if r[0] in existing])
                self._set_meta("next_seq", str(next_seq))
                # FTS: remove the old text of changed posts, index the new text.
                db.executemany(_FTS_DELETE, [(pid, t) for pid, t in old_text.items()
                                             if t != changed[pid][2][_TEXT]])
                db.executemany(_FTS_INSERT, [(r[0], r[_TEXT]) for r in to_write
                                             if old_text.get(r[0]) != r[_TEXT]])
            if source_rows:
                db.executemany(_UPSERT_SOURCE, source_rows)
            if batch.quarantined:
                db.executemany(_UPSERT_QUARANTINE, batch.quarantined)
                result.quarantined = len(batch.quarantined)
        return result

    def delete(self, ids: Iterable[int]) -> int:
        ids = sorted(set(int(i) for i in ids))
        now = int(time.time() * 1000)
        existed = 0
        with self._tx() as db:
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                # Remove LSH buckets precisely: they are recomputed from the stored signatures.
                for pid, sig in db.execute(
                        f"SELECT post_id, sig FROM minhash WHERE post_id IN ({marks})", chunk).fetchall():
                    db.executemany("DELETE FROM lsh WHERE band = ? AND bucket = ? AND post_id = ?",
                                   [(b, k, pid) for b, k in enumerate(band_buckets(sig))])
                stored = db.execute(
                    f"SELECT id, text FROM posts WHERE id IN ({marks})", chunk).fetchall()
                db.executemany(_FTS_DELETE, stored)
                db.execute(f"DELETE FROM minhash WHERE post_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM vectors WHERE post_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM post_sources WHERE post_id IN ({marks})", chunk)
                existed += db.execute(f"DELETE FROM posts WHERE id IN ({marks})", chunk).rowcount
                db.executemany("INSERT OR IGNORE INTO deleted(id, deleted_at) VALUES (?, ?)",
                               [(i, now) for i in chunk])
                # Only stored posts are logged: a tombstone ahead of its post has nothing to purge.
                db.executemany("INSERT INTO deletions(post_id) VALUES (?)",
                               [(pid,) for pid, _text in stored])
                # Near-duplicates of a deleted original now point at the earliest survivor.
                for orig in chunk:
                    members = [r[0] for r in db.execute(
                        "SELECT id FROM posts WHERE dup_of = ? ORDER BY created_at, id", (orig,))]
                    if members:
                        db.execute("UPDATE posts SET dup_of = NULL WHERE id = ?", (members[0],))
                        db.execute("UPDATE posts SET dup_of = ? WHERE dup_of = ?", (members[0], orig))
        return existed

    def deletions_since(self, seq: int, limit: int) -> list[tuple[int, int]]:
        return [tuple(r) for r in self._db.execute(
            "SELECT seq, post_id FROM deletions WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))]

    # --- maintenance -------------------------------------------------------------------------------
    _MERGE_PAGES = 256   # FTS5 pages written per merge step: each step is one short transaction

    def compact(self) -> dict[str, Any]:
        """Merge the FTS5 index into one b-tree when posts were deleted since the last compaction
        (FTS5 deletes by adding delete markers: the deleted post's tokens stay in older b-trees
        until a merge meets them), then checkpoint the write-ahead log and truncate it (it holds
        old page images). Freed pages and cells are zeroed as they go (``secure_delete``).

        The merge runs ``_MERGE_PAGES`` pages at a time, one transaction each, so a server's
        writer interleaves with it: the first step merges every b-tree (a negative page count),
        the next ones finish that merge, until a step changes nothing (FTS5's own recipe for an
        incremental ``optimize``). Takes the home's writer lock first: the maintenance step
        rewrites the files beside the store under it too (``services.maintenance``)."""
        t0 = time.perf_counter()
        self.hold_writer_lock()
        through = self._db.execute("SELECT coalesce(max(seq), 0) FROM deletions").fetchone()[0]
        done = int(self._meta("compacted_deletion_seq") or 0)
        deletions = self._db.execute("SELECT count(*) FROM deletions WHERE seq > ?",
                                     (done,)).fetchone()[0]
        steps = 0
        if through > done:
            pages = -self._MERGE_PAGES
            while True:
                before = self._db.total_changes
                with self._tx() as db:
                    db.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('merge', ?)",
                               (pages,))
                steps += 1
                if self._db.total_changes - before < 2:
                    break
                pages = self._MERGE_PAGES
            with self._tx():
                self._set_meta("compacted_deletion_seq", str(through))
        wal = self.wal_bytes()
        return {"deletions": deletions, "fts_merge_steps": steps, "wal_bytes": wal,
                "wal_truncated": self.truncate_wal(),
                "seconds": round(time.perf_counter() - t0, 3)}

    # --- reads -----------------------------------------------------------------------------------
    # --- governance --------------------------------------------------------------------------------
    def opt_out(self, authors: Iterable[str]) -> int:
        keys = sorted({author_key(a) for a in authors})   # all validated before anything is written
        now = int(time.time() * 1000)
        with self._tx() as db:
            before = db.execute("SELECT count(*) FROM opt_outs").fetchone()[0]
            # OR IGNORE: an author opted out twice keeps the time of the first request.
            db.executemany("INSERT OR IGNORE INTO opt_outs(author, opted_out_at) VALUES (?, ?)",
                           [(k, now) for k in keys])
            return db.execute("SELECT count(*) FROM opt_outs").fetchone()[0] - before

    def opt_in(self, authors: Iterable[str]) -> int:
        keys = sorted({author_key(a) for a in authors})
        removed = 0
        with self._tx() as db:
            for chunk in _chunks(keys):
                removed += db.execute(f"DELETE FROM opt_outs WHERE author IN "
                                      f"({','.join('?' * len(chunk))})", chunk).rowcount
        return removed

    def lexical_ids(self, match: str, limit: int = 100) -> list[int]:
        return [r[0] for r in self._db.execute(
            "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rank LIMIT ?",
            (match, limit))]

    def integrity_check(self) -> list[str]:
        problems = [r[0] for r in self._db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        try:
            self._db.execute("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as e:
            problems.append(f"fts index: {e}")
        orphans = self._db.execute(
            "SELECT count(*) FROM post_sources s LEFT JOIN posts p ON p.id = s.post_id "
            "WHERE p.id IS NULL").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} provenance rows without a post")
        unsourced = self._db.execute(
            "SELECT count(*) FROM posts p WHERE NOT EXISTS "
            "(SELECT 1 FROM post_sources s WHERE s.post_id = p.id)").fetchone()[0]
        if unsourced:
            problems.append(f"{unsourced} posts without provenance")
        return problems

    # --- late stage --------------------------------------------------------------------------------
    def pending_enrichment(self, limit: int) -> list[PendingEnrichment]:
        # The late stage links each pending post to the original of what it resembles, as it read
        # them: under the writer lock from this read on, no other process relinks them meanwhile.
        self.hold_writer_lock()
        return super().pending_enrichment(limit)

    def bucket_members(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], list[int]]:
        out: dict[tuple[int, int], list[int]] = {}
        for band, bucket in keys:
            ids = [r[0] for r in self._db.execute(
                "SELECT post_id FROM lsh WHERE band = ? AND bucket = ? ORDER BY post_id",
                (band, bucket))]
            if ids:
                out[(band, bucket)] = ids
        return out

    def signatures(self, ids: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk in _chunks(list(ids)):
            out.update(self._db.execute(
                f"SELECT post_id, sig FROM minhash WHERE post_id IN ({','.join('?' * len(chunk))})",
                chunk))
        return out

    def roots(self, ids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(list(ids)):
            for pid, dup in self._db.execute(
                    f"SELECT id, dup_of FROM posts WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                out[pid] = dup if dup is not None else pid
        return out

    def write_enrichment(self, e: Enrichment) -> None:
        with self._tx() as db:
            if e.langs:
                db.executemany("UPDATE posts SET lang = ? WHERE id = ? AND lang IS NULL",
                               [(lang, pid) for pid, lang in e.langs.items()])
            if e.signatures:
                # A post whose text changed has old buckets: drop them before adding the new ones.
                old = self.signatures(list(e.signatures))
                db.executemany("DELETE FROM lsh WHERE band = ? AND bucket = ? AND post_id = ?",
                               [(b, k, pid) for pid, sig in old.items()
                                for b, k in enumerate(band_buckets(sig))])
                db.executemany("INSERT OR REPLACE INTO minhash(post_id, sig) VALUES (?, ?)",
                               list(e.signatures.items()))
                db.executemany("INSERT OR IGNORE INTO lsh(band, bucket, post_id) VALUES (?, ?, ?)",
                               [(b, k, pid) for pid, bks in e.buckets.items()
                                for b, k in enumerate(bks)])
            if e.links:
                db.executemany("UPDATE posts SET dup_of = ? WHERE id = ? AND id != ?",
                               [(orig, pid, orig) for pid, orig in e.links.items()])
            current = int(self._meta("enriched_seq") or 0)
            if e.watermark > current:
                self._set_meta("enriched_seq", str(e.watermark))
