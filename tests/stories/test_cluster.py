from __future__ import annotations

import pytest

from townsquare.stories.cluster import StoryClusterer, StoryConfig, StoryPost
from townsquare.stories.text import features
from townsquare.text.normalize import segment

H = 3_600_000
FLOOD = ["Bridge collapse on route 9 after the flood", "Route 9 bridge collapse as flood waters rise",
         "Flood: route 9 bridge collapse blocks traffic", "The flood took the route 9 bridge",
         "Photos of the route 9 bridge collapse in the flood"]
MATCH = ["Cup final tonight, what a match", "What a match in the cup final",
         "Cup final match goes to penalties", "Penalties decide the cup final match",
         "The cup final match was incredible"]


def _posts(texts, start=0, t0=0, step=60_000, author="u"):
    return [StoryPost(start + i, t0 + i * step, t, f"{author}{start + i}") for i, t in enumerate(texts)]


def test_two_events_become_two_stories_and_noise_is_reported():
    c = StoryClusterer(StoryConfig(min_posts=3))
    c.run(_posts(FLOOD) + _posts(MATCH, start=10) + [StoryPost(99, 10, "lunch was nice", "z")])
    stories = c.stories()
    assert sorted(sorted(s.post_ids) for s in stories) == [[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]]
    labels = c.labels()
    assert labels[99] is None and c.unassigned_share() == pytest.approx(1 / 11)
    c.maintain()                           # merges keep it equal to the labels' share
    labels = c.labels()
    assert c.unassigned_share() == sum(v is None for v in labels.values()) / len(labels)
    assert all(s.born_ms is not None for s in stories)


def test_interleaved_streams_give_the_same_result_for_the_same_order():
    posts = [p for pair in zip(_posts(FLOOD), _posts(MATCH, start=10)) for p in pair]
    a, b = StoryClusterer(StoryConfig(min_posts=3)), StoryClusterer(StoryConfig(min_posts=3))
    a.run(posts)
    b.run(posts)
    assert a.labels() == b.labels()
    assert len({v for v in a.labels().values() if v is not None}) == 2


def test_a_story_needs_distinct_authors():
    spam = [StoryPost(i, i, "Buy cheap watches now cheap watches", "spammer") for i in range(10)]
    c = StoryClusterer(StoryConfig(min_posts=3, min_authors=2))
    c.run(spam)
    assert c.stories() == [] and set(c.labels().values()) == {None}


def test_idle_stories_retire_and_new_posts_start_a_new_one():
    cfg = StoryConfig(min_posts=3, retire_after_ms=24 * H, maintenance_every=1)
    c = StoryClusterer(cfg)
    c.run(_posts(FLOOD))
    c.run(_posts(FLOOD, start=100, t0=30 * 24 * H, author="v"))   # a month later, same words
    stories = c.stories()
    assert len(stories) == 2 and sum(s.retired for s in stories) == 1


