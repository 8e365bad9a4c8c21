from __future__ import annotations

import numpy as np
import pytest

from townsquare.embed.models import get_embedder
from townsquare.embed.stage import EmbedStage, ModelMismatch, from_blobs, to_blob
from townsquare.embed.sync import StoreVectors
from townsquare.posts import Post
from townsquare.store.base import Stored

BASE = 1212092628029698048


@pytest.fixture(scope="module")
def e5():
    return get_embedder("e5-small-q4")


def _add(store, rows):
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t").normalized())
                       for i, t in rows], [])


def test_float16_blobs_round_trip_within_rounding():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 384)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    back = from_blobs(to_blob(v), 384)
    assert back.shape == (5, 384)
    assert np.allclose(np.linalg.norm(back, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(back * v, axis=1))) > 0.9999


def test_stage_embeds_behind_ingest_and_reports_its_lag(store, e5):
    _add(store, [(0, "bridge collapsed after the flood"), (1, "football match tonight")])
    assert store.embedding_lag()["pending_posts"] == 2
    res = EmbedStage(store, e5, batch_size=1).run(max_posts=1)
    assert res.processed == 1 and store.embedding_lag()["pending_posts"] == 1
    EmbedStage(store, e5).run()
    lag = store.embedding_lag()
    assert (lag["pending_posts"], lag["embedded"], lag["model"]) == (0, 2, "e5-small-q4")
    assert store.stats()["embeddings"]["embedded"] == 2


def test_a_changed_text_is_embedded_again(store, e5):
    _add(store, [(0, "bridge collapsed after the flood")])
    EmbedStage(store, e5).run()
    before = store.vectors_after(0, 10)[0][2]
    _add(store, [(0, "wildfire near the town")])
    assert store.embedding_lag()["pending_posts"] == 1
    EmbedStage(store, e5).run()
    rows = store.vectors_after(0, 10)
    assert len(rows) == 1 and rows[0][2] != before


def test_another_model_needs_an_explicit_reset(store, e5):
    _add(store, [(0, "bridge collapsed after the flood")])
    EmbedStage(store, e5).run()

    class Other:
        name, dim = "other-model", 384

    with pytest.raises(ModelMismatch, match="townsquare embed --reset"):
        EmbedStage(store, Other())
    EmbedStage(store, Other(), reset=True)
    assert store.embedding_lag()["embedded"] == 0 and store.embed_model() == "other-model"


def test_vector_index_catches_up_persists_and_forgets_deleted_posts(store, e5, tmp_path):
    _add(store, [(0, "bridge collapsed after the flood"), (1, "football match tonight")])
    EmbedStage(store, e5).run()
    path = tmp_path / "vectors.index"
    vs = StoreVectors(store, path, e5.dim)
    assert vs.refresh() == 2 and len(vs) == 2 and path.exists()
    _add(store, [(2, "the river flooded the bridge road")])
    EmbedStage(store, e5).run()
    again = StoreVectors(store, path, e5.dim)          # loads the file, adds only the new one
    assert len(again) == 2 and again.refresh() == 1 and len(again) == 3
    top = [pid - BASE for pid, _ in again.search(e5.query("pont inondé"), 3)]
    assert sorted(top) == [0, 1, 2] and top[0] in (0, 2)
    store.delete([BASE + 2])
    r = again.search(e5.query("pont inondé"), 3)
    assert BASE + 2 not in store.filter_ids([pid for pid, _ in r], None)
