"""One writer at a time on an embedded home: an OS file lock on ``HOME/write.lock``.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / LOCK_FILE
    >>> lock = WriterLock(path, what="townsquare ingest")
    >>> lock.acquire(wait_s=0)
    >>> (holder(path)["pid"] == os.getpid(), holder(path)["what"], lock.held)
    (True, 'townsquare ingest', True)
    >>> lock.release()
    >>> holder(path) is None
    True

Why a lock and not only SQLite's own: each SQLite transaction is atomic, but a writing process
does more than transactions. The late stage reads which posts are originals, then links
near-duplicates to them: two processes doing that at once link posts to a root the other one just
linked elsewhere (chains, and repeats in search). The tantivy and faiss files beside the store are
refreshed by whole-process steps that another process's refresh breaks (it deletes the segment
files the first one opened: ``Failed to open file``). So every process that writes a home holds
this lock while it writes: ``ingest``, ``enrich``, ``embed``, ``delete``, jobs, the server. A
``SQLiteStore`` takes it before its first write (``townsquare.store.sqlite``); the server takes it
when it starts and keeps it (``session=True``).

What the lock is: ``fcntl.flock`` on the file, so the kernel drops it when the process dies,
however it dies (no stale lock to clean up). The holder writes its PID and command into the file,
so that a process that has to wait can say for whom. Within one process the lock is re-entrant:
every store and thread of the process shares it (SQLite serializes their transactions; the lock
is about other processes). A waiting process logs one line, "waiting for the writer lock held by
PID 123 (townsquare ingest)", then gives up after ``wait_s`` with ``WriterLockTimeout``; it does
not wait at all for a session holder (a server keeps the lock until it stops: send posts to its
HTTP API instead).

A writer child process (``ingest``'s writer, ``townsquare.ingest.writer``) writes under its
parent's lock: ``WriterLock(..., parent=PID)`` counts as held when the file's holder is that PID
and that PID is this process's parent.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

LOCK_FILE = "write.lock"
#: How long a writer waits for another process's lock by default before it gives up. A batch
#: ingest of a large dataset can hold it for minutes; a longer wait is an ordinary retry loop.
WAIT_S = 300.0

log = logging.getLogger(__name__)


class WriterLockTimeout(ConnectionError):
    """Another process holds the home's writer lock. A ``ConnectionError``, like every "cannot
    reach the store as needed" error, so that callers that print those as one line (the CLI, exit
    2) print this one too. ``holder``: what that process wrote into the lock file (``pid``,
    ``what``, ``session``, ``since``), None when it had not written it yet."""

    def __init__(self, message: str, path: Path, holder: dict | None):
        super().__init__(message)
        self.path = path
        self.holder = holder


def holder(path: str | Path) -> dict | None:
    """Who holds the lock at ``path`` (the dict its holder wrote), or None when nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            # flock() locks belong to an open file: this one conflicts with every holder's,
            # this process's own included.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {"pid": None, "what": None, "session": False, "since": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_process(argv: list[str] | None = None) -> str:
    """A short name for a command line: the program and its first argument.

        >>> describe_process(["/venv/bin/townsquare", "ingest", "../shared/data", "--json"])
        'townsquare ingest'
        >>> describe_process(["/src/townsquare/__main__.py", "serve", "--port", "8000"])
        'townsquare serve'
    """
    argv = sys.argv if argv is None else argv
    if not argv:
        return "python"
    prog = Path(argv[0])
    name = prog.parent.name if prog.name == "__main__.py" else prog.name
    rest = [a for a in argv[1:] if not a.startswith("-")][:1]
    return " ".join([name, *rest])[:80]


def path_key(path: str | Path) -> str:
    return os.path.realpath(path)


def _read(fd: int) -> dict | None:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data else None
    except (OSError, ValueError):
        return None


class _Held:
    """This process's hold on one lock file: the descriptor that carries the flock, and how many
    ``WriterLock`` objects of this process hold it."""

    def __init__(self, fd: int | None):
        self.fd = fd                   # None: held by the parent process (a writer child)
        self.count = 0


