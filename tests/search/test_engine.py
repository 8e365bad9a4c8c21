from __future__ import annotations

import pytest

from townsquare.ingest.enrich import LateStage
from townsquare.posts import Post
from townsquare.search.engine import SearchConfig, SearchEngine, SearchError, relax_text
from townsquare.query import QueryError, parse, to_string
from townsquare.search.rank import RankWeights
from townsquare.store.base import Stored

BASE = 1212092628029698048
HOUR = 3_600_000
T0 = 1_600_000_000_000


def _add(store, rows):
    store.write_batch([Stored(Post(id=BASE + i, source="t", **kw).normalized())
                       for i, kw in rows], [])


@pytest.fixture
def stream(store):
    _add(store, [
        (0, dict(text="Bridge on route nine collapsed after the flood", created_at=T0,
                 author_handle="ann", like_count=5)),
        (1, dict(text="Flood waters rising near the old mill", created_at=T0 + HOUR,
                 author_handle="bob")),
        (2, dict(text="Sunny day at the beach, no flood here", created_at=T0 + 2 * HOUR,
                 author_handle="cat")),
        (3, dict(text="Football match tonight", created_at=T0 + 3 * HOUR, author_handle="dan")),
        (4, dict(text="RT @ann: Bridge on route nine collapsed after the flood", created_at=T0 + 4 * HOUR,
                 author_handle="eve")),
    ])
    LateStage(store).run()
    return store


def _ids(resp):
    return [h.id - BASE for h in resp.results]


def test_top_ranks_by_relevance_and_collapses_near_duplicates(stream):
    r = SearchEngine(stream).run("bridge flood")
    assert _ids(r)[0] in (0, 4) and not {0, 4} <= set(_ids(r))   # post and repost: one result
    assert r.results[0].near_duplicates == 1
    assert r.results[0].matched == ["lexical", "any_terms"]
    # posts with only some of the words follow the ones with all of them
    assert set(_ids(r)[1:]) == {1, 2} and all(h.matched == ["any_terms"] for h in r.results[1:])
    strict = SearchEngine(stream, config=SearchConfig(weights=RankWeights(any_terms=0)))
    assert len(strict.run("bridge flood").results) == 1
    assert set(r.timings_ms) >= {"parse", "lexical", "hydrate", "rank", "collapse", "total"}
    assert r.semantic["used"] is False


def test_operators_and_exclusions_apply(stream):
    e = SearchEngine(stream)
    assert _ids(e.run("flood -beach from:bob")) == [1]
    assert sorted(_ids(e.run("flood -from:bob", mode="latest"))) in ([0, 2], [2, 4])


def test_latest_is_newest_first_and_pages_with_a_stable_cursor(stream):
    e = SearchEngine(stream)
    first = e.run("flood OR football", mode="latest", limit=2)
    assert _ids(first) == [4, 3]
    # a post arriving after page 1 does not shift page 2
    _add(stream, [(9, dict(text="flood again", created_at=T0 + 9 * HOUR))])
    second = e.run("flood OR football", mode="latest", limit=2, cursor=first.next_cursor)
    assert _ids(second) == [2, 1]
    third = e.run("flood OR football", mode="latest", limit=2, cursor=second.next_cursor)
    assert third.next_cursor is None and 9 not in _ids(third)


def test_top_pages_do_not_repeat_or_skip(stream):
    e = SearchEngine(stream)
    seen, cursor = [], None
    while True:
        r = e.run("flood", limit=1, cursor=cursor)
        seen += _ids(r)
        cursor = r.next_cursor
        if cursor is None:
            break
    full = _ids(e.run("flood", limit=50))
    assert seen == full and len(full) == len(set(full)) == 3


def test_cursor_of_another_query_is_refused(stream):
    e = SearchEngine(stream)
    c = e.run("flood", limit=1).next_cursor
    with pytest.raises(SearchError, match="another query"):
        e.run("bridge", cursor=c)
    with pytest.raises(SearchError, match="not a cursor"):
        e.run("flood", cursor="garbage!")


