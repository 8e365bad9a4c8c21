"""One writer at a time on an embedded home (``store.lock``): two ``ingest`` runs at once, a CLI
ingest beside a server, two servers, a writer that waits, gives up, or outlives a killed holder,
and the stores and threads of one process sharing the lock.

Every post here is invented (numbered variants of made-up event reports): tests never carry real
tweet text.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.api.conftest import runtime_settings
from townsquare.api.runtime import Runtime
from townsquare.posts import Post
from townsquare.settings import DB_FILE
from townsquare.store.base import Stored
from townsquare.store.lock import LOCK_FILE, WriterLock, WriterLockTimeout, holder
from townsquare.store.sqlite import SQLiteStore

BASE = 1_600_000_000_000_000_000
# Ten made-up events; each post is one of them plus its own number, so every post of an event is
# a near-duplicate of every other (estimated Jaccard ~0.9 over word 3-shingles).
EVENTS = ["townwatch crane toppled onto the pier at Brackwater harbor, cargo crews cleared it",
          "townwatch ferry Marisol lost power outside Kettle Bay, tugboats on their way to assist",
          "townwatch water main burst under Ostrow Avenue, shops flooded and the tram line halted",
          "townwatch wildfire crossed the ridge road above Pellham, residents told to leave now",
          "townwatch power cut across the Dunmore district after a substation fire this evening",
          "townwatch bridge on the Varn river closed after inspectors found a crack in the deck",
          "townwatch gas leak near Lindqvist school, pupils moved to the sports hall for safety",
          "townwatch landslide blocked the mountain railway between Ossel and Brenn this morning",
          "townwatch hailstorm smashed greenhouse roofs across the Tarrow valley farms overnight",
          "townwatch chemical spill on the ring road near Halden, drivers told to shut windows"]
PY = sys.executable
# A process that holds the writer lock of the file in argv[1] until its stdin closes (or it is
# killed): another writer of the home, as the kernel sees it.
HOLDER = """
import sys
from townsquare.store.lock import WriterLock
lock = WriterLock(sys.argv[1], what="test holder", session=sys.argv[2] == "session")
lock.acquire(0)
print("held", flush=True)
sys.stdin.read()
lock.release()
"""


def _stored(i: int, text: str) -> Stored:
    return Stored(Post(id=BASE + i, text=text, source="t",
                       created_at=1_700_000_000_000 + i * 1000).normalized())


def _hold(path: Path, *, session: bool = False) -> subprocess.Popen:
    """Start a holder process; returns once it holds the lock."""
    p = subprocess.Popen([PY, "-c", HOLDER, str(path), "session" if session else "batch"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def _let_go(p: subprocess.Popen) -> None:
    p.stdin.close()
    p.wait(timeout=30)


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "400", "PYTHONUNBUFFERED": "1"}


def _tweets(path: Path, parity: int, n: int) -> None:
    """``n`` invented v2 tweets as JSON Lines: posts 2k + parity of the 2n numbered ones, so the
    two files interleave in time and every event has near-duplicates in both. No ``lang``: the
    late stage identifies each post's language, which takes a while (two runs overlap in it)."""
    with open(path, "w") as f:
        for i in range(n):
            k = 2 * i + parity
            f.write(json.dumps({
                "id": str(BASE + k), "text": f"{EVENTS[k % len(EVENTS)]} update {k}",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                            time.gmtime(1_700_000_000 + k)),
                "author_id": str(100 + k)}) + "\n")


