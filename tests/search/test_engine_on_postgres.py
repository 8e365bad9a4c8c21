"""The search engine over the PostgreSQL store finds what it finds over the embedded store: the
same posts for `latest` (exact matches by time), and for `top` at least the same posts (ranking
differs: BM25 in SQLite, cover density in PostgreSQL; and PostgreSQL's "any of the words" list for
long queries matches stemmed words, so it may add posts with another form of a query word)."""
from __future__ import annotations

import pytest

from townsquare.posts import Post
from townsquare.search.engine import SearchEngine
from townsquare.store.base import Stored
from townsquare.store.postgres import PostgresStore
from townsquare.store.sqlite import SQLiteStore

BASE = 1212092628029698048
TEXTS = [
    ("Flood warning for the river valley #Flood", "ann", "en"),
    ("The flood reached Main Street this morning", "bob", "en"),
    ("Séisme ressenti à Québec ce matin #séisme", "chloé", "fr"),
    ("Terremoto en la costa, sin daños graves", "dani", "es"),
    ("River levels falling, flood warning lifted", "ann", "en"),
    ("Sunny day at the park, no flood here", "eve", "en"),
    ("COVID-19 vaccine clinic opens on Main Street", "bob", "en"),
    ("Bridge closed: flooding on route 9 @cityops", "fay", "en"),
]
QUERIES = ["flood", "flood warning", '"flood warning"', "#flood", "seisme", "québec",
           "flood -warning", "from:ann", "lang:fr", "covid 19", "main street",
           "bridge OR sunny", "@cityops", "flood lang:en -from:eve", "terremoto"]


@pytest.fixture
def stores(pg_url, tmp_path):
    posts = [Stored(Post(id=BASE + i, text=t, source="t", author_handle=a, lang=lang,
                         created_at=1_600_000_000_000 + i * 60_000).normalized(), "f", i)
             for i, (t, a, lang) in enumerate(TEXTS)]
    sq, pg = SQLiteStore(tmp_path / "t.db"), PostgresStore(pg_url)
    for s in (sq, pg):
        s.write_batch(posts, [])
    yield sq, pg
    sq.close()
    pg.close()


@pytest.mark.parametrize("query", QUERIES)
def test_both_backends_find_the_same_posts(stores, query):
    sq, pg = (SearchEngine(s) for s in stores)
    now = 1_700_000_000_000
    latest = [[h.id for h in e.run(query, mode="latest", now_ms=now).results] for e in (sq, pg)]
    assert latest[0] == latest[1] and latest[0], query
    top = [{h.id for h in e.run(query, mode="top", now_ms=now).results} for e in (sq, pg)]
    assert top[0] <= top[1], query
    if len(query.split()) == 1:       # no any-word list: exactly the same posts
        assert top[0] == top[1], query


def test_long_queries_also_find_other_forms_of_their_words_on_postgres(stores):
    sq, pg = (SearchEngine(s) for s in stores)
    flooding = BASE + 7                                   # "... flooding on route 9 ..."
    assert flooding not in {h.id for h in sq.run("flood warning", now_ms=0).results}
    hits = pg.run("flood warning", now_ms=0).results
    assert flooding in {h.id for h in hits}
    assert "any_terms" in next(h for h in hits if h.id == flooding).matched
    assert hits[0].id in (BASE, BASE + 4)                 # posts with both words rank first


def test_cursor_pages_over_postgres(stores):
    e = SearchEngine(stores[1])
    first = e.run("flood OR street OR river", mode="latest", limit=2, now_ms=1_700_000_000_000)
    rest = e.run("flood OR street OR river", mode="latest", limit=10, cursor=first.next_cursor,
                 now_ms=1_700_000_000_000)
    ids = [h.id for h in first.results + rest.results]
    assert len(ids) == len(set(ids)) == 5          # posts 0, 1, 4, 5 and 6


def test_semantic_search_reads_the_pgvector_index(stores):
    from townsquare.embed.sync import InStoreVectors
    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import EmbedStage
    pg = stores[1]
    emb = get_embedder("e5-small-q4")
    EmbedStage(pg, emb).run()
    assert pg.embedding_lag()["pending_posts"] == 0 and pg.vector_count() == len(TEXTS)
    engine = SearchEngine(pg, embedder=emb, vectors=InStoreVectors(pg))
    r = engine.run("inondation de la rivière", limit=3, now_ms=1_700_000_000_000)
    assert r.semantic["used"] and r.semantic["embedded"] == len(TEXTS)
    assert r.results[0].id - BASE in (0, 1, 4) and "semantic" in r.results[0].matched
    r = engine.run("inondation -from:ann", now_ms=1_700_000_000_000)   # operators still apply
    assert all(h.author != "ann" for h in r.results)


def test_the_learned_reranking_reads_its_vectors_from_postgres(stores):
    """Server mode: the re-ranking's vectors come from the store (``InStoreVectors``)."""
    import numpy as np

    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import EmbedStage
    from townsquare.embed.sync import InStoreVectors
    from townsquare.search.engine import MAX_LIMIT, SearchConfig
    from townsquare.search.rerank import FEATURES, RerankModel
    pg = stores[1]
    emb = get_embedder("e5-small-q4")
    EmbedStage(pg, emb).run()
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("cos_query")] = 20.0
    engine = SearchEngine(pg, embedder=emb, vectors=InStoreVectors(pg),
                          config=SearchConfig(min_similarity=-1.0))
    fused = engine.run("flood", limit=MAX_LIMIT, now_ms=1_700_000_000_000).results
    engine.reranker = RerankModel(emb.name, coef, -15.0, keep_top=1)
    got = engine.run("flood", limit=MAX_LIMIT, now_ms=1_700_000_000_000).results
    assert {h.id for h in got} == {h.id for h in fused} and got[0].id == fused[0].id
    p = [h.parts["rerank"] for h in got[1:]]
    assert len(p) >= 3 and p == sorted(p, reverse=True)


def test_the_cli_searches_postgres_without_files_beside_it(stores, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from townsquare.cli import app
    pg = stores[1]
    home = tmp_path / "home"
    r = CliRunner().invoke(app, ["--store", pg.url, "search", "flood warning", "--home", str(home),
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert '"results"' in r.output and str(BASE) in r.output
    assert not (home / "lexical").exists() and not (home / "vectors.index").exists()
