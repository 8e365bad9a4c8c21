"""A fast model in a child process of its own: the server's fast tier embeds off its GIL.

    >>> from townsquare.embed.fastproc import ProcessEmbedder
    >>> ProcessEmbedder(dict, name="toy", dim=0)          # validated before any process starts
    Traceback (most recent call last):
    ...
    ValueError: dim must be >= 1, got 0

In use (the server's fast tier, ``services.indexes.fast_model(..., process=True)``)::

    emb = UnseenProcessEmbedder(FittedE5Embedder, (table_path,), {"cache_dir": cache},
                                name="fit-e5", dim=384, space="e5-small-int8")
    vecs, unseen = emb.passages_and_unseen(["Flood in Houston"])     # (1, 384), (1,)
    emb.close()

Why: tokenizing is most of a fast model's work (``tokenizers``' ``encode_batch``, ~30 of its
~50 us a post on 2 cores), and it holds Python's GIL while it runs (a pure-Python thread beside
it ran at 0.37 of its speed alone, with the library's own threads off). In the server that GIL
is the request handlers', the writer's and the tantivy refresh's. In a child, the tier's thread
only waits on a pipe (a blocking read lets the GIL go) while the child tokenizes and pools on
an interpreter of its own. ``python bench/serve.py --findability --findability-rates 5700
--findability-fallback 0 --seconds 40``, two runs each, this code and the one before it
alternately (2026-12-07, 2 cores shared with the load generator), with the fast tier:

=============================  ===================  ===================
                               in the server        in a child
=============================  ===================  ===================
ingest acknowledged, p50       1.86 s, 2.46 s       1.20 s, 0.52 s
ingest acknowledged, p99       5.48 s, 5.74 s       3.60 s, 2.12 s
tantivy refreshes in 40 s      46, 65               92, 94
lexical lag, p50               1.0 s, 0.6 s         0.4 s, 0.4 s
fast tier's lag, p50           1.2 s, 1.5 s         0.9 s, 0.6 s
=============================  ===================  ===================

(e5 alone, in the same runs: ingest p50 0.06-0.17 s.) What is left is the CPU itself: the
child's work still takes the cores the rest needs. The child holds its own copy of the
tokenizer and the table (~470 MB resident with ``fit-e5``).

What crosses the pipe: a batch of texts one way; the vectors ``(n, dim)`` float32 (and the
unseen shares ``(n,)``) back, the very arrays the model returned. The child keeps nothing
between calls (a deleted post's text is there only while its batch is embedded) and loads the
model itself, from its file. It is spawned (a fork of a threaded server could inherit a held
lock), and ends when it is closed or when the parent goes away (its end of the pipe closes). A
child that dies (killed, out of memory) fails the call it was serving; the next call starts a
new one.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from townsquare.protocols import Embedder

__all__ = ["ProcessEmbedder", "UnseenProcessEmbedder"]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 300.0      # a child's model load: a fitted table takes seconds
CLOSE_WAIT_S = 5.0           # how long ``close`` waits for a call in flight


def _serve(conn, factory: Callable[..., Embedder], args: tuple, kwargs: dict) -> None:
    """The child: load the model, then answer ``(method, texts)`` until ``None`` or EOF."""
    try:
        model = factory(*args, **kwargs)
    except Exception as e:                       # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):              # the parent went away
            return
        if msg is None:
            return
        method, arg = msg
        try:
            reply = ("ok", getattr(model, method)(arg))
        except Exception as e:                   # noqa: BLE001 - the parent raises it
            reply = ("error", f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except OSError:                          # the parent went away meanwhile
            return


class ProcessEmbedder:
    """An ``Embedder`` whose model (``factory(*args, **kwargs)``, picklable: a class or a
    module-level function) runs in a spawned child process. ``name``, ``dim``, ``space`` and
    ``cosine_shift`` are the model's (``embed.tiers`` reads them without asking the child).
    Calls are serialized (one pipe); a call raises ``RuntimeError`` with the child's error, or
    when the child died. Raises ``RuntimeError`` at once when the model fails to load."""

    def __init__(self, factory: Callable[..., Embedder], args: tuple = (),
                 kwargs: dict[str, Any] | None = None, *, name: str, dim: int,
                 space: str | None = None, cosine_shift: float = 0.0,
                 start_timeout_s: float = START_TIMEOUT_S):
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if start_timeout_s <= 0:
            raise ValueError(f"start_timeout_s must be > 0, got {start_timeout_s}")
        self.name, self.dim, self.space, self.cosine_shift = name, dim, space, cosine_shift
        self._target = (factory, tuple(args), dict(kwargs or {}))
        self._timeout = float(start_timeout_s)
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._conn: Any = None
        self._proc: Any = None
        self._closed = False
        self.starts = 0                          # children started (a restart after a death: 2)
        with self._lock:
            self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id (None when none runs)."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_serve, args=(child, *self._target),
                                 name=f"townsquare-{self.name}", daemon=True)
        proc.start()
        child.close()                            # the child holds its end: EOF when it dies
        self.starts += 1
        try:
            if not parent.poll(self._timeout):
                raise RuntimeError(f"the {self.name} process did not load its model in "
                                   f"{self._timeout:.0f} s")
            kind, detail = parent.recv()
        except (EOFError, OSError) as e:
            kind, detail = "error", f"the process ended while loading ({e or type(e).__name__})"
        except RuntimeError as e:
            kind, detail = "error", str(e)
        if kind != "ready":
            proc.kill()
            proc.join(5)
            parent.close()
            raise RuntimeError(f"{self.name} in its own process: {detail}")
        self._conn, self._proc = parent, proc

    def _call(self, method: str, arg: Any) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the embedder's process was closed")
            if self._conn is None:               # the last child died: a new one
                self._start()
            try:
                self._conn.send((method, arg))
                kind, out = self._conn.recv()
            except (EOFError, OSError) as e:     # it died meanwhile: this call fails, the next
                self._drop()                     # one starts another
                log.warning("%s: its process ended (%s); the next call starts another",
                            self.name, e or type(e).__name__)
                raise RuntimeError(f"{self.name}: its process ended "
                                   f"({e or type(e).__name__})") from e
        if kind != "ok":
            raise RuntimeError(f"{self.name} (in its process): {out}")
        return out

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(1)
        self._conn = self._proc = None

    def query(self, text: str) -> np.ndarray:
        return self._call("query", text)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._call("passages", list(texts))

    def close(self) -> None:
        """End the child (idempotent): it reads ``None`` and returns. A call still waiting on
        it after ``CLOSE_WAIT_S`` (a child that hangs) does not hold up the close: the child is
        killed, and that call fails."""
        idle = self._lock.acquire(timeout=CLOSE_WAIT_S)
        try:
            self._closed = True
            proc = self._proc
            if idle:
                if self._conn is not None:
                    try:
                        self._conn.send(None)
                    except (OSError, ValueError):
                        pass
                self._drop()
        finally:
            if idle:
                self._lock.release()
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join(5)


class UnseenProcessEmbedder(ProcessEmbedder):
    """A ``ProcessEmbedder`` of a model that counts the pieces its table never saw
    (``fit-e5``): ``passages_and_unseen`` too, the one call the fast tier makes per page."""

    def passages_and_unseen(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros(0, dtype=np.float32)
        return self._call("passages_and_unseen", list(texts))
