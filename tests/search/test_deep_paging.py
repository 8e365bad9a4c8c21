"""Deep ``top`` ranking (issue 18): a page chain lists every post any list retrieves, once; a
cursor's pages stay those of its snapshot while posts arrive; the similarity floor cuts the
semantic list; ``limit`` goes up to 1,000."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.embed.stage import EmbedStage
from townsquare.embed.sync import StoreVectors
from townsquare.posts import Post
from townsquare.search.engine import (
    MAX_LIMIT,
    SIMILARITY_FLOORS,
    SearchConfig,
    SearchEngine,
    SearchError,
)
from townsquare.search.lexindex import LexicalIndex
from townsquare.store.base import Stored

from tests.search.axes import WordAxes

BASE = 1_212_092_628_029_698_048
T0 = 1_600_000_000_000
MIN = 60_000
FILLER = ["on the road", "near the bridge today", "report from downtown", "photos", "again"]


def _add(store, start: int, texts: list[str], t0: int = T0) -> list[int]:
    ids = [BASE + start + i for i in range(len(texts))]
    store.write_batch([Stored(Post(id=pid, source="t", text=text, created_at=t0 + i * MIN,
                                   author_handle=f"u{i % 17}", like_count=i % 7).normalized())
                       for i, (pid, text) in enumerate(zip(ids, texts))], [])
    return ids


@pytest.fixture
def matches(store):
    """310 posts with "flood" or "river" (60 with both), 40 with neither: more matches than the
    old fixed depth of 200, and than 15 pages of 20."""
    both = _add(store, 0, [f"flood at the river {FILLER[i % 5]} {i}" for i in range(60)])
    flood = _add(store, 100, [f"flood warning {FILLER[i % 5]} {i}" for i in range(150)])
    river = _add(store, 300, [f"river level {FILLER[i % 5]} {i}" for i in range(100)])
    _add(store, 500, [f"sunny weather {FILLER[i % 5]} {i}" for i in range(40)])
    return store, set(both), set(flood), set(river)


def _chain(make_engine, query: str, limit: int, between=None) -> tuple[list[int], list[float], int]:
    """Every page of ``query``, each served by a fresh engine (as the CLI does); ``between`` runs
    after the first page. (ids in page order, their scores, pages)."""
    ids, scores, cursor, pages = [], [], None, 0
    while True:
        r = make_engine().run(query, limit=limit, cursor=cursor, now_ms=T0 + 10**9)
        ids += [h.id for h in r.results]
        scores += [h.score for h in r.results]
        pages += 1
        if between is not None and pages == 1:
            between()
        cursor = r.next_cursor
        if cursor is None:
            return ids, scores, pages


@pytest.mark.parametrize("accelerated", [False, True], ids=["fts5", "tantivy"])
def test_a_page_chain_lists_every_lexical_match_once(matches, accelerated):
    store, both, flood, river = matches
    lx = LexicalIndex(store, None) if accelerated else None
    # tantivy leaves words in more than ``common_share`` of the posts out of the any-word list
    # (a stop-word rule); in this small store every word is that common
    cfg = SearchConfig(common_share=1.0)
    ids, scores, pages = _chain(lambda: SearchEngine(store, lexical_index=lx, config=cfg),
                                "flood river", 20)
    assert len(ids) == len(set(ids))                          # nothing twice across pages
    assert set(ids) == both | flood | river                   # every any-word match, no other
    assert pages == 16
    # one ranking, sliced: scores never rise from one page to the next
    assert all(a >= b for a, b in zip(scores, scores[1:]))
    # a post with both words first (the every-word list adds to its relevance)
    assert ids[0] in both


def test_one_page_of_1000_is_the_whole_chain(matches):
    store, both, flood, river = matches
    e = SearchEngine(store)
    paged, _s, _p = _chain(lambda: e, "flood river", 7)
    r = e.run("flood river", limit=MAX_LIMIT, now_ms=T0 + 10**9)
    assert [h.id for h in r.results] == paged and r.next_cursor is None


def test_a_cursor_keeps_its_snapshot_while_posts_arrive(matches):
    store, both, flood, river = matches
    lx = LexicalIndex(store, None)
    arrived: list[int] = []

    def arrive():     # newer, engaging, matching posts: without a snapshot they would rank first
        arrived.extend(_add(store, 1000, [f"flood now {i}" for i in range(80)], t0=T0 + 10**8))

    ids, scores, _p = _chain(lambda: SearchEngine(store, lexical_index=lx), "flood", 25,
                             between=arrive)
    assert len(ids) == len(set(ids)) and set(ids) == both | flood
    assert not set(arrived) & set(ids)
    assert all(a >= b for a, b in zip(scores, scores[1:]))
    # a new search sees them
    fresh = SearchEngine(store, lexical_index=lx).run("flood", limit=MAX_LIMIT)
    assert set(arrived) <= {h.id for h in fresh.results}


def test_limit_bounds(matches):
    store, *_ = matches
    e = SearchEngine(store)
    assert len(e.run("flood", limit=MAX_LIMIT).results) == 210
    for bad in (0, -1, MAX_LIMIT + 1):
        with pytest.raises(SearchError, match="limit must be between 1 and 1000"):
            e.run("flood", limit=bad)


def test_cli_limit_bounds(tmp_path):
    from tests.conftest import FIXTURES
    runner = CliRunner()
    home = str(tmp_path / "h")
    assert runner.invoke(app, ["ingest", str(FIXTURES), "--home", home]).exit_code == 0
    ok = runner.invoke(app, ["search", "flood", "--home", home, "--limit", "1000", "--json",
                             "--no-semantic"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["search", "flood", "--home", home, "--limit", "1001"])
    assert bad.exit_code == 2 and "limit" in bad.output and "Traceback" not in bad.output


# cosines to "alpha" ("first" shares its axis): 0.707, 0.577, 0.5, 0
AXES = {"alpha": 0, "first": 0, "beta": 1, "gamma": 2, "delta": 3}


def _axis_store(store, name="axes"):
    # cosines to "alpha": 0.707, 0.577, 0.5, 0 (none of them holds the word "alpha")
    _add(store, 0, ["first beta", "first beta gamma", "first beta gamma delta", "beta"])
    emb = WordAxes(name, AXES)
    EmbedStage(store, emb).run()
    return emb


def test_the_similarity_floor_cuts_the_semantic_list(store):
    emb = _axis_store(store)

    def run(floor):
        e = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                         config=SearchConfig(min_similarity=floor, feedback_docs=0))
        return e.run("alpha", limit=MAX_LIMIT)

    assert [h.id - BASE for h in run(0.55).results] == [0, 1]
    assert run(0.55).semantic["floor"] == 0.55
    assert {h.id - BASE for h in run(0.45).results} == {0, 1, 2}
    assert {h.id - BASE for h in run(-1.0).results} == {0, 1, 2, 3}


def test_a_calibrated_model_gets_its_floor_and_another_model_a_fixed_depth(store):
    name = next(iter(SIMILARITY_FLOORS))
    emb = _axis_store(store, name)
    e = SearchEngine(store, embedder=emb, vectors=StoreVectors(store, None, emb.dim),
                     config=SearchConfig(feedback_docs=0))
    r = e.run("alpha", limit=MAX_LIMIT)
    assert r.semantic["floor"] == SIMILARITY_FLOORS[name]
    assert all(h.parts["cosine"] >= SIMILARITY_FLOORS[name] for h in r.results)
    other = SearchEngine(store, embedder=WordAxes("uncalibrated", AXES),
                         vectors=StoreVectors(store, None, emb.dim),
                         config=SearchConfig(feedback_docs=0)).run("alpha", limit=MAX_LIMIT)
    assert other.semantic["floor"] is None and len(other.results) == 4