def test_bad_requests_get_clear_errors(stream):
    e = SearchEngine(stream)
    with pytest.raises(SearchError, match="mode"):
        e.run("flood", mode="best")
    with pytest.raises(SearchError, match="limit"):
        e.run("flood", limit=0)
    with pytest.raises(QueryError):
        e.run("flood bogus:op")


def test_recency_weight_orders_equally_relevant_posts():
    from townsquare.search.rank import final_scores, order
    posts = {1: Post(id=1, text="a", source="t", created_at=T0),
             2: Post(id=2, text="a", source="t", created_at=T0 + 10 * HOUR)}
    rel = {1: 0.5, 2: 0.5}
    assert order(final_scores(rel, posts, T0 + 10 * HOUR, RankWeights())) == [2, 1]
    assert order(final_scores(rel, posts, T0 + 10 * HOUR, RankWeights(recency_weight=0))) == [2, 1]
    with pytest.raises(ValueError):
        RankWeights(half_life_hours=0)
    with pytest.raises(ValueError):
        SearchConfig(lexical_depth=0)


def test_relax_text_keeps_operators_and_exclusions():
    assert relax_text(parse("flood")) is None
    assert to_string(relax_text(parse("flood from:bob -beach"))) == to_string(parse("from:bob -beach"))
    assert relax_text(parse("flood OR from:bob")) is None
    assert to_string(relax_text(parse("(from:a OR from:b) #flood"))) == to_string(parse("from:a OR from:b"))


# --- semantic, with the real multilingual model ----------------------------------------------------
@pytest.fixture
def semantic_engine(stream):
    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import EmbedStage
    from townsquare.embed.sync import StoreVectors
    emb = get_embedder("e5-small-q4")
    EmbedStage(stream, emb).run()
    return SearchEngine(stream, embedder=emb, vectors=StoreVectors(stream, None, emb.dim))


def test_a_french_query_finds_the_english_posts(semantic_engine):
    r = semantic_engine.run("pont effondré après l'inondation", limit=3)
    assert r.semantic["used"] and r.semantic["pending_posts"] == 0
    assert _ids(r)[0] in (0, 4)                      # the bridge post (or its repost), first
    assert "semantic" in r.results[0].matched and "cosine" in r.results[0].parts


def test_semantic_candidates_obey_operators(semantic_engine):
    r = semantic_engine.run("inondation from:bob")
    assert _ids(r) == [1]
    r = semantic_engine.run("inondation -from:bob -from:ann -from:eve")
    assert 1 not in _ids(r) and 0 not in _ids(r) and 4 not in _ids(r)


def test_semantic_candidates_are_checked_in_the_tantivy_index_for_common_words(
        semantic_engine, stream, monkeypatch):
    import townsquare.search.lexindex as lexindex
    lx = lexindex.LexicalIndex(stream, None)
    lx.refresh()
    engine = SearchEngine(stream, embedder=semantic_engine.embedder,
                          vectors=semantic_engine.vectors, lexical_index=lx)
    query = "pont effondré inondation -flood"
    monkeypatch.setattr(lexindex, "AMONG_MIN_MATCHES", 10**9)       # the store checks
    in_store = engine.run(query)
    calls = []
    among = lx.among
    monkeypatch.setattr(lx, "among", lambda *a, **k: calls.append(among(*a, **k)) or calls[-1])
    monkeypatch.setattr(lexindex, "AMONG_MIN_MATCHES", 0)           # the index checks
    in_index = engine.run(query)
    assert calls and calls[0] is not None           # the semantic list was checked there
    assert _ids(in_index) == _ids(in_store) and in_index.results
    assert not {0, 1, 2, 4} & set(_ids(in_index))   # every post saying "flood" is out


def test_posts_not_embedded_yet_are_still_found_lexically(semantic_engine, store):
    _add(store, [(20, dict(text="Brand new flood report from the river", created_at=T0 + 20 * HOUR))])
    r = semantic_engine.run("flood report")
    assert r.semantic["pending_posts"] == 1
    assert 20 in _ids(r)


