"""rank.rrf and rank.final_scores (numpy columns over the candidates) against the per-post loops
they replaced, on random candidates; Fused and Scores as mappings; RankColumns; order's
tie-break."""
from __future__ import annotations

import math
import random

import pytest

from townsquare.posts import Post
from townsquare.search.rank import (Fused, RankColumns, RankFields, RankWeights, Scores,
                                    final_scores, list_weights, order, rrf)

HOUR = 3_600_000


def loop_scores(relevance, posts, reference_ms, w):
    """``final_scores`` as the per-post loop it was before it went to numpy (the reference),
    with recency and engagement now scaling relevance instead of adding to it."""
    out = {}
    for pid, rel in relevance.items():
        p = posts.get(pid)
        if p is None:
            continue
        age_h = max(0.0, (reference_ms - p.created_at) / 3_600_000)
        rec = 0.5 ** (age_h / w.half_life_hours)
        n = ((p.like_count or 0) + 2 * (p.retweet_count or 0) + (p.reply_count or 0)
             + (p.quote_count or 0))
        eng = min(1.0, math.log1p(n) / math.log1p(w.engagement_cap))
        out[pid] = {"score": rel * (1 + w.recency_weight * rec + w.engagement_weight * eng),
                    "relevance": rel, "recency": rec, "engagement": eng}
    return out


def random_case(seed: int):
    rng = random.Random(seed)
    ref = 1_500_000_000_000 + rng.randrange(10**9)
    ids = rng.sample(range(1_200_000_000_000_000_000, 1_200_000_000_000_000_000 + 10**7), 500)
    # coarse relevance values: ties happen, and order breaks them by id
    relevance = {pid: rng.choice([0.0, 0.25, 0.5, 1.0, rng.random()]) for pid in ids}
    maybe = lambda: rng.choice([None, 0, rng.randrange(20), rng.randrange(50_000)])  # noqa: E731
    posts = {}
    for pid in ids:
        if rng.random() < 0.05:
            continue                                   # deleted meanwhile: left out
        created = ref + rng.randrange(-400 * HOUR, 5 * HOUR)   # a few newer than the reference
        if rng.random() < 0.5:
            posts[pid] = RankFields(created, maybe(), maybe(), maybe(), maybe())
        else:
            posts[pid] = Post(id=pid, text="x", source="t", created_at=created,
                              like_count=maybe(), retweet_count=maybe())
    w = RankWeights(recency_weight=rng.choice([0.0, 0.1, 0.3]),
                    half_life_hours=rng.choice([6.0, 24.0, 240.0]),
                    engagement_weight=rng.choice([0.0, 0.05]),
                    engagement_cap=rng.choice([100, 10_000]))
    return relevance, posts, ref, w


@pytest.mark.parametrize("seed", range(20))
def test_numpy_scores_equal_the_loop(seed):
    relevance, posts, ref, w = random_case(seed)
    want = loop_scores(relevance, posts, ref, w)
    got = final_scores(relevance, posts, ref, w)
    assert isinstance(got, Scores) and set(got) == set(want) and len(got) == len(want)
    for pid, parts in want.items():
        assert got[pid] == pytest.approx(parts, rel=1e-12, abs=1e-12)
    assert order(got) == order(want)           # the dict path: the reference's own order


def test_empty_and_all_deleted():
    assert order(final_scores({}, {}, 0, RankWeights())) == []
    s = final_scores({5: 1.0}, {}, 0, RankWeights())
    assert len(s) == 0 and 5 not in s and order(s) == []


def test_ties_go_to_the_larger_id():
    posts = {i: RankFields(created_at=0) for i in (3, 9, 4)}
    assert order(final_scores({3: 0.5, 9: 0.5, 4: 0.7}, posts, 0, RankWeights())) == [4, 9, 3]


def loop_rrf(lists, w):
    """``rrf`` as the dict loop it was before it went to numpy (the reference)."""
    weights = list_weights(lists, w)
    active = [name for name, ids in lists.items() if ids]
    best = sum(weights[name] for name in active) / (w.rrf_k + 1) or 1.0
    out = {}
    for name in active:
        for rank, pid in enumerate(lists[name], start=1):
            out[pid] = out.get(pid, 0.0) + weights[name] / (w.rrf_k + rank)
    return {pid: s / best for pid, s in out.items()}