_HELD: dict[str, _Held] = {}
# Guards _HELD, and each try at the file's flock with it: a thread whose try fails then knows that
# no thread of this process holds the lock (nor is between its flock and its entry in _HELD). A
# wait for another process happens outside.
_MUTEX = threading.Lock()


class WriterLock:
    """The writer lock at ``path`` for this process. ``what``: how other processes name this one
    while they wait (default: its command line, ``describe_process``); ``session``: held for a
    server's life (others do not wait for it); ``parent``: the PID of a parent process that holds
    the lock and hands its writes to this one."""

    def __init__(self, path: str | Path, *, what: str | None = None, session: bool = False,
                 parent: int | None = None):
        self.path = Path(path)
        self.what = what or describe_process()
        self.session = session
        self.parent = parent
        self._key = path_key(self.path)
        self._mine = False
        self._thread_lock = threading.Lock()   # acquire/release of this object, across threads

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (for this process)."""
        return self._mine

    def acquire(self, wait_s: float = WAIT_S) -> None:
        """Take the lock (at once when this process already holds it), waiting up to ``wait_s``
        seconds for another process; ``WriterLockTimeout`` after that. A no-op when held."""
        deadline = time.monotonic() + max(0.0, wait_s)
        with self._thread_lock:
            if self._mine:
                return
            while True:
                with _MUTEX:
                    held = _HELD.get(self._key)
                    if held is not None:
                        held.count += 1
                        self._mine = True
                        return
                # Not held by this process: take the file (this may wait for another process).
                if self._take(deadline - time.monotonic()):
                    self._mine = True
                    return
                # False: another thread of ours took it meanwhile: share theirs

    def release(self) -> None:
        """Let go (the lock itself goes when the last holder in this process lets go)."""
        with self._thread_lock:
            if not self._mine:
                return
            self._mine = False
            with _MUTEX:
                held = _HELD.get(self._key)
                if held is None:
                    return
                held.count -= 1
                if held.count > 0:
                    return
                del _HELD[self._key]
                if held.fd is not None:        # under the mutex: see _MUTEX
                    try:
                        os.ftruncate(held.fd, 0)   # before unlocking: the next holder writes
                    except OSError:
                        pass
                    os.close(held.fd)              # closing drops the flock

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- the file ---------------------------------------------------------------------------------
    def _take(self, wait_s: float) -> bool:
        """Lock the file and enter it in ``_HELD`` for this object; False when another thread of
        this process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + max(0.0, wait_s)
        told = False
        pause = 0.05
        try:
            while True:
                with _MUTEX:
                    if self._key in _HELD:
                        os.close(fd)
                        return False
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        taken = _HELD[self._key] = _Held(fd)
                        taken.count = 1
                        break
                    except BlockingIOError:
                        pass
                who = _read(fd)
                if self._parent_holds(who):
                    with _MUTEX:
                        if self._key in _HELD:
                            os.close(fd)
                            return False
                        taken = _HELD[self._key] = _Held(None)
                        taken.count = 1
                    os.close(fd)
                    return True
                if who and who.get("session"):
                    raise WriterLockTimeout(
                        f"{self.path}: {_name(who)} writes to this home for as long as it runs; "
                        f"send posts to its HTTP API, or stop it first", self.path, who)
                if time.monotonic() >= deadline:
                    raise WriterLockTimeout(
                        f"{self.path}: gave up after {max(0.0, wait_s):g} s waiting for the "
                        f"writer lock held by {_name(who)}; one process writes a home at a time",
                        self.path, who)
                if not told:
                    log.warning("waiting for the writer lock held by %s (%s), up to %g s",
                                _name(who), self.path, wait_s)
                    told = True
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                pause = min(pause * 2, 0.5)
        except BaseException:
            os.close(fd)
            raise
        me = {"pid": os.getpid(), "what": self.what, "session": self.session,
              "since": round(time.time(), 3)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError:                        # who holds it is only for messages
            pass
        return True

    def _parent_holds(self, who: dict | None) -> bool:
        return (self.parent is not None and who is not None and who.get("pid") == self.parent
                and os.getppid() == self.parent)


def _name(who: dict | None) -> str:
    if not who or who.get("pid") is None:
        return "another process"
    return f"PID {who['pid']} ({who.get('what') or 'unknown'})"
