"""The single writer: group commit loses nothing and reports each request's own statuses; its
write-ahead log is truncated when idle and bounded under load."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from tests.api.conftest import runtime_settings
from townsquare.api.runtime import Runtime
from townsquare.api.writequeue import WriteQueue
from townsquare.posts import Post
from townsquare.settings import DB_FILE
from townsquare.store import open_store
from townsquare.store.base import Quarantined, Stored
from townsquare.store.sqlite import SQLiteStore

BASE = 1_212_092_628_029_698_048


def _posts(start: int, n: int) -> list[Stored]:
    return [Stored(Post(id=BASE + i, text=f"post {i}", source="api").normalized())
            for i in range(start, start + n)]


def test_concurrent_writers_lose_nothing_and_get_their_own_statuses(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"), max_group=1000)
    results = {}

    def client(k: int):
        futs = [q.write(_posts(k * 1000 + j * 50, 50)) for j in range(20)]
        results[k] = [f.result(timeout=60) for f in futs]
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, rs in results.items():
        assert all(r.inserted == 50 and len(r.statuses) == 50 for r in rs)
        assert all(BASE + k * 1000 <= pid < BASE + (k + 1) * 1000
                   for r in rs for pid in r.statuses)
    assert q.transactions < 80                    # requests were grouped
    q.close()
    with open_store(tmp_path / "t.db") as s:
        assert s.count() == 4000


def test_statuses_updated_unchanged_deleted_and_quarantine(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"))
    assert q.write(_posts(0, 2)).result().inserted == 2
    assert q.delete([BASE]).result() == 1
    changed = [Stored(Post(id=BASE + 1, text="post 1, edited", source="api").normalized())]
    r = q.write(_posts(0, 1) + changed,
                [Quarantined("api", "POST /v1/posts", 3, "id: missing")]).result()
    assert r.statuses == {BASE: "deleted", BASE + 1: "updated"}
    assert (r.skipped_deleted, r.updated, r.quarantined) == (1, 1, 1)
    assert q.call(lambda s: s.count()).result() == 1
    q.close()


def test_a_failed_transaction_fails_its_requests_only(tmp_path):
    q = WriteQueue(open_store(tmp_path / "t.db"))
    boom = q.call(lambda s: 1 / 0)
    ok = q.write(_posts(0, 3))
    try:
        boom.result()
        raise AssertionError("expected ZeroDivisionError")
    except ZeroDivisionError:
        pass
    assert ok.result().inserted == 3
    q.close()


# --- the write-ahead log ------------------------------------------------------------------------
def _wal(db: Path) -> int:
    """The size of the store's write-ahead log file (0 when there is none)."""
    try:
        return Path(f"{db}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def _until_truncated(db: Path, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    while _wal(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _wal(db)


def test_the_log_is_truncated_once_the_writer_is_idle(tmp_path):
    db = tmp_path / "t.db"
    store = open_store(db)
    store.set_autocheckpoint(False)              # as the server's writer: commits never flush
    q = WriteQueue(store)
    try:
        for j in range(150):                     # many small requests, no pause between them
            q.write(_posts(j * 20, 20)).result()
        assert _wal(db) > 1 << 20                # the log grew meanwhile
        assert _until_truncated(db, within_s=10) == 0      # ~1 s after the last write
    finally:
        q.close()
    with open_store(db) as s:
        assert s.count() == 3000


def test_a_running_server_truncates_its_log_when_idle(tmp_path):
    """A real ``Runtime`` (indexer and background threads reading meanwhile); before the fix its
    log stayed at its largest size (~29 MB after these writes) through idle time and close."""
    rt = Runtime(runtime_settings(tmp_path), embed=False)
    db = tmp_path / DB_FILE
    try:
        for j in range(150):
            rt.writer.write([Stored(Post(id=BASE + j * 20 + k, source="api",
                                         text=f"harbor crane report {j} {k} " * 8).normalized())
                             for k in range(20)]).result()
        assert _wal(db) > 1 << 20
        assert _until_truncated(db, within_s=20) == 0      # still serving
    finally:
        rt.close()
    assert _wal(db) == 0


def test_the_log_stays_bounded_while_readers_never_stop(tmp_path):
    """Readers that overlap keep SQLite from ever restarting the log (some transaction always
    reads it), and PASSIVE checkpoints cannot shrink it: without a bound it grows with every
    commit (~120 MB here). The writer never checkpoints (its commits stay short); the indexer's
    connection truncates the log once it passes the limit, whenever the readers let it.

    The indexer's checkpoint runs every 5 commits here, not on a timer: with a timer, how much
    the log grows between two tries depends on how fast this machine commits meanwhile (a
    timer-paced run once peaked at 82 MB on a loaded CI machine, 8-28 MB elsewhere). Paced by
    commits, the growth between tries is fixed (5 commits, ~0.5 MB). Measured: 80 of 80 tries
    truncated, peak 2-3 MB; with both cores busy and the disk syncing, 73-75 of 81-82 (a reader
    the machine stalls past the checkpoint's wait fails a try; the next one succeeds), peak 3.4 MB."""
    db = tmp_path / "t.db"
    store = SQLiteStore(db, wal_limit_bytes=1 << 20)
    store.set_autocheckpoint(False)
    q = WriteQueue(store)
    checkpointer = SQLiteStore(db, wal_limit_bytes=1 << 20)   # the indexer's, same limit
    stop = threading.Event()
    peak, truncated, tries = 0, 0, 0

    def read(offset: float) -> None:             # 30 ms read transactions, staggered by 10 ms
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        time.sleep(offset)
        while not stop.is_set():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM posts").fetchone()
            time.sleep(0.03)
            conn.execute("COMMIT")
        conn.close()
    threads = [threading.Thread(target=read, args=(k * 0.01,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.05)                          # every reader inside its loop
        for j in range(600):
            q.write([Stored(Post(id=BASE + j * 20 + k, source="api",
                                 text=f"ferry aground near the pier {j} {k} " * 6).normalized())
                     for k in range(20)]).result()
            if j % 5 == 4:
                size = _wal(db)
                peak = max(peak, size)
                if size > 1 << 20:
                    tries += 1
                    checkpointer.checkpoint()
                    truncated += _wal(db) == 0
    finally:
        stop.set()
        for t in threads:
            t.join()
        q.close()
        checkpointer.close()
    # the log passed its limit again and again, and most tries truncated it, readers or not
    assert tries >= 20 and truncated >= tries // 2
    assert 0 < peak <= 8 << 20
