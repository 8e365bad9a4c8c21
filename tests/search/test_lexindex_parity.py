"""The tantivy index answers operators itself (``search.lexquery``): the same posts as the store's
FTS5 + SQL path, for ``top`` and ``latest``, and without a SQL check when the query compiles."""
from __future__ import annotations

from dataclasses import replace

import pytest

from townsquare.posts import Post
from townsquare.query import parse
from townsquare.search.engine import SearchEngine
from townsquare.search.lexindex import PLAN_MAX_READS, SCHEMA, LexicalIndex
from townsquare.search.lexquery import relax_text
from townsquare.search.rank import RankColumns
from townsquare.store.base import Enrichment, Stored

BASE = 1212092628029698048
T0 = 1_600_000_000_000
HOUR = 3_600_000
WORDS = ["flood", "fire", "rescue", "storm", "help", "water", "bridge", "power"]
LANGS = ["en", "fr", "es", None]


def _posts(n: int = 120) -> list[Post]:
    out = []
    for i in range(n):
        w1, w2 = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
        text = f"{w1} near {w2} report {i}"
        if i % 5 == 0:
            text += " #Flood"
        if i % 7 == 0:
            text += " @CityOps"
        if i % 6 == 0:
            text += " https://example.org/x"
        if i % 11 == 0:
            text += " $AAPL"
        out.append(Post(
            id=BASE + i, text=text, source="t",
            created_at=T0 + (i // 3) * HOUR,                 # three posts share each time
            author_handle=["Ann", "bob", "CityOps"][i % 3], lang=LANGS[i % 4],
            reply_to_id=BASE if i % 4 == 1 else None, repost_of_id=BASE if i % 9 == 2 else None,
            quote_of_id=BASE if i % 10 == 3 else None, has_media=i % 8 == 0,
            like_count=i % 13, retweet_count=None if i % 2 else i % 5).normalized())
    return out


def _enrich(store) -> None:
    store.write_enrichment(Enrichment(watermark=store.max_seq()))


@pytest.fixture
def indexed(store):
    store.write_batch([Stored(p) for p in _posts()], [])
    _enrich(store)
    lx = LexicalIndex(store, None)
    lx.refresh()
    return store, lx


COMPILED = [
    "flood", "flood -fire", '"flood near"', "flood OR fire", "(flood OR fire) rescue",
    "#flood", "#FLOOD water", "@cityops", "$aapl", "flood lang:en", "fire -lang:fr",
    "from:ann", "from:CITYOPS flood", "-from:ann water", "to:cityops", "flood filter:links",
    "flood -filter:links", "fire filter:replies", "filter:retweets", "water filter:quote",
    "filter:media", "help -filter:media", "filter:hashtags storm", "filter:mentions",
    "flood since:2020-09-14", "flood until:2020-09-15", "water within_time:30h",
    f"flood since_id:{BASE + 40}", f"fire max_id:{BASE + 60}", "lang:es OR from:bob",
    "(flood lang:en) OR (fire lang:fr)", "report -(storm OR lang:es)",
    "flood include:nativeretweets", "report -#flood -@cityops",
]
RESIDUAL = ["flood min_faves:5", "fire url:example", "flood OR min_faves:10",
            "water -filter:has_engagement", "🔥 flood"]


def _store_ids(store, query: str, now_ms: int) -> list[int]:
    return [pid for pid, _ in store.lexical_search(parse(query), now_ms=now_ms, order="time",
                                                   limit=10_000)]


def _index_ids(store, lx, query: str, now_ms: int) -> list[int]:
    c = lx.compile(parse(query), now_ms=now_ms, max_seq=store.max_seq())
    hits = lx.search(c.query, 10_000, order="time")
    ok = (set(hits.ids) if c.residual is None else
          store.filter_ids(hits.ids, c.residual, now_ms=now_ms, candidates=True))
    return [pid for pid in hits.ids if pid in ok]


@pytest.mark.parametrize("query", COMPILED)
def test_operators_compile_into_the_index_and_match_what_the_store_matches(indexed, query):
    store, lx = indexed
    now = T0 + 48 * HOUR
    assert lx.compile(parse(query), now_ms=now).residual is None
    want = _store_ids(store, query, now)
    assert want, "a query the test store should match"
    assert _index_ids(store, lx, query, now) == want     # same posts, same newest-first order


@pytest.mark.parametrize("query", RESIDUAL)
def test_what_does_not_compile_is_checked_in_the_store(indexed, query):
    store, lx = indexed
    assert lx.compile(parse(query), now_ms=T0).residual is not None
    assert _index_ids(store, lx, query, T0) == _store_ids(store, query, T0)


@pytest.mark.parametrize("query", ["flood", "flood -fire", "#flood water", "fire lang:en",
                                   "from:ann OR from:bob", "water -filter:links"])
def test_latest_pages_from_the_index_equal_the_store_pages(indexed, query):
    store, lx = indexed
    with_index = SearchEngine(store, lexical_index=lx)
    without = SearchEngine(store)

    def chain(engine):
        out, cursor = [], None
        while True:
            r = engine.run(query, mode="latest", limit=7, cursor=cursor, now_ms=T0)
            out.append([h.id for h in r.results])
            if r.next_cursor is None:
                return out
            cursor = r.next_cursor

    assert chain(with_index) == chain(without)


@pytest.mark.parametrize("query", ["flood", "flood water", "#flood -fire", "report lang:en",
                                   "from:ann storm", "flood min_faves:3"])
def test_top_candidates_from_the_index_are_the_store_candidates(indexed, query):
    store, lx = indexed
    # the every-word list (the any-word list differs by design: the index leaves out words in
    # more than ``common_share`` of the posts, FTS5 knows no word frequencies)
    a = SearchEngine(store, lexical_index=lx).run(query, limit=200, now_ms=T0)
    b = SearchEngine(store).run(query, limit=200, now_ms=T0)
    every = [sorted(h.id for h in r.results if "lexical" in h.matched) for r in (a, b)]
    assert every[0] and every[0] == every[1]


def test_ranking_fields_come_from_the_index_columns(indexed):
    store, lx = indexed
    c = lx.compile(parse("report"), now_ms=T0)
    hits = lx.search(c.query, 1000)
    want = store.rank_fields(hits.ids)
    assert len(hits.ids) == 120
    got, ref = RankColumns.join([hits.fields]), RankColumns.join([RankColumns.of(want)])
    assert len(got.ids) == 120
    for a, b in zip(got, ref):                     # ids, created_at, engagement
        assert a.tolist() == b.tolist()
    assert len(set(ref.engagement.tolist())) > 1     # the counts differ between posts


def test_newest_first_ranking_fields_come_from_the_index_columns(indexed):
    store, lx = indexed
    c = lx.compile(parse("report"), now_ms=T0)
    hits = lx.search(c.query, 50, order="time")
    ref = RankColumns.of(store.rank_fields(hits.ids))
    assert len(hits.ids) == 50
    for a, b in zip(hits.fields, ref):             # ids, created_at, engagement
        assert sorted(a.tolist()) == sorted(b.tolist())
    assert hits.fields.created_at.tolist() == hits.keys    # newest first: the hits' own times


def test_lang_waits_for_the_late_stage_then_compiles(store):
    posts = _posts()
    store.write_batch([Stored(replace(p, lang=None)) for p in posts], [])
    lx = LexicalIndex(store, None)
    lx.refresh()
    # no language yet: lang: stays a check in the store, and finds nothing
    assert lx.compile(parse("flood lang:en"), now_ms=T0).residual is not None
    assert _index_ids(store, lx, "flood lang:en", T0) == _store_ids(store, "flood lang:en", T0) == []
    store.write_enrichment(Enrichment(langs={p.id: "en" for p in posts[:60]},
                                      watermark=store.max_seq()))
    lx.refresh()                                      # indexes the posts again with languages
    assert lx.settled_through == store.max_seq()
    assert lx.compile(parse("flood lang:en"), now_ms=T0).residual is None
    got = _index_ids(store, lx, "flood lang:en", T0)
    assert got and got == _store_ids(store, "flood lang:en", T0)
    assert lx._searcher.num_docs == len(posts)       # replaced, not added twice


def test_deleted_posts_leave_latest_and_the_ranking_fields(indexed):
    store, lx = indexed
    gone = [BASE + i for i in range(0, 120, 2)]
    store.delete(gone)
    engine = SearchEngine(store, lexical_index=lx)
    latest = engine.run("report", mode="latest", limit=200, now_ms=T0)
    assert not {h.id for h in latest.results} & set(gone)
    c = lx.compile(parse("report"), now_ms=T0)
    assert not set(lx.search(c.query, 1000).fields.ids.tolist()) & set(gone)


def test_an_index_of_an_older_schema_is_rebuilt_with_progress(store, tmp_path):
    import json
    store.write_batch([Stored(p) for p in _posts(30)], [])
    path = tmp_path / "lex"
    LexicalIndex(store, path).refresh()
    meta = path / "townsquare.json"
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps({**saved, "schema": SCHEMA - 1}))
    again = LexicalIndex(store, path)
    assert again.watermark == 0 and again.lag() == 30
    seen: list[int] = []
    assert again.refresh(progress=seen.append) == 30 and sum(seen) == 30
    assert json.loads(meta.read_text())["schema"] == SCHEMA
    c = again.compile(parse("flood from:ann"), now_ms=T0)
    assert c.residual is None and len(again.search(c.query, 100).ids) == len(
        _store_ids(store, "flood from:ann", T0))