def test_a_search_counts_the_posts_not_embedded_yet_only_up_to_a_bound(semantic_engine, store,
                                                                      monkeypatch):
    import townsquare.search.engine as engine_module
    _add(store, [(20 + i, dict(text=f"Flood report {i}", created_at=T0 + (20 + i) * HOUR))
                 for i in range(3)])
    assert semantic_engine.run("flood report").semantic["pending_posts"] == 3
    monkeypatch.setattr(engine_module, "PENDING_COUNTED", 2)   # e5's backlog can be millions
    assert semantic_engine.run("flood report").semantic["pending_posts"] == 2
    assert store.embedding_pending() == 3


def test_deleted_posts_never_come_back_from_the_vector_index(semantic_engine, store):
    semantic_engine.run("bridge")                     # the index is built
    store.delete([BASE + 0, BASE + 4])
    r = semantic_engine.run("pont effondré")
    assert 0 not in _ids(r) and 4 not in _ids(r)


class _NoFields:
    """The same vector index, holding no ranking fields: the store reads them all (as before)."""

    def __init__(self, v):
        self._v = v

    model = property(lambda self: self._v.model)

    def __len__(self):
        return len(self._v)

    def search(self, q, k):
        return self._v.search(q, k)

    def refresh(self):
        return self._v.refresh()

    def nearest(self, q, k, max_seq=None, *, ef=None):
        from townsquare.protocols import Nearest
        return Nearest.of_pairs(self._v.search(q, k))

    def vectors_of(self, ids):
        return self._v.vectors_of(ids)


def test_neighbours_ranking_fields_come_from_the_vector_index_and_rank_as_the_stores(
        semantic_engine, monkeypatch):
    store = semantic_engine.store
    reads: list[list[int]] = []
    read = store.filter_rank_fields
    monkeypatch.setattr(store, "filter_rank_fields",
                        lambda ids, *a, **kw: reads.append(list(ids)) or read(ids, *a, **kw))
    query = "pont effondré après l'inondation"           # no post holds every word: all neighbours
    fast = semantic_engine.run(query, limit=5)
    assert fast.semantic["candidates"] >= 3 and not [r for r in reads if r]   # no SQL for them
    slow = SearchEngine(store, embedder=semantic_engine.embedder,
                        vectors=_NoFields(semantic_engine.vectors)).run(query, limit=5)
    assert sum(map(len, reads)) >= fast.semantic["candidates"]              # the store read them
    assert [(h.id, h.score, h.parts) for h in fast.results] == \
        [(h.id, h.score, h.parts) for h in slow.results]
    # an operator to check: the store reads the neighbours (and checks them), as before
    reads.clear()
    assert _ids(semantic_engine.run("inondation from:bob")) == [1] and sum(map(len, reads)) >= 1


# --- pseudo-relevance feedback ---------------------------------------------------------------------
class _AxisEmbedder:
    """A transparent embedder for the feedback arithmetic: one axis per known word, texts are the
    normalized sum of their words' axes (the real model is exercised above)."""
    name, dim = "axes-test", 8
    WORDS = ("alpha", "beta", "gamma", "delta")

    def _vec(self, text):
        import numpy as np
        v = np.zeros(self.dim, dtype=np.float32)
        for w in text.lower().split():
            if w in self.WORDS:
                v[self.WORDS.index(w)] += 1.0
        v[-1] += 1e-3                                   # never the zero vector
        return v / np.linalg.norm(v)

    def passages(self, texts):
        import numpy as np
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), "f4")

    def query(self, text):
        return self._vec(text)


