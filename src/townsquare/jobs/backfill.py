"""Embedding backfill on a Dask cluster: workers embed, the driver writes.

    townsquare jobs embed [--model e5-small-int8] [--workers 2]      # a local cluster
    townsquare jobs embed --scheduler tcp://10.0.0.5:8786            # any Dask cluster

    >>> BackfillResult(embedded=3000, chunks=3, seconds=2.0, workers=2).to_dict()
    {'embedded': 3000, 'chunks': 3, 'workers': 2, 'seconds': 2.0, 'posts_per_s': 1500.0}

How: the driver (this process) reads the posts not embedded yet in ingest order (``seq``), in
chunks; each chunk's texts go to a worker (``embed_chunk``), which keeps one embedder per worker
process (loaded once, models come from installed packages, nothing downloads); the driver
writes each chunk's vectors in ``seq`` order as its turn comes (``Store.write_vectors`` moves the
watermark), while the workers run ahead (``jobs.runner.ordered_map``). So the store keeps a single writer, an interrupted job
resumes where its watermark stopped, and the vectors are the in-process path's: both embed one
text at a time (``batch_size=1``) with the same model, so a text's vector does not depend on
which worker, chunk or neighbours it had (``tests/jobs/test_backfill.py`` backfills 50,000
posts and checks equality on a tenth of them, every chunk's edges included).

Why Dask: embedding is the slowest bulk job (a few hundred posts/s per core); a backfill of a
large store is embarrassingly parallel across machines, and ``distributed`` gives scheduling,
retries of lost workers and a dashboard for free. Workers run one thread each with a one-thread
embedder: on a machine with N cores, N worker processes use them without oversubscription.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from townsquare.jobs.runner import chunks, cluster_client, n_workers, ordered_map
from townsquare.protocols import Embedder
from townsquare.store.base import Store

if TYPE_CHECKING:                      # distributed is an optional dependency
    from distributed import Client

_EMBEDDERS: dict[str, Embedder] = {}      # per worker process: model name -> embedder


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


def embed_chunk(model: str, texts: list[str], cache_dir: str | None = None) -> list[bytes]:
    """On a worker: the texts' vectors as stored blobs (float16), with this process's embedder
    (its exported ONNX files cached in ``cache_dir``)."""
    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import to_blob
    emb = _EMBEDDERS.get(model)
    if emb is None:
        emb = _EMBEDDERS[model] = get_embedder(
            model, num_threads=1, cache_dir=Path(cache_dir) if cache_dir is not None else None)
    return to_blob(emb.passages(texts))


def backfill(store: Store, model: str, *, client: Client | None = None, workers: int = 2,
             chunk: int = 1_000, cache_dir: str | Path | None = None,
             progress: Callable[[int], None] | None = None) -> BackfillResult:
    """Embed every pending post of ``store`` with ``model`` on a Dask cluster (``client``; a
    local one with ``workers`` processes when None) and write the vectors in ``seq`` order.
    ``cache_dir`` is where the workers cache exported ONNX models (``Settings.cache_dir``; it
    must be a folder they can reach)."""
    if chunk < 1 or workers < 1:
        raise ValueError("chunk and workers must be >= 1")
    current = store.embed_model()
    if current is not None and current != model:
        from townsquare.embed.stage import ModelMismatch
        raise ModelMismatch(f"the store's vectors come from {current}, not {model}; re-embed "
                            f"with `townsquare embed --reset --model {model}` first")
    cache_s = str(cache_dir) if cache_dir is not None else None     # plain data for the wire
    with cluster_client(client, workers) as c:
        res = BackfillResult(workers=n_workers(c))
        t0 = time.perf_counter()
        # Each chunk's texts go to a worker; its rows stay here for the write, in seq order.
        work = (((model, [t for _, _, t in rows], cache_s), rows)
                for rows in chunks(pending_rows(store), chunk))
        for rows, blobs in ordered_map(c, embed_chunk, work):
            store.write_vectors(model, [(pid, seq, b) for (pid, seq, _), b in zip(rows, blobs)],
                                watermark=rows[-1][1])
            res.embedded += len(rows)
            res.chunks += 1
            if progress:
                progress(len(rows))
        res.seconds = time.perf_counter() - t0
    return res