def test_a_query_indexes_again_the_posts_whose_language_arrived(store):
    posts = _posts()
    store.write_batch([Stored(replace(p, lang=None)) for p in posts], [])
    lx = LexicalIndex(store, None)
    lx.refresh()
    store.write_enrichment(Enrichment(langs={p.id: "en" for p in posts[:60]},
                                      watermark=store.max_seq()))
    assert lx.lag() == 0 and lx.unsettled() > 0
    got = SearchEngine(store, lexical_index=lx).run("flood lang:en", mode="latest", limit=100,
                                                    now_ms=T0)
    assert lx.unsettled() == 0
    want = SearchEngine(store).run("flood lang:en", mode="latest", limit=100, now_ms=T0)
    assert [h.id for h in got.results] == [h.id for h in want.results] != []


def test_latest_lists_posts_the_index_has_not_caught_up_with(indexed):
    """The HTTP service's engines never refresh the index (a background indexer does): a post
    written since must still head ``latest``, which promises the newest posts."""
    store, lx = indexed
    engine = SearchEngine(store, lexical_index=lx, refresh_indexes=False)
    fresh = Post(id=BASE + 10_000, text="flood near the xylophone", source="t",
                 created_at=T0 + 1000 * HOUR).normalized()
    store.write_batch([Stored(fresh)], [])
    assert lx.lag(store.max_seq()) == 1                      # not indexed yet
    ids = [h.id for h in engine.run("flood", mode="latest", limit=5).results]
    assert ids[0] == fresh.id
    assert ids[1:] == [h.id for h in SearchEngine(store).run("flood", mode="latest",
                                                           limit=5).results][1:]