@pytest.fixture
def axis_stream(store):
    from townsquare.embed.stage import EmbedStage
    from townsquare.embed.sync import StoreVectors
    _add(store, [(0, dict(text="alpha beta", created_at=T0, author_handle="a")),
                 (1, dict(text="beta gamma", created_at=T0 + HOUR, author_handle="b")),
                 (2, dict(text="delta", created_at=T0 + 2 * HOUR, author_handle="c")),
                 (3, dict(text="beta gamma again", created_at=T0 + 3 * HOUR, author_handle="d"))])
    emb = _AxisEmbedder()
    EmbedStage(store, emb).run()

    def engine(**cfg):
        return SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                            config=SearchConfig(min_similarity=0.2, **cfg))
    return engine


def test_feedback_finds_posts_that_only_the_top_posts_resemble(axis_stream):
    # "alpha" is near post 0 only (cosine of "beta gamma" to it: 0); post 0 is about beta too,
    # so the query moved towards it reaches the beta posts.
    off = axis_stream(feedback_docs=0).run("alpha")
    assert _ids(off) == [0] and "feedback" not in off.timings_ms
    on = axis_stream(feedback_docs=1, feedback_query_weight=0.5).run("alpha")
    assert _ids(on)[0] == 0 and set(_ids(on)[1:]) == {1, 3}
    assert all(h.matched == ["feedback"] for h in on.results[1:])
    assert "feedback" in on.timings_ms and 2 not in _ids(on)       # delta: unrelated to both


def test_feedback_obeys_exclusions_and_operators(axis_stream):
    r = axis_stream(feedback_docs=1).run("alpha -from:b")
    assert _ids(r) == [0, 3]
    r = axis_stream(feedback_docs=1).run("alpha -again")
    assert _ids(r) == [0, 1]


def test_feedback_with_full_query_weight_changes_nothing(axis_stream):
    r = axis_stream(feedback_docs=3, feedback_query_weight=1.0).run("alpha")
    assert _ids(r) == [0]


def test_feedback_settings_are_validated():
    with pytest.raises(ValueError, match="feedback_docs"):
        SearchConfig(feedback_docs=-1)
    with pytest.raises(ValueError, match="feedback_query_weight"):
        SearchConfig(feedback_query_weight=1.5)
    with pytest.raises(ValueError, match="feedback"):
        RankWeights(feedback=-1)
    with pytest.raises(ValueError, match="feedback_ef"):
        SearchConfig(feedback_ef=0)
    assert SearchConfig(feedback_ef=None).feedback_ef is None
    with pytest.raises(ValueError, match="semantic_ef"):
        SearchConfig(semantic_ef=0)
    assert SearchConfig(semantic_ef=None).semantic_ef is None


def test_the_querys_own_walk_and_the_feedback_walk_each_get_their_beam(axis_stream, store):
    from townsquare.embed.sync import StoreVectors

    class Beams(StoreVectors):
        """The store's real vector index, with the beam of every walk recorded."""
        asked: list = []

        def nearest(self, q, k, max_seq=None, *, ef=None):
            self.asked.append(ef)
            return super().nearest(q, k, max_seq, ef=ef)

    emb = _AxisEmbedder()
    for own, ef, walks in ((None, 7, [None, 7]), (5, None, [5, None]), (3, 9, [3, 9])):
        v = Beams(store, None, emb.dim)
        v.asked = []
        r = SearchEngine(store, embedder=emb, vectors=v, config=SearchConfig(
            min_similarity=0.2, feedback_docs=1, feedback_query_weight=0.5, semantic_ef=own,
            feedback_ef=ef)).run("alpha")
        assert v.asked == walks and set(_ids(r)) == {0, 1, 3}


def test_a_forked_child_searches_semantically_with_its_own_worker_threads(semantic_engine):
    """The semantic stage runs on a pool of threads; a child forked after the parent searched
    must not hand its query to the parent's threads (they do not exist in the child)."""
    import os
    import select
    want = _ids(semantic_engine.run("pont effondré après l'inondation", limit=3))
    assert want                                              # the parent's pool exists now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                             # the child: search, report, exit
        try:
            got = _ids(semantic_engine.run("pont effondré après l'inondation", limit=3))
            os.write(w, b"1" if got == want else b"0")
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 60)             # a hang fails, it does not block
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert ready and os.read(r, 1) == b"1"
