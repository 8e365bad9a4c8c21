"""Embedding backfill on a local 2-worker Dask cluster: the same vectors as the in-process path."""
from __future__ import annotations

import shutil

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


@pytest.mark.slow
def test_backfill_of_50000_posts_on_2_workers_equals_the_in_process_path(tmp_path):
    from townsquare.jobs.backfill import backfill
    cache = tmp_path / "models-home" / "models"         # the ONNX export, for both paths
    a = open_store(tmp_path / "a")
    posts = _posts(N)
    for k in range(0, N, 5000):
        a.write_batch(posts[k:k + 5000], [])
    a.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a, b = open_store(tmp_path / "a"), open_store(tmp_path / "b")
    EmbedStage(a, get_embedder(MODEL, cache_dir=cache)).run()         # in process
    r = backfill(b, MODEL, workers=2, chunk=2000, cache_dir=cache)    # on Dask
    assert r.embedded == N and r.workers == 2 and b.embedding_pending() == 0
    assert b.embed_model() == MODEL
    ids = [p.post.id for p in posts]
    va, vb = a.vectors_of(ids), b.vectors_of(ids)
    dim = get_embedder(MODEL, cache_dir=cache).dim
    A = from_blobs([va[i] for i in ids], dim)                         # (N, dim)
    B = from_blobs([vb[i] for i in ids], dim)
    assert A.shape == (N, dim)
    assert np.array_equal(A, B) or float(np.abs(A - B).max()) < 1e-3, np.abs(A - B).max()
    assert backfill(b, MODEL, workers=2, cache_dir=cache).embedded == 0   # nothing left: resumable
