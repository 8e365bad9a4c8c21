"""The search engine's worker threads: the query's embedding, its vector searches and the
any-word tantivy list run on them beside the calling thread's lexical stages (onnxruntime,
faiss and tantivy release the GIL, so a query uses both cores).

    >>> worker().submit(sum, [1, 2]).result()
    3
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["worker"]

_WORKER: ThreadPoolExecutor | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> ThreadPoolExecutor:
    """The threads that embed queries and search the vector index beside the lexical stages:
    one per core (at most 4), shared by every engine of the process (a server's request
    threads too)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)),
                                         thread_name_prefix="search-semantic")
        return _WORKER


def _forget_worker() -> None:
    """In a forked child: the parent's threads do not exist there, and a task given to their
    pool would never run; the child makes its own on its first search."""
    global _WORKER, _WORKER_LOCK
    _WORKER, _WORKER_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_worker)