def random_lists(seed: int):
    rng = random.Random(seed)
    pool = rng.sample(range(10**18, 10**18 + 10**6), 800)
    names = ["lexical", "any_terms", "semantic", "feedback", "expansion", "other"]
    lists = {name: [rng.choice(pool) for _ in range(rng.choice([0, 1, 30, 400]))]
             for name in rng.sample(names, rng.randrange(1, len(names) + 1))}
    w = RankWeights(rrf_k=rng.choice([0, 60]), lexical=rng.choice([0.0, 2.0]),
                    cross_language=rng.choice([1.0, 4.0]))
    return lists, w


@pytest.mark.parametrize("seed", range(30))
def test_numpy_rrf_equals_the_loop(seed):
    lists, w = random_lists(seed)
    want = loop_rrf(lists, w)
    got = rrf(lists, w)
    assert isinstance(got, Fused) and dict(got) == want          # the same sums, bit for bit
    assert got.best() == sorted(want, key=lambda p: (-want[p], -p))
    assert got.best(7) == got.best()[:7]


@pytest.mark.parametrize("seed", range(20))
def test_columns_end_to_end_equal_the_loops(seed):
    # rrf -> final_scores over RankColumns (in chunks, some ids twice, some missing) -> order,
    # against the loops over dicts
    lists, w = random_lists(seed)
    relevance, posts, ref, w2 = random_case(seed)
    fused = rrf(lists, w)
    rng = random.Random(seed)
    fields = {pid: RankFields(ref - rng.randrange(500 * HOUR), rng.choice([None, 3]),
                              rng.randrange(100), None, 1)
              for pid in fused if rng.random() < 0.9}
    items = list(fields.items())
    chunks = [RankColumns.of(dict(items[i:i + 97])) for i in range(0, len(items), 97)]
    cols = RankColumns.join(chunks + chunks[:1])
    want = loop_scores(loop_rrf(lists, w), fields, ref, w2)
    got = final_scores(fused, cols, ref, w2)
    assert set(got) == set(want)
    for pid, parts in want.items():
        assert got[pid] == pytest.approx(parts, rel=1e-12, abs=1e-12)
    assert order(got) == order(want)
    assert cols.missing(fused.ids).tolist() == sorted(set(fused) - set(fields))


def test_fused_mapping_and_empty():
    f = rrf({"lexical": [4, 2], "semantic": []}, RankWeights())
    assert f[4] == 1.0 and 3 not in f and list(f) == [2, 4] and len(f) == 2
    with pytest.raises(KeyError):
        f[3]
    empty = rrf({"lexical": []}, RankWeights())
    assert len(empty) == 0 and empty.best() == []
    assert order(final_scores(empty, RankColumns.join([]), 0, RankWeights())) == []


@pytest.mark.parametrize("seed", range(10))
def test_one_list_with_its_own_columns_equals_the_loops(seed):
    # a term or a phrase alone: one list, each hit's columns read with it (the same ids, no
    # deleted one): rrf sorts instead of summing and final_scores skips the join; the scores
    # must be the loops' all the same, and an id twice in the list still adds up
    rng = random.Random(seed)
    relevance, posts, ref, w = random_case(seed)
    hits = [pid for pid in relevance if pid in posts]
    rng.shuffle(hits)
    for lexical in (hits, hits + hits[:3]):
        lists = {"lexical": lexical, "any_terms": []}
        fused = rrf(lists, RankWeights())
        assert dict(fused) == loop_rrf(lists, RankWeights())
        cols = RankColumns.join([RankColumns.of({pid: posts[pid] for pid in lexical})])
        got = final_scores(fused, cols, ref, w)
        want = loop_scores(loop_rrf(lists, RankWeights()), posts, ref, w)
        assert set(got) == set(want)
        for pid, parts in want.items():
            assert got[pid] == pytest.approx(parts, rel=1e-12, abs=1e-12)
        assert order(got) == order(want)
