"""Issue 18: ``fit-e5``, the fast tier fitted in e5's space on the store's own e5 vectors: the fit
moves its vectors toward e5's, is deterministic, keeps no text, leaves deleted posts out of the
next fit, and searches through e5's query vector with e5's cosines (no second query, no map)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from townsquare.embed.e5onnx import E5OnnxEmbedder, export_e5_int8
from townsquare.embed.fitted import (
    COSINE_SHIFT,
    FitConfig,
    FitError,
    FittedE5Embedder,
    fit_table,
    read_meta,
)
from townsquare.embed.stage import EmbedStage
from townsquare.embed.sync import StoreVectors
from townsquare.embed.tiers import FastModel, QueryVector, TieredEmbedder, TieredVectors
from townsquare.posts import Post
from townsquare.settings import Settings
from townsquare.store.base import Stored

BASE = 1212092628029698048
UNIQUE = "zorblaxquent"          # a word no other post has: must not reach the table's file
SUBJECTS = ["The old bridge", "The river", "The city council", "Our team", "The new phone",
            "The museum", "The fire crew", "The school", "My cat", "The airport"]
EVENTS = ["collapsed after the flood", "is rising fast after the storm", "voted on the budget",
          "won the match three to one", "has a great camera", "opens a new exhibition",
          "fought the wildfire all night", "closed because of the snow", "sleeps on the sofa",
          "cancelled every flight"]
FRENCH = ["Le vieux pont s'est effondré après l'inondation",
          "La rivière monte vite après la tempête",
          "Les pompiers ont lutté contre l'incendie toute la nuit"]
POSTS = [f"{s} {e}" for s in SUBJECTS for e in EVENTS][::3] + FRENCH + [
    f"A {UNIQUE} sighting near the harbour this morning"]
# No fallback rows: e5's vector of every piece takes minutes (test_fallback_rows_... builds
# the few it needs).
CONFIG = FitConfig(max_posts=1000, min_posts=10, epochs=3, batch=8, fallback_weight=0.0)


@pytest.fixture(scope="module")
def e5():
    """e5-small-int8 from the user's model cache (exported once per machine, as the API tests'
    ``warm_model_cache`` does)."""
    for mod in ("torch", "onnx"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"exporting e5-small-int8 needs {mod}")
    cache = Settings().cache_dir
    export_e5_int8(cache)
    return E5OnnxEmbedder(cache_dir=cache, num_threads=2)


def _ingest(store, texts, start=0, author=None):
    store.write_batch([Stored(Post(id=BASE + start + i, text=t, source="t",
                                   author_handle=author).normalized())
                       for i, t in enumerate(texts)], [])


@pytest.fixture
def embedded(store, e5):
    _ingest(store, POSTS)
    EmbedStage(store, e5).run()
    return store


def test_the_fit_moves_posts_toward_e5_and_is_deterministic(embedded, e5, tmp_path):
    r = fit_table(embedded, tmp_path / "a.npz", CONFIG, cache_dir=e5.model_path.parent)
    assert r.posts == len(POSTS) and r.pieces > 50
    assert r.loss[-1] < 0.5 * r.loss[0], r.loss                 # 1 - cosine to e5, halved
    fitted = FittedE5Embedder(r.path)
    P, E = fitted.passages(POSTS), e5.passages(POSTS)           # (n, 384) each
    assert P.shape == E.shape == (len(POSTS), 384)
    np.testing.assert_allclose(np.linalg.norm(P, axis=1), 1.0, atol=1e-5)
    assert float(np.mean((P * E).sum(1))) > 1 - 2 * r.loss[-1]
    again = fit_table(embedded, tmp_path / "b.npz", CONFIG, cache_dir=e5.model_path.parent)
    np.testing.assert_array_equal(FittedE5Embedder(again.path).passages(POSTS), P)
    assert read_meta(r.path)["posts"] == len(POSTS)


def test_the_table_holds_no_text_and_a_deleted_post_leaves_the_next_fit(embedded, e5,
                                                                        tmp_path):
    path = tmp_path / "fit-e5.npz"
    fit_table(embedded, path, CONFIG, cache_dir=e5.model_path.parent)
    assert UNIQUE.encode() not in path.read_bytes()
    embedded.delete([BASE + len(POSTS) - 1])
    r = fit_table(embedded, path, CONFIG, cache_dir=e5.model_path.parent)
    assert r.posts == len(POSTS) - 1
    assert UNIQUE.encode() not in path.read_bytes()


def test_posts_of_authors_who_opted_out_and_posts_left_out_never_train_it(store, e5, tmp_path):
    _ingest(store, POSTS)
    _ingest(store, ["The harbour ferry sank near the pier", "The pier ferry is back"],
            start=200, author="CityOps")
    EmbedStage(store, e5).run()
    path, cache = tmp_path / "t.npz", e5.model_path.parent
    assert fit_table(store, path, CONFIG, cache_dir=cache).posts == len(POSTS) + 2
    store.opt_out(["@cityops"])
    assert fit_table(store, path, CONFIG, cache_dir=cache).posts == len(POSTS)
    left = fit_table(store, path, CONFIG, cache_dir=cache, leave_out={BASE, BASE + 1})
    assert left.posts == len(POSTS) - 2


def test_a_store_without_enough_e5_vectors_is_refused_with_what_to_run(store, e5, tmp_path):
    with pytest.raises(FitError, match="townsquare embed"):
        fit_table(store, tmp_path / "x.npz", CONFIG)            # no vectors at all
    _ingest(store, POSTS[:5])
    EmbedStage(store, e5).run()
    with pytest.raises(FitError, match="at least 10 posts"):
        fit_table(store, tmp_path / "x.npz", CONFIG)
    with pytest.raises(FileNotFoundError, match="townsquare fit-fast"):
        FittedE5Embedder(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="epochs"):
        FitConfig(epochs=0)


def test_a_fresh_post_is_found_in_the_fast_tier_by_e5s_query_with_e5s_cosines(embedded, e5,
                                                                              tmp_path):
    fitted = FittedE5Embedder(fit_table(embedded, tmp_path / "t.npz", CONFIG,
                                        cache_dir=e5.model_path.parent).path)
    fresh_text = "The old bridge collapsed, the flood cut the road"
    _ingest(embedded, [fresh_text], start=100)
    fresh = BASE + 100
    vectors = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted)
    vectors.refresh()
    assert set(vectors.fast.ids().tolist()) == {fresh}          # e5 has not reached it
    emb = TieredEmbedder(e5, fitted)
    q = emb.query("le pont s'est effondré après l'inondation")  # a French query
    assert isinstance(q, QueryVector) and q.fast is None        # embedded once, by e5
    hits = dict(vectors.search(q, 10))
    assert fresh in hits
    # Its score is the cosine of e5's query and the fitted vector, less the shift (no mapping).
    expect = float(fitted.passages([fresh_text])[0] @ np.asarray(q)) - COSINE_SHIFT
    assert hits[fresh] == pytest.approx(expect, abs=1e-5)
    # A vector moved by the engine's feedback step (a plain array) searches e5's index alone:
    # the fast tier is an exact scan, searched once per query.
    assert fresh not in dict(vectors.search(np.asarray(q) * 1.0, 10))
    assert FastModel.of(fitted).space == "e5-small-int8"


def test_a_piece_the_fit_never_saw_weighs_in_as_e5s_vector_of_it(embedded, e5, tmp_path):
    from numpy.lib.format import open_memmap

    from townsquare.embed.static import token_pass
    novel = "Une chouette dort dans la bibliothèque"       # pieces no training post has
    fitted0 = FittedE5Embedder(fit_table(embedded, tmp_path / "a.npz", CONFIG,
                                         cache_dir=e5.model_path.parent).path)
    seq = fitted0.piece_ids([novel], False)[0]
    unseen = sorted({t for t in seq if t >= len(fitted0._row_of) or not fitted0._row_of[t]})
    assert unseen
    # A pieces file with only the pieces needed here (the real one holds all 250,002): sparse.
    pieces = sorted({t for s in fitted0.piece_ids([*POSTS, novel], False) for t in s})
    pf = open_memmap(tmp_path / "pieces.npy", mode="w+", dtype=np.float16,
                     shape=(max(pieces) + 1, 384))
    pf[pieces] = token_pass(np.array(pieces), e5.model_path.parent)
    pf.flush()
    config = FitConfig(max_posts=1000, min_posts=10, epochs=3, batch=8, fallback_weight=1.0)
    r = fit_table(embedded, tmp_path / "b.npz", config, pieces_file=tmp_path / "pieces.npy")
    fitted = FittedE5Embedder(r.path, pieces_file=tmp_path / "pieces.npy")
    E = e5.passages([novel])[0]
    assert float(fitted.passages([novel])[0] @ E) > float(fitted0.passages([novel])[0] @ E)
    # Without its pieces file, the table says what to run.
    with pytest.raises(FileNotFoundError, match="townsquare fit-fast"):
        FittedE5Embedder(r.path, cache_dir=tmp_path / "empty")


NOVEL = "Une chouette dort dans la bibliothèque municipale ce matin"   # words no post has


def test_a_post_in_words_the_fit_never_saw_gets_e5s_own_vector_and_is_found_across_languages(
        embedded, e5, tmp_path):
    fitted = FittedE5Embedder(fit_table(embedded, tmp_path / "t.npz", CONFIG,
                                        cache_dir=e5.model_path.parent).path)
    seen_text = "The old bridge collapsed after the flood"
    _, unseen = fitted.passages_and_unseen([NOVEL, seen_text, ""])
    assert unseen[0] >= 0.2 > unseen[1] and unseen[2] == 1.0     # "" has no piece at all
    _ingest(embedded, [NOVEL, seen_text], start=200)
    novel, seen = BASE + 200, BASE + 201
    vectors = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted,
                            e5_embedder=e5)
    vectors.refresh()
    assert set(vectors.fast.ids().tolist()) == {novel, seen}     # both in the fast tier ...
    assert set(vectors.novel.ids().tolist()) == {novel}          # ... the novel one by e5 too
    assert vectors.freshness()["novel"] == 1
    q = TieredEmbedder(e5, fitted).query("an owl sleeping in the town library")   # English
    hits = dict(vectors.search(q, 5))
    # e5's own cosine, not the fitted vector's shifted one: found as e5 would find it.
    assert hits[novel] == pytest.approx(float(e5.passages([NOVEL])[0] @ np.asarray(q)), abs=1e-4)
    # The fitted vector alone (no e5 given) scores it lower and ranks it lower.
    off = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted)
    off.refresh()
    ranked = lambda hs: [pid for pid, _ in hs]                          # noqa: E731
    off_hits = off.search(q, 50)
    assert hits[novel] > dict(off_hits).get(novel, -1.0)
    assert ranked(vectors.search(q, 50)).index(novel) < ranked(off_hits).index(novel)
    # It leaves with the fast tier: deleted, it is gone from both (and scrubbed) ...
    embedded.delete([novel])
    vectors.refresh()
    assert len(vectors.novel) == 0 and novel not in dict(vectors.search(q, 5))
    # ... and once e5 reaches a post, its vector is the e5 index's alone.
    _ingest(embedded, [NOVEL.replace("chouette", "grenouille")], start=300)
    vectors.refresh()
    assert set(vectors.novel.ids().tolist()) == {BASE + 300}
    EmbedStage(embedded, e5).run()
    vectors.refresh()
    assert len(vectors.novel) == 0 and len(vectors.fast) == 0
    assert BASE + 300 in dict(vectors.search(q, 5))


def test_the_novel_budget_goes_to_the_most_unseen_posts_first(embedded, e5, tmp_path):
    fitted = FittedE5Embedder(fit_table(embedded, tmp_path / "t.npz", CONFIG,
                                        cache_dir=e5.model_path.parent).path)
    texts = [NOVEL, "Un hérisson nage dans la piscine de l'école ce matin"]
    _, unseen = fitted.passages_and_unseen(texts)
    _ingest(embedded, texts, start=400)
    vectors = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted,
                            e5_embedder=e5, novel_budget=1, novel_min_unseen=0.01)
    vectors.refresh()
    assert vectors.novel.ids().tolist() == [BASE + 400 + int(np.argmax(unseen))]
    wide = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted,
                         e5_embedder=e5, novel_budget=2, novel_min_unseen=0.01)
    wide.refresh()
    assert sorted(wide.novel.ids().tolist()) == [BASE + 400, BASE + 401]
    off = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), fitted)   # no e5 given
    off.refresh()
    assert len(off.novel) == 0 and len(off.fast) == 2


def test_novel_settings_are_validated(store):
    from townsquare.embed.sync import StoreVectors as SV
    with pytest.raises(ValueError, match="novel_budget"):
        TieredVectors(store, SV(store, None, 384), FastModel("x", 384, lambda p: None),
                      novel_budget=-1)
    with pytest.raises(ValueError, match="novel_min_unseen"):
        TieredVectors(store, SV(store, None, 384), FastModel("x", 384, lambda p: None),
                      novel_min_unseen=0)


def _home_with_table(store, e5, tmp_path):
    """Settings of a home whose fitted table is fitted on ``store``, and the table's path."""
    from townsquare.services.indexes import fit_table_path
    settings = Settings(home=tmp_path / "home", cache_dir=e5.model_path.parent)
    path = fit_table_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fit_table(store, path, CONFIG, cache_dir=e5.model_path.parent)
    return settings, path


