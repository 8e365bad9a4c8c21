"""Early termination of the lexical-only ranking (``SearchEngine._top_early``,
``rank.proven_prefix``): reading the lists shallow first must give, page by page, exactly what
reading them ``lexical_depth`` deep gives (ids, scores, parts, cursors), and read less."""
from __future__ import annotations

import random

import pytest

from townsquare.ingest.enrich import LateStage
from townsquare.posts import Post
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.search.lexindex import LexicalIndex
from townsquare.search.rank import RankFields, RankWeights, final_scores, order, proven_prefix, rrf
from townsquare.store.base import Stored

BASE = 1_212_092_628_029_698_048
T0 = 1_600_000_000_000
HOUR = 3_600_000
WORDS = ["flood", "river", "warning", "bridge", "rain", "level", "road", "fire", "smoke", "help"]
QUERIES = ["flood", "flood river", '"river level"', "flood -warning", "rain OR smoke",
           "flood min_faves:100", "bridge road help", "from:u3", "#flood"]
DEEP = 300                           # lexical_depth of both engines: lists longer than it


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    """1,200 posts of a ten-word vocabulary (lists of hundreds), spread over a week with varied
    engagement (recency and engagement reorder BM25's ranks), 10% of them reposts of another
    (near-duplicate groups collapse on the page)."""
    from townsquare.store.sqlite import SQLiteStore
    store = SQLiteStore(tmp_path_factory.mktemp("early") / "t.db")
    rnd = random.Random(7)
    posts, texts = [], []
    for i in range(1200):
        if texts and rnd.random() < 0.1:
            text = f"RT @u{i % 9}: {rnd.choice(texts)}"
        else:
            text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 9)))
            text += rnd.choice(["", " #flood", " #rain"])
            texts.append(text)
        posts.append(Stored(Post(id=BASE + i, source="t", text=text, author_handle=f"u{i % 11}",
                                 created_at=T0 + rnd.randrange(7 * 24 * HOUR),
                                 like_count=rnd.choice([0, 0, 3, 40, 250, 5000]),
                                 retweet_count=rnd.choice([0, 1, 20])).normalized()))
    store.write_batch(posts, [])
    LateStage(store).run()
    lx = LexicalIndex(store, None)
    lx.refresh()
    return store, lx


def _chain(store, lx, query: str, limit: int, first: int) -> list[tuple]:
    """Every page of ``query`` (``first``: ``lexical_first_depth``): per page, its hits as
    (id, score, parts, matched, near-duplicates), its cursor and the depth it read."""
    engine = SearchEngine(store, lexical_index=lx,
                          config=SearchConfig(lexical_depth=DEEP, lexical_first_depth=first))
    pages, cursor = [], None
    while True:
        r = engine.run(query, limit=limit, cursor=cursor, now_ms=T0 + 8 * 24 * HOUR)
        pages.append(([(h.id, h.score, h.parts, h.matched, h.near_duplicates)
                       for h in r.results], r.next_cursor, r.lexical_depth))
        cursor = r.next_cursor
        if cursor is None or len(pages) > 200:
            return pages


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("limit", [7, 20])
def test_shallow_first_pages_equal_the_deep_ones(stream, query, limit):
    store, lx = stream
    deep = _chain(store, lx, query, limit, first=0)
    shallow = _chain(store, lx, query, limit, first=10)
    assert [p[:2] for p in shallow] == [p[:2] for p in deep]        # hits and cursors, exactly
    assert sum(len(p[0]) for p in deep) > 2 * limit                   # several pages to compare
    assert all(p[2] == DEEP for p in deep)


def test_a_first_page_reads_the_lists_shallow(stream):
    store, lx = stream
    pages = _chain(store, lx, "flood", 20, first=10)
    # the first page was proven at 2 x (limit + 1) = 42, a page far down needs the whole depth
    assert pages[0][2] == 42
    assert pages[-1][2] == DEEP
    assert len(pages[0][0]) == 20


def test_proven_prefix_never_proves_a_wrong_head():
    """Against brute force, on 3,000 seeded random cases: two lists cut to ``depth`` and
    ranked; whenever ``proven_prefix`` says the head is proven, it equals the head of the
    uncut ranking (and it does prove many of them)."""
    rnd, proven = random.Random(3), 0
    for _ in range(3000):
        w = RankWeights(any_terms=rnd.choice([0.25, 1.0, 4.0]))
        size, depth = rnd.randint(1, 40), rnd.randint(1, 25)
        # posts 0..size-1: the every-word list holds some in that order, the any-word list
        # some in an order of its own; ages and engagement move their scores by up to 15%
        full = {"lexical": [i for i in range(size) if rnd.random() < 0.7],
                "any_terms": rnd.sample(range(size), rnd.randint(0, size))}
        full = {k: v for k, v in full.items() if v} or {"lexical": [0]}
        fields = {i: RankFields(created_at=-rnd.choice([0, 6, 24, 48, 500]) * HOUR,
                                like_count=rnd.choice([0, 30, 10_000])) for i in range(size)}
        whole = order(final_scores(rrf(full, w), fields, 0, w))
        cut = {k: v[:depth] for k, v in full.items()}
        scores = final_scores(rrf(cut, w), fields, 0, w)
        ranked = order(scores)
        n = rnd.randint(1, 30)
        m = min(n, len(ranked))
        if proven_prefix(scores, ranked, m, cut, [k for k, v in cut.items() if len(v) >= depth],
                         w, depth, complete=m == n):
            assert ranked[:m] == whole[:m]
            proven += 1
    assert proven > 1000


def test_one_list_shortcut_decides_as_the_general_check():
    """One list cut to ``depth`` (a term or a phrase alone): ``proven_prefix`` decides without
    its per-list columns; the decision must be the general one's, the head proven exactly when
    no read post outside it reaches the n-th score (nothing unread can: checked first)."""
    rnd, decided = random.Random(5), {True: 0, False: 0}
    for _ in range(2000):
        w = RankWeights()
        size, depth = rnd.randint(1, 60), rnd.randint(1, 40)
        lexical = rnd.sample(range(size), size)[:depth]
        fields = {i: RankFields(created_at=-rnd.choice([0, 6, 24, 48, 500]) * HOUR,
                                like_count=rnd.choice([0, 30, 10_000])) for i in range(size)}
        lists = {"lexical": lexical, "any_terms": []}
        scores = final_scores(rrf(lists, w), fields, 0, w)
        ranked = order(scores)
        n = rnd.randint(1, len(ranked))
        got = proven_prefix(scores, ranked, n, lists, ["lexical"] if len(lexical) >= depth
                            else [], w, depth, complete=True)
        if len(lexical) < depth:           # nothing cut: proven
            assert got
            continue
        score = dict(zip(scores.ids.tolist(), scores.columns["score"].tolist()))
        bar = score[ranked[n - 1]] * (1.0 - 1e-9)
        gap = w.lexical / (w.rrf_k + depth + 1) / (w.lexical / (w.rrf_k + 1))
        want = ((1.0 + w.recency_weight + w.engagement_weight) * gap < bar
                and not any(score[pid] >= bar for pid in ranked[n:]))
        assert got == want
        decided[got] += 1
    assert min(decided.values()) > 100