# --- two writers at once --------------------------------------------------------------------------
def test_two_ingest_runs_at_once_leave_no_near_duplicate_chain(tmp_path):
    """Without the lock both late stages read the same pending posts and link them to what they
    saw: chains (a post whose root is itself linked elsewhere; 2,000 of 2,000 posts here) and
    repeated stories in search, or a run failing in the tantivy refresh."""
    home = tmp_path / "home"
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _tweets(a, 0, 1000)
    _tweets(b, 1, 1000)
    runs = [subprocess.Popen([PY, "-m", "townsquare", "ingest", str(f), "--home", str(home),
                              "--json", "--writer", writer],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
            for f, writer in ((a, "process"), (b, "inline"))]
    outs = [p.communicate(timeout=240) for p in runs]
    for p, (out, err) in zip(runs, outs):
        assert p.returncode == 0, err[-3000:]
        assert json.loads(out)["inserted"] == 1000
    db = sqlite3.connect(home / DB_FILE)
    try:
        assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 2000
        chains = db.execute("SELECT count(*) FROM posts p JOIN posts r ON p.dup_of = r.id "
                            "WHERE r.dup_of IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    assert chains == 0
    found = subprocess.run([PY, "-m", "townsquare", "search", "townwatch", "--mode", "latest",
                            "--limit", "50", "--json", "--home", str(home)],
                           capture_output=True, text=True, timeout=120, check=True, env=_env())
    events = [next(e for e, t in enumerate(EVENTS) if h["text"].startswith(t))
              for h in json.loads(found.stdout)["results"]]
    assert sorted(events) == list(range(len(EVENTS)))     # each story once


def test_a_cli_ingest_beside_a_server_is_refused_at_once_names_it_and_stores_nothing(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "posts.jsonl"
    _tweets(data, 0, 5)
    rt = Runtime(runtime_settings(home), embed=False, start=False)
    try:
        t0 = time.monotonic()
        run = subprocess.run([PY, "-m", "townsquare", "ingest", str(data), "--home", str(home),
                              "--json"], capture_output=True, text=True, timeout=120, env=_env())
        elapsed = time.monotonic() - t0
        assert run.returncode != 0
        assert elapsed < 60         # no wait for a server: it keeps the lock until it stops
        assert f"PID {os.getpid()}" in run.stderr
        assert rt.writer.call(lambda s: s.count()).result() == 0
        assert holder(home / LOCK_FILE)["pid"] == os.getpid()
    finally:
        rt.close()
    assert holder(home / LOCK_FILE) is None              # released on close


def test_a_cli_ingest_on_a_held_home_is_a_one_line_error_with_exit_2(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "posts.jsonl"
    _tweets(data, 0, 5)
    holding = _hold(home / LOCK_FILE, session=True)
    try:
        run = subprocess.run([PY, "-m", "townsquare", "ingest", str(data), "--home", str(home)],
                             capture_output=True, text=True, timeout=120, env=_env())
    finally:
        _let_go(holding)
    assert (run.returncode, len(run.stderr.strip().splitlines())) == (2, 1), run.stderr[-2000:]
    assert f"PID {holding.pid}" in run.stderr


SERVER = """
import sys
from pathlib import Path
from townsquare.api.runtime import Runtime
from townsquare.settings import LLMSettings, Settings
settings = Settings(home=Path(sys.argv[1]), llm=LLMSettings(backend="extractive"))
rt = Runtime(settings, embed=False, start=False)
print("serving", flush=True)
sys.stdin.read()
rt.close()
"""


def test_a_second_server_on_one_home_is_refused_at_once(tmp_path):
    home = tmp_path / "home"
    first = subprocess.Popen([PY, "-c", SERVER, str(home)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "serving"
        t0 = time.monotonic()
        with pytest.raises(WriterLockTimeout) as refused:
            Runtime(runtime_settings(home), embed=False, start=False)
        assert time.monotonic() - t0 < 10
        assert refused.value.holder["pid"] == first.pid and refused.value.holder["session"]
    finally:
        _let_go(first)
    assert first.returncode == 0
    Runtime(runtime_settings(home), embed=False, start=False).close()    # free once it stopped


# --- waiting, giving up, a dead holder ----------------------------------------------------------
def test_a_writer_waits_for_the_holder_then_writes(tmp_path, caplog):
    holding = _hold(tmp_path / LOCK_FILE)
    store = SQLiteStore(tmp_path / "t.db", lock_wait_s=60)
    try:
        t0 = time.monotonic()
        threading.Timer(1.0, holding.stdin.close).start()      # the holder lets go in 1 s
        with caplog.at_level("WARNING", logger="townsquare.store.lock"):
            assert store.write_batch([_stored(0, "the first post")], []).inserted == 1
        assert time.monotonic() - t0 >= 0.9                     # it waited for the holder
        waits = [r.args[0] for r in caplog.records if r.name == "townsquare.store.lock"]
        assert waits == [f"PID {holding.pid} (test holder)"]          # told once, whom for
        assert holder(tmp_path / LOCK_FILE)["pid"] == os.getpid()
    finally:
        store.close()
        holding.wait(timeout=30)


def test_a_writer_gives_up_after_its_wait_and_writes_nothing(tmp_path):
    holding = _hold(tmp_path / LOCK_FILE)
    store = SQLiteStore(tmp_path / "t.db", lock_wait_s=0.5)
    try:
        t0 = time.monotonic()
        with pytest.raises(WriterLockTimeout) as gave_up:
            store.write_batch([_stored(0, "the first post")], [])
        assert 0.5 <= time.monotonic() - t0 < 10
        assert gave_up.value.holder["pid"] == holding.pid
        assert isinstance(gave_up.value, ConnectionError)      # the CLI's one-line error kind
        assert store.count() == 0
    finally:
        store.close()
        _let_go(holding)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holding = _hold(tmp_path / LOCK_FILE)
    assert holder(tmp_path / LOCK_FILE)["pid"] == holding.pid
    holding.send_signal(signal.SIGKILL)
    holding.wait(timeout=30)
    assert holder(tmp_path / LOCK_FILE) is None               # the kernel dropped it
    store = SQLiteStore(tmp_path / "t.db", lock_wait_s=0)
    try:
        assert store.write_batch([_stored(0, "the first post")], []).inserted == 1
    finally:
        store.close()


# --- one process, many stores and threads ------------------------------------------------------
def test_the_stores_and_threads_of_one_process_share_the_lock(tmp_path):
    lock = tmp_path / LOCK_FILE
    stores = [SQLiteStore(tmp_path / "t.db", lock_wait_s=0) for _ in range(2)]
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for j in range(20):
                stores[k].write_batch([_stored(k * 100 + j, f"post {k} {j}")], [])
        except BaseException as e:        # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].count() == 40
    assert holder(lock)["pid"] == os.getpid()
    stores[0].close()
    assert holder(lock)["pid"] == os.getpid()                 # the other store still holds it
    stores[1].close()
    assert holder(lock) is None


def test_threads_taking_the_lock_at_the_same_moment_all_share_it(tmp_path):
    """A thread whose flock failed because a sibling thread had just taken the file (not yet
    entered as this process's) took it for another process's lock: before the fix 216 of 1,200
    such takes with ``wait_s=0`` failed ("held by another process")."""
    refused: list[WriterLockTimeout] = []
    for r in range(100):
        locks = [WriterLock(tmp_path / str(r) / LOCK_FILE) for _ in range(4)]
        start = threading.Barrier(len(locks))

        def take(lock: WriterLock) -> None:
            start.wait()
            try:
                lock.acquire(0)
            except WriterLockTimeout as e:
                refused.append(e)
        threads = [threading.Thread(target=take, args=(lock,)) for lock in locks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for lock in locks:
            lock.release()
        assert holder(tmp_path / str(r) / LOCK_FILE) is None
    assert refused == []


CHILD = """
import os, sys
from townsquare.posts import Post
from townsquare.store.base import Stored
from townsquare.store.lock import WriterLockTimeout
from townsquare.store.sqlite import SQLiteStore
post = [Stored(Post(id=1_600_000_000_000_000_999, text="from the child", source="t").normalized())]
try:
    SQLiteStore(sys.argv[1], lock_wait_s=0).write_batch(post, [])
    print("stranger wrote")
except WriterLockTimeout:
    print("stranger refused")
child = SQLiteStore(sys.argv[1], lock_wait_s=0, lock_parent=os.getppid())
print("child wrote", child.write_batch(post, []).inserted)
child.close()
"""


def test_a_writer_child_writes_under_its_parents_lock_and_no_one_else_does(tmp_path):
    parent = WriterLock(tmp_path / LOCK_FILE)
    parent.acquire(0)
    try:
        run = subprocess.run([PY, "-c", CHILD, str(tmp_path / "t.db")], capture_output=True,
                             text=True, timeout=120, check=True)
        assert run.stdout.split("\n")[:2] == ["stranger refused", "child wrote 1"]
        assert holder(tmp_path / LOCK_FILE)["pid"] == os.getpid()  # the child's close kept it
    finally:
        parent.release()
