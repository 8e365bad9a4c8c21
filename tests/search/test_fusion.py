"""Fusion: recency scales relevance, the expansion list and its cross-language weight, the
expansion words, and the engine's expansion list end to end (tantivy index, axis embedder)."""
from __future__ import annotations

import numpy as np
import pytest

from townsquare.embed.stage import EmbedStage
from townsquare.embed.sync import StoreVectors
from townsquare.posts import Post
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.search.lexindex import LexicalIndex
from townsquare.search.rank import (RankFields, RankWeights, expansion_terms, final_scores,
                                    list_weights, order, rrf)
from townsquare.store.base import Stored

BASE = 1212092628029698048
HOUR = 3_600_000
T0 = 1_600_000_000_000


def test_recency_does_not_lift_a_post_far_down_the_fusion():
    # Post 1: rank 500 of one of two lists, a year old; post 2: rank 900 of one, new. As an
    # additive term (0.10 x recency), recency put post 2 first; it now scales relevance.
    w = RankWeights()
    rel = {1: 1 / (60 + 500) / (2 / 61), 2: 1 / (60 + 900) / (2 / 61)}
    fields = {1: RankFields(created_at=T0 - 365 * 24 * HOUR), 2: RankFields(created_at=T0)}
    assert order(final_scores(rel, fields, T0, w)) == [1, 2]
    # ... and still orders posts of the same relevance, newest first
    same = {1: 0.5, 2: 0.5}
    assert order(final_scores(same, fields, T0, w)) == [2, 1]


def test_expansion_weighs_more_when_no_post_holds_every_query_word():
    w = RankWeights(lexical=2.0, expansion=1.0, cross_language=4.0)
    assert list_weights({"lexical": [1], "expansion": [2]}, w)["expansion"] == 1.0
    assert list_weights({"lexical": [], "expansion": [2]}, w)["expansion"] == 4.0
    assert list_weights({"semantic": [1], "expansion": [2]}, w)["expansion"] == 4.0
    assert list_weights({"other": [1]}, w) == {"other": 1.0}
    # in the fusion: the expansion's first post beats the semantic list's first
    fused = rrf({"lexical": [], "semantic": [5], "expansion": [6]}, RankWeights(semantic=1.0))
    assert fused[6] > fused[5]
    with pytest.raises(ValueError, match="cross_language"):
        RankWeights(cross_language=-1)
    with pytest.raises(ValueError, match="expansion_docs"):
        SearchConfig(expansion_docs=-1)
    with pytest.raises(ValueError, match="expansion_depth"):
        SearchConfig(expansion_depth=0)


def test_expansion_terms_skip_links_short_words_numbers_and_common_words():
    texts = ["Quake hits Nepal https://t.co/AbC123xyz", "Nepal quake 2015: rescue teams",
             "the rescue in Nepal", "Séisme au Népal"]
    share = {"quake": 0.01, "hits": 0.02, "nepal": 0.001, "rescue": 0.01, "teams": 0.03,
             "the": 0.4, "seisme": 0.002, "abc123xyz": 1e-6, "2015": 0.01}.get
    # nepal: 4 posts x log(1000); quake: 2 x log(100); rescue: 2 x log(100); seisme: 1 x log(500)
    assert expansion_terms(texts, share, 4, 0.05) == ["nepal", "quake", "rescue", "seisme"]
    assert "the" not in expansion_terms(texts, share, 10, 0.05)       # in 40% of the stream
    assert expansion_terms([], share, 5, 0.05) == []


class _AxisEmbedder:
    """One axis per known word: a text is the normalized sum of its words' axes."""
    name, dim = "axes-fusion-test", 8
    WORDS = ("alpha", "beta", "gamma")

    def _vec(self, text):
        v = np.zeros(self.dim, dtype=np.float32)
        for w in text.lower().split():
            if w in self.WORDS:
                v[self.WORDS.index(w)] += 1.0
        v[-1] += 1e-3
        return v / np.linalg.norm(v)

    def passages(self, texts):
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), "f4")

    def query(self, text):
        return self._vec(text)


def _kathmandu(store) -> tuple[_AxisEmbedder, LexicalIndex]:
    """Post 1 shares no word and no embedding axis with the query "alpha"; it shares the rare
    word "kathmandu" with the query's best post (post 0). 60 other posts keep that word under
    the common-word share (5%). The embedder and the tantivy index of that store."""
    texts = ["alpha kathmandu", "beta kathmandu", "gamma"] + [f"filler{i}" for i in range(60)]
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t", created_at=T0 + i * HOUR)
                              .normalized()) for i, t in enumerate(texts)], [])
    emb = _AxisEmbedder()
    EmbedStage(store, emb).run()
    lx = LexicalIndex(store, None)
    lx.refresh()
    return emb, lx


def test_engine_expansion_finds_posts_by_the_words_of_the_best_posts(store):
    emb, lx = _kathmandu(store)

    def ids(**cfg):
        eng = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                           lexical_index=lx,
                           config=SearchConfig(min_similarity=0.5, feedback_query_weight=1.0,
                                               **cfg))
        return [h.id - BASE for h in eng.run("alpha").results]

    assert ids(expansion_docs=0) == [0]
    assert ids(expansion_docs=1) == [0, 1]
    # each hit says which lists found it: post 1 only the expansion list
    eng = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                       lexical_index=lx, config=SearchConfig(min_similarity=0.5,
                                                             feedback_query_weight=1.0,
                                                             expansion_docs=1))
    matched = {h.id - BASE: h.matched for h in eng.run("alpha").results}
    assert matched[1] == ["expansion"] and "lexical" in matched[0]
    assert ids(expansion_docs=1, weights=RankWeights(expansion=0)) == [0]
    # the expansion list is ``expansion_depth`` deep: 1 here, of the 2 posts holding its word
    eng = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                       lexical_index=lx, config=SearchConfig(
                           min_similarity=0.5, feedback_query_weight=1.0, expansion_docs=1,
                           expansion_depth=1))
    assert sum("expansion" in h.matched for h in eng.run("alpha").results) == 1


class _NoVectorsOfTop(StoreVectors):
    """The index as it is for the fast tier's posts before e5 reaches them: it finds them, but
    holds no e5 vector of theirs to move the query with."""

    def vectors_of(self, ids):
        return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)


def test_the_expansion_list_needs_no_vector_of_the_best_posts(store):
    emb, lx = _kathmandu(store)
    eng = SearchEngine(store, embedder=emb, vectors=_NoVectorsOfTop(store, None, emb.dim),
                       lexical_index=lx, config=SearchConfig(
                           min_similarity=0.5, feedback_query_weight=1.0, expansion_docs=1))
    matched = {h.id - BASE: h.matched for h in eng.run("alpha").results}
    assert matched[1] == ["expansion"]                       # found by the top post's words
    assert not any("feedback" in m for m in matched.values())    # no vector: no moved query