PLANNED = ["report lang:en", "flood lang:en", "report -lang:fr", "report from:ann",
           "flood -filter:links", "report filter:links lang:es", "near -filter:replies",
           "flood OR fire -from:bob", "water OR storm OR help lang:en -filter:media"]


@pytest.mark.parametrize("query", PLANNED)
@pytest.mark.parametrize("limit", [3, 20])
def test_words_ranked_alone_and_conditions_checked_in_the_store_give_the_same_pages(
        indexed, query, limit, monkeypatch):
    """``LexicalIndex.candidate_plan``: tantivy ranks the words alone and the store checks the
    keyword conditions on their candidates. Every page (hits, scores, cursors) must be the one
    the query compiled whole gives, whether the candidates suffice at once or the engine falls
    back to it (shallow first reads; ``filter_min_share`` at its floor and no cap on the reads,
    so that every query here is planned at every depth)."""
    import townsquare.search.lexindex as lexindex
    monkeypatch.setattr(lexindex, "PLAN_MAX_READS", 10**9)
    store, lx = indexed
    assert lx.candidate_plan(parse(query), 20, now_ms=T0, min_share=0.01) is not None

    def chain(share: float) -> list:
        from townsquare.search.config import SearchConfig
        engine = SearchEngine(store, lexical_index=lx,
                              config=SearchConfig(filter_min_share=share, lexical_first_depth=4))
        out, cursor = [], None
        while True:
            r = engine.run(query, limit=limit, cursor=cursor, now_ms=T0 + 48 * HOUR)
            out.append(([(h.id, h.score, h.parts) for h in r.results], r.next_cursor))
            if r.next_cursor is None or len(out) > 50:
                return out
            cursor = r.next_cursor

    planned, whole = chain(0.01), chain(0.0)
    assert planned == whole
    assert sum(len(p[0]) for p in whole) >= 3                 # a query the test store matches


def test_the_plan_is_for_common_keyword_conditions_on_words_only(indexed):
    store, lx = indexed
    plan = lambda q, share=0.3: lx.candidate_plan(parse(q), 20, now_ms=T0,  # noqa: E731
                                                  min_share=share)
    compiled, reads = plan("report -filter:links")           # 5 of 6 posts have no link
    assert compiled.residual == parse("report -filter:links").children[1] and reads == 40
    assert plan("report lang:en") is None                    # a quarter of the posts: < 0.3
    assert plan("report lang:en", 0.2)[1] == 120              # 1.5 x 20 / 0.25
    for q in ("report -fire lang:en", "#flood lang:en", "report since:2020-09-14",
              "report min_faves:3", "lang:en", "report (fire OR lang:en)", "report water lang:en",
              '"near water" lang:en', "(flood OR fire) water lang:en", "covid-19 lang:en"):
        assert plan(q, 0.01) is None, q
    assert plan("report -filter:links", 0.0) is None


