from __future__ import annotations

import random

import pytest

from townsquare.posts import Post
from townsquare.store.base import Enrichment, Stored
from townsquare.stories.trends import (Trend, TrendDetector, TrendPost, TrendsConfig,
                                       trend_posts_from_store)

H = 3_600_000
NOW = 1_600_000_000_000          # stream time of every test: the window is [NOW - H, NOW)
IN_WINDOW = NOW - H // 2


def _find(trends: list[Trend], name: str) -> Trend | None:
    """The trend shown as ``name`` or that absorbed it."""
    return next((t for t in trends if t.label == name or name in t.merged), None)


def _background(n_hours: int = 24, start_id: int = 1_000_000) -> list[TrendPost]:
    """One filler post per baseline hour, so the stream covers the whole baseline."""
    return [TrendPost(start_id + h, NOW - (h + 1) * H, "ordinary chatter", "filler")
            for h in range(1, n_hours + 1)]


def _run(posts, **cfg) -> list[Trend]:
    return TrendDetector(TrendsConfig(**cfg)).run(posts, now_ms=NOW)


def test_burst_beats_steady_high_volume_term():
    posts, i = _background(), 0
    for h in range(1, 25):                                  # 30 authors an hour, every hour
        for a in range(30):
            posts.append(TrendPost(i := i + 1, NOW - h * H - H // 2, "weather", f"w{a}"))
    for a in range(35):                                     # ...and a little more now
        posts.append(TrendPost(i := i + 1, IN_WINDOW, "weather", f"w{a}"))
    for a in range(8):                                      # new: 8 authors
        posts.append(TrendPost(i := i + 1, IN_WINDOW, "volcano", f"v{a}"))
    trends = _run(posts)
    labels = [t.label for t in trends]
    assert labels.index("volcano") < labels.index("weather")
    weather, volcano = trends[labels.index("weather")], trends[labels.index("volcano")]
    assert weather.posts > volcano.posts                    # more volume, still below
    assert weather.expected == pytest.approx(30.0)
    assert volcano.expected == 0.0 and volcano.score == pytest.approx(8.0)


def test_retweet_flood_by_500_bots_scores_below_20_independent_authors():
    posts = [TrendPost(1, IN_WINDOW - 10, "Giant squid spotted #squid", "origin")]
    posts += [TrendPost(10 + b, IN_WINDOW, "RT @origin: Giant squid spotted #squid", f"bot{b}", 1)
              for b in range(500)]
    posts += [TrendPost(2000 + a, IN_WINDOW, f"an octopus sighting, report number {a}", f"person{a}")
              for a in range(20)]
    trends = _run(posts + _background())
    squid, octopus = _find(trends, "squid"), _find(trends, "octopus")
    assert squid is not None and octopus is not None
    assert squid.posts == 501 and squid.authors == 501
    assert squid.support < 12 < octopus.support == 20
    assert trends.index(octopus) < trends.index(squid)
    assert squid.sample_post_ids == [1]                     # one sample per duplicate group


def test_one_author_posting_a_hashtag_100_times_counts_once():
    posts = [TrendPost(i, IN_WINDOW, f"#BuyNow deal {i}", "spammer") for i in range(100)]
    assert _find(_run(posts + _background()), "#BuyNow") is None
    alone = _find(_run(posts + _background(), min_authors=1), "#BuyNow")
    assert alone is not None and alone.support == 1 and alone.posts == 100


def test_unknown_authors_each_count_as_one():
    posts = [TrendPost(i, IN_WINDOW, "#blackout downtown", None) for i in range(3)]
    t = _find(_run(posts + _background()), "#blackout")
    assert t is not None and t.authors == 3


def _motivation_posts(with_vocabulary: bool) -> list[TrendPost]:
    posts, i = _background(), 0
    for spelling, n in (("#MondayMotivation", 5), ("#MotivationMonday", 3), ("#mondaymotivation", 3)):
        for a in range(n):
            posts.append(TrendPost(i := i + 1, IN_WINDOW, spelling, f"{spelling}-{a}"))
    if with_vocabulary:                                     # words the stream uses, hours ago
        for a in range(40):
            posts.append(TrendPost(i := i + 1, NOW - 5 * H, "monday needs motivation", f"m{a}"))
    return posts


def test_hashtag_spellings_with_the_same_words_are_one_trend():
    trends = _run(_motivation_posts(with_vocabulary=True))
    t = _find(trends, "#MondayMotivation")
    assert t is not None and t.kind == "hashtag"
    assert t.label == "#MondayMotivation"                   # the most frequent spelling
    assert sorted(t.merged) == ["#MotivationMonday", "#mondaymotivation"]
    assert t.support == 11


def test_lowercase_hashtag_is_segmented_with_the_streams_vocabulary():
    trends = _run(_motivation_posts(with_vocabulary=False))
    camel = _find(trends, "#MondayMotivation")
    assert camel is not None and camel.merged == ["#MotivationMonday"]
    assert _find(trends, "#mondaymotivation") is not camel


def test_hashtag_and_phrase_carried_by_the_same_posts_merge():
    posts = [TrendPost(i, IN_WINDOW, "#nepalquake nepal earthquake, stay safe", f"a{i}")
             for i in range(8)]
    posts += [TrendPost(100 + i, IN_WINDOW, "#nepalquake", f"b{i}") for i in range(2)]
    posts += [TrendPost(200 + i, IN_WINDOW, "football tonight", f"c{i}") for i in range(5)]
    trends = _run(posts + _background())
    top = trends[0]
    assert top.label == "#nepalquake" and top.support == 10
    assert "nepal earthquake" in top.merged
    assert _find(trends, "football").label == "football"    # disjoint posts: not merged
    assert all(t.label != "nepal earthquake" for t in trends)


def test_window_is_half_open_at_now():
    posts = [TrendPost(i, NOW, "#atnow", f"a{i}") for i in range(5)]
    posts += [TrendPost(10 + i, NOW - H, "#atstart", f"a{i}") for i in range(5)]
    posts += [TrendPost(20 + i, NOW - H - 1, "#justbefore", f"a{i}") for i in range(5)]
    trends = _run(posts + _background())
    assert _find(trends, "#atstart") is not None
    assert _find(trends, "#atnow") is None
    assert _find(trends, "#justbefore") is None


def test_default_now_is_just_after_the_newest_post():
    posts = [TrendPost(i, NOW - 1, "#latest", f"a{i}") for i in range(3)] + _background()
    assert _find(TrendDetector().run(posts), "#latest") is not None


def test_accents_and_case_fold_into_one_hashtag():
    posts = [TrendPost(i, IN_WINDOW, "#Séisme", f"a{i}") for i in range(4)]
    posts += [TrendPost(10 + i, IN_WINDOW, "#seisme", f"b{i}") for i in range(3)]
    trends = _run(posts + _background())
    assert len(trends) == 1
    assert trends[0].label == "#Séisme" and trends[0].merged == ["#seisme"]
    assert trends[0].support == 7


def test_urls_mentions_numbers_and_stopwords_are_never_trends():
    texts = ["RT @cityops: the flood is here https://t.co/abc123 www.example.com 2024",
             "le flood est là, on y va", "el flood es muy grande y no para"]
    posts = [TrendPost(i * 3 + j, IN_WINDOW, text, f"a{i}-{j}")
             for i in range(10) for j, text in enumerate(texts)]
    trends = _run(posts + _background(), min_jaccard=1.0)
    assert _find(trends, "flood") is not None
    shown = [w for t in trends for name in [t.label, *t.merged] for w in name.split()]
    forbidden = {"rt", "cityops", "@cityops", "https", "abc123", "www", "example", "2024", "the",
                 "is", "here", "le", "est", "la", "on", "el", "es", "muy", "no", "para", "y"}
    assert not forbidden & set(shown)
    assert not any("/" in w or "." in w for w in shown)


def test_same_posts_in_any_order_give_the_same_trends():
    posts = _motivation_posts(with_vocabulary=True)
    posts += [TrendPost(5000 + b, IN_WINDOW, "RT @x: storm warning #storm", f"bot{b}", 4999)
              for b in range(50)]
    posts += [TrendPost(4999, IN_WINDOW, "storm warning #storm", "x")]
    posts += [TrendPost(6000 + a, IN_WINDOW, f"storm coming, take care {a}", f"p{a}")
              for a in range(6)]
    expected = [t.to_dict() for t in _run(posts)]
    assert len(expected) >= 2
    for seed in range(3):
        shuffled = posts[:]
        random.Random(seed).shuffle(shuffled)
        assert [t.to_dict() for t in _run(shuffled)] == expected


@pytest.mark.parametrize("field,value", [
    ("window_ms", 0), ("baseline_windows", 0), ("min_authors", 0), ("alpha", 0.0),
    ("max_trends", 0), ("min_jaccard", 0.0), ("min_jaccard", 1.5)])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrendsConfig(**{field: value})


def test_trend_posts_from_store_reads_window_authors_and_duplicate_roots(store):
    base = 1212092628029698048
    rows = [(0, "Bridge closed after the flood", NOW - 10, "Ann", None),
            (1, "RT @ann: Bridge closed after the flood", NOW - 5, None, 77),
            (2, "Too old", NOW - 10 * H, "cat", None),
            (3, "Too new", NOW, "dan", None)]
    store.write_batch([Stored(Post(id=base + i, text=text, source="t", created_at=t,
                                   author_handle=h, author_id=aid).normalized())
                       for i, text, t, h, aid in rows], [])
    store.write_enrichment(Enrichment(links={base + 1: base}))
    got = trend_posts_from_store(store, NOW - H, NOW)
    assert [(p.id - base, p.author, p.dup_root) for p in got] == [(0, "ann", None), (1, "77", base)]