def test_the_servers_fast_tier_embeds_in_a_process_of_its_own_as_it_would_here(embedded, e5,
                                                                                tmp_path):
    """``services.indexes.fast_model(..., process=True)``, as the server loads it: fit-e5 in a
    child process (``embed.fastproc``) gives the very vectors and unseen shares of the table
    in this process, and the tier's novel path (``CountsUnseen``) runs through it."""
    import os

    from townsquare.embed.fastproc import UnseenProcessEmbedder
    from townsquare.services.indexes import fast_model
    settings, path = _home_with_table(embedded, e5, tmp_path)
    model = fast_model("fit-e5", settings, process=True)
    emb = model.get()
    try:
        assert isinstance(emb, UnseenProcessEmbedder) and emb.pid not in (None, os.getpid())
        texts = POSTS + [NOVEL, ""]
        got, want = emb.passages_and_unseen(texts), FittedE5Embedder(path).passages_and_unseen(
            texts)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        _ingest(embedded, [NOVEL], start=500)
        vectors = TieredVectors(embedded, StoreVectors(embedded, None, e5.dim), model,
                                e5_embedder=e5)
        vectors.refresh()
        assert vectors.novel.ids().tolist() == [BASE + 500]
        assert BASE + 500 in vectors.fast.ids().tolist()
    finally:
        model.close()
    assert emb.pid is None


def test_a_server_that_cannot_start_a_process_runs_its_fast_tier_in_its_own(embedded, e5,
                                                                           tmp_path, monkeypatch,
                                                                           caplog):
    """Where no child process can be started, the fast tier still runs (in the server's own
    process, as before) and the log says so; a table that is missing fails as it always did."""
    import townsquare.services.indexes as ix

    def refuse(*args, **kwargs):
        raise OSError("no processes here")
    monkeypatch.setattr(ix, "UnseenProcessEmbedder", refuse)
    settings, _path = _home_with_table(embedded, e5, tmp_path)
    emb = ix.fast_model("fit-e5", settings, process=True).get()
    assert isinstance(emb, FittedE5Embedder)
    assert "no process of its own" in caplog.text and "no processes here" in caplog.text
    bare = ix.fast_model("fit-e5", Settings(home=tmp_path / "bare",
                                            cache_dir=e5.model_path.parent), process=True)
    assert bare.get() is None and "townsquare fit-fast" in bare.error
