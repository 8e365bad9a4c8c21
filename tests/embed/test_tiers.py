"""Issue 18: the fast tier (m2v-e5) embeds every post at once, e5 replaces its vectors as it
catches up, searches find a post before and after, and deletes leave both tiers."""
from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

from townsquare.embed.e5onnx import E5OnnxEmbedder, export_e5_int8, tokenizer_for
from townsquare.embed.stage import EmbedStage
from townsquare.embed.static import StaticE5Embedder
from townsquare.embed.sync import StoreVectors
from townsquare.embed.tiers import (
    FastModel,
    QueryVector,
    TieredEmbedder,
    TieredVectors,
    to_e5_scale,
)
from townsquare.posts import Post
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.store.base import Stored

BASE = 1212092628029698048
TARGET = BASE + 1
POSTS = ["Morning coffee at the park with friends",
         "The old bridge collapsed after the flood, the river is rising fast",
         "New phone launch today, the camera looks great",
         "My cat refuses to leave the sofa today",
         "Great match tonight, we won three to one"]
QUERY = "bridge collapse in the flood"
QUERY_FR = "le pont s'est effondré après l'inondation"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    for mod in ("torch", "onnx"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"exporting e5-small-int8 needs {mod}")
    cache = tmp_path_factory.mktemp("tiers-models")
    export_e5_int8(cache)
    # The fast model distilled on the pieces of these texts only: the real recipe in seconds.
    tok = tokenizer_for()
    pieces = {t for q in (False, True) for s in tok.content_ids([*POSTS, QUERY, QUERY_FR], q)
              for t in s}
    fast = StaticE5Embedder(cache_dir=cache, token_ids=sorted(pieces))
    return E5OnnxEmbedder(cache_dir=cache, num_threads=2), fast


def _ingest(store, texts, start=0):
    store.write_batch([Stored(Post(id=BASE + start + i, text=t, source="t").normalized())
                       for i, t in enumerate(texts)], [])


def _engine(store, models):
    e5, fast = models
    vectors = TieredVectors(store, StoreVectors(store, None, e5.dim), fast)
    # A low floor: the model distilled on these few pieces is not the one CALIBRATION was fit
    # on (its cosines run lower), and what is tested here is which tier answers, not the floor.
    return SearchEngine(store, embedder=TieredEmbedder(e5, fast), vectors=vectors,
                        config=SearchConfig(min_similarity=0.5)), vectors


def _semantic_ids(engine, query):
    r = engine.run(query, semantic=True, limit=20)
    return [h.id for h in r.results if "semantic" in h.matched]


def test_fast_vectors_are_replaced_by_e5s_and_search_finds_the_post_throughout(store, models):
    e5, fast = models
    _ingest(store, POSTS)
    EmbedStage(store, e5).run()        # the store has an e5 model: the engine searches vectors
    _ingest(store, ["Flood waters cut the bridge road, the river keeps rising"], start=10)
    fresh = BASE + 10
    engine, vectors = _engine(store, models)

    vectors.refresh()
    # Before e5 reaches it: the fresh post is in the fast tier only, and a query finds it there.
    assert fresh in vectors.fast and fresh not in vectors.e5.index
    assert set(vectors.fast.ids().tolist()) == {fresh}
    hits = vectors.search(engine.embedder.query(QUERY), 10)
    assert fresh in [pid for pid, _ in hits], hits
    assert fresh in _semantic_ids(engine, QUERY)
    assert TARGET in _semantic_ids(engine, QUERY)          # e5's posts meanwhile
    assert vectors.freshness()["posts"] == 0
    # Ranking fields beside the vectors: e5's posts have theirs, the fast tier's are read by SQL
    near = vectors.nearest(engine.embedder.query(QUERY), 10)
    assert [(int(i), s) for i, s in zip(near.ids, near.scores)] == hits    # search's, as arrays
    with_fields = set(near.ids[near.has_fields].tolist())
    assert TARGET in with_fields and fresh in near.ids and fresh not in with_fields

    EmbedStage(store, e5).run()        # e5 catches up
    vectors.refresh()
    assert len(vectors.fast) == 0 and fresh in vectors.e5.index
    near = vectors.nearest(engine.embedder.query(QUERY), 10)
    assert fresh in near.ids[near.has_fields].tolist()
    assert fresh in _semantic_ids(engine, QUERY)
    e5_scores = dict(vectors.e5.search(e5.query(QUERY), 10))
    assert fresh in e5_scores


def test_a_changed_post_stays_in_the_fast_tier_until_e5_embeds_its_new_text(store, models):
    e5, _ = models
    _ingest(store, POSTS)
    engine, vectors = _engine(store, models)
    vectors.refresh()
    assert len(vectors.fast) == len(POSTS)
    EmbedStage(store, e5).run(max_posts=2)                 # e5 reaches the first two only
    vectors.refresh()
    assert set(vectors.fast.ids().tolist()) == {BASE + i for i in range(2, len(POSTS))}
    assert len(vectors) == len(POSTS)                      # every post in exactly one tier


