"""What the Dask jobs share: a cluster to run on, and an ordered map over chunks.

    townsquare jobs recluster --since 2020-01-01 --until 2020-01-08   # a local cluster
    townsquare jobs corpus --out corpus-dask --scheduler tcp://10.0.0.5:8786

    >>> list(chunks(range(5), 2))
    [[0, 1], [2, 3], [4]]
    >>> with cluster_client(workers=1) as client:                     # doctest: +SKIP
    ...     [r for _, r in ordered_map(client, len, [("ab", "x"), ("abc", "y")])]
    [2, 3]

Every job follows the same shape (``jobs.backfill`` first did): the driver (this process) reads
the store, cuts the input into picklable chunks, submits each chunk's pure, expensive work to a
worker, and takes the results back *in submission order*, so whatever the driver does with them
(clustering, deduplicating, writing) sees exactly the sequence an in-process run sees. A window
of ``2 x workers`` chunks stays in flight, so the workers run ahead of the driver while memory
stays bounded whatever the store's size. The driver is the only writer.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:                      # distributed is an optional dependency
    from distributed import Client

T = TypeVar("T")


class JobError(Exception):
    """A job that cannot run as asked (a bad range, an unreachable scheduler): the CLI exits 2."""


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), in order."""
    if size < 1:
        raise ValueError(f"chunk must be >= 1, got {size}")
    buf: list[T] = []
    for x in items:
        buf.append(x)
        if len(buf) == size:
            yield buf
            buf = []
    if buf:
        yield buf


def connect(address: str, timeout: float = 30.0) -> Client:
    """A ``distributed.Client`` on the scheduler at ``address``, or a ``JobError`` that says
    why not (a malformed address fails at once; an unreachable one after ``timeout`` seconds)."""
    from distributed import Client
    try:
        return Client(address, timeout=timeout)
    except (OSError, ValueError, TimeoutError) as e:
        raise JobError(f"cannot reach the Dask scheduler at {address}: {e}") from None


@contextmanager
def cluster_client(client: Client | None = None, workers: int = 2) -> Iterator[Client]:
    """``client`` as given (the caller closes it), else a local cluster of ``workers`` processes
    with one thread each, closed on exit. One thread per process: the work is pure Python
    (regular expressions, hashing) that holds the GIL, so threads would not run in parallel.
    The HTTP server (and dashboard, when bokeh is installed) takes a free port: a fixed one
    would collide with any other cluster on the machine."""
    if client is not None:
        yield client
        return
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    own = Client(cluster)
    try:
        yield own
    finally:
        own.close()
        cluster.close()


def n_workers(client: Client) -> int:
    return len(client.scheduler_info()["workers"])


def ordered_map(client: Client, fn: Callable[..., Any], items: Iterable[tuple[tuple, Any]], *,
                depth: int | None = None) -> Iterator[tuple[Any, Any]]:
    """For each ``(args, meta)`` of ``items``: ``fn(*args)`` on a worker; yields ``(meta,
    result)`` in the order of ``items`` with at most ``depth`` calls in flight (default twice the
    workers). ``meta`` stays on the driver (what the driver needs back beside the result). A
    worker's exception is raised here, at that chunk's turn."""
    if depth is None:
        depth = 2 * max(1, n_workers(client))
    window: deque[tuple[Any, Any]] = deque()
    try:
        for args, meta in items:
            # pure=False: two equal chunks are two tasks (Dask would otherwise share one key and
            # may forget a result the window has not collected yet).
            window.append((meta, client.submit(fn, *args, pure=False)))
            if len(window) >= depth:
                meta0, fut = window.popleft()
                yield meta0, fut.result()
        while window:
            meta0, fut = window.popleft()
            yield meta0, fut.result()
    finally:
        for _, fut in window:             # an error or an abandoned loop: free the cluster
            fut.cancel()
