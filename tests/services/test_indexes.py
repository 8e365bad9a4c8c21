"""Which derived indexes exist beside a store, and the engine over them."""
from __future__ import annotations

import numpy as np

from townsquare.embed.sync import InStoreVectors, StoreVectors
from townsquare.posts import Post
from townsquare.search.lexindex import LexicalIndex
from townsquare.services.indexes import (
    build_engine,
    embed_model_for,
    lexical_index,
    refresh_lexical_index,
    vector_index,
)
from townsquare.settings import Settings
from townsquare.store import open_store
from townsquare.store.base import Stored


class _Dim:
    name, dim = "fake-8", 8


class _IndexesItself:
    """What a store that keeps its own full-text and vector indexes (PostgreSQL) tells."""
    indexes_in_store = True

    def embed_model(self):
        return "e5-small-int8"


def _posts(n: int) -> list[Stored]:
    return [Stored(Post(id=1_400_000_000_000_000_000 + i, text=f"flood warning {i}",
                        created_at=1_600_000_000_000 + i, source="t").normalized())
            for i in range(n)]


def test_an_embedded_store_keeps_its_indexes_in_the_home(tmp_path):
    with open_store(tmp_path) as s:
        assert isinstance(lexical_index(s, tmp_path), LexicalIndex)
        assert lexical_index(s, None) is None                   # in memory: FTS5 alone
        v = vector_index(s, tmp_path, _Dim())
        assert isinstance(v, StoreVectors) and len(v) == 0
        assert isinstance(vector_index(s, None, _Dim()), StoreVectors)


def test_a_store_that_indexes_itself_gets_no_files():
    s = _IndexesItself()
    assert lexical_index(s, "/nonexistent") is None
    assert isinstance(vector_index(s, "/nonexistent", _Dim()), InStoreVectors)
    assert refresh_lexical_index(s, "/nonexistent") == {
        "available": False, "reason": "the store's own full-text index answers search"}


def test_the_embedding_model_a_caller_chose_then_the_stores_then_the_settings(tmp_path):
    plain = Settings(home=tmp_path)
    chosen = Settings(home=tmp_path, embed_model="minilm-l6-int8")
    with open_store(tmp_path) as s:
        assert embed_model_for(s, plain) == "e5-small-int8"             # the default
        assert embed_model_for(s, chosen) == "minilm-l6-int8"
        assert embed_model_for(s, chosen, "e5-small-q4") == "e5-small-q4"
        s.write_batch(_posts(1), [])
        s.write_vectors("e5-small-q4", [(1_400_000_000_000_000_000, 1,
                                         np.zeros(4, np.float16).tobytes())], watermark=1)
        assert embed_model_for(s, chosen) == "e5-small-q4"              # the store's vectors


def test_refresh_lexical_index_reports_progress_and_what_it_did(tmp_path):
    ticks = []
    with open_store(tmp_path) as s:
        s.write_batch(_posts(30), [])
        r = refresh_lexical_index(s, tmp_path, lambda n, total: ticks.append((n, total)))
        assert r["available"] and r["indexed"] == 30 and r["seconds"] >= 0
        assert ticks[0] == (0, 30) and sum(n for n, _ in ticks) == 30
        assert refresh_lexical_index(s, tmp_path)["indexed"] == 0      # caught up
    assert (tmp_path / "lexical").is_dir()


def test_build_engine_without_vectors_is_lexical_and_finds_posts(tmp_path):
    with open_store(tmp_path) as s:
        s.write_batch(_posts(3), [])
        engine = build_engine(s, Settings(home=tmp_path))
        assert engine.embedder is None and engine.lexical_index is not None
        r = engine.run("flood", limit=5)
        assert len(r.results) == 3 and not r.semantic["used"]
        assert build_engine(s, Settings(home=tmp_path), semantic=False).vectors is None


def test_search_while_another_process_writes_the_tantivy_index_answers_from_fts5(tmp_path):
    # A running server keeps a tantivy writer for the index's life; a CLI search on the same
    # home used to crash in its inline refresh ("Failed to acquire Lockfile: LockBusy").
    with open_store(tmp_path) as s:
        s.write_batch(_posts(3), [])
        server_side = lexical_index(s, tmp_path, keep_writer=True)
        server_side.refresh()                        # holds the index's writer from now on
        s.write_batch([Stored(Post(id=1_400_000_000_000_000_100, text="flood on the bridge",
                                   created_at=1_600_000_000_100, source="t").normalized())], [])
        engine = build_engine(s, Settings(home=tmp_path))
        latest = engine.run("flood bridge", mode="latest", limit=5)
        assert [h.id for h in latest.results] == [1_400_000_000_000_000_100]
        top = engine.run("flood bridge", limit=5)      # the any-word list adds the others
        assert top.results[0].id == 1_400_000_000_000_000_100
        assert len(engine.run("flood", limit=10).results) == 4