def test_deletes_leave_both_tiers(store, models):
    e5, fast = models
    _ingest(store, POSTS)
    EmbedStage(store, e5).run()
    _ingest(store, ["Flood waters cut the bridge road, the river keeps rising"], start=10)
    fresh = BASE + 10
    engine, vectors = _engine(store, models)
    vectors.refresh()
    assert fresh in vectors.fast and TARGET in vectors.e5.index
    row = fast.passages(["Flood waters cut the bridge road, the river keeps rising"])[0]

    store.delete([fresh, TARGET])
    vectors.refresh()
    assert fresh not in vectors.fast and TARGET not in vectors.e5.index
    q = engine.embedder.query(QUERY)
    assert {fresh, TARGET}.isdisjoint(pid for pid, _ in vectors.search(q, 50))
    assert {fresh, TARGET}.isdisjoint(h.id for h in engine.run(QUERY, limit=50).results)
    # The fast index scrubbed the row: no stored vector equals the deleted post's any more.
    stored = vectors.fast._row_vectors(np.arange(vectors.fast.rows))     # (rows, dim)
    assert not np.isclose(stored @ row, 1.0, atol=1e-4).any()
    # A later e5 catch-up never brings it back either.
    EmbedStage(store, e5).run()
    vectors.refresh()
    assert {fresh, TARGET}.isdisjoint(pid for pid, _ in vectors.search(q, 50))


def test_query_vector_is_e5s_and_carries_the_fast_one(models):
    e5, fast = models
    qv = TieredEmbedder(e5, fast).query(QUERY)
    assert isinstance(qv, QueryVector) and qv.shape == (e5.dim,)
    np.testing.assert_array_equal(np.asarray(qv), e5.query(QUERY))
    np.testing.assert_array_equal(qv.fast, fast.query(QUERY))
    moved = qv * 0.5 + 0.1 * np.asarray(qv)                # the engine's feedback step
    assert type(moved) is np.ndarray and getattr(moved, "fast", None) is None   # e5's alone
    assert type(np.ones((3, e5.dim), np.float32) @ qv) is np.ndarray            # scores


def test_calibration_is_monotone_onto_e5s_range():
    xs = np.linspace(-1, 1, 201)
    ys = to_e5_scale(xs)
    assert (np.diff(ys) >= 0).all() and ys[-1] == 1.0


def test_the_tiers_satisfy_the_engines_protocols(store, models):
    from townsquare import protocols
    e5, fast = models
    assert isinstance(TieredEmbedder(e5, fast), protocols.Embedder)
    assert isinstance(fast, protocols.Embedder)
    assert isinstance(TieredVectors(store, StoreVectors(store, None, e5.dim), fast),
                      protocols.VectorIndex)


def test_a_server_tier_never_waits_for_its_model(store, models):
    """The server: the model loads on a thread of its own (a first distillation takes minutes),
    and e5 alone answers meanwhile; then the next refresh fast-embeds the backlog."""
    e5, fast = models
    _ingest(store, POSTS)
    gate = threading.Event()

    def load(progress):
        progress(1, 2)
        assert gate.wait(30)
        return fast

    model = FastModel("m2v-e5", fast.dim, load)
    vectors = TieredVectors(store, StoreVectors(store, None, e5.dim), model,
                            wait_for_model=False)
    emb = TieredEmbedder(e5, model)
    assert vectors.refresh() == 0 and len(vectors.fast) == 0         # returns at once
    assert vectors.freshness()["state"] in ("loading", "distilling")
    assert vectors.freshness()["posts"] == len(POSTS)
    assert emb.query(QUERY).fast is None                              # e5 alone meanwhile
    gate.set()
    model._thread.join(30)
    assert vectors.freshness()["state"] == "ready" and emb.query(QUERY).fast is not None
    assert [vectors.refresh() for _ in range(2)] == [len(POSTS), 0]
    assert vectors.freshness()["posts"] == 0 and len(vectors.fast) == len(POSTS)


def test_a_model_that_fails_to_load_leaves_e5_alone(store, models):
    e5, _ = models
    _ingest(store, POSTS)

    def load(progress):
        raise FileNotFoundError("no teacher")

    vectors = TieredVectors(store, StoreVectors(store, None, e5.dim),
                            FastModel("m2v-e5", 256, load))
    assert vectors.refresh() == 0
    assert vectors.freshness()["state"] == "failed"
    assert "no teacher" in vectors.freshness()["error"]


def test_the_fast_tier_keeps_its_newest_posts_and_says_what_waits_for_e5(store, models):
    e5, fast = models
    _ingest(store, POSTS)                                  # seqs 1-5, e5 has none of them
    vectors = TieredVectors(store, StoreVectors(store, None, e5.dim), fast, max_fast_posts=3)
    vectors.refresh()
    # A backlog beyond the cap: only its newest posts are embedded; the others wait for e5.
    assert set(vectors.fast.ids().tolist()) == {BASE + 2, BASE + 3, BASE + 4}
    f = vectors.freshness()
    assert (f["evicted"], f["max_posts"], f["through_seq"], f["posts"]) == (2, 3, 0, 2)
    assert f["seconds"] >= 0.0
    _ingest(store, ["Flood waters cut the bridge road, the river keeps rising"], start=10)
    vectors.refresh()                                      # one more: the oldest one leaves
    assert set(vectors.fast.ids().tolist()) == {BASE + 3, BASE + 4, BASE + 10}
    assert vectors.evicted_through == 3
    assert (vectors.freshness()["evicted"], vectors.freshness()["posts"]) == (3, 3)
    # Its row is zeroed, as a deleted post's is.
    row = fast.passages([POSTS[2]])[0]
    stored = vectors.fast._row_vectors(np.arange(vectors.fast.rows))     # (rows, dim)
    assert not np.isclose(stored @ row, 1.0, atol=1e-4).any()
    EmbedStage(store, e5).run()                            # e5 catches up: none waits
    vectors.refresh()
    f = vectors.freshness()
    assert len(vectors.fast) == 0 and (f["evicted"], f["posts"]) == (0, 0)
    assert len(vectors) == len(POSTS) + 1


def test_the_fast_tiers_cap_is_checked():
    with pytest.raises(ValueError, match="max_fast_posts"):
        TieredVectors(None, None, FastModel("x", 2, lambda progress: None), max_fast_posts=0)