def test_timeline_counts_posts_per_interval():
    c = StoryClusterer(StoryConfig(min_posts=3, interval_ms=H))
    c.run(_posts(FLOOD, step=H // 2))                              # 5 posts over 2.5 hours
    (s,) = c.stories()
    assert sorted(s.timeline.items()) == [(0, 2), (H, 2), (2 * H, 1)]
    assert s.first_ms == 0 and s.last_ms == 2 * H
    assert "bridge" in s.top_terms(5) and "flood" in s.top_terms(5)


def test_lowercase_hashtags_are_split_with_the_stream_vocabulary():
    c = StoryClusterer(StoryConfig(min_posts=2))
    c.run([StoryPost(i, i, "hurricane harvey hits houston", f"a{i}") for i in range(5)])
    c.add(StoryPost(50, 50, "praying #hurricaneharvey", "b"))
    assert c.resolve(c.assignment[50]) == c.resolve(c.assignment[0])


def test_text_features_fold_and_drop_noise():
    f = features("RT @ann: Séisme à #Katmandou! https://t.co/x I'm safe, l'eau monte")
    assert "seisme" in f and "#katmandou" in f and "katmandou" in f and "eau" in f
    assert not any(k.startswith(("http", "@", "rt")) or "'" in k for k in f)
    assert segment("motivationmonday", {"monday": 5, "motivation": 3}) == ["motivation", "monday"]


def test_config_is_validated():
    with pytest.raises(ValueError, match="join_threshold"):
        StoryConfig(join_threshold=0)
    with pytest.raises(ValueError, match="min_posts"):
        StoryConfig(min_posts=0)


def _two_hurricanes(name_min_df: int) -> StoryClusterer:
    """Eight posts on one hurricane, then four on another, then a post about the second that
    shares more words with the first's (broader) story than with its own."""
    irma = ["Hurricane Irma floods Florida streets", "Florida shelters open as hurricane Irma nears",
            "Irma: Florida Keys evacuated before the hurricane",
            "Hurricane Irma power cuts across Florida", "Irma leaves Florida homes flooded",
            "Miami shelters full, hurricane Irma", "Hurricane Irma recovery in Florida begins",
            "Florida hurricane damage from Irma"]
    maria = ["Maria makes landfall in Dominica", "Hurricane Maria heads to Puerto Rico",
             "Puerto Rico braces for Maria", "Maria: Puerto Rico loses power"]
    c = StoryClusterer(StoryConfig(min_posts=2, name_min_df=name_min_df))
    c.run([StoryPost(i, i * 60_000, t, f"u{i}") for i, t in enumerate(irma)])
    c.run([StoryPost(100 + i, (20 + i) * 60_000, t, f"m{i}") for i, t in enumerate(maria)])
    c.add(StoryPost(999, 30 * 60_000,
                    "Maria: Florida shelters open, Keys evacuated, hurricane power cuts", "x"))
    return c


def test_a_post_joins_the_story_its_heaviest_word_names_over_a_closer_broader_one():
    off, on = _two_hurricanes(0), _two_hurricanes(5)
    for c in (off, on):           # the same two stories either way
        assert c.assignment[0] != c.assignment[100]
        assert {c.assignment[i] for i in range(8)} == {c.assignment[0]}
    assert off.assignment[999] == off.assignment[0]     # by cosine alone: Irma's story
    assert on.assignment[999] == on.assignment[100]     # named "maria": Maria's story


def test_a_word_in_too_few_posts_names_no_story():
    c = _two_hurricanes(50)               # "maria" is in 5 posts: below the floor, cosine decides
    assert c.assignment[999] == c.assignment[0]


def test_name_min_df_must_not_be_negative():
    with pytest.raises(ValueError, match="name_min_df"):
        StoryConfig(name_min_df=-1)


def _resumed(resume_after_ms: int) -> tuple[StoryClusterer, float, float]:
    """The flood story, then, 30 hours later (still open by the clock), a post that shares
    only its generic word and one on the story's own words; with their cosines to it."""
    c = StoryClusterer(StoryConfig(min_posts=3, resume_after_ms=resume_after_ms,
                                   resume_threshold=0.3))
    c.run(_posts(FLOOD))
    story = c.clusters[c.assignment[0]]
    later = 30 * H
    generic = StoryPost(50, later, "Flood waters rise near the school, sandbags on route 9", "w")
    own = StoryPost(51, later + 60_000, "Route 9 bridge collapse: repairs begin after the flood", "v")
    sims = []
    for p in (generic, own):
        from townsquare.stories.cluster import _cosine_to
        sims.append(_cosine_to(c.vector(features(p.text)), story))
        c.add(p)
    return c, sims[0], sims[1]


def test_a_story_silent_for_a_day_resumes_only_on_its_own_words():
    off, g_sim, o_sim = _resumed(10_000 * H)
    on, _, _ = _resumed(24 * H)
    cfg = on.config
    assert cfg.join_threshold <= g_sim < cfg.resume_threshold <= o_sim   # the premise
    assert off.assignment[50] == off.assignment[0]          # no rule: shared words suffice
    assert on.assignment[50] != on.assignment[0]            # silent 30 h: a story of its own
    assert on.assignment[51] == on.assignment[0] == off.assignment[51]


def test_resume_settings_are_validated():
    with pytest.raises(ValueError, match="resume_threshold"):
        StoryConfig(resume_threshold=0)
    with pytest.raises(ValueError, match="resume_after_ms"):
        StoryConfig(resume_after_ms=0)


def _place(c: StoryClusterer, clusters: list, now_ms: int) -> None:
    """Put hand-built clusters into ``c`` as if its stream had made them, the clock at
    ``now_ms``: their norms, the inverted index, their posts' assignment, the next id."""
    from townsquare.stories.cluster import _norm
    for x in clusters:
        x.norm = _norm(x.centroid)
        c.clusters[x.id] = x
        c._reindex(x)
        c.assignment.update((p, x.id) for p in x.post_ids)
    c._next_id, c.newest_ms = max(x.id for x in clusters) + 1, now_ms


def test_a_cluster_that_went_silent_merges_with_the_story_it_ran_beside():
    # Live, a story's own side topic can form apart, go quiet and close while the story it
    # ran beside drifts towards it; a backfill's clusters join any story open during their
    # span (``absorb``), and maintenance merges by the same bar (2014 India floods in the eval
    # stream: an Odisha cluster of 228 posts stayed apart from its 1,302-post story).
    from collections import Counter

    from townsquare.stories.cluster import Cluster
    day = 86_400_000
    c = StoryClusterer(StoryConfig(min_posts=2))
    big = Cluster(id=1, first_ms=0, last_ms=int(7.5 * day), post_ids=list(range(10)),
                  authors=Counter({f"a{i}": 1 for i in range(10)}),
                  centroid={"flood": 6.0, "odisha": 3.0, "india": 2.0})
    small = Cluster(id=2, first_ms=2 * day, last_ms=3 * day, post_ids=[10, 11, 12],
                    authors=Counter({"b1": 2, "b2": 1}),
                    centroid={"odisha": 2.0, "flood": 1.5, "farmers": 0.5})
    _place(c, [big, small], int(7.5 * day))
    assert c.is_active(big) and not c.is_active(small)          # closed now, not stale
    assert not c._stale(small)
    c.maintain()
    assert small.merged_into == 1 and sorted(c.stories()[0].post_ids) == list(range(13))


def _story_and_cluster(size: int, scale: float, posts_bar: float) -> StoryClusterer:
    """A 400-post story and a ``size``-post cluster of another event sharing one generic word,
    open at the same time, with centroid cosine ~0.10 (above ``merge_threshold``); ``scale``
    sizes the cluster's centroid: a sum of ``size`` unit vectors, long when its posts agree."""
    from collections import Counter

    from townsquare.stories.cluster import Cluster
    c = StoryClusterer(StoryConfig(min_posts=2, posts_bar=posts_bar, posts_bar_from=150))
    big = Cluster(id=1, first_ms=0, last_ms=10 * H, post_ids=list(range(400)),
                  authors=Counter({f"a{i}": 1 for i in range(400)}),
                  centroid={"hurricane": 60.0, "irma": 150.0, "florida": 80.0})
    small = Cluster(id=2, first_ms=5 * H, last_ms=9 * H, post_ids=list(range(400, 400 + size)),
                    authors=Counter({f"b{i}": 1 for i in range(size)}),
                    centroid={"hurricane": 8.0 * scale, "maria": 20.0 * scale,
                              "rico": 15.0 * scale})
    _place(c, [big, small], 10 * H)
    return c


def test_a_large_cluster_merges_only_if_its_posts_lie_close_to_the_story():
    from townsquare.stories.cluster import _cosine_to
    c = _story_and_cluster(160, 1.0, 0.03)
    big, small = c.clusters[1], c.clusters[2]
    sim = _cosine_to({t: x / big.norm for t, x in big.centroid.items()}, small)
    assert sim >= c.config.merge_threshold                       # the centroids would merge
    assert sim * small.norm / small.size < c.config.posts_bar    # its posts, on average, not
    c.maintain()
    assert small.merged_into is None and len(c.stories()) == 2
    off = _story_and_cluster(160, 1.0, 0.0)                      # the rule off: one story
    off.maintain()
    assert off.clusters[2].merged_into == 1


def test_small_or_coherent_clusters_merge_as_before():
    small = _story_and_cluster(120, 1.0, 0.03)                   # under posts_bar_from
    small.maintain()
    assert small.clusters[2].merged_into == 1
    coherent = _story_and_cluster(160, 5.0, 0.03)                # its posts agree: |centroid| 131
    coherent.maintain()
    assert coherent.clusters[2].merged_into == 1


def test_posts_bar_is_validated():
    with pytest.raises(ValueError, match="posts_bar"):
        StoryConfig(posts_bar=1.5)
    with pytest.raises(ValueError, match="posts_bar_from"):
        StoryConfig(posts_bar_from=0)


def test_the_share_in_no_story_counted_over_clusters_equals_the_labels_share():
    import random
    rng = random.Random(7)
    topics = [["flood", "river", "bridge", "rain"], ["fire", "smoke", "forest", "wind"],
              ["match", "goal", "final", "cup"], ["quake", "tremor", "city", "rubble"]]
    # topical posts, and one in four a one-off (words no other post has): in no story
    posts = [StoryPost(i, i * 60_000, " ".join(rng.sample(rng.choice(topics), 3))
                       if i % 4 else f"lunch{i} note{i}", f"u{rng.randrange(30)}")
             for i in range(400)]
    c = StoryClusterer(StoryConfig(min_posts=3, maintenance_every=50, join_threshold=0.6,
                                   merge_threshold=0.3))
    c.run(posts)
    c.maintain()
    labels = c.labels()
    assert any(x.merged_into is not None for x in c.clusters.values())    # merges happened
    share = sum(v is None for v in labels.values()) / len(labels)
    assert 0 < share < 1 and c.unassigned_share() == pytest.approx(share, abs=1e-12)


def test_top_terms_are_those_of_a_full_sort_ties_by_term():
    import random
    from collections import Counter

    from townsquare.stories.cluster import Cluster
    rng = random.Random(7)
    for size in (0, 3, 50, 2_000):
        c = Cluster(id=1, first_ms=0, last_ms=0,
                    terms=Counter({f"t{i:04d}": rng.choice([1, 1, 2, 3, 5, 8])
                                   for i in range(size)}))
        full = [t for t, _ in sorted(c.terms.items(), key=lambda kv: (-kv[1], kv[0]))]
        for k in (0, 1, 5, 10, 100, 5_000):
            assert c.top_terms(k) == full[:k]
