"""Embedding backfill on a Dask cluster: workers embed, the driver writes.

    townsquare jobs embed [--model e5-small-int8] [--workers 2]      # a local cluster
    townsquare jobs embed --scheduler tcp://10.0.0.5:8786            # any Dask cluster

    >>> from townsquare.store import open_store
    >>> chunks = list(plan([(1, 1, "a"), (2, 2, "b"), (3, 3, "c")], chunk=2))
    >>> [[pid for pid, _seq, _t in c] for c in chunks]
    [[1, 2], [3]]

How: the driver (this process) reads the posts not embedded yet in ingest order (``seq``), in
chunks; each chunk's texts go to a worker (``embed_chunk``), which keeps one embedder per worker
process (loaded once, models come from installed packages, nothing downloads); the driver
writes each chunk's vectors in ``seq`` order as its turn comes (``Store.write_vectors`` moves the
watermark), while the workers run ahead. So the store keeps a single writer, an interrupted job
resumes where its watermark stopped, and the vectors are the in-process path's: both embed one
text at a time (``batch_size=1``) with the same model, so a text's vector does not depend on
which worker, chunk or neighbours it had (``tests/jobs/test_backfill.py`` checks equality on
50,000 posts).

Why Dask: embedding is the slowest bulk job (a few hundred posts/s per core); a backfill of a
large store is embarrassingly parallel across machines, and ``distributed`` gives scheduling,
retries of lost workers and a dashboard for free. Workers run one thread each with a one-thread
embedder: on a machine with N cores, N worker processes use them without oversubscription.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from townsquare.store.base import Store

_EMBEDDERS: dict[str, Any] = {}      # per worker process: model name -> embedder


@dataclass(slots=True)
class BackfillResult:
    embedded: int = 0
    chunks: int = 0
    seconds: float = 0.0
    workers: int = 0

    @property
    def posts_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {"embedded": self.embedded, "chunks": self.chunks, "workers": self.workers,
                "seconds": round(self.seconds, 2), "posts_per_s": round(self.posts_per_s, 1)}


def plan(rows: Iterable[tuple[int, int, str]], chunk: int) -> Iterator[list[tuple[int, int, str]]]:
    """``(id, seq, text)`` rows in chunks of ``chunk``, in order."""
    buf: list[tuple[int, int, str]] = []
    for r in rows:
        buf.append(r)
        if len(buf) == chunk:
            yield buf
            buf = []
    if buf:
        yield buf


def pending_rows(store: Store, page: int = 20_000) -> Iterator[tuple[int, int, str]]:
    """Every post not embedded yet, in ``seq`` order, paged."""
    first = store.pending_embedding(1)
    if not first:
        return
    seq = first[0][1] - 1
    while True:
        rows = store.posts_since(seq, page)
        if not rows:
            return
        yield from rows
        seq = rows[-1][1]


def embed_chunk(model: str, texts: list[str], home: str | None = None) -> list[bytes]:
    """On a worker: the texts' vectors as stored blobs (float16), with this process's embedder."""
    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import to_blob
    if home and not os.environ.get("TOWNSQUARE_HOME"):
        os.environ["TOWNSQUARE_HOME"] = home        # where ONNX exports are cached
    emb = _EMBEDDERS.get(model)
    if emb is None:
        emb = _EMBEDDERS[model] = get_embedder(model, num_threads=1)
    return to_blob(emb.passages(texts))


def backfill(store: Store, model: str, *, client: Any = None, workers: int = 2,
             chunk: int = 1_000, home: str | Path | None = None,
             progress: Callable[[int], None] | None = None) -> BackfillResult:
    """Embed every pending post of ``store`` with ``model`` on a Dask cluster (``client``; a
    local one with ``workers`` processes when None) and write the vectors in ``seq`` order."""
    if chunk < 1 or workers < 1:
        raise ValueError("chunk and workers must be >= 1")
    current = store.embed_model()
    if current is not None and current != model:
        from townsquare.embed.stage import ModelMismatch
        raise ModelMismatch(f"the store's vectors come from {current}, not {model}; re-embed "
                            f"with `townsquare embed --reset --model {model}` first")
    own = client is None
    if own:
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    res = BackfillResult(workers=len(client.scheduler_info()["workers"]))
    t0 = time.perf_counter()
    home_s = str(home) if home is not None else os.environ.get("TOWNSQUARE_HOME")
    try:
        window: list[tuple[list, Any]] = []
        depth = 2 * max(1, res.workers)            # chunks in flight: workers never starve

        def drain_one() -> None:
            rows, fut = window.pop(0)
            blobs = fut.result()
            store.write_vectors(model, [(pid, seq, b) for (pid, seq, _), b in zip(rows, blobs)],
                                watermark=rows[-1][1])
            res.embedded += len(rows)
            res.chunks += 1
            if progress:
                progress(len(rows))
        for rows in plan(pending_rows(store), chunk):
            window.append((rows, client.submit(embed_chunk, model, [t for _, _, t in rows],
                                               home_s, pure=False)))
            if len(window) >= depth:
                drain_one()
        while window:
            drain_one()
    finally:
        if own:
            client.close()
            cluster.close()
    res.seconds = time.perf_counter() - t0
    return res