def test_the_plan_stays_off_for_deep_lists(indexed):
    """A deep list (a hybrid query's, 1,000 posts) would have the store check more candidates
    than tantivy's scoring of the intersection costs: the query then runs compiled."""
    _store, lx = indexed
    plan = lambda depth: lx.candidate_plan(parse("report -filter:links"), depth,  # noqa: E731
                                           now_ms=T0, min_share=0.3)
    assert plan(PLAN_MAX_READS // 2)[1] == PLAN_MAX_READS      # 2 x depth: 5 of 6 posts pass
    assert plan(PLAN_MAX_READS // 2 + 1) is None
    assert plan(1000) is None


@pytest.mark.parametrize("query", ["report -filter:links", "flood min_faves:5"])
def test_a_search_reads_through_its_own_connection_not_the_indexs(indexed, tmp_path,
                                                                   monkeypatch, query):
    """In the server the index is the indexer's, refreshed through the indexer's connection,
    and each request searches through its own: a store check on candidates (a planned
    condition, a residual) and the index's lag (its deletions not applied yet) must read
    through the request's connection."""
    from townsquare.store.sqlite import SQLiteStore
    store, lx = indexed
    mine = SQLiteStore(store.path)

    def foreign(*a, **kw):
        raise AssertionError("the index's connection was used")
    for name in ("filter_ids", "deletions_since", "max_seq", "enriched_through"):
        monkeypatch.setattr(store, name, foreign)
    try:
        got = SearchEngine(mine, lexical_index=lx, refresh_indexes=False).run(  # the server's
            query, limit=200, now_ms=T0)
        assert got.results and "lexical" in got.results[0].matched
        assert {h.id for h in got.results} == {h.id for h in SearchEngine(mine).run(
            query, limit=200, now_ms=T0).results}           # every match, as FTS5 finds them
    finally:
        mine.close()


# What semantic candidates must satisfy: a query less its positive words (``relax_text``).
AMONG = ["report -fire", "report -flood -storm", 'report -"flood near"',
         "report -(fire OR rescue)", "report -fire lang:en", "report -flood -filter:links",
         "report -rescue since:2020-09-14", "report -power #Flood"]


@pytest.mark.parametrize("query", AMONG)
def test_candidates_checked_in_the_index_are_those_the_store_keeps(indexed, query):
    store, lx = indexed
    node = relax_text(parse(query))
    ids = [p.id for p in _posts()][::-1] + [BASE + 10_000]      # one id the store lacks
    got = lx.among(ids, node, now_ms=T0, max_seq=store.max_seq(), min_matches=0)
    assert got is not None
    hits, unknown = got
    want = store.filter_rank_fields(ids, node, now_ms=T0)
    assert set(hits.ids) == set(want) and 0 < len(want) < len(ids) - 1
    assert unknown == []                       # the index holds the whole snapshot
    cols = hits.fields
    for i, pid in enumerate(cols.ids.tolist()):  # ranking fields from the index's columns
        assert int(cols.created_at[i]) == want[pid][0]


def test_candidates_the_index_has_not_caught_up_with_go_to_the_store(indexed):
    store, lx = indexed
    late = Post(id=BASE + 500, text="storm near water report late", source="t",
                created_at=T0).normalized()
    store.write_batch([Stored(late)], [])
    ids = [BASE + 3, BASE + 500]
    hits, unknown = lx.among(ids, relax_text(parse("x -fire")), now_ms=T0, max_seq=store.max_seq(),
                             min_matches=0)
    assert unknown == [BASE + 500]             # the engine asks the store about it
    assert BASE + 500 not in hits.ids


def test_the_index_checks_candidates_only_for_words_in_many_posts(indexed):
    store, lx = indexed
    ids = [p.id for p in _posts()]
    minus_fire = relax_text(parse("x -fire"))
    assert lx.among(ids, minus_fire, now_ms=T0, min_matches=10_000) is None      # rare
    assert lx.among(ids, minus_fire, now_ms=T0, min_matches=10) is not None      # common
    assert lx.among(ids, parse("lang:en"), now_ms=T0, min_matches=0) is None     # no word
    assert lx.among(ids, relax_text(parse("x -fire min_faves:5")), now_ms=T0,
                    min_matches=0) is None     # a condition the index cannot check
