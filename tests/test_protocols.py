"""The typed seams: the real embedders and indexes satisfy the protocols search is typed with."""
from __future__ import annotations

import numpy as np
import pytest

from townsquare import protocols
from townsquare.embed.index import VectorIndex as FaissIndex
from townsquare.embed.models import E5Embedder, get_embedder
from townsquare.embed.sync import InStoreVectors, StoreVectors
from townsquare.search.engine import SearchEngine
from townsquare.store.sqlite import SQLiteStore


@pytest.fixture
def mem():
    s = SQLiteStore(":memory:")
    yield s
    s.close()


def test_embedders_are_embedders():
    for emb in (E5Embedder(num_threads=1), get_embedder()):
        assert isinstance(emb, protocols.Embedder)
        assert emb.query("flood").shape == (emb.dim,)
        assert emb.passages([]).shape == (0, emb.dim)


def test_vector_indexes_are_vector_indexes(mem):
    for vi in (StoreVectors(mem, None, 384), InStoreVectors(mem)):
        assert isinstance(vi, protocols.VectorIndex)
        assert (vi.model, len(vi), vi.refresh()) == (None, 0, 0)
    # the raw faiss index holds vectors but is not kept in step with a store
    assert not isinstance(FaissIndex(4), protocols.VectorIndex)


def test_the_tantivy_index_is_a_lexical_index(mem):
    lexindex = pytest.importorskip("townsquare.search.lexindex")
    pytest.importorskip("tantivy")
    lx = lexindex.LexicalIndex(mem, None)
    assert isinstance(lx, protocols.LexicalIndex)
    from townsquare.query import parse
    assert (lx.lag(), lx.refresh(), lx.top(parse("flood"), 5)) == (0, 0, ([], 0))


def test_a_duck_typed_embedder_serves_the_engine(mem):
    class Constant:                         # no base class: the protocol is the contract
        name, dim = "constant-2", 2

        def query(self, text):
            return np.array([1.0, 0.0], dtype=np.float32)

        def passages(self, texts):
            return np.tile(self.query(""), (len(texts), 1))

    assert isinstance(Constant(), protocols.Embedder)
    engine = SearchEngine(mem, embedder=Constant(), vectors=StoreVectors(mem, None, 2))
    assert engine.run("flood").semantic["used"] is False      # nothing embedded yet
