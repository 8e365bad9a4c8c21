"""The embedding stage: posts get vectors after they are searchable, never before.

    >>> from townsquare.store.sqlite import SQLiteStore
    >>> from townsquare.store.base import Stored
    >>> from townsquare.posts import Post
    >>> from townsquare.embed.models import get_embedder
    >>> s = SQLiteStore(":memory:")
    >>> _ = s.write_batch([Stored(Post(id=1212092628029698048, text="Flood on Main St", source="t").normalized())], [])
    >>> EmbedStage(s, get_embedder()).run().processed            # doctest: +SKIP
    1

Like Earlybird's late-arriving fields: ingest commits a post to the lexical index at once; this
stage catches up in ingest order (``seq``) behind its own watermark, so a slow embedding model
delays only semantic recall, and ``townsquare stats`` shows the lag (posts pending, age of the
oldest). A post whose text changes gets a new ``seq`` at ingest and so is embedded again.

Vectors are stored as float16 (768 bytes for 384 dimensions): half the space of float32, and the
cosine error (~1e-3) is far below the gaps between ranked neighbours.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from townsquare.protocols import Embedder
from townsquare.store.base import Store


@dataclass(slots=True)
class EmbedResult:
    processed: int = 0
    seconds: float = 0.0

    @property
    def posts_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


class ModelMismatch(RuntimeError):
    """The store's vectors come from another model; re-embedding must be asked for explicitly."""


def to_blob(vecs: np.ndarray) -> list[bytes]:
    """float32 (n, dim) -> one float16 blob per row."""
    return [row.tobytes() for row in np.ascontiguousarray(vecs, dtype=np.float16)]


def from_blobs(blobs: list[bytes], dim: int) -> np.ndarray:
    """Blobs -> float32 (n, dim), rows re-normalized (float16 rounding moves the norm a little)."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    m = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dim)
    m = m.astype(np.float32)                                         # (n, dim)
    norms = np.linalg.norm(m, axis=1, keepdims=True)                  # (n, 1)
    return m / np.maximum(norms, 1e-12)


class EmbedStage:
    """Embed pending posts in ingest order and store their vectors.

    ``reset=True`` starts over when the store holds vectors of another model; without it such a
    store raises ``ModelMismatch`` (mixing two models' vectors in one index would rank nonsense).
    """

    def __init__(self, store: Store, embedder: Embedder, *, batch_size: int = 256,
                 reset: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.store = store
        self.embedder = embedder
        self.batch_size = batch_size
        current = store.embed_model()
        if current is not None and current != embedder.name:
            if not reset:
                raise ModelMismatch(
                    f"the store's vectors come from {current}, not {embedder.name}; "
                    f"re-embed everything with `townsquare embed --reset --model {embedder.name}`")
            store.reset_vectors(embedder.name)

    def run(self, *, max_posts: int | None = None,
            progress: Callable[[int], None] | None = None) -> EmbedResult:
        res = EmbedResult()
        t0 = time.perf_counter()
        while max_posts is None or res.processed < max_posts:
            limit = self.batch_size if max_posts is None else min(self.batch_size,
                                                                  max_posts - res.processed)
            pending = self.store.pending_embedding(limit)
            if not pending:
                break
            vecs = self.embedder.passages([text for _, _, text in pending])   # (n, dim)
            rows = [(pid, seq, blob) for (pid, seq, _), blob in zip(pending, to_blob(vecs))]
            self.store.write_vectors(self.embedder.name, rows, watermark=pending[-1][1])
            res.processed += len(pending)
            if progress:
                progress(len(pending))
        res.seconds = time.perf_counter() - t0
        return res
