"""Embedding backfill on a local 2-worker Dask cluster: the same vectors as the in-process path."""
from __future__ import annotations

import numpy as np
import pytest

from townsquare.embed.models import get_embedder
from townsquare.embed.stage import EmbedStage, from_blobs
from townsquare.posts import Post
from townsquare.store import open_store
from townsquare.store.base import Stored

pytest.importorskip("distributed")
MODEL = "minilm-l6-int8"          # the fast English model: 50,000 posts in about a minute
N = 50_000
CHUNK = 2000
WORDS = ("flood river bridge closed rescue team school shelter power outage storm wind rain "
         "road traffic market festival music game team coffee park trail mountain city night "
         "morning update officials say residents water food help volunteers").split()


def _posts(n: int) -> list[Stored]:
    rng = np.random.default_rng(0)                      # invented texts, deterministic
    out = []
    for i in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(5, 16)))
        out.append(Stored(Post(id=1_600_000_000_000_000_000 + i, text=" ".join(words),
                               source="t").normalized()))
    return out


def _reference_sample(n: int, chunk: int, size: int) -> list[int]:
    """Indexes of the posts the in-process path embeds too: every chunk's first and last
    post (where a chunking or ordering slip would show) and a seeded sample of the rest."""
    edges = {i for k in range(0, n, chunk) for i in (k, min(k + chunk, n) - 1)}
    rng = np.random.default_rng(1)
    return sorted(edges | {int(i) for i in rng.choice(n, size=size, replace=False)})


@pytest.mark.slow
def test_backfill_of_50000_posts_on_2_workers_equals_the_in_process_path(tmp_path):
    """Dask embeds all 50,000 posts; the in-process path embeds a tenth of them (every chunk's
    edges and a seeded sample), whose vectors must be the same: each text is embedded alone
    (``jobs.backfill``), so a vector does not depend on its neighbours. Embedding the 50,000
    twice took most of this test's time (more than 10 minutes of CI on a CPU without VNNI)."""
    from townsquare.jobs.backfill import backfill
    cache = tmp_path / "models-home" / "models"         # the ONNX export, for both paths
    posts = _posts(N)
    sample = _reference_sample(N, CHUNK, N // 10)
    a, b = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    for k in range(0, N, 5000):
        b.write_batch(posts[k:k + 5000], [])
    a.write_batch([posts[i] for i in sample], [])
    EmbedStage(a, get_embedder(MODEL, cache_dir=cache)).run()         # in process
    r = backfill(b, MODEL, workers=2, chunk=CHUNK, cache_dir=cache)   # on Dask
    assert r.embedded == N and r.workers == 2 and b.embedding_pending() == 0
    assert r.chunks == N // CHUNK
    assert b.embed_model() == MODEL
    everything = b.vectors_of([p.post.id for p in posts])
    assert len(everything) == N
    ids = [posts[i].post.id for i in sample]
    va = a.vectors_of(ids)
    dim = get_embedder(MODEL, cache_dir=cache).dim
    A = from_blobs([va[i] for i in ids], dim)                         # (m, dim)
    B = from_blobs([everything[i] for i in ids], dim)
    assert A.shape == (len(sample), dim) and len(sample) > N // 10
    assert np.array_equal(A, B) or float(np.abs(A - B).max()) < 1e-3, np.abs(A - B).max()
    assert backfill(b, MODEL, workers=2, cache_dir=cache).embedded == 0   # nothing left: resumable
