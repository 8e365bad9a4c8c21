"""Issue 18: which fast tier runs (``settings.fast_model``), and a command's search engine in
two tiers (``build_engine``): a post e5 has not embedded yet is found semantically."""
from __future__ import annotations

import pytest

from townsquare.embed.e5onnx import E5OnnxEmbedder
from townsquare.embed.fitted import fit_table
from townsquare.embed.stage import EmbedStage
from townsquare.embed.static import table_path
from townsquare.embed.tiers import TieredEmbedder, TieredVectors
from townsquare.posts import Post
from townsquare.services.indexes import (
    build_engine,
    embedder_for,
    fast_model,
    fast_model_for,
    fit_table_path,
)
from townsquare.settings import Settings, SettingsError
from townsquare.store import open_store
from townsquare.store.base import Stored

from tests.embed.test_fitted import CONFIG, e5, embedded  # noqa: F401 - fixtures
from tests.tiercache import tiny_fast_cache

BASE = 1212092628029698048
POSTS = ["Morning coffee at the park with friends", "My cat refuses to leave the sofa today"]
FRESH = "Flood waters cut the bridge road, the river keeps rising"
QUERY = "flood waters cut the bridge road"


def test_fast_model_setting_decides(store, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    auto, off, on, default = (Settings(home=tmp_path, cache_dir=cache, fast_model=v)
                              for v in ("auto", "none", "M2V-E5 ", None))
    assert on.fast_model == "m2v-e5" and Settings(fast_model="AUTO").fast_model == "auto"
    # auto: only a table already in the cache (a store with no vectors gets the default, e5)
    assert fast_model_for(store, auto) is None
    assert fast_model_for(store, on) == "m2v-e5"            # named: distilled on first use
    assert fast_model_for(store, off) is None
    table_path(cache).write_bytes(b"")                       # what auto looks for
    assert fast_model_for(store, auto) == "m2v-e5"
    assert fast_model_for(store, default) is None            # off unless asked for
    assert fast_model_for(store, off) is None
    # A model with no fast tier: auto runs none, naming one is an error that says why.
    minilm = Settings(home=tmp_path, cache_dir=cache, embed_model="minilm-l6-int8")
    assert fast_model_for(store, minilm) is None
    with pytest.raises(ValueError, match="cannot run in front of minilm-l6-int8"):
        fast_model_for(store, Settings(home=tmp_path, cache_dir=cache, fast_model="m2v-e5",
                                       embed_model="minilm-l6-int8"))
    with pytest.raises(ValueError, match="'bert' cannot run in front of e5-small-int8"):
        fast_model_for(store, Settings(home=tmp_path, cache_dir=cache, fast_model="bert"))
    assert Settings.load(environ={"TOWNSQUARE_FAST_MODEL": "none"}).fast_model == "none"
    with pytest.raises(SettingsError, match="fast_model"):
        Settings(fast_model=3)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tiny_fast_cache(tmp_path_factory, [*POSTS, FRESH, QUERY])


def test_a_commands_engine_finds_a_post_e5_has_not_reached(cache, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    settings = Settings(home=home, cache_dir=cache, fast_model="auto")    # the table is there
    with open_store(home / "townsquare.db") as store:
        store.write_batch([Stored(Post(id=BASE + i, text=t, source="t").normalized())
                           for i, t in enumerate(POSTS)], [])
        e5 = E5OnnxEmbedder(cache_dir=cache, num_threads=2)
        EmbedStage(store, e5).run()
        store.write_batch([Stored(Post(id=BASE + 9, text=FRESH, source="t").normalized())], [])
        assert isinstance(embedder_for(store, settings), TieredEmbedder)
        assert not isinstance(embedder_for(store, settings, "e5-small-int8"), TieredEmbedder)

        engine = build_engine(store, settings)
        assert isinstance(engine.vectors, TieredVectors)
        hits = [h for h in engine.run(QUERY, limit=20).results if h.id == BASE + 9]
        assert len(hits) == 1 and "semantic" in hits[0].matched
        assert BASE + 9 in engine.vectors.fast                 # the fast tier found it

        EmbedStage(store, e5).run()                            # `townsquare embed`
        engine = build_engine(store, settings)
        hits = [h for h in engine.run(QUERY, limit=20).results if h.id == BASE + 9]
        assert len(hits) == 1 and "semantic" in hits[0].matched
        assert len(engine.vectors.fast) == 0                   # e5 holds it now

        off = build_engine(store, Settings(home=home, cache_dir=cache, fast_model="none"))
        assert not isinstance(off.vectors, TieredVectors)


def test_auto_prefers_the_fitted_table_once_it_exists(embedded, e5, tmp_path):
    settings = Settings(home=tmp_path / "home", cache_dir=tmp_path / "empty-cache",
                        fast_model="auto")
    assert fast_model_for(embedded, settings) is None           # neither table made yet
    fit_table(embedded, fit_table_path(settings), CONFIG, cache_dir=e5.model_path.parent)
    assert fast_model_for(embedded, settings) == "fit-e5"
    named = Settings(home=tmp_path / "home", fast_model="fit-e5")
    assert fast_model_for(embedded, named) == "fit-e5"
    with pytest.raises(ValueError, match="fit-e5, m2v-e5"):
        fast_model_for(embedded, Settings(home=tmp_path / "home", fast_model="bert-huge"))


def test_fit_e5_without_its_table_fails_with_the_command_to_run(tmp_path):
    m = fast_model("fit-e5", Settings(home=tmp_path))
    assert m.space == "e5-small-int8" and m.cosine_shift > 0
    assert m.get() is None                       # e5 alone serves meanwhile
    state = m.state()
    assert state["state"] == "failed" and "townsquare fit-fast" in state["error"]
