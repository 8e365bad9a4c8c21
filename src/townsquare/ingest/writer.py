"""A writer process for the ingest pipeline: the store's writes run beside the parsing.

    >>> import pathlib, tempfile
    >>> from townsquare.posts import Post
    >>> from townsquare.store.base import Stored
    >>> from townsquare.store.sqlite import SQLiteStore
    >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "t.db")
    >>> with WriterProcess(store.opener()) as w:
    ...     w.submit("batch 1", store.prepare([Stored(Post(id=1212092628029698048, text="hi", source="t").normalized())], []))
    ...     done = w.finish()
    >>> [(tag, r.inserted) for tag, r in done], store.count()
    ([('batch 1', 1)], 1)

Why: on this 2-core machine parsing and normalizing a post costs about as much CPU as SQLite's
insert of it (posts row, FTS5 postings, provenance). A thread cannot overlap them (SQLite gives up
the GIL only around each row's step), and shipping ``Post`` objects to another process cost ~11 us
each in pickling. Shipping *prepared rows* (plain tuples, ``Store.prepare``) costs ~3 us, so the
parent parses and prepares while this child, holding its own connection, writes.

Safety: each batch is still one transaction in the child, so a kill at any moment leaves whole
batches. The child is a fresh interpreter (``python -m townsquare.ingest.writer``) fed pickled
batches on its stdin: no ``fork`` of a process holding an open SQLite connection (SQLite's rule),
and unlike ``multiprocessing``'s spawn it never re-imports the caller's ``__main__``. It dies with
its parent (``PR_SET_PDEATHSIG`` on Linux; elsewhere it exits at end of input after its current
batch), so a killed ingest leaves no writer behind. One batch is written while the next is
parsed; the parent waits when it is two ahead, which keeps memory flat. A failure in the child is
raised in the parent with the child's traceback.
"""
from __future__ import annotations

import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from townsquare.store.base import Store, WriteResult

_LEN = struct.Struct("<Q")


class WriterError(RuntimeError):
    """The writer process failed; the message holds its traceback."""


def _send(out: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LEN.pack(len(data)))
    out.write(data)
    out.flush()


def _recv(inp: BinaryIO) -> Any:
    """The next message, or EOFError at the end of the stream."""
    head = inp.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    data = inp.read(_LEN.unpack(head)[0])
    return pickle.loads(data)


def _die_with_parent() -> None:
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):      # not Linux: end of input stops the child instead
        pass


def _receive_into(inp: BinaryIO, box: queue.Queue) -> None:
    """The child's reader thread: takes batches off the pipe while the main thread writes, so the
    parent never waits for a write to finish before it can hand over the next batch."""
    while True:
        try:
            msg = _recv(inp)
        except EOFError:                       # the parent is gone (or closed the pipe)
            box.put(EOFError)
            return
        except BaseException as e:             # a torn message: report it from the main thread
            box.put(e)
            return
        box.put(msg)
        if msg is None:
            return


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The child's loop: an opener, then ``(tag, batch)`` messages until ``None`` or end of input."""
    _die_with_parent()
    store = None
    try:
        store = _recv(inp)()
        box: queue.Queue = queue.Queue()       # bounded by the parent's in-flight limit
        threading.Thread(target=_receive_into, args=(inp, box), daemon=True).start()
        while True:
            msg = box.get()
            if msg is EOFError:
                return
            if isinstance(msg, BaseException):
                raise msg
            if msg is None:
                _send(out, ("done", None, None))
                return
            tag, batch = msg
            r = store.write_prepared(batch)
            _send(out, ("ok", tag, (r.inserted, r.updated, r.unchanged, r.skipped_deleted,
                                    r.quarantined)))
    except BaseException:
        try:
            _send(out, ("error", None, traceback.format_exc()))
        except OSError:
            pass
    finally:
        if store is not None:
            store.close()


class WriterProcess:
    """Writes prepared batches in a child process, in submission order.

    ``submit(tag, batch)`` hands a batch over (waiting while the child is two batches behind);
    ``results()`` yields ``(tag, WriteResult)`` for batches written so far without waiting;
    ``finish()`` waits for the rest and returns them.
    """

    def __init__(self, opener: Callable[[], Store] | None, *, depth: int = 2):
        if opener is None:
            raise ValueError("this store cannot be opened in another process (e.g. :memory:)")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "townsquare.ingest.writer"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._results: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="townsquare-writer-results",
                                        daemon=True)
        self._reader.start()
        self._slots = threading.Semaphore(depth)
        self._pending = 0
        self._closed = False
        self._send(opener)

    def __enter__(self) -> "WriterProcess":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is not None:
            self.kill()

    # --- plumbing --------------------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            try:
                msg = _recv(self._proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._results.put(("eof", None, None))
                return
            self._results.put(msg)
            if msg[0] in ("ok",):
                self._slots.release()
            if msg[0] != "ok":
                return

    def _failure(self, what: str) -> WriterError:
        self.kill()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace").strip()
        return WriterError(f"writer process {what}" + (f":\n{err}" if err else ""))

    def _send(self, obj: Any) -> None:
        try:
            _send(self._proc.stdin, obj)
        except (BrokenPipeError, OSError):
            raise self._failure(f"exited with code {self._proc.poll()}") from None

    def _take(self, block: bool) -> tuple[Any, WriteResult] | None:
        try:
            kind, tag, payload = self._results.get(block=block)
        except queue.Empty:
            return None
        if kind == "ok":
            self._pending -= 1
            return tag, WriteResult(*payload)
        if kind == "error":
            self.kill()
            raise WriterError(f"writer process failed:\n{payload}")
        if kind == "eof":
            raise self._failure(f"exited with code {self._proc.wait()} before finishing")
        return None    # "done"

    # --- API -------------------------------------------------------------------------------------
    def submit(self, tag: Any, batch: Any) -> None:
        if self._closed:
            raise RuntimeError("writer already finished")
        while not self._slots.acquire(timeout=0.5):
            if self._proc.poll() is not None:
                raise self._failure(f"exited with code {self._proc.returncode}")
        self._pending += 1
        self._send((tag, batch))

    def results(self) -> Iterator[tuple[Any, WriteResult]]:
        while (r := self._take(block=False)) is not None:
            yield r

    def finish(self) -> list[tuple[Any, WriteResult]]:
        self._closed = True
        self._send(None)
        out = []
        while self._pending:
            r = self._take(block=True)
            if r is not None:
                out.append(r)
        self._proc.stdin.close()
        self._proc.wait()
        self._stderr.close()
        return out

    def kill(self) -> None:
        self._closed = True
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


def main() -> None:
    # The protocol owns the real stdout; anything printed in the child goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
